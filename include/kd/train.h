/* kd train: data -> model -> loss -> gradients -> allreduce -> optimizer. */
#ifndef KD_TRAIN_H
#define KD_TRAIN_H

#include <mpi.h>
#include "kd/error.h"
#include "kd/options.h"

/* Phases of a training step, timed on every rank (docs/performance.md). */
enum { KD_PH_GATHER, KD_PH_FORWARD, KD_PH_LOSS, KD_PH_BACKWARD, KD_PH_ALLREDUCE, KD_PH_UPDATE, KD_PHASES };
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
  double samples_per_s;     /* over all steps after the first */
  double allreduce_share;   /* fraction of that time in gradient communication (rank 0) */
  double step_ms[KD_PHASES + 1]; /* rank 0's mean milliseconds per step in each phase, then the rest */
  double peak_rss_mib;      /* peak resident memory of the largest rank */
} kd_train_result;

/* Collective over comm. Returns a kd_code agreed by all ranks. */
int kd_train_run(const kd_train_cfg *cfg, MPI_Comm comm, kd_train_result *res,
                 kd_err *e);

#endif
