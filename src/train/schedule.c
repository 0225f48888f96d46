#include "train/schedule.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/dist.h"
#include "core/h5io.h"

tr_due tr_schedule(const trainer *t, int64_t epoch, int epoch_end, int stop) {
  const kd_train_cfg *cfg = &t->cfg;
  const int64_t now = t->st.step;
  tr_due d;
  d.epoch_end = epoch_end;
  /* Scheduled checkpoints are evaluated (to rank them); the extra ones of a
   * stop (signal, --max-steps) are not, so an interrupted run logs exactly
   * what an uninterrupted one does. */
  d.sched_ckpt = (cfg->ckpt_every > 0 && now % cfg->ckpt_every == 0) ||
                 (epoch_end && cfg->ckpt_epochs > 0 && (epoch + 1) % cfg->ckpt_epochs == 0) ||
                 now == t->sched.total_steps;
  d.ckpt = d.sched_ckpt || now == t->sched.end_step || stop;
  d.eval = d.sched_ckpt || (cfg->eval_every > 0 && now % cfg->eval_every == 0);
  d.log = now % cfg->log_every == 0;
  return d;
}

static void log_columns(const trainer *t, kd_metrics_row *row, const double *log_s) {
  row->has_train = 1;
  row->loss = log_s[ST_LOSS] / log_s[ST_ROWS];
  row->has_ce = log_s[ST_LABELLED] > 0;
  row->ce = row->has_ce ? log_s[ST_CE] / log_s[ST_LABELLED] : 0;
  row->has_kd = t->data.teacher_live;
  row->kd = log_s[ST_KD] / log_s[ST_ROWS];
  row->acc = log_s[ST_LABELLED] > 0 ? log_s[ST_CORRECT] / log_s[ST_LABELLED] : NAN;
  for (int i = 0; i < t->log.n_cols; i++) {
    const int slot = t->log.col_slot[i];
    row->has_extra[i] = slot >= 0;
    row->extra[i] = slot >= 0 ? log_s[slot] / log_s[ST_ROWS] : 0;
  }
}

static void eval_columns(const trainer *t, kd_metrics_row *row, const kd_eval_result *ev) {
  for (int i = 0; i < t->log.n_cols; i++)
    if (t->log.col_slot[i] == TR_COL_BPB) {
      row->has_extra[i] = 1;
      row->extra[i] = ev->bpb;
    }
  row->has_eval = 1;
  row->eval_accuracy = ev->accuracy;
  row->eval_nll = ev->nll;
  row->eval_ece = ev->ece;
  row->eval_agreement = ev->agreement;
  row->eval_kl = ev->kl;
}

/* Rank 0: a logged loss more than 100 times the lowest logged so far means
 * the run is diverging; say so once. */
static void watch_divergence(trainer *t, double loss, int64_t step) {
  tr_log *l = &t->log;
  if (!isfinite(loss)) return;
  if (!l->have_low || loss < l->low_loss) {
    l->have_low = 1;
    l->low_loss = loss;
    l->low_step = step;
    return;
  }
  if (l->warned_diverging || loss <= 100.0 * l->low_loss) return;
  l->warned_diverging = 1;
  kd_progress_clear(&l->progress);
  printf("kd: warning: the run is diverging from step %lld: its logged loss %.4g is over 100x the lowest so far (%.4g "
         "at step %lld); lower --lr, add --warmup or --clip\n",
         (long long)step, loss, l->low_loss, (long long)l->low_step);
  fflush(stdout);
}

/* Rank 0: where the run is, between the epoch lines. */
static void show_progress(trainer *t, int64_t epoch, int64_t s, double sps, int64_t now_step) {
  const double *ep_s = t->st.epoch_sums;
  const int B = t->sched.B, tokens = t->batch.in.kind == KD_INPUT_TOKENS;
  char eta[32];
  kd_format_duration(eta, sizeof eta, sps > 0 ? (double)(t->sched.end_step - now_step) * B / sps : -1);
  const double rate = tokens ? sps * kd_source_width(t->data.train) : sps;
  kd_progress_show(&t->log.progress, "  step %lld/%lld (epoch %lld/%lld, step %lld/%lld)  loss %.4f  %.0f %s/s  ETA %s",
                   (long long)now_step, (long long)t->sched.end_step, (long long)epoch + 1, (long long)t->cfg.epochs,
                   (long long)s + 1, (long long)t->sched.steps_per_epoch,
                   ep_s[ST_ROWS] > 0 ? ep_s[ST_LOSS] / ep_s[ST_ROWS] : NAN, rate, tokens ? "tokens" : "samples", eta);
}

