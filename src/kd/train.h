/* kd train: data -> model -> loss -> gradients -> allreduce -> optimizer,
 * data-parallel over the ranks of a communicator, with checkpoints,
 * evaluation, self-distillation and born-again generations beside the loop
 * (src/train). */
#ifndef KD_TRAIN_H
#define KD_TRAIN_H

#include <mpi.h>
#include <stdint.h>
#include <stdio.h>

#include "kd/error.h"

/* The number of kd train options: the size of the option table
 * (src/train/config.c checks it at compile time) and of `given`. */
#define KD_TRAIN_N_OPTS 76

/* What a training run is, as kd train's options give it (kd train --help). */
typedef struct kd_train_cfg {
  char data[KD_PATH_MAX];
  char teacher[KD_PATH_MAX];   /* "" : no teacher */
  char out[KD_PATH_MAX];
  char student[256];           /* [family:]spec */
  char activation[16];         /* relu | gelu (MLP) */
  char weight_init[16];        /* he | xavier (MLP) */
  char resume[KD_PATH_MAX];    /* checkpoint or run directory to continue */
  char init_from[KD_PATH_MAX]; /* checkpoint whose weights start a new run */
  int64_t ckpt_every;          /* 0: at epoch ends and the end only */
  int64_t ckpt_epochs;         /* checkpoint every N epoch ends (0: none at epoch ends) */
  int64_t keep;
  int64_t eval_every;          /* 0: at checkpoints and the end only */
  int64_t val_rows;
  char best_metric[16];        /* auto | accuracy | nll (auto resolved by the family at set-up) */
  double dropout;
  double alpha;
  double temperature;
  char divergence[32];         /* forward | reverse | jsd:BETA | skew:ALPHA (loss/divergence.h) */
  char optimizer[16];          /* sgd | adamw */
  double lr;
  double momentum;
  int nesterov;
  double weight_decay;
  double beta1, beta2, eps;
  char schedule[16];           /* const | cosine */
  int64_t warmup;
  double clip;                 /* 0: off */
  int64_t epochs;
  int64_t batch;               /* global batch */
  int64_t max_steps;           /* 0: no limit (benchmarks, smoke tests) */
  int64_t seed;
  int64_t threads;             /* 0: automatic */
  int64_t log_every;
  char progress[8];            /* auto | on | lines | off */
  double progress_every;       /* seconds between progress lines */
  int force;
  int self_distill;            /* teacher = an earlier checkpoint of this run */
  char teacher_ckpt[KD_PATH_MAX]; /* best | latest | step:N | FILE */
  int64_t refresh_every;       /* epochs between snapshot refreshes (0: never) */
  char snapshot_logits[KD_PATH_MAX]; /* write each snapshot's training logits here */
  int64_t generations;         /* born-again generations */
  int64_t generation;          /* which one this run is (set by kd) */
  int64_t hint_layer;          /* FitNets: student hidden layer K (1-based), 0: off */
  double hint_weight;          /* BETA */
  int64_t hint_epochs;         /* stage 1: hint loss alone for E epochs */
  char on_nonfinite[8];        /* stop | skip */
  int64_t bucket_kib;          /* largest gradient bucket */
  char overlap[8];             /* auto | on | off: gradient buckets start during the backward pass */
  char shard_optimizer[8];     /* auto | on | off: reduce-scatter, update a 1/p slice, allgather */
  int64_t train_rows;          /* 0: all of /train */
  double labelled_fraction;    /* 1: every row keeps its label */
  char normalize[16];          /* none | standard | minmax */
  int profile;                 /* time the student's kernels, print the table at the end */
  char teacher_model[KD_PATH_MAX]; /* online teacher: a checkpoint FILE or DIR[:best|latest|step:N] ("": none) */
  int64_t teacher_vocab_crop;  /* an online teacher's first N logits only (a padded vocabulary; 0: all) */
  char cross_tokenizer[8];     /* off | uld | exact | hybrid: a teacher with another tokenizer (its rows in the file) */
  double on_policy;            /* GKD's lambda: the share of on-policy steps (0: none) */
  int64_t prompt_tokens;       /* on-policy: a row's prompt when it has none (0: half the row) */
  int64_t rollout_max_new;     /* on-policy: sampled tokens per completion at most (0: the row's width) */
  double rollout_temperature;
  int64_t rollout_top_k;
  char attn_relations[32];     /* MiniLM relations: a subset of q-q,k-k,v-v ("": off) */
  int64_t relation_heads;      /* R (0: the student's heads) */
  char attn_loss[16];          /* none | mse | mse-scores (TinyBERT attention maps) */
  double attn_weight;
  char attn_map[256];          /* S:T,... layer pairs of the relation and map losses ("": their defaults) */
  char hidden_map[256];        /* S:T,... | uniform: TinyBERT hidden states ("": off) */
  double hidden_weight;
  int64_t intermediate_epochs; /* TinyBERT's two stages: intermediate losses alone, then logit KD alone */
  char sparse_kd[16];          /* auto | topk | tail | sampled: which teacher logits of the file to learn from */
  int64_t loss_chunk;          /* positions per chunk of the head GEMM + loss (0: auto, -1: whole batch) */
  char stream[8];              /* auto | on | off: read the training rows from disk while the steps run */
  char memory_budget[32];      /* per rank, for the data and teacher buffers: SIZE[K|M|G] ("": the default) */
  int64_t shuffle_window;      /* streamed order: rows shuffled together (0: 16 blocks of about 1 MiB) */
  unsigned char given[KD_TRAIN_N_OPTS]; /* options named on the command line, in table order */
} kd_train_cfg;

