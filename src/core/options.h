/* Command-line options: one table per command gives each option's name,
 * type, default, range and help, so parsing, validation and --help never
 * disagree. Every rank parses the same argv and so reaches the same verdict
 * without communicating. The tables live with their commands (src/cmd), but
 * kd train's, which is also the schema of a checkpoint's /config, lives with
 * the trainer (src/train/config.c). */
#ifndef KD_OPTIONS_H
#define KD_OPTIONS_H

#include <stdint.h>
#include <stdio.h>
#include "kd/error.h"

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

/* Fill cfg with defaults, then argv[0..argc). Usage errors (KD_ERR_USAGE)
 * name the option and the value. given (nullable, n entries) marks the
 * options named in argv. */
int kd_opts_parse(const kd_opt_spec *specs, int n, void *cfg, int argc,
                  char **argv, const char *cmd, unsigned char *given, kd_err *e);
/* Set one option from text (as if given on the command line). */
int kd_opts_set(const kd_opt_spec *specs, int n, void *cfg, const char *name,
                const char *value, const char *cmd, kd_err *e);
/* The same value in two config structs (numbers compared as numbers, so
 * "0.05" and "0.050000000000000003" agree). */
int kd_opts_equal(const kd_opt_spec *s, const void *a, const void *b);
/* An option's current value as text (round-trips through kd_opts_set): the
 * shortest decimal that reads back as the same number. */
void kd_opts_format(const kd_opt_spec *s, const void *cfg, char *buf, size_t n);
int kd_opts_index(const kd_opt_spec *specs, int n, const char *name);
void kd_opts_help(const kd_opt_spec *specs, int n, FILE *f);

#endif
