/* One training step on every rank: gather this rank's rows, forward, the
 * loss and the loss terms, backward, the gradient buckets (with the step's
 * statistics and control flags in the tail), the optimizer. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/dist.h"
#include "core/rng.h"
#include "kd/loss.h"
#include "train/stop.h"
#include "train/trainer.h"

void tr_phase_mark(phase_clock *c, int k) {
  const double now = MPI_Wtime();
  if (c->on) c->s[k] += now - c->last;
  c->last = now;
}

/* The step's rows and their teacher targets into the batch buffers; on an on-policy step the rows become
 * their prompts and the student's samples (rollout.c). */
static int gather(trainer *t, phase_clock *clock, kd_err *e) {
  const int b = t->sched.b_local;
  kd_teacher_batch tb = {t->data.teacher_live ? t->batch.tb.logits : NULL, t->batch.tb.features};
  kd_batch_untrim(&t->batch.in);
  const kd_rows_out out = {&t->batch.in, &tb, t->data.sparse ? &t->batch.sb : NULL};
  if (kd_rows_next(t->data.rows, &out, e)) return e->code;
  if (t->xtok.kind && tr_xtok_gather(t, e)) return e->code;
  tr_phase_mark(clock, KD_PH_GATHER);
  t->roll.active = tr_rollout_step(t, t->st.step);
  if (t->roll.active && tr_rollout(t, t->st.step, e)) return e->code;
  tr_phase_mark(clock, KD_PH_GENERATE);
  /* token rows: no work past the batch's last target (loss terms read the rows as gathered; an online
   * teacher runs on the trimmed rows) */
  if (!t->net.n_terms) {
    const int T = t->batch.in.width;
    kd_batch_trim(&t->batch.in, t->data.teacher ? tb.logits : NULL, t->net.model->out_dim);
    if (t->data.sparse) kd_sparse_batch_restride(&t->batch.sb, b, T, t->batch.in.width);
  }
  if (t->cfg.labelled_fraction < 1.0)
    kd_batch_unlabel(&t->batch.in, kd_key((uint64_t)t->cfg.seed, KD_RNG_LABELS, 0, 0), t->cfg.labelled_fraction);
  return KD_OK;
}

/* The loss is the mean over the global batch's targets: its rows for
 * feature rows (B, known), its target tokens for token rows (counted on
 * every rank and summed before any gradient is scaled, so any rank count and
 * any spread of targets give the same step). Collective for token rows: every
 * rank calls it, also after a local failure (its count is then 0). */
static int target_scale(trainer *t, int64_t local, float *scale, kd_err *e) {
  if (t->batch.in.kind == KD_INPUT_FEATURES) {
    *scale = 1.0f / (float)t->sched.B;
    return KD_OK;
  }
  int64_t global = 0;
  if (kd_mpi_fatal(MPI_Allreduce(&local, &global, 1, MPI_INT64_T, MPI_SUM, t->mpi.comm), "MPI_Allreduce", t->mpi.rank, e))
    return e->code;
  *scale = global > 0 ? (float)(1.0 / (double)global) : 0.0f;
  return KD_OK;
}

/* Loss and terms of this rank's rows; their gradients (scaled by 1 / the
 * global batch's targets) into dlogits, the terms' parameters and their
 * injections. While terms train alone the logits get no gradient and the
 * KD loss does not count. */
