/* Self-distillation: a frozen snapshot of an earlier checkpoint of the run
 * teaches. In memory, every rank runs the snapshot over its own rows once
 * per refresh and its logits fill the teacher store the loss reads.
 * Streamed, the rows are not held: the snapshot runs on each step's batch
 * (as an online teacher does), which costs a forward pass per step. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/atomic.h"
#include "core/dist.h"
#include "core/h5io.h"
#include "core/provenance.h"
#include "infer/logits.h"
#include "kd/registry.h"
#include "train/trainer.h"

/* Rank 0: the checkpoint --teacher-ckpt names now, from the run's own state
 * (not the directory listing, so a resumed run chooses the same one). */
static int snapshot_path(const trainer *t, char *path, size_t n) {
  const char *w = t->cfg.teacher_ckpt;
  int64_t step = -1;
  if (strcmp(w, "best") == 0) step = t->st.best_step >= 0 ? t->st.best_step : t->st.last_ckpt_step;
  else if (strcmp(w, "latest") == 0) step = t->st.last_ckpt_step;
  else if (strncmp(w, "step:", 5) == 0) step = t->st.last_ckpt_step >= atoll(w + 5) ? atoll(w + 5) : -1;
  else {
    snprintf(path, n, "%s", w);
    return 1;
  }
  if (step < 0) return 0;
  kd_ckpt_name(path, n, t->cfg.out, step);
  return 1;
}

/* Write this snapshot's logits of the training rows as a teacher file. */
static int write_snapshot_logits(trainer *t, const char *ckpt, kd_err *e) {
  const int C = t->net.model->out_dim;
  kd_atomic a;
  memset(&a, 0, sizeof a);
  hid_t f = H5I_INVALID_HID;
  int rc = KD_OK;
  if (tr_root(t)) {
    rc = kd_atomic_begin(&a, t->cfg.snapshot_logits, e);
    if (!rc) rc = kd_h5_create(&f, a.tmp, e);
    const int P = kd_teacher_positions(t->data.teacher);
    if (!rc) rc = kd_logits_create(f, a.tmp, "/train/logits", t->data.n_train, P > 1 ? P : 0, C, 0, e);
  }
  if ((rc = kd_agree(t->mpi.comm, rc, e))) {
    if (f >= 0) H5Fclose(f);
    return rc;
  }
  rc = kd_logits_gather(t->mpi.comm, f, a.tmp, "/train/logits", t->data.n_train,
                        C * kd_teacher_positions(t->data.teacher), kd_teacher_logits(t->data.teacher), e);
  if (tr_root(t) && rc != KD_ERR_FATAL) {
    kd_provenance p = kd_provenance_of("teacher");
    p.source_checkpoint = ckpt;
    p.source_data = t->cfg.data;
    p.rows[0] = t->data.n_train;
    p.has_fingerprint = 1;
    p.data_fingerprint = t->st.data_fp;
    if (!rc) rc = kd_provenance_write(f, a.tmp, &p, e);
    rc = kd_h5_close(f, a.tmp, rc, e);
    if (!rc) rc = kd_atomic_commit(&a, e);
    if (rc) kd_atomic_abort(&a);
  }
  return kd_agree_after_root(t->mpi.comm, rc, e);
}

/* The snapshot model, built once, with parameters of its own. */
static int snapshot_model(trainer *t, kd_err *e) {
  if (t->snap.model) return KD_OK;
  kd_model_spec ms;
  memset(&ms, 0, sizeof ms);
  kd_model *m = t->net.model;
  snprintf(ms.family, sizeof ms.family, "%s", m->family);
  snprintf(ms.text, sizeof ms.text, "%s", m->spec);
  for (int i = 0; i < m->n_attrs; i++) { /* the settings a checkpoint would give it */
    const size_t l = strlen(ms.options);
    snprintf(ms.options + l, sizeof ms.options - l, "%s%s=%s", l ? "," : "", m->attrs[i].name, m->attrs[i].value);
  }
  int rc = kd_model_create(&t->snap.model, &ms, m->max_batch, e);
  if (!rc) {
    t->snap.params = kd_malloc(t->snap.model->n_params * sizeof(float), "snapshot parameters", e);
    rc = t->snap.params ? KD_OK : e->code;
    if (!rc) kd_model_bind(t->snap.model, t->snap.params, NULL);
  }
  return rc;
}

