/* The doctor's baseline: the student trained from scratch on the labels for
 * about --baseline-steps steps (whole epochs, its own schedule, the run's
 * optimizer), on every rank of comm as kd train runs it, in a scratch
 * folder; then the student and the teacher on the evaluation split, row by
 * row, so the margin's standard error is that of paired differences. */
#define _GNU_SOURCE
#include "doctor/baseline.h"

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/dist.h"
#include "core/files.h"
#include "kd/ckpt.h"
#include "kd/infer.h"
#include "models/fit.h"


/* The run's student and optimizer, from scratch, labels only. */
static int baseline_cfg(kd_train_cfg *b, const kd_train_cfg *c, int64_t steps, int64_t n_train, const char *out,
                        kd_err *e) {
  if (kd_train_cfg_defaults(b, e)) return e->code;
  memcpy(b->data, c->data, sizeof b->data);
  memcpy(b->student, c->student, sizeof b->student);
  memcpy(b->activation, c->activation, sizeof b->activation);
  memcpy(b->weight_init, c->weight_init, sizeof b->weight_init);
  memcpy(b->optimizer, c->optimizer, sizeof b->optimizer);
  memcpy(b->schedule, c->schedule, sizeof b->schedule);
  memcpy(b->normalize, c->normalize, sizeof b->normalize);
  memcpy(b->best_metric, c->best_metric, sizeof b->best_metric);
  b->val_rows = c->val_rows, b->train_rows = c->train_rows;
  /* labels on a fraction of the rows: the baseline learns from as many labelled rows (the first ones) */
  if (c->labelled_fraction < 1) {
    n_train = (int64_t)llround(c->labelled_fraction * (double)n_train);
    if (n_train < 1) n_train = 1;
    b->train_rows = n_train;
  }
  b->dropout = c->dropout, b->lr = c->lr, b->momentum = c->momentum, b->nesterov = c->nesterov;
  b->weight_decay = c->weight_decay, b->beta1 = c->beta1, b->beta2 = c->beta2, b->eps = c->eps;
  b->warmup = c->warmup, b->clip = c->clip, b->batch = c->batch, b->seed = c->seed, b->threads = c->threads;
  b->alpha = 1;
  const int64_t per_epoch = (n_train + b->batch - 1) / b->batch;
  b->epochs = (steps + per_epoch / 2) / per_epoch;
  if (b->epochs < 1) b->epochs = 1;
  b->ckpt_every = 0, b->ckpt_epochs = 0, b->eval_every = 0, b->keep = 1;
  b->force = 1; /* the doctor's own folder: a kept --work folder is reused */
  snprintf(b->progress, sizeof b->progress, "off");
  memcpy(b->out, out, strlen(out) + 1); /* the caller checked its length */
  return KD_OK;
}

/* Rank 0's stdout into `log` while the baseline runs (its epoch lines are not the report's). */
static int quiet_begin(const char *log, int *saved, kd_err *e) {
  fflush(stdout);
  const int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return kd_fail(e, KD_ERR_RUNTIME, "%s: cannot create the baseline's log", log);
  *saved = dup(1);
  const int rc = *saved < 0 || dup2(fd, 1) < 0;
  close(fd);
  if (rc && *saved >= 0) {
    close(*saved);
    *saved = -1;
  }
  return rc ? kd_fail(e, KD_ERR_RUNTIME, "cannot redirect the baseline's output to %s", log) : KD_OK;
}

static void quiet_end(int saved) {
  fflush(stdout);
  if (saved >= 0) {
    if (dup2(saved, 1) < 0) fprintf(stderr, "kd: warning: kd doctor: cannot restore stdout after the baseline\n");
    close(saved);
  }
}

/* Remove a flat folder the doctor made (the baseline's run folder holds files only). */
static void remove_tree(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *de;
  char p[KD_PATH_MAX + 300];
  while ((de = readdir(d)))
    if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
      snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
      if (unlink(p) != 0) remove_tree(p);
    }
  closedir(d);
  rmdir(dir);
}

