/* The training loop: epochs of steps, each followed by what the schedule
 * says is due (train/schedule.c). */
#include <stdio.h>
#include <string.h>

#include "train/schedule.h"
#include "train/stop.h"

/* The state after a step: counts, position in the epoch. */
static int advance(trainer *t, tr_clock *c, int64_t epoch, int64_t s) {
  t->st.step++;
  t->st.log_steps++;
  c->ep_steps++;
  const int epoch_end = (s == t->sched.steps_per_epoch - 1);
  t->st.step_in_epoch = epoch_end ? 0 : s + 1;
  t->st.epoch = epoch_end ? epoch + 1 : epoch;
  return epoch_end;
}

/* One epoch from the current position; *stop when a rank was signalled. */
static int run_epoch(trainer *t, tr_clock *c, int *stop, kd_train_result *res, kd_err *e) {
  const kd_train_cfg *cfg = &t->cfg;
  const int64_t epoch = t->st.epoch;
  c->ep_t0 = MPI_Wtime();
  c->ep_steps = c->ep_skipped = 0;
  int rc;
  if ((rc = kd_rows_seek(t->data.rows, epoch, t->st.step_in_epoch, e))) return rc; /* the same outcome on every rank */
  /* Self-distillation: the teacher may change only at an epoch start. */
  if (cfg->self_distill && t->st.step_in_epoch == 0 &&
      (!t->snap.active || (cfg->refresh_every > 0 && epoch > 0 && epoch % cfg->refresh_every == 0)) &&
      (rc = tr_refresh_snapshot(t, 0, e)))
    return rc;
  for (int64_t s = t->st.step_in_epoch; s < t->sched.steps_per_epoch && t->st.step < t->sched.end_step; s++) {
    c->ph.on = t->st.step > c->step0; /* the first step (warm-up) is excluded, like from samples/s */
    t->net.model->prof = cfg->profile && c->ph.on ? &t->log.prof : NULL;
    c->ph.last = MPI_Wtime();
    tr_step_out o;
    rc = tr_step(t, s, &c->ph, &o, e);
    t->net.model->prof = NULL; /* evaluations and checkpoints are not profiled */
    if (rc) return rc;
    *stop = o.stop;
    c->ep_skipped += o.skipped;
    const int epoch_end = advance(t, c, epoch, s);
    /* before the epoch's checkpoint: nothing was learnt in a whole epoch (run whole by this invocation) */
    if (epoch_end && c->ep_steps == t->sched.steps_per_epoch && c->ep_skipped == c->ep_steps)
      return kd_fail(e, KD_ERR_RUNTIME,
                     "epoch %lld: every one of its %lld steps had a non-finite loss or gradient and was skipped "
                     "(--on-nonfinite skip): the run cannot learn; stopping (the last checkpoint is untouched; lower "
                     "--lr, set --clip, check the data and the teacher)",
                     (long long)epoch + 1, (long long)c->ep_steps);
    if ((rc = tr_after_step(t, c, &o, epoch, s, tr_schedule(t, epoch, epoch_end, *stop), res, e))) return rc;
    if (*stop) break;
  }
  const double chk0 = MPI_Wtime(); /* like evaluation, not part of the training rate */
  if ((rc = tr_check_replicas(t, e))) return rc;
  c->t_side += MPI_Wtime() - chk0;
  c->log_side += MPI_Wtime() - chk0;
  return KD_OK;
}

/* Rates and where the time went, over the steps after the first. */
static void summarise(const trainer *t, const tr_clock *c, kd_train_result *res) {
  const int64_t step0 = c->step0;
  res->steps = t->st.step;
  res->steps_run = t->st.step - step0;
  res->completed = t->st.step >= t->sched.total_steps;
  /* Training throughput: time spent in evaluations and checkpoints excluded. */
  const double train_time = MPI_Wtime() - c->t_first - c->t_side;
  res->samples_per_s = t->st.step > step0 + 1 ? (double)(t->st.step - step0 - 1) * t->sched.B / train_time : 0;
  const int64_t timed = t->st.step - step0 - 1;
  res->allreduce_share = timed > 0 && train_time > 0 ? c->ph.s[KD_PH_ALLREDUCE] / train_time : 0;
  if (timed <= 0) return;
  double rest = train_time;
  for (int k = 0; k < KD_PHASES; k++) {
    res->step_ms[k] = 1e3 * c->ph.s[k] / (double)timed;
    rest -= c->ph.s[k];
  }
  res->step_ms[KD_PHASES] = 1e3 * rest / (double)timed;
}

int tr_run_loop(trainer *t, kd_train_result *res, kd_err *e) {
  tr_clock c;
  memset(&c, 0, sizeof c);
  c.t_start = c.log_t0 = MPI_Wtime();
  c.step0 = t->st.step;
  int stop = 0, rc;
  while (t->st.epoch < t->cfg.epochs && t->st.step < t->sched.end_step && !stop)
    if ((rc = run_epoch(t, &c, &stop, res, e))) return rc;
  kd_rows_stop(t->data.rows); /* no reader beside the final evaluation and weights */
  summarise(t, &c, res);
  if (stop)
    return kd_fail(e, KD_STOPPED, "stopped by signal %d after step %lld; checkpoint written; continue with: kd train --resume %s",
                   tr_stop_signal(), (long long)t->st.step, t->cfg.out);
  return KD_OK;
}
