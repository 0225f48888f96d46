/* Command-line options: one table per command gives each option's name,
 * type, default, range and help, so parsing, validation and --help never
 * disagree. Every rank parses the same argv and so reaches the same verdict
 * without communicating. */
#ifndef KD_OPTIONS_H
#define KD_OPTIONS_H

#include <stdint.h>
#include <stdio.h>
#include "kd/error.h"

#define KD_PATH_MAX 4096

typedef struct kd_train_cfg {
  char data[KD_PATH_MAX];
  char teacher[KD_PATH_MAX];   /* "" : no teacher */
  char out[KD_PATH_MAX];
  char student[256];
  char activation[16];         /* relu | gelu */
  char weight_init[16];        /* he | xavier */
  char resume[KD_PATH_MAX];    /* checkpoint or run directory to continue */
  char init_from[KD_PATH_MAX]; /* checkpoint whose weights start a new run */
  int64_t ckpt_every;          /* 0: at epoch ends and the end only */
  int64_t ckpt_epochs;         /* checkpoint every N epoch ends (0: none at epoch ends) */
  int64_t keep;
  int64_t eval_every;          /* 0: at checkpoints and the end only */
  int64_t val_rows;
  char best_metric[16];        /* accuracy | nll */
  double dropout;
  double alpha;
  double temperature;
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
  char progress[8];            /* auto | on | off */
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
  unsigned char given[64];     /* options named on the command line */
} kd_train_cfg;

typedef struct kd_eval_cfg {
  char ckpt[KD_PATH_MAX];
  char data[KD_PATH_MAX];
  char teacher[KD_PATH_MAX];
  char split[16];
  char out[KD_PATH_MAX];       /* kd predict */
  double temperature;
  int64_t batch;
  int json;
  int64_t features;            /* kd logits: also write hidden layer K (0: no) */
} kd_eval_cfg;

typedef struct kd_synth_cfg {
  char out[KD_PATH_MAX];
  char teacher_out[KD_PATH_MAX];
  int64_t train, test, dim, classes, clusters, seed;
  double noise;
  double separation;
  double teacher_temperature;
} kd_synth_cfg;

typedef enum kd_opt_type {
  KD_OPT_STR, KD_OPT_INT, KD_OPT_REAL, KD_OPT_FLAG, KD_OPT_CHOICE
} kd_opt_type;

typedef struct kd_opt_spec {
  const char *name;      /* without the leading "--" */
  kd_opt_type type;
  size_t offset;         /* into the config struct */
  size_t size;           /* bytes of a string field */
  const char *def;       /* default as text; NULL: required (strings) */
  const char *choices;   /* "sgd|adamw" for KD_OPT_CHOICE */
  double lo, hi;         /* numeric range */
  int lo_open, hi_open;  /* 1: bound excluded */
  const char *help;
} kd_opt_spec;

extern const kd_opt_spec kd_train_opts[];
extern const int kd_train_n_opts;
extern const kd_opt_spec kd_synth_opts[];
extern const int kd_synth_n_opts;
extern const kd_opt_spec kd_eval_opts[];
extern const int kd_eval_n_opts;
extern const kd_opt_spec kd_predict_opts[];
extern const int kd_predict_n_opts;
extern const kd_opt_spec kd_logits_opts[];
extern const int kd_logits_n_opts;

/* Fill cfg with defaults, then argv[0..argc). Usage errors (KD_ERR_USAGE)
 * name the option and the value. given (nullable, n entries) marks the
 * options named in argv. */
int kd_opts_parse(const kd_opt_spec *specs, int n, void *cfg, int argc,
                  char **argv, const char *cmd, unsigned char *given, kd_err *e);
/* Set one option from text (as if given on the command line). */
int kd_opts_set(const kd_opt_spec *specs, int n, void *cfg, const char *name,
                const char *value, const char *cmd, kd_err *e);
/* An option's current value as text (round-trips through kd_opts_set). */
void kd_opts_format(const kd_opt_spec *s, const void *cfg, char *buf, size_t n);
int kd_opts_index(const kd_opt_spec *specs, int n, const char *name);
void kd_opts_help(const kd_opt_spec *specs, int n, FILE *f);

/* Cross-option checks of kd train that the table cannot express. */
int kd_train_cfg_check(const kd_train_cfg *c, kd_err *e);

#endif
