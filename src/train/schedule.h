/* What the end of a step schedules: a metrics row, an evaluation, a
 * checkpoint, the epoch line; and the clocks that keep evaluation and
 * checkpoint time out of the training rate. */
#ifndef KD_TRAIN_SCHEDULE_H
#define KD_TRAIN_SCHEDULE_H

#include "train/trainer.h"

typedef struct tr_clock {
  double t_start;           /* the loop began */
  double t_first;           /* the first step ended (it is warm-up, not timed) */
  double log_t0;            /* the last metrics row */
  double t_side, ep_side;   /* seconds in evaluation and checkpoints: not training throughput */
  double log_side;          /* ... since the last metrics row */
  double ep_t0;             /* the epoch began */
  int64_t step0;            /* the step this invocation started at */
  int64_t ep_steps;         /* steps of this epoch run by this invocation */
  int64_t ep_skipped;       /* of which --on-nonfinite skip dropped */
  phase_clock ph;           /* where the time of a step goes (this rank) */
} tr_clock;

/* What is due after step `step` (1-based count) that ended epoch_end or not. */
typedef struct tr_due {
  int ckpt, eval, log, sched_ckpt, epoch_end;
} tr_due;

tr_due tr_schedule(const trainer *t, int64_t epoch, int epoch_end, int stop);
/* Everything the schedule says is due after the step (s: its index in the epoch). */
int tr_after_step(trainer *t, tr_clock *c, const tr_step_out *o, int64_t epoch, int64_t s, tr_due due,
                  kd_train_result *res, kd_err *e);

#endif
