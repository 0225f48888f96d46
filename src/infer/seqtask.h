/* Prompt-completion rows (kd import pairs: source, separator, target, end)
 * decoded by a checkpoint: kd generate --data and kd eval --decode; or text
 * rows (kd import text) continued after their first P tokens (kd generate
 * --data --prompt-tokens P). Every
 * rank opens the same task and checks it the same way, so a bad file or
 * checkpoint is refused by all of them alike. */
#ifndef KD_INFER_SEQTASK_H
#define KD_INFER_SEQTASK_H

#include <mpi.h>
#include <stdint.h>

#include "core/progress.h"
#include "infer/seqdecode.h"
#include "kd/data.h"
#include "kd/error.h"
#include "kd/model.h"

typedef struct kd_seq_task {
  kd_model *m;
  float *params;
  char ckpt[KD_PATH_MAX + 64];  /* the resolved checkpoint */
  const char *data, *split;
  kd_tokenizer tok;             /* the data file's record (sep_id and end_id set) */
  int64_t rows;                 /* N */
  int width;                    /* W: positions per row */
  int32_t pad;                  /* id written after a target (pad_id, else end_id, else 0) */
  int prompt_tokens;            /* text rows: the prompt is a row's first prompt_tokens tokens (0: prompt-completion rows) */
} kd_seq_task;

/* OpenBLAS threads: the node's cores shared among its ranks (as kd train
 * does), unless OPENBLAS_NUM_THREADS is set. Collective. */
void kd_seq_threads(MPI_Comm comm);

/* prompt_tokens > 0: text rows, no separator needed (nor a /tokenizer record). */
int kd_seq_task_open(kd_seq_task *t, const char *ckpt, const char *data, const char *split, int64_t prompt_tokens,
                     kd_err *e);
void kd_seq_task_close(kd_seq_task *t);
/* Rows of the task's split, as a rank holds them, against its model (kd_fit_rows). */
int kd_seq_task_rows(const kd_seq_task *t, const kd_source *src, kd_err *e);

/* Row `row` (global index, for messages) of W tokens: its prompt (up to and
 * including the first separator) takes *plen tokens, its reference target
 * (after it, up to the end token or a pad) *ref_len. A row without a
 * separator, or with nothing after it, is an error naming the row. */
int kd_seq_row(const kd_seq_task *t, const int32_t *tokens, int64_t row, int *plen, int *ref_len, kd_err *e);
/* A text row (t->prompt_tokens > 0) by its mask of W positions (position p > 0
 * a target where the row holds text): its first min(prompt_tokens, L - 1)
 * tokens are the prompt, the rest of its L tokens of text the reference. A
 * row with fewer than 2 tokens of text is an error naming the row. */
int kd_seq_text_row(const kd_seq_task *t, const uint8_t *mask, int64_t row, int *plen, int *ref_len, kd_err *e);

/* The decode options every command shares into c (--decode, --nbest, ...). */
int kd_seq_cfg_make(kd_seq_cfg *c, const char *decode, int64_t nbest, double length_penalty, double temperature,
                    int64_t top_k, int64_t seed, const kd_seq_task *t, kd_err *e);

/* kd generate --data: decode every row of a split (each rank its blocks of
 * `batch` rows, so the batches, and with them every float sum, are the same
 * for any number of ranks) and write a data file whose split holds the
 * decoded targets; the other splits and /tokenizer are copied. Collective. */
typedef struct kd_seqgen_cfg {
  const char *ckpt, *data, *split, *out;
  const char *decode;      /* greedy | sample | beam:K */
  int64_t nbest;           /* hypotheses kept per row (/SPLIT/nbest_*) */
  double length_penalty, temperature;
  int64_t top_k, seed, batch;
  int64_t prompt_tokens;   /* text rows: continue each row after its first prompt_tokens tokens, up to the row's width
                            * (0: prompt-completion rows) */
  int select_closest;      /* the row's target: the n-best hypothesis nearest its reference (else the best) */
  const char *progress;    /* auto | on | lines | off (NULL: off): rank 0's progress line */
  double progress_every;   /* seconds between its lines */
} kd_seqgen_cfg;

/* Rank 0's progress line over `total` rows or words it decodes (other ranks: off). Collective-free. */
int kd_seq_progress(kd_progress *p, const kd_seqgen_cfg *c, MPI_Comm comm, const char *what, const char *unit,
                    int64_t total, kd_err *e);

typedef struct kd_seq_stats {
  int64_t rows;            /* generate: rows decoded; eval: words (distinct sources) */
  int64_t refs;            /* eval: reference rows */
  double edits, ref_tokens, wrong, hyp_tokens;
  double seconds;          /* decoding time of the slowest rank */
  double per, wer, seq_per_s;
  int ranks;
} kd_seq_stats;

int kd_seqgen_run(const kd_seqgen_cfg *c, MPI_Comm comm, kd_seq_stats *st, kd_err *e);

/* kd eval --decode: each distinct source of the split (consecutive rows
 * with the same prompt are one word's references) decoded once and scored
 * against its closest reference: PER = summed token edit distance / summed
 * length of those references, WER = the fraction of words not exactly
 * right. Collective; every rank gets the totals. */
/* Score one word: its hypothesis hyp [n] (no end token) against its
 * closest of n_refs references (the smallest edit distance; a tie: the
 * first), into st's edits, ref_tokens, wrong, rows, refs and hyp_tokens. */
void kd_seq_score(kd_seq_stats *st, const int32_t *hyp, int n, const int32_t *const *refs, const int *ref_len,
                  int n_refs, int *scratch);
/* PER and WER of st's sums. */
void kd_seq_rates(kd_seq_stats *st);

int kd_seqeval_run(const kd_seqgen_cfg *c, MPI_Comm comm, kd_seq_stats *st, kd_err *e);

#endif