/* Rank 0 reads the checkpoint; every rank receives its parameters. */
static int load_snapshot(trainer *t, const char *path, kd_err *e) {
  int rc = snapshot_model(t, e);
  if ((rc = kd_agree(t->mpi.comm, rc, e))) return rc;
  if (tr_root(t) && access(path, F_OK) != 0)
    rc = kd_fail(e, KD_ERR_RUNTIME,
                 "--teacher-ckpt %s: %s does not exist (this run writes checkpoints every --ckpt-every steps and at "
                 "epoch ends; a rotated-away one cannot teach)",
                 t->cfg.teacher_ckpt, path);
  const int h5 = kd_rows_streamed(t->data.rows); /* beside a streamed run's reader thread */
  if (h5) kd_h5_lock();
  if (!rc && tr_root(t)) rc = kd_ckpt_verify(path, e);
  if (!rc && tr_root(t)) rc = kd_ckpt_read(path, t->snap.model, NULL, NULL, e);
  if (h5) kd_h5_unlock();
  if ((rc = kd_agree_after_root(t->mpi.comm, rc, e))) return rc;
  return tr_bcast_floats(t->snap.params, t->snap.model->n_params, 0, t->mpi.comm, e);
}

/* The snapshot's logits of this rank's rows (in memory; streamed, each step
 * computes its batch's) and of rank 0's validation rows. */
static int snapshot_logits(trainer *t, kd_err *e) {
  kd_eval_result r;
  tr_data *d = &t->data;
  int rc = d->streamed ? KD_OK
                       : kd_eval_model(&r, kd_teacher_logits(d->teacher), t->snap.model, d->train, NULL, 1.0, NULL, e);
  if (!rc && tr_root(t) && d->has_valid) {
    const int pos = kd_source_kind(d->valid) == KD_INPUT_TOKENS ? kd_source_width(d->valid) : 1;
    if (!d->valid_t)
      rc = kd_teacher_new(&d->valid_t, kd_source_split(d->valid), kd_source_row0(d->valid), kd_source_rows(d->valid),
                          pos, t->net.model->out_dim, e);
    if (!rc) rc = kd_eval_model(&r, kd_teacher_logits(d->valid_t), t->snap.model, d->valid, NULL, 1.0, NULL, e);
  }
  return kd_agree(t->mpi.comm, rc, e);
}

/* Rank 0: which checkpoint teaches now ("" : none yet). keep_current:
 * reload st.teacher_ckpt (resume). */
static void choose(const trainer *t, int keep_current, char *path, size_t n) {
  path[0] = '\0';
  if (!tr_root(t)) return;
  if (keep_current && !strchr(t->st.teacher_ckpt, '/'))
    snprintf(path, n, "%s/%s", t->cfg.out, t->st.teacher_ckpt);
  else if (keep_current)
    snprintf(path, n, "%s", t->st.teacher_ckpt);
  else if (!snapshot_path(t, path, n))
    path[0] = '\0';
}

/* Collective: load the teaching checkpoint and compute its logits, in
 * inference mode. */
int tr_refresh_snapshot(trainer *t, int keep_current, kd_err *e) {
  char path[2 * sizeof t->st.teacher_ckpt + 8];
  choose(t, keep_current, path, sizeof path);
  if (kd_mpi_check(MPI_Bcast(path, (int)sizeof path, MPI_CHAR, 0, t->mpi.comm), "MPI_Bcast", e)) return e->code;
  if (!path[0]) {
    if (tr_root(t) && !t->snap.announced)
      printf("self-distillation: no checkpoint yet: hard labels only (unlabelled rows weigh 0) until the first one\n");
    t->snap.announced = 1;
    return KD_OK;
  }
  const char *cur = t->st.teacher_ckpt, *pb = strrchr(path, '/');
  if (t->snap.active && !keep_current && (strcmp(path, cur) == 0 || (!strchr(cur, '/') && pb && strcmp(pb + 1, cur) == 0)))
    return KD_OK;
  int rc = load_snapshot(t, path, e);
  if (!rc) rc = snapshot_logits(t, e);
  if (rc) return rc;
  /* Stored relative to the run directory when it lives there, so a resume
   * from another working directory finds it. */
  const size_t ol = strlen(t->cfg.out);
  const char *rel =
      strncmp(path, t->cfg.out, ol) == 0 && path[ol] == '/' && !strchr(path + ol + 1, '/') ? path + ol + 1 : path;
  snprintf(t->st.teacher_ckpt, sizeof t->st.teacher_ckpt, "%s", rel);
  t->snap.active = t->data.teacher_live = 1;
  if (tr_root(t)) {
    kd_progress_clear(&t->log.progress);
    printf("self-distillation: the teacher is now %s\n", path);
    fflush(stdout);
  }
  if (t->cfg.snapshot_logits[0]) return write_snapshot_logits(t, path, e);
  return KD_OK;
}

int tr_snapshot_forward(trainer *t, kd_err *e) {
  const kd_fwd inference = {0, 0};
  return kd_model_forward(t->snap.model, t->batch.tb.logits, &t->batch.in, &inference, e);
}
