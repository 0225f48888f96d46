/* Inference and evaluation: build the student a checkpoint describes, load
 * its weights, run it over a split; the metrics of kd eval and of the
 * trainer's evaluations; kd predict and kd logits. The first piece of the C
 * inference API. */
#ifndef KD_INFER_H
#define KD_INFER_H

#include <mpi.h>
#include <stdint.h>
#include <stdio.h>

#include "kd/data.h"
#include "kd/error.h"
#include "kd/model.h"
#include "kd/teacher.h"

#define KD_ECE_BINS 15

/* A progress line over a long loop (rank 0's console; src/core/progress.h). */
typedef struct kd_progress kd_progress;

/* Evaluation metrics of a model's logits on labelled rows: accuracy, NLL,
 * expected calibration error (15 equal-width confidence bins), and, with
 * teacher logits, top-1 agreement and KL(teacher || student) at T. */
typedef struct kd_eval_sums {
  double n;          /* rows */
  double labelled;   /* rows with y >= 0 */
  double correct;
  double nll;        /* sum of -log p(y) over labelled rows */
  double bin_n[KD_ECE_BINS], bin_conf[KD_ECE_BINS], bin_correct[KD_ECE_BINS];
  double teacher_rows;
  double agree;      /* argmax student == argmax teacher */
  double kl;         /* sum of KL(p_t^T || p_s^T) */
  int tokens;        /* the rows are target tokens of a language model */
  double bytes;      /* UTF-8 bytes of those targets (from the tokenizer record) */
} kd_eval_sums;

typedef struct kd_eval_result {
  double accuracy, nll, ece;  /* NAN when no labelled row; for token rows per target token */
  double agreement, kl;       /* NAN without teacher logits */
  double ppl, bpb;            /* token rows: exp(nll), bits per byte (sum of NLL / ln 2 over the targets' bytes) */
  int64_t n;                  /* rows evaluated (target tokens for token rows) */
  int64_t tokens;             /* 0 for feature rows */
} kd_eval_result;

/* Accumulate B rows of logits [B, C] (teacher logits nullable); rows whose
 * y is KD_Y_IGNORE are skipped. */
void kd_eval_accumulate(kd_eval_sums *s, const float *logits, const int32_t *y,
                        const float *t_logits, int B, int C, double T);
void kd_eval_finish(kd_eval_result *r, const kd_eval_sums *s);

/* Forward every row of a source through the model in chunks of its
 * max_batch and evaluate (inference mode: no dropout), with the teacher's
 * logits of the same rows when teacher is not NULL. logits_out (nullable)
 * receives the [n, C] logits. */
int kd_eval_model(kd_eval_result *r, float *logits_out, kd_model *m, const kd_source *src,
                  const kd_teacher *teacher, double T, kd_progress *prog, kd_err *e);
/* One pass over the rows a provider gives in order (kd_rows_memory_in_order, or a stream with in_order):
 * each batch forwarded in inference mode, evaluated when sums are asked for, and its logits handed to sink. */
typedef struct kd_rows kd_rows;
typedef struct kd_eval_pass {
  kd_input kind;
  int width;                   /* the rows' */
  int teacher;                 /* the provider gives the teacher's logits of the rows */
  const int32_t *token_bytes;  /* bytes of each token id (bits per byte), or NULL */
  double T;                    /* the temperature of the KL to the teacher */
  int (*sink)(void *ctx, const float *logits, int64_t r0, int rows, kd_err *e); /* rows' logits [rows, (P,) C] */
  void *ctx;
  kd_progress *prog;           /* counts rows (nullable) */
} kd_eval_pass;
/* The provider's batches hold at most m->max_batch rows. sums NULL: no metrics. */
int kd_eval_rows(kd_eval_sums *sums, kd_model *m, kd_rows *rows, const kd_eval_pass *p, kd_err *e);
void kd_eval_print(FILE *f, const char *label, const kd_eval_result *r);
void kd_eval_json(FILE *f, const kd_eval_result *r);

/* Build the model of checkpoint (or weights file) `path`, parameters loaded
 * into *params (caller frees it with free() after kd_model_free), with
 * buffers for max_batch rows; max_batch 0: as many rows as fit in
 * KD_INFER_ACT_BYTES of activations, at most 1024 (a sequence student's
 * rows are large). */
#define KD_INFER_ACT_BYTES ((size_t)256 << 20)
int kd_model_load(kd_model **m, float **params, const char *path, int max_batch, kd_err *e);

typedef struct kd_eval_cfg {
  char ckpt[KD_PATH_MAX];
  char data[KD_PATH_MAX];
  char teacher[KD_PATH_MAX];
  char split[16];
  char out[KD_PATH_MAX];       /* kd predict, kd logits */
  double temperature;
  int64_t batch;
  int json;
  int64_t features;            /* kd logits: also write hidden layer K (0: no) */
  char dtype[8];               /* kd logits, kd predict: f32 | f16 */
  char hidden[256];            /* kd logits, gpt teachers: hidden states "l,l,..." (0..L) to write ("": none) */
  char attn[256];              /* kd logits, gpt teachers: attention maps of blocks "l,l,..." (1..L) ("": none) */
  int64_t topk;                /* kd logits: write /SPLIT/topk (K largest logits, lse) instead of dense logits (0: no) */
  int64_t sample;              /* kd logits: write /SPLIT/sampled (S draws, counts) instead of dense logits (0: no) */
  double sample_temperature;   /* kd logits --sample: the temperature of the softmax the ids are drawn from */
  int64_t seed;                /* kd logits --sample: the draws' seed */
  char decode[16];             /* kd eval: "" token metrics; greedy | beam:K: decode the targets, PER / WER */
  char progress[8];            /* auto | on | lines | off: a progress line every progress_every seconds */
  double progress_every;
  double length_penalty;       /* kd eval --decode beam:K: logp / len^A */
  char rows[16];               /* kd logits: student | teacher (a two-tokenization file's teacher rows) */
} kd_eval_cfg;

/* "the student FAMILY:SPEC of CKPT": how messages name a checkpoint's model. */
void kd_infer_who(char *buf, size_t n, const kd_model *m, const char *ckpt);

/* kd eval: metrics of the checkpoint on cfg->split. Serial (one rank). */
int kd_eval_run(const kd_eval_cfg *cfg, kd_eval_result *r, char *ckpt_path, size_t n, kd_err *e);
/* kd predict: write /SPLIT/logits of the checkpoint into cfg->out. Serial. */
int kd_predict_run(const kd_eval_cfg *cfg, int64_t *rows, char *ckpt_path, size_t n, kd_err *e);
/* kd logits: a teacher file with /SPLIT/logits (and /SPLIT/features, or a
 * gpt teacher's /SPLIT/hidden/{l} and /SPLIT/attn/{l}) of every split,
 * computed in parallel. Collective over comm. rows_out[3]:
 * rows written for train, valid, test. */
int kd_logits_run(const kd_eval_cfg *cfg, MPI_Comm comm, int64_t rows_out[3], kd_err *e);

#endif
