/* Evaluation and checkpoints, beside the loop: rank 0 evaluates and writes;
 * every rank agrees on the outcome. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dist.h"
#include "core/rng.h"
#include "train/trainer.h"

int tr_bcast_floats(float *buf, size_t n, int from, MPI_Comm comm, kd_err *e) {
  const size_t chunk = (size_t)1 << 30;
  for (size_t off = 0; off < n; off += chunk) {
    int cnt = (int)(n - off < chunk ? n - off : chunk);
    if (kd_mpi_check(MPI_Bcast(buf + off, cnt, MPI_FLOAT, from, comm), "MPI_Bcast", e)) return e->code;
  }
  return KD_OK;
}

/* Rank 0: the validation split (or /test when there is none); *have = 0
 * when the run has neither (not an error). */
int tr_evaluate(trainer *t, kd_eval_result *ev, int *have, kd_err *e) {
  const tr_data *d = &t->data;
  *have = 0;
  const kd_source *s = d->has_valid ? d->valid : d->has_test ? d->test : NULL;
  const kd_teacher *teacher = d->has_valid ? d->valid_t : d->test_t;
  if (!s) return KD_OK;
  if (kd_eval_model(ev, NULL, t->net.model, s, teacher, t->cfg.temperature, NULL, e)) return e->code;
  *have = 1;
  return KD_OK;
}

static int better(const trainer *t, double v) {
  if (isnan(v)) return 0;
  if (isnan(t->st.best_metric)) return 1;
  return t->set.model.best == TR_BEST_NLL ? v < t->st.best_metric : v > t->st.best_metric;
}

/* Never rotate away the best checkpoint, nor the one teaching now, nor a
 * --teacher-ckpt step:N that is still to come. */
static int rotate(trainer *t, const char *best_name, kd_err *e) {
  const char *slash = strrchr(t->st.teacher_ckpt, '/');
  char stepn[64] = "";
  if (t->cfg.self_distill && strncmp(t->cfg.teacher_ckpt, "step:", 5) == 0)
    snprintf(stepn, sizeof stepn, "ckpt-%08lld.h5", atoll(t->cfg.teacher_ckpt + 5));
  const char *keep[3] = {best_name, slash ? slash + 1 : t->st.teacher_ckpt, stepn};
  return kd_ckpt_rotate(t->cfg.out, (int)t->cfg.keep, t->st.step, keep, 3, e);
}

/* Rank 0: write the checkpoint of this step, move the best pointer, rotate. */
static int write_checkpoint(trainer *t, const kd_eval_result *ev, kd_err *e) {
  int is_best = 0;
  if (ev) {
    const double v = t->set.model.best == TR_BEST_NLL ? ev->nll : ev->accuracy;
    if (better(t, v)) {
      t->st.best_metric = v;
      t->st.best_step = t->st.step;
      is_best = 1;
    }
  }
  t->st.ranks = t->mpi.size;
  t->st.last_ckpt_step = t->st.step;
  t->st.threads = t->mpi.threads;
  t->st.steps_per_epoch = t->sched.steps_per_epoch;
  const int nv = t->net.model->n_views;
  kd_ckpt_meta meta = {t->resume.items, t->resume.n_items, t->cfg.data, t->cfg.teacher,
                       t->net.views + nv, t->net.n_views - nv, t->net.params, &t->data.pre,
                       t->data.have_tok ? &t->data.tok : NULL};
  char path[KD_PATH_MAX + 64], best_name[64] = "";
  int rc = kd_ckpt_write(t->cfg.out, t->net.model, &t->sync.opt, &t->st, &meta, path, sizeof path, e);
  if (t->st.best_step >= 0) snprintf(best_name, sizeof best_name, "ckpt-%08lld.h5", (long long)t->st.best_step);
  if (!rc && is_best) rc = kd_ckpt_set_pointer(t->cfg.out, "best", best_name, e);
  if (!rc) rc = rotate(t, best_name, e);
  if (!rc) {
    kd_progress_clear(&t->log.progress);
    printf("checkpoint: %s%s\n", path, is_best ? " (best so far)" : "");
    fflush(stdout);
  }
  return rc;
}

/* ev: the evaluation at this step (NULL if none). */
int tr_checkpoint(trainer *t, const kd_eval_result *ev, kd_err *e) {
  /* A sharded optimizer keeps each slice's moments on its owner only. */
  if (kd_gsync_gather(&t->sync.gs, t->sync.opt.m, e) || (t->sync.opt.v && kd_gsync_gather(&t->sync.gs, t->sync.opt.v, e)))
    return kd_fatal(e, t->mpi.rank, "optimizer moments allgather");
  const int rc = tr_root(t) ? write_checkpoint(t, ev, e) : KD_OK;
  return kd_agree_after_root(t->mpi.comm, rc, e);
}

/* Replicas must stay bitwise equal: compare a hash of the parameters. */
int tr_check_replicas(trainer *t, kd_err *e) {
  if (t->mpi.size == 1) return KD_OK;
  uint64_t h = 0x9e37u;
  const uint32_t *w = (const uint32_t *)t->net.params;
  for (size_t i = 0; i < t->net.n_total; i++) h = kd_mix64(h ^ w[i]);
  unsigned long long mine = h, lo = 0, hi = 0;
  if (kd_mpi_check(MPI_Allreduce(&mine, &lo, 1, MPI_UNSIGNED_LONG_LONG, MPI_MIN, t->mpi.comm), "MPI_Allreduce", e) ||
      kd_mpi_check(MPI_Allreduce(&mine, &hi, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, t->mpi.comm), "MPI_Allreduce", e))
    return e->code;
  if (lo != hi)
    return kd_fail(e, KD_ERR_RUNTIME, "model replicas diverged across ranks (the allreduce gave ranks different sums)");
  return KD_OK;
}