/* Rank 0: the progress line, the evaluation that is due, the metrics row. */
static int root_log(trainer *t, tr_clock *c, const tr_step_out *o, int64_t epoch, int64_t s, tr_due d, double now,
                    kd_eval_result *ev, int *have_ev, kd_err *e) {
  const int64_t now_step = t->st.step, step0 = c->step0;
  const double *log_s = t->st.log_sums;
  const int B = t->sched.B;
  double sps = now_step > step0 + 1 ? (double)(now_step - step0 - 1) * B / (now - c->t_first - c->t_side) : 0;
  if (kd_progress_due(&t->log.progress, now)) show_progress(t, epoch, s, sps, now_step);
  if (d.eval && tr_evaluate(t, ev, have_ev, e)) return e->code; /* the others agree on it in tr_after_step */
  if (*have_ev && !d.ckpt) {
    kd_progress_clear(&t->log.progress);
    kd_eval_print(stdout, "eval", ev);
  }
  if (!d.log && !*have_ev) return KD_OK;
  kd_metrics_row row;
  memset(&row, 0, sizeof row);
  row.step = now_step;
  row.epoch = epoch + 1;
  if (d.log) {
    log_columns(t, &row, log_s);
    watch_divergence(t, row.loss, now_step);
    row.lr = o->lr;
    row.grad_norm = o->norm;
    /* the steps' own rate, as the final line's: evaluations and checkpoints in the window left out */
    row.samples_per_s = (double)t->st.log_steps * B / (now - c->log_t0 - c->log_side);
    row.elapsed_s = now - c->t_start;
  }
  if (*have_ev) eval_columns(t, &row, ev);
  if (kd_metrics_write(&t->log.metrics, &row, e)) return kd_fatal(e, 0, "metrics.csv");
  return KD_OK;
}

/* The epoch's sums close (and so do checkpoints'); rank 0 prints its line. */
static void end_epoch(trainer *t, tr_clock *c, int64_t epoch, double now, kd_train_result *res) {
  double done[KD_CKPT_SUMS];
  double *ep_s = t->st.epoch_sums;
  memcpy(done, ep_s, sizeof done);
  memset(ep_s, 0, sizeof t->st.epoch_sums);
  res->final_loss = done[ST_LOSS] / done[ST_ROWS];
  res->train_accuracy = done[ST_LABELLED] > 0 ? done[ST_CORRECT] / done[ST_LABELLED] : NAN;
  if (!tr_root(t)) return;
  const int B = t->sched.B;
  const double sps = (double)c->ep_steps * B / (now - c->ep_t0 - c->ep_side);
  tr_print_epoch(t, epoch, done, sps, now - c->t_start, sps > 0 ? (t->sched.end_step - t->st.step) * B / sps : 0);
}

int tr_after_step(trainer *t, tr_clock *c, const tr_step_out *o, int64_t epoch, int64_t s, tr_due d,
                  kd_train_result *res, kd_err *e) {
  const double now = MPI_Wtime();
  if (t->st.step == c->step0 + 1) {
    c->t_first = now;
    c->t_side = 0;
  }
  kd_eval_result ev;
  int have_ev = 0, rc = KD_OK;
  if (tr_root(t)) rc = root_log(t, c, o, epoch, s, d, now, &ev, &have_ev, e);
  /* The others wait here for rank 0's evaluation (the watchdog's longer limit) before any collective timed
   * plainly (a checkpoint's gather of sharded optimizer moments comes next); its outcome is everyone's. */
  if (d.eval) rc = kd_agree_after_root(t->mpi.comm, rc, e);
  if (rc) return rc;
  if (d.log) { /* every rank keeps the same accumulators (checkpoints) */
    memset(t->st.log_sums, 0, sizeof t->st.log_sums);
    t->st.log_steps = 0;
    c->log_t0 = now;
    c->log_side = 0;
  }
  if (d.epoch_end) {
    end_epoch(t, c, epoch, now, res);
  } else if (t->st.step == t->sched.end_step || o->stop) {
    const double *ep_s = t->st.epoch_sums;
    res->final_loss = ep_s[ST_LOSS] / ep_s[ST_ROWS];
    res->train_accuracy = ep_s[ST_LABELLED] > 0 ? ep_s[ST_CORRECT] / ep_s[ST_LABELLED] : NAN;
  }
  if (d.ckpt) {
    /* checkpoints call HDF5 beside a streamed run's reader thread */
    const int h5 = kd_rows_streamed(t->data.rows);
    if (h5) kd_h5_lock();
    rc = tr_checkpoint(t, have_ev ? &ev : NULL, e);
    if (h5) kd_h5_unlock();
    if (rc) return rc;
    if (have_ev && tr_root(t)) kd_eval_print(stdout, "eval", &ev);
  }
  const double side = MPI_Wtime() - now;
  c->t_side += side;
  c->ep_side += side;
  c->log_side += side;
  if (d.epoch_end) c->ep_side = 0;
  return KD_OK;
}