static int loss_and_terms(trainer *t, int alone, float scale, kd_loss_sums *ls, double *term_loss, kd_inject *inj,
                          int *n_inj, kd_err *e) {
  const kd_train_cfg *cfg = &t->cfg;
  const kd_loss_cfg lcfg = {(float)cfg->alpha, (float)cfg->temperature, t->set.loss.div};
  const kd_inter *inter = t->online.ptrs ? &t->online.inter : t->data.inter ? kd_inter_store_batch(t->data.inter) : NULL;
  const kd_targets tg = {t->batch.targets, t->data.teacher_live ? t->batch.tb.logits : NULL, t->batch.tb.features,
                         inter, t->data.sparse ? &t->batch.sb.t : NULL,
                         t->roll.active ? t->batch.sampled : NULL};
  const int P = t->batch.in.rows * kd_batch_positions(&t->batch.in), C = t->net.model->out_dim;
  if (t->xtok.kind) { /* a teacher with another tokenizer: the soft term at aligned positions */
    tr_xtok_loss(t, scale, ls); /* no term trains alone with it (kd_train_cfg_check) */
  } else if (t->batch.chunk) { /* the head GEMM and the loss together, a chunk of positions at a time */
    kd_head h;
    if (t->net.model->ops->head(t->net.model, &h, e) ||
        kd_loss_chunked(ls, &h, &tg, &lcfg, scale, !alone, t->batch.chunk_work, t->batch.chunk, t->net.model->prof, e))
      return e->code;
  } else if (tg.sparse) {
    if (kd_loss_sparse_forward_backward(alone ? NULL : t->batch.dlogits, ls, t->batch.logits, &tg, P, C, &lcfg, scale,
                                        e))
      return e->code;
  } else {
    kd_loss_forward_backward(alone ? NULL : t->batch.dlogits, ls, t->batch.logits, &tg, P, C, &lcfg, scale);
  }
  const kd_term_step ts = {t->net.model, &t->batch.in, &tg, t->net.params, t->net.grads, t->sched.B};
  *n_inj = 0;
  for (int i = 0; i < t->net.n_terms; i++) {
    kd_term *term = t->net.terms[i];
    if (term->alone_only && t->st.epoch >= term->alone_epochs) continue; /* its stage is over */
    if (term->ops->forward_backward(term, &ts, &term_loss[i], e)) return e->code;
    /* logged as a sum over the targets, as the logit loss (metrics divide by them) */
    if (term->loss_is_mean && scale > 0.0f) term_loss[i] /= scale;
    for (int k = 0; k < term->n_inject; k++) inj[(*n_inj)++] = term->inject[k];
  }
  return KD_OK;
}

/* This rank's statistics of the step, at the end of the gradient buffer. */
static void put_stats(trainer *t, int alone, kd_loss_sums *ls, const double *term_loss, int rc) {
  if (alone) ls->loss = 0.0; /* the terms alone are optimised */
  for (int i = 0; i < t->net.n_terms; i++) ls->loss += term_loss[i];
  float *st = t->net.grads + t->net.n_total;
  st[ST_LOSS] = (float)ls->loss;
  st[ST_CE] = (float)ls->ce;
  st[ST_KD] = (float)ls->kd;
  st[ST_CORRECT] = (float)ls->correct;
  st[ST_LABELLED] = (float)ls->labelled;
  st[ST_ROWS] = (float)ls->rows;
  for (int i = 0; i < t->net.n_terms; i++) st[tr_term_slot(i)] = (float)term_loss[i];
  st[ST_NONFINITE] = isfinite(ls->loss) ? 0.0f : 1.0f;
  st[ST_ERROR] = rc ? 1.0f : 0.0f;
  st[ST_STOP] = tr_stop_signal() ? 1.0f : 0.0f;
}

/* Gather to backward. A local failure is not returned here: the rank
 * still posts every bucket (with its error flag set) so no peer waits. */
static int compute(trainer *t, int64_t s, phase_clock *clock, kd_err *e) {
  kd_model *m = t->net.model;
  const int alone = tr_terms_alone(t, t->st.epoch);
  int rc = gather(t, clock, e); /* the row provider knows where the epoch is */
  const int64_t local = rc ? 0 : kd_batch_targets(&t->batch.in, t->batch.targets);
  if (!rc && t->roll.active && t->batch.sampled) kd_batch_next_tokens(&t->batch.in, t->batch.sampled);
  float scale = 0.0f;
  const int fatal = target_scale(t, local, &scale, e);
  if (fatal) return fatal;
  const kd_fwd fwd = {1, kd_key((uint64_t)t->cfg.seed, KD_RNG_DROPOUT, (uint64_t)t->st.step, 0)};
  tr_phase_mark(clock, KD_PH_GATHER); /* the targets' count and its allreduce */
  if (!rc && t->online.model) rc = tr_online_forward(t, e);
  else if (!rc && t->snap.active && t->data.streamed) rc = tr_snapshot_forward(t, e);
  tr_phase_mark(clock, KD_PH_TEACHER);
  if (!rc) rc = kd_model_forward(m, t->batch.logits, &t->batch.in, &fwd, e);
  tr_phase_mark(clock, KD_PH_FORWARD);
  memset(t->net.grads, 0, (t->net.n_total + (size_t)t->net.n_stats) * sizeof(float));
  kd_loss_sums ls = {0, 0, 0, 0, 0, 0};
  double term_loss[TR_MAX_TERMS] = {0};
  kd_inject inj[TR_MAX_TERMS * KD_TERM_MAX_INJECT];
  int n_inj = 0;
  if (!rc) rc = loss_and_terms(t, alone, scale, &ls, term_loss, inj, &n_inj, e);
  tr_phase_mark(clock, KD_PH_LOSS);
  kd_gsync_begin(&t->sync.gs);
  if (!rc)
    rc = kd_model_backward_inject(m, alone ? NULL : t->batch.chunk ? KD_DLOGITS_IN_HEAD : t->batch.dlogits,
                                  &t->batch.in, inj, n_inj, e);
  put_stats(t, alone, &ls, term_loss, rc);
  /* the batch is never left trimmed outside the step: code beside the loop
   * (snapshot teachers, evaluation) sizes its buffers by the batch's width */
  kd_batch_untrim(&t->batch.in);
  tr_phase_mark(clock, KD_PH_BACKWARD);
  if (s + 1 < t->sched.steps_per_epoch) kd_rows_prefetch(t->data.rows, t->data.teacher_live);
  tr_phase_mark(clock, KD_PH_GATHER);
  return rc;
}