/* Rank 0 makes the scratch folder; every rank gets its name. */
static int make_work(const kd_doctor_cfg *c, MPI_Comm comm, char *dir, size_t n, int *owned, kd_err *e) {
  int rank, rc = KD_OK;
  MPI_Comm_rank(comm, &rank);
  *owned = !c->work[0];
  if (rank == 0) {
    if (c->work[0]) {
      snprintf(dir, n, "%s", c->work);
      rc = kd_mkdirs(dir, "--work", e);
    } else {
      const char *tmp = getenv("TMPDIR");
      snprintf(dir, n, "%s/kd-doctor.XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
      if (!mkdtemp(dir)) rc = kd_fail(e, KD_ERR_RUNTIME, "%s: cannot make the baseline's scratch folder", dir);
    }
  }
  if ((rc = kd_agree(comm, rc, e))) return rc;
  if (kd_mpi_check(MPI_Bcast(dir, (int)n, MPI_CHAR, 0, comm), "MPI_Bcast", e)) return kd_fatal(e, rank, "doctor");
  return KD_OK;
}

/* Sums over rows i of the student (and the teacher): n_i targets (1 for a feature row), the student's and the
 * teacher's metric summed over them (correct predictions, or NLL), and the teacher's advantage d_i. The metric is
 * per target (sum / n), its standard error that of a ratio of sums over rows (rows are the independent units). */
typedef struct pair_sums {
  double rows, n, s_metric, t_metric, d, dd, nn, dn;
} pair_sums;

/* Row metric summed over its targets: correct (classes) or -log p (tokens); *n: its targets. */
static double row_sum(const float *z, const int32_t *y, int P, int C, int *n) {
  double sum = 0;
  *n = 0;
  for (int p = 0; p < P; p++) {
    if (y[p] < 0) continue;
    const float *zp = z + (size_t)p * C;
    int arg = 0;
    double m = zp[0], s = 0;
    for (int i = 1; i < C; i++)
      if (zp[i] > zp[arg]) arg = i, m = zp[i];
    for (int i = 0; i < C; i++) s += exp(zp[i] - m);
    sum += P == 1 ? (arg == y[p]) : m + log(s) - zp[y[p]];
    (*n)++;
  }
  return sum;
}

/* The buffers of one pass: the student's rows (and the teacher's own normalisation of them, tb), logits. */
typedef struct eval_bufs {
  kd_source *src, *tsrc;
  kd_teacher *ts;
  kd_batch b, tb;
  float *zs, *zt;
  int32_t *y;
} eval_bufs;

static void bufs_free(eval_bufs *q) {
  free(q->y);
  free(q->zt);
  free(q->zs);
  kd_batch_free(&q->tb);
  kd_batch_free(&q->b);
  kd_teacher_free(q->ts);
  kd_source_free(q->tsrc);
  kd_source_free(q->src);
}

/* Open rows [lo, hi) for the student (and, paired, the teacher), checked against the models that read them. */
static int bufs_open(eval_bufs *q, kd_model *st, const kd_preprocess *pre, const char *data, dr_teacher *tch,
                     const dr_split *sp, int64_t lo, int64_t hi, int *P, int *chunk, kd_err *e) {
  int rc = kd_source_open(&q->src, data, sp->name, lo, hi, e);
  if (!rc) rc = kd_source_set_preprocess(q->src, pre, e);
  if (!rc) rc = kd_fit_rows(st, "the baseline student", q->src, 1, e);
  if (rc) return rc;
  *P = kd_source_kind(q->src) == KD_INPUT_TOKENS ? kd_source_width(q->src) : 1;
  const int C = st->out_dim;
  *chunk = dr_chunk_rows(*P, C);
  if (*chunk > st->max_batch) *chunk = st->max_batch;
  if (tch && tch->model && *chunk > tch->model->max_batch) *chunk = tch->model->max_batch;
  if (tch && tch->mode == DR_DENSE) rc = dr_open_dense(&q->ts, tch, sp, lo, hi, *P, e);
  if (!rc && tch && tch->mode == DR_MODEL) {
    rc = kd_source_open(&q->tsrc, data, sp->name, lo, hi, e);
    if (!rc) rc = kd_source_set_preprocess(q->tsrc, &tch->pre, e);
    if (!rc) rc = kd_fit_rows(tch->model, "--teacher-model", q->tsrc, 1, e);
    if (!rc) rc = kd_batch_init(&q->tb, kd_source_kind(q->tsrc), *chunk, kd_source_width(q->tsrc), e);
  }
  if (!rc) rc = kd_batch_init(&q->b, kd_source_kind(q->src), *chunk, kd_source_width(q->src), e);
  const size_t zn = (size_t)*chunk * (size_t)*P * (size_t)C;
  if (!rc && (!(q->zs = malloc(sizeof *q->zs * zn)) || (tch && !(q->zt = malloc(sizeof *q->zt * zn))) ||
              !(q->y = malloc(sizeof *q->y * (size_t)*chunk * *P))))
    rc = kd_fail(e, KD_ERR_RUNTIME, "out of memory (%d rows of logits)", *chunk);
  return rc;
}

/* Rows [lo, hi) of a split: the student's metric, and the teacher's (paired) when tch is not NULL (its
 * logits of the split are known: a dense file's, or a checkpoint's; the classes equal the student's). */
static int eval_rows(kd_model *st, const kd_preprocess *pre, const char *data, dr_teacher *tch, const dr_split *sp,
                     int64_t lo, int64_t hi, pair_sums *ps, kd_err *e) {
  eval_bufs q;
  memset(&q, 0, sizeof q);
  int P = 1, chunk = 1;
  int rc = bufs_open(&q, st, pre, data, tch, sp, lo, hi, &P, &chunk, e);
  const int C = st->out_dim;
  const kd_fwd inference = {0, 0};
  for (int64_t r0 = 0; !rc && r0 < hi - lo; r0 += chunk) {
    const int count = (int)(hi - lo - r0 < chunk ? hi - lo - r0 : chunk);
    if ((rc = kd_source_gather_range(q.src, r0, count, &q.b, e))) break;
    if (sp->labelled_fraction < 1) kd_batch_unlabel(&q.b, sp->label_key, sp->labelled_fraction);
    kd_batch_targets(&q.b, q.y);
    if ((rc = kd_model_forward(st, q.zs, &q.b, &inference, e))) break;
    if (q.tsrc && (rc = kd_source_gather_range(q.tsrc, r0, count, &q.tb, e))) break;
    if (tch && (rc = q.ts ? kd_teacher_gather_range(q.ts, r0, count, q.zt, e)
                          : kd_model_forward(tch->model, q.zt, &q.tb, &inference, e)))
      break;
    for (int i = 0; i < count; i++) {
      int n, nt;
      const size_t at = (size_t)i * P;
      const double ms = row_sum(q.zs + at * C, q.y + at, P, C, &n);
      if (!n) continue;
      const double mt = tch ? row_sum(q.zt + at * C, q.y + at, P, C, &nt) : 0;
      const double d = P == 1 ? mt - ms : ms - mt; /* the teacher's advantage: accuracy up, NLL down */
      ps->rows += 1, ps->n += n, ps->s_metric += ms, ps->t_metric += mt;
      ps->d += d, ps->dd += d * d, ps->nn += (double)n * n, ps->dn += d * n;
    }
  }
  bufs_free(&q);
  return rc;
}

/* This rank's share of about `want` rows of the split (the first of its shard), the sums reduced over comm. */
static int eval_split(kd_model *st, const kd_preprocess *pre, const char *data, dr_teacher *tch, const dr_split *sp,
                      int64_t want, MPI_Comm comm, pair_sums *ps, kd_err *e) {
  memset(ps, 0, sizeof *ps);
  int64_t a, b, take;
  dr_shard(sp, want, comm, &a, &b, &take);
  const int rc = take > 0 ? eval_rows(st, pre, data, tch, sp, a, a + take, ps, e) : KD_OK;
  return dr_agree_sum(comm, rc, (double *)ps, (int)(sizeof *ps / sizeof(double)), e);
}

static int train_baseline(const kd_doctor_cfg *c, const char *dir, int64_t n_train, MPI_Comm comm, int64_t *steps,
                          kd_err *e) {
  int rank;
  MPI_Comm_rank(comm, &rank);
  kd_train_cfg b;
  char out[KD_PATH_MAX + 16], log[KD_PATH_MAX + 16];
  snprintf(out, sizeof out, "%s/baseline", dir);
  snprintf(log, sizeof log, "%s/baseline.log", dir);
  if (strlen(out) >= KD_PATH_MAX) return kd_fail(e, KD_ERR_USAGE, "--work %s: the path is too long", dir);
  int rc = baseline_cfg(&b, &c->train, c->baseline_steps, n_train, out, e);
  int saved = -1;
  if (!rc && rank == 0) rc = quiet_begin(log, &saved, e);
  if ((rc = kd_agree(comm, rc, e))) return rc;
  kd_train_result res;
  rc = kd_train_run(&b, comm, &res, e);
  if (rank == 0) quiet_end(saved);
  if (rc) {
    char msg[sizeof e->msg];
    snprintf(msg, sizeof msg, "the baseline run (the student from scratch, log %.200s): %.700s", log, e->msg);
    memcpy(e->msg, msg, sizeof e->msg);
    return rc;
  }
  *steps = res.steps;
  return KD_OK;
}

int dr_baseline(const kd_doctor_cfg *c, dr_teacher *tch, int paired, const dr_split *tr, const dr_split *ev,
                MPI_Comm comm, kd_doctor_report *r, kd_err *e) {
  char dir[KD_PATH_MAX], path[KD_PATH_MAX + 32];
  int owned = 0;
  int rc = make_work(c, comm, dir, sizeof dir, &owned, e);
  if (rc) return rc;
  rc = train_baseline(c, dir, tr->hi - tr->lo, comm, &r->baseline_steps, e);
  kd_model *st = NULL;
  float *params = NULL;
  kd_preprocess pre;
  memset(&pre, 0, sizeof pre);
  snprintf(path, sizeof path, "%s/baseline/final.h5", dir);
  if (!rc) {
    int lrc = kd_model_load(&st, &params, path, DR_CHUNK, e);
    if (!lrc) lrc = kd_ckpt_read_preprocess(path, &pre, e); /* --normalize: the rows as the baseline read them */
    rc = kd_agree(comm, lrc, e);
  }
  pair_sums pe, pt;
  if (!rc) rc = eval_split(st, &pre, c->train.data, paired ? tch : NULL, ev, 0, comm, &pe, e);
  dr_split learnt = *tr; /* the rows the baseline learnt from */
  if (tr->labelled_fraction < 1) {
    const int64_t n = (int64_t)llround(tr->labelled_fraction * (double)(tr->hi - tr->lo));
    learnt.hi = learnt.lo + (n > 0 ? n : 1);
    learnt.labelled_fraction = 1;
  }
  if (!rc) rc = eval_split(st, &pre, c->train.data, NULL, &learnt, c->rows, comm, &pt, e);
  if (st) kd_model_free(st);
  free(params);
  kd_preprocess_free(&pre);
  int rank;
  MPI_Comm_rank(comm, &rank);
  if (owned && rank == 0 && !rc) remove_tree(dir); /* kept after a failure: its log says why */
  if (rc) return rc;
  r->base_metric = pe.n > 0 ? pe.s_metric / pe.n : NAN;
  r->base_train_metric = pt.n > 0 ? pt.s_metric / pt.n : NAN;
  if (paired && pe.n > 0) {
    r->teacher_metric = pe.t_metric / pe.n;
    r->margin = pe.d / pe.n;
    /* a ratio of sums over k rows: var = sum (d_i - R n_i)^2 / (k (k - 1) nbar^2) */
    const double R = r->margin, k = pe.rows, nbar = pe.n / pe.rows;
    const double ss = pe.dd - 2 * R * pe.dn + R * R * pe.nn;
    r->margin_se = k > 1 ? sqrt((ss > 0 ? ss : 0) / (k * (k - 1))) / nbar : NAN;
  }
  return KD_OK;
}
