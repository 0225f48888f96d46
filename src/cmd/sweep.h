/* kd sweep's parts (src/cmd/sweep*.c): the grid of settings, the files in the sweep's folder, the summary. */
#ifndef KD_CMD_SWEEP_H
#define KD_CMD_SWEEP_H

#include <stdint.h>
#include <stdio.h>

#include "kd/train.h"

#define SWEEP_MAX_KEYS 16
#define SWEEP_MAX_VALUES 64
#define SWEEP_NAME_MAX 256

/* --grid "KEY=V1,V2 KEY2=W1,...": kd train options (long names) and their values. The settings are the
 * Cartesian product, the first key varying slowest. */
typedef struct cmd_sweep_grid {
  int n_keys;
  char key[SWEEP_MAX_KEYS][48];
  int opt[SWEEP_MAX_KEYS]; /* index into kd_train_opts */
  int n_values[SWEEP_MAX_KEYS];
  char value[SWEEP_MAX_KEYS][SWEEP_MAX_VALUES][128];
  int64_t n_settings;
} cmd_sweep_grid;

/* Parse text; usage errors name the key or value. base: the shared train options (a grid key may not be one of
 * them, and every value must pass kd train's parser). */
int cmd_sweep_grid_parse(cmd_sweep_grid *g, const char *text, const kd_train_cfg *base, kd_err *e);
/* Setting i's folder name, "KEY=VALUE,KEY=VALUE" with characters other than [A-Za-z0-9._+-] as '_'. */
void cmd_sweep_setting_name(const cmd_sweep_grid *g, int64_t i, char *buf, size_t n);
/* Setting i's configuration: base with the grid's values (marked given), --out DIR/NAME, checked by
 * kd_train_cfg_check. */
int cmd_sweep_setting_cfg(const cmd_sweep_grid *g, int64_t i, const kd_train_cfg *base, const char *dir,
                          kd_train_cfg *out, kd_err *e);

/* What a sweep is, saved in DIR/sweep.json so that --resume DIR needs nothing else. */
typedef struct cmd_sweep_spec {
  char grid[8192];
  int64_t group_ranks;
  int n_args;
  char **args; /* the shared kd train options, as given */
} cmd_sweep_spec;

int cmd_sweep_spec_write(const cmd_sweep_spec *s, const char *dir, kd_err *e);
/* Parse DIR/sweep.json's text (read by world rank 0, broadcast). */
int cmd_sweep_spec_parse(cmd_sweep_spec *s, const char *text, size_t len, const char *dir, kd_err *e);
void cmd_sweep_spec_free(cmd_sweep_spec *s);

/* A setting's outcome, DIR/NAME/result.json. */
typedef enum { SWEEP_PENDING, SWEEP_DONE, SWEEP_FAILED, SWEEP_STOPPED } cmd_sweep_status;
typedef struct cmd_sweep_result {
  int64_t index;
  char name[SWEEP_NAME_MAX];
  cmd_sweep_status status;
  int64_t steps;
  int completed, best_is_nll;
  double valid_accuracy, valid_nll, test_accuracy, test_agreement; /* -1: none */
  double seconds;
  char error[1024];
} cmd_sweep_result;

const char *cmd_sweep_status_name(cmd_sweep_status s);
/* r's members as JSON (no braces), each after the separator ind ("\n  "). Nonzero when writing failed. */
int cmd_sweep_result_fields(FILE *f, const cmd_sweep_result *r, const char *ind);
int cmd_sweep_result_write(const cmd_sweep_result *r, const char *dir, kd_err *e);
/* DIR/NAME/result.json into r (r->status SWEEP_PENDING when there is none or it cannot be read). */
void cmd_sweep_result_read(cmd_sweep_result *r, const char *dir, const char *name, int64_t index);

/* World rank 0: every setting's result, best first, as a table or JSON on out; also DIR/summary.json.
 * counts (zeroed by the caller) += settings done, failed, and neither (pending or stopped). */
int cmd_sweep_summary(const cmd_sweep_grid *g, const char *dir, int json, FILE *out, int counts[3], kd_err *e);

#endif