/* Defaults of every option (what kd train with no options would run). */
int kd_train_cfg_defaults(kd_train_cfg *c, kd_err *e);
/* Fill c from kd train's command line (defaults first); marks `given`. */
int kd_train_cfg_parse(kd_train_cfg *c, int argc, char **argv, kd_err *e);
/* Cross-option checks that the option table cannot express. */
int kd_train_cfg_check(const kd_train_cfg *c, kd_err *e);
/* kd train's options and their defaults, as --help prints them. */
void kd_train_help(FILE *f);

/* Phases of a training step, timed on every rank (docs/performance.md). */
enum { KD_PH_GATHER, KD_PH_GENERATE, KD_PH_TEACHER, KD_PH_FORWARD, KD_PH_LOSS, KD_PH_BACKWARD, KD_PH_ALLREDUCE, KD_PH_UPDATE, KD_PHASES };
extern const char *const kd_phase_names[KD_PHASES];

/* Summary of a finished run (same on every rank). */
typedef struct kd_train_result {
  int64_t steps;             /* the run's step count at the end */
  int64_t steps_run;         /* steps done by this invocation */
  int completed;             /* the schedule ran to its end */
  double final_loss;        /* mean loss over the last epoch */
  double train_accuracy;    /* over the last epoch */
  double test_accuracy;     /* -1 when there is no /test split */
  double test_agreement;    /* top-1 agreement with the teacher, -1 if n/a */
  int64_t test_rows;
  double valid_accuracy;    /* the final evaluation on the validation rows (/valid or --val-rows; rank 0 of comm):
                             * -1 when there are none */
  double valid_nll;         /* -1 when there are no validation rows */
  int64_t valid_rows;       /* 0 when there are none */
  int best_is_nll;          /* the run ranks checkpoints by validation NLL (--best-metric, auto resolved), else accuracy */
  double samples_per_s;     /* over all steps after the first */
  double allreduce_share;   /* fraction of that time in gradient communication (rank 0) */
  double step_ms[KD_PHASES + 1]; /* rank 0's mean milliseconds per step in each phase, then the rest */
  double peak_rss_mib;      /* peak resident memory of the largest rank */
  double compute_ms[2];     /* the least and most milliseconds per step any rank computed (its step outside the
                             * gradient communication): a step waits for the slowest rank */
  int compute_rank[2];      /* which ranks */
} kd_train_result;

/* Collective over comm. Returns a kd_code agreed by all ranks. */
int kd_train_run(const kd_train_cfg *cfg, MPI_Comm comm, kd_train_result *res,
                 kd_err *e);

#endif