/* The update from the reduced gradient, clipped, on every rank alike. */
static int update(trainer *t, tr_step_out *o, phase_clock *clock, kd_err *e) {
  const kd_train_cfg *cfg = &t->cfg;
  const float *st = o->stats;
  const size_t np = t->net.n_total, nm = t->net.model->n_params;
  double sumsq = 0.0;
  if (kd_gsync_sumsq(&t->sync.gs, &sumsq, e)) return kd_fatal(e, t->mpi.rank, "gradient norm");
  if (np > nm) sumsq += kd_sumsq(t->net.grads + nm, np - nm); /* the replicated terms */
  o->norm = sqrt(sumsq);
  const int nonfinite = st[ST_NONFINITE] > 0 || !isfinite(o->norm);
  if (nonfinite && !t->set.loss.skip_nonfinite)
    return kd_fail(e, KD_ERR_RUNTIME,
                   "step %lld (epoch %lld): the %s is not finite; stopping (lower --lr, set --clip, or "
                   "--on-nonfinite skip); the last checkpoint is untouched",
                   (long long)t->st.step + 1, (long long)t->st.epoch + 1, st[ST_NONFINITE] > 0 ? "loss" : "gradient");
  const tr_optim_settings *os = &t->set.optim;
  o->lr = kd_lr_at(os->schedule, (float)os->lr, t->st.step, t->sched.total_steps, os->warmup);
  if (nonfinite) { /* --on-nonfinite skip: drop this update on every rank */
    t->st.skipped++;
    o->skipped = 1;
    if (tr_root(t)) {
      kd_progress_clear(&t->log.progress);
      printf("step %lld (epoch %lld): non-finite %s, update skipped (%lld skipped so far)\n", (long long)t->st.step + 1,
             (long long)t->st.epoch + 1, st[ST_NONFINITE] > 0 ? "loss" : "gradient", (long long)t->st.skipped);
    }
    return KD_OK;
  }
  /* Clipping is folded into the update's one pass over memory. */
  const float gs = kd_clip_scale(o->norm, cfg->clip);
  const int alone = tr_terms_alone(t, t->st.epoch);
  kd_optim_update(&t->sync.opt, t->net.params, t->net.grads, o->lr, gs, alone ? t->net.alone_views : t->net.views,
                  alone ? t->net.n_alone_views : t->net.n_views, t->sync.upd, t->sync.n_upd);
  tr_phase_mark(clock, KD_PH_UPDATE);
  if (kd_gsync_gather(&t->sync.gs, t->net.params, e)) /* sharded: every rank's slices to every rank */
    return kd_fatal(e, t->mpi.rank, "parameter allgather");
  tr_phase_mark(clock, KD_PH_ALLREDUCE);
  for (int k = 0; k < t->net.n_stats; k++) {
    if (k == ST_STOP) continue;
    t->st.log_sums[k] += st[k];
    t->st.epoch_sums[k] += st[k];
  }
  return KD_OK;
}

int tr_step(trainer *t, int64_t s, phase_clock *clock, tr_step_out *o, kd_err *e) {
  memset(o, 0, sizeof *o);
  const int rc = compute(t, s, clock, e);
  if (rc == KD_ERR_FATAL) return rc;
  /* Gradients and this step's statistics are summed together; the model
   * buckets may already be under way (--overlap). A failed MPI call cannot
   * be agreed on: it is fatal. */
  if (kd_gsync_finish(&t->sync.gs, e)) return kd_fatal(e, t->mpi.rank, "gradient allreduce");
  tr_phase_mark(clock, KD_PH_ALLREDUCE);
  o->stats = t->net.grads + t->net.n_total;
  if (o->stats[ST_ERROR] > 0) return kd_agree(t->mpi.comm, rc, e);
  o->stop = o->stats[ST_STOP] > 0;
  return update(t, o, clock, e);
}
