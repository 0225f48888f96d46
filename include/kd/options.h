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
  char init[16];               /* he | xavier */
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
} kd_train_cfg;

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

/* Fill cfg with defaults, then argv[0..argc). Usage errors (KD_ERR_USAGE)
 * name the option and the value. */
int kd_opts_parse(const kd_opt_spec *specs, int n, void *cfg, int argc,
                  char **argv, const char *cmd, kd_err *e);
void kd_opts_help(const kd_opt_spec *specs, int n, FILE *f);

/* Cross-option checks of kd train that the table cannot express. */
int kd_train_cfg_check(const kd_train_cfg *c, kd_err *e);

#endif
