/* Rank 0's run log: DIR/metrics.csv rows and the console progress. */
#ifndef KD_METRICS_H
#define KD_METRICS_H

#include <stdint.h>
#include <stdio.h>
#include "core/progress.h"
#include "kd/error.h"

/* The columns every run has; a run adds the extra columns it is given at
 * open (feature-row runs: "hint", as metrics.csv always had; loss terms and
 * families add theirs) and fills them by index. The header is fixed for a
 * run: a row leaves the columns it does not carry empty. */
#define KD_METRICS_BASE \
  "step,epoch,loss,ce,kd,acc,lr,grad_norm,samples_per_s,elapsed_s," \
  "eval_accuracy,eval_nll,eval_ece,eval_agreement,eval_kl"
#define KD_METRICS_MAX_EXTRA 8

typedef struct kd_metrics_row {
  int64_t step;
  int64_t epoch;
  int has_train;  /* training columns (a row may carry only an evaluation) */
  double loss, ce, kd, acc, lr, grad_norm, samples_per_s, elapsed_s;
  int has_ce, has_kd;
  int has_eval;
  double eval_accuracy, eval_nll, eval_ece, eval_agreement, eval_kl; /* NAN: empty */
  int has_extra[KD_METRICS_MAX_EXTRA];  /* the extra columns, in the order given at open */
  double extra[KD_METRICS_MAX_EXTRA];
} kd_metrics_row;

typedef struct kd_metrics {
  FILE *csv;
  char path[KD_PATH_MAX + 16];
  char header[1024];
  int n_extra;
} kd_metrics;

/* Create DIR/metrics.csv with the base columns and extra[0..n_extra). */
int kd_metrics_open(kd_metrics *m, const char *dir, const char *const *extra, int n_extra, kd_err *e);
/* Resume: rewrite the header, keep the rows up to `step`, then append. */
int kd_metrics_open_resume(kd_metrics *m, const char *dir, int64_t step, const char *const *extra, int n_extra,
                           kd_err *e);
int kd_metrics_write(kd_metrics *m, const kd_metrics_row *r, kd_err *e);
int kd_metrics_close(kd_metrics *m, kd_err *e);

#endif
