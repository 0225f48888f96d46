/* kd train: the data-parallel training loop.
 *
 * Data flows one way: shard -> gather batch -> model forward -> loss ->
 * model backward -> one in-place allreduce of (gradients | step statistics)
 * -> clip -> optimizer. Checkpoints, evaluation (both by rank 0) and logging
 * sit beside the loop. */
#define _GNU_SOURCE
#include "kd/train.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kd/ckpt.h"
#include "kd/data.h"
#include "kd/dist.h"
#include "kd/eval.h"
#include "kd/gemm.h"
#include "kd/gradsync.h"
#include "kd/h5io.h"
#include "kd/hint.h"
#include "kd/infer.h"
#include "kd/logits.h"
#include "kd/loss.h"
#include "kd/metrics.h"
#include "kd/optim.h"
#include "kd/rng.h"
#include "kd/weights.h"

/* Step statistics travel at the end of the gradient buffer, so one
 * allreduce per step carries gradients, losses and control flags. */
enum { ST_LOSS, ST_CE, ST_KD, ST_CORRECT, ST_LABELLED, ST_ROWS, ST_HINT, ST_NONFINITE, ST_ERROR, ST_STOP, ST_COUNT };

static volatile sig_atomic_t g_stop_signal = 0;
static void on_stop_signal(int sig) { g_stop_signal = sig; }

typedef struct trainer {
  kd_train_cfg cfg;        /* effective configuration (after a resume merge) */
  MPI_Comm comm;
  int rank, size, threads;
  int single_node;         /* all ranks share one node */
  int in_dim, classes;     /* the student's input width and outputs */
  kd_model *model;
  kd_model *snap;          /* self-distillation: the frozen teacher snapshot */
  float *snap_params;
  int snap_active, snap_announced;
  int teacher_live;        /* teacher logits are in train.logits now */
  float *params;           /* [n_total]: the student's n_params, then the hint regressor */
  float *grads;            /* [n_total + ST_COUNT] */
  size_t n_total;
  int hint_k, hint_hs, hint_ht;     /* FitNets: student layer, its width, teacher feature width */
  kd_param_view aux_views[2];       /* hint/weight [Ht, Hs], hint/bias [Ht] */
  kd_param_view *all_views;         /* student views + aux views: what the optimizer updates */
  int n_all_views, n_stage1_views;  /* stage 1 updates the layers up to K and the regressor */
  kd_param_view *stage1_views;
  float *fb, *hpred, *hdh;          /* batch features [b, Ht], scratch [b, Ht], dh [b, Hs] */
  kd_optim opt;
  kd_gsync sync;           /* gradient buckets: allreduce or reduce-scatter, overlapped or not */
  kd_range *upd;           /* what this rank's optimizer updates: its model slices, then the regressor */
  int n_upd;
  kd_split train;          /* this rank's shard */
  kd_split valid, test;    /* rank 0 only: whole splits for evaluation */
  int has_teacher, has_valid, has_test;
  char valid_name[64];
  int B, b_local;
  int64_t n_train;         /* rows of /train used for training */
  int64_t n_file_rows;     /* rows of /train in the file */
  int64_t steps_per_epoch, total_steps, end_step;
  float *xb, *tb, *logits, *dlogits;
  int32_t *yb;
  int64_t *rows, *perm;
  kd_metrics metrics;
  kd_progress progress;
  kd_run_state st;
  char resume_path[KD_PATH_MAX];
  kd_cfg_item *cfg_items;
  int n_cfg_items;
} trainer;

static int root(const trainer *t) { return t->rank == 0; }

const char *const kd_phase_names[KD_PHASES] = {"gather", "forward", "loss", "backward", "allreduce", "update"};

static int bcast_floats(float *buf, size_t n, int from, MPI_Comm comm, kd_err *e) {
  const size_t chunk = (size_t)1 << 30;
  for (size_t off = 0; off < n; off += chunk) {
    int cnt = (int)(n - off < chunk ? n - off : chunk);
    if (kd_mpi_check(MPI_Bcast(buf + off, cnt, MPI_FLOAT, from, comm), "MPI_Bcast", e)) return e->code;
  }
  return KD_OK;
}

/* ---- resume: the checkpoint's configuration, merged with the command line ---- */

/* Options a resumed run may change; all others must match the checkpoint. */
static int may_change(const char *name) {
  static const char *ok[] = {"epochs", "ckpt-every", "ckpt-epochs", "keep", "on-nonfinite", "threads", "overlap",
                             "shard-optimizer", "bucket-kib", "max-steps", "progress",
                             "eval-every", "log-every", "data", "teacher", "resume", "force", NULL};
  for (int i = 0; ok[i]; i++)
    if (strcmp(ok[i], name) == 0) return 1;
  return 0;
}

static int merge_resume_config(trainer *t, const kd_train_cfg *cli, kd_err *e) {
  kd_train_cfg *c = &t->cfg;
  memset(c, 0, sizeof *c);
  if (kd_opts_parse(kd_train_opts, kd_train_n_opts, c, 0, NULL, "kd train", NULL, e)) return e->code;
  for (int i = 0; i < t->n_cfg_items; i++) {
    const char *name = t->cfg_items[i].name;
    /* Not inherited: how this invocation runs, not what the run is. */
    if (name[0] == '_' || strcmp(name, "resume") == 0 || strcmp(name, "force") == 0 ||
        strcmp(name, "max-steps") == 0)
      continue;
    if (kd_opts_index(kd_train_opts, kd_train_n_opts, name) < 0) {
      if (root(t)) printf("kd: note: ignoring option --%s stored in the checkpoint (unknown to kd %s)\n", name, KD_VERSION);
      continue;
    }
    if (kd_opts_set(kd_train_opts, kd_train_n_opts, c, name, t->cfg_items[i].value, "checkpoint", e)) {
      char why[sizeof e->msg];
      snprintf(why, sizeof why, "%s", e->msg);
      kd_err_clear(e);
      return kd_fail(e, KD_ERR_RUNTIME, "%s: damaged checkpoint: stored option --%s: %s", t->resume_path, name, why);
    }
  }
  char dir[KD_PATH_MAX];
  snprintf(dir, sizeof dir, "%s", t->resume_path);
  snprintf(c->out, sizeof c->out, "%s", dirname(dir));
  for (int i = 0; i < kd_train_n_opts; i++) {
    if (!cli->given[i]) continue;
    const kd_opt_spec *s = &kd_train_opts[i];
    char mine[KD_PATH_MAX], theirs[KD_PATH_MAX];
    kd_opts_format(s, cli, mine, sizeof mine);
    kd_opts_format(s, c, theirs, sizeof theirs);
    if (strcmp(s->name, "out") == 0) {
      char a[PATH_MAX], b[PATH_MAX];
      if (!realpath(cli->out, a) || !realpath(c->out, b) || strcmp(a, b) != 0)
        return kd_fail(e, KD_ERR_USAGE, "--out %s: a resumed run continues in its own directory %s", cli->out, c->out);
      continue;
    }
    if (strcmp(mine, theirs) == 0) continue;
    if (!may_change(s->name))
      return kd_fail(e, KD_ERR_USAGE,
                     "--%s %s contradicts the checkpoint (%s has --%s %s); resume without it, or start a new run",
                     s->name, mine, t->resume_path, s->name, theirs[0] ? theirs : "(unset)");
    if (root(t) && strcmp(s->name, "resume") != 0 && strcmp(s->name, "force") != 0)
      printf("kd: resume: --%s changed from %s to %s%s\n", s->name, theirs[0] ? theirs : "(unset)", mine,
             strcmp(s->name, "threads") == 0 ? " (the bitwise-identical resume holds only for the same threads)" : "");
    kd_opts_set(kd_train_opts, kd_train_n_opts, c, s->name, mine, "kd train", e);
  }
  snprintf(c->resume, sizeof c->resume, "%s", t->resume_path);
  c->force = 1;
  return KD_OK;
}

/* Rank 0 picks the checkpoint (falling back past damaged ones) and tells all. */
static int find_resume_checkpoint(trainer *t, const char *spec, kd_err *e) {
  int rc = KD_OK;
  if (root(t)) {
    char notes[8192];
    rc = kd_ckpt_resolve(spec, 1, t->resume_path, sizeof t->resume_path, notes, sizeof notes, e);
    for (char *line = strtok(notes, "\n"); line; line = strtok(NULL, "\n")) fprintf(stderr, "kd: resume: %s\n", line);
    if (!rc) printf("kd: resuming from %s\n", t->resume_path);
    fflush(stdout);
  }
  if ((rc = kd_agree(t->comm, rc, e))) return rc;
  if (kd_mpi_check(MPI_Bcast(t->resume_path, sizeof t->resume_path, MPI_CHAR, 0, t->comm), "MPI_Bcast", e))
    return e->code;
  return KD_OK;
}

/* ---- set-up ---- */

static int check_setup(trainer *t, kd_err *e) {
  const kd_train_cfg *c = &t->cfg;
  if (kd_train_cfg_check(c, e)) return e->code;
  if (c->batch < t->size)
    return kd_fail(e, KD_ERR_USAGE, "kd train: --batch %lld is smaller than the %d ranks: every rank needs a row",
                   (long long)c->batch, t->size);
  t->B = (int)c->batch;
  t->b_local = kd_local_batch(t->B, t->size, t->rank);
  t->has_teacher = c->teacher[0] != '\0' || c->self_distill;
  t->teacher_live = c->teacher[0] != '\0';
  kd_model_spec ms;
  memset(&ms, 0, sizeof ms);
  snprintf(ms.family, sizeof ms.family, "mlp");
  snprintf(ms.sizes, sizeof ms.sizes, "%s", c->student);
  snprintf(ms.activation, sizeof ms.activation, "%s", c->activation);
  ms.dropout = (float)c->dropout;
  ms.init_xavier = strcmp(c->weight_init, "xavier") == 0;
  if (kd_model_create(&t->model, &ms, t->b_local > 256 ? t->b_local : 256, e)) return e->code;
  t->in_dim = t->model->in_dim;
  t->classes = t->model->out_dim;
  if (c->hint_layer > 0) {
    const int nh = t->model->ops->n_hidden(t->model);
    if (c->hint_layer > nh)
      return kd_fail(e, KD_ERR_USAGE, "kd train: --hint-layer %lld: the student %s has %d hidden layer%s",
                     (long long)c->hint_layer, c->student, nh, nh == 1 ? "" : "s");
    t->hint_k = (int)c->hint_layer;
    t->model->ops->hidden(t->model, t->hint_k, &t->hint_hs);
  }
  return KD_OK;
}

static int prepare_out_dir(trainer *t, kd_err *e) {
  const kd_train_cfg *c = &t->cfg;
  if (!root(t)) return KD_OK;
  char path[KD_PATH_MAX];
  snprintf(path, sizeof path, "%s", c->out);
  for (char *p = path + 1; ; p++) { /* mkdir -p */
    if (*p == '/' || *p == '\0') {
      char ch = *p;
      *p = '\0';
      struct stat pb;
      if (stat(path, &pb) == 0 && !S_ISDIR(pb.st_mode))
        return kd_fail(e, KD_ERR_USAGE, "--out %s: %s exists and is not a directory", c->out, path);
      if (mkdir(path, 0777) != 0 && errno != EEXIST)
        return kd_fail(e, KD_ERR_RUNTIME, "--out %s: cannot create directory %s (%s)", c->out, path, strerror(errno));
      if (!ch) break;
      *p = ch;
    }
  }
  struct stat sb;
  if (stat(c->out, &sb) != 0 || !S_ISDIR(sb.st_mode)) return kd_fail(e, KD_ERR_USAGE, "--out %s: not a directory", c->out);
  char m[KD_PATH_MAX + 32];
  snprintf(m, sizeof m, "%s/metrics.csv", c->out);
  if (access(m, F_OK) == 0 && !c->force)
    return kd_fail(e, KD_ERR_USAGE,
                   "--out %s already holds a run (metrics.csv); continue it with --resume %s, or pass --force to "
                   "overwrite it",
                   c->out, c->out);
  if (access(c->out, W_OK) != 0)
    return kd_fail(e, KD_ERR_RUNTIME, "--out %s: directory is not writable (%s)", c->out, strerror(errno));
  return KD_OK;
}

/* A whole split (or rows [lo, hi) of it) on this rank, with teacher logits
 * when the teacher file has them for that split. */
static int load_eval_split(trainer *t, kd_split *s, const char *split, int64_t lo, int64_t hi, kd_err *e) {
  const kd_train_cfg *c = &t->cfg;
  const int C = t->classes;
  const char *teacher = NULL;
  if (c->teacher[0]) {
    hid_t f;
    char ls[64];
    snprintf(ls, sizeof ls, "/%s/logits", split);
    if (kd_h5_open_ro(&f, c->teacher, e)) return e->code;
    if (kd_h5_exists(f, ls)) teacher = c->teacher;
    H5Fclose(f);
  }
  if (kd_split_load(s, c->data, teacher, split, lo, hi, e)) return e->code;
  if (s->dim != t->in_dim)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: /%s/x has %d features per row but --student %s takes %d", c->data, split,
                   s->dim, c->student, t->in_dim);
  if (teacher && s->classes != C)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: /%s/logits has %d classes but --student %s outputs %d", c->teacher, split,
                   s->classes, c->student, C);
  return kd_split_validate(s, C, 1, c->data, teacher, e);
}

static int load_data(trainer *t, kd_err *e) {
  const kd_train_cfg *c = &t->cfg;
  int present, dim, classes;
  int64_t n;
  if (kd_split_probe(c->data, c->teacher, "train", &present, &n, &dim, &classes, e)) return e->code;
  const int in = t->in_dim, C = t->classes;
  if (!present) return kd_fail(e, KD_ERR_RUNTIME, "%s: dataset /train/x is missing", c->data);
  if (dim != in)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: /train/x has %d features per row but --student %s takes %d", c->data, dim,
                   c->student, in);
  if (c->teacher[0] && classes != C)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: /train/logits has %d classes but --student %s outputs %d", c->teacher,
                   classes, c->student, C);
  /* Validation split: /valid, else the last --val-rows of /train, else /test. */
  int vp, tp, vdim, vcls, tdim, tcls;
  int64_t vn, tn;
  if (kd_split_probe(c->data, NULL, "valid", &vp, &vn, &vdim, &vcls, e)) return e->code;
  if (kd_split_probe(c->data, NULL, "test", &tp, &tn, &tdim, &tcls, e)) return e->code;
  t->n_train = n;
  if (vp) {
    snprintf(t->valid_name, sizeof t->valid_name, "valid");
    if (c->val_rows > 0 && root(t))
      printf("kd: note: %s has /valid, so --val-rows %lld is not used\n", c->data, (long long)c->val_rows);
  } else if (c->val_rows > 0) {
    if (c->val_rows >= n)
      return kd_fail(e, KD_ERR_RUNTIME, "--val-rows %lld: /train of %s has only %lld rows", (long long)c->val_rows,
                     c->data, (long long)n);
    t->n_train = n - c->val_rows;
    snprintf(t->valid_name, sizeof t->valid_name, "train[%lld:]", (long long)t->n_train);
  } else if (tp) {
    snprintf(t->valid_name, sizeof t->valid_name, "test");
  }
  t->n_file_rows = n;
  if (c->train_rows > 0) {
    if (c->train_rows > t->n_train)
      return kd_fail(e, KD_ERR_RUNTIME, "--train-rows %lld: /train of %s has only %lld rows for training",
                     (long long)c->train_rows, c->data, (long long)t->n_train);
    t->n_train = c->train_rows;
  }
  if (t->n_train < t->size)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: /train has %lld training rows, fewer than the %d ranks", c->data,
                   (long long)t->n_train, t->size);
  int64_t lo, hi;
  kd_shard_range(t->n_train, t->size, t->rank, &lo, &hi);
  if (kd_split_load(&t->train, c->data, c->teacher, "train", lo, hi, e)) return e->code;
  if (kd_split_validate(&t->train, C, t->has_teacher, c->data, c->teacher, e)) return e->code;
  if (t->hint_k) {
    if (kd_split_load_features(&t->train, c->teacher, e)) return e->code;
    t->hint_ht = t->train.feat_dim;
  }
  if (c->self_distill) { /* filled by each snapshot */
    t->train.classes = C;
    t->train.logits = kd_calloc((size_t)(t->train.n ? t->train.n : 1) * C, sizeof(float), "snapshot logits", e);
    if (!t->train.logits) return e->code;
  }
  if (c->labelled_fraction < 1.0) {
    /* Semi-supervised: drop labels on a seeded subset of rows (keyed on the
     * global row, so the subset does not depend on the rank count). */
    const uint64_t key = kd_key((uint64_t)c->seed, KD_RNG_LABELS, 0, 0);
    for (int64_t i = 0; i < t->train.n; i++)
      if (kd_uniform(key, (uint64_t)(t->train.row0 + i)) >= c->labelled_fraction) t->train.y[i] = -1;
  }
  /* Evaluation data lives on rank 0, which evaluates. */
  if (root(t)) {
    if (vp) {
      if (load_eval_split(t, &t->valid, "valid", 0, vn, e)) return e->code;
      t->has_valid = 1;
    } else if (c->val_rows > 0) {
      if (load_eval_split(t, &t->valid, "train", t->n_train, n, e)) return e->code;
      t->has_valid = 1;
    }
    if (tp) {
      if (load_eval_split(t, &t->test, "test", 0, tn, e)) return e->code;
      t->has_test = 1;
      if (!t->has_valid)
        printf("kd: note: no /valid split and no --val-rows: evaluating on /test, so the best checkpoint is "
               "chosen on the test set\n");
    }
  }
  return KD_OK;
}

/* Fingerprints: of the data file's whole /train split (x, y), which teacher
 * files written by kd logits carry too, and of the teacher logits of the
 * rows this run trains on (checked at resume). Each rank hashes its own
 * share; an allreduce sums the parts. */
static int fingerprint(trainer *t, kd_err *e) {
  uint64_t fp[2] = {0, 0}, d, l;
  kd_split_fingerprint(&t->train, &fp[0], &fp[1]);
  if (root(t) && t->has_valid && strcmp(t->valid.name, "train") == 0) {
    kd_split_fingerprint(&t->valid, &d, &l);
    fp[0] += d;
    fp[1] += l;
  }
  int rc = KD_OK;
  /* The rows in memory are the whole of /train, as stored, unless the run
   * trains on a prefix or dropped labels: only then read it again, in
   * bounded chunks of this rank's share. */
  if (t->cfg.train_rows > 0 || t->cfg.labelled_fraction < 1.0) {
    int64_t lo, hi;
    kd_shard_range(t->n_file_rows, t->size, t->rank, &lo, &hi);
    const int64_t chunk = 65536;
    fp[0] = 0;
    for (int64_t a = lo; a < hi && !rc; a += chunk) {
      kd_split part;
      rc = kd_split_load(&part, t->cfg.data, NULL, "train", a, a + chunk < hi ? a + chunk : hi, e);
      if (rc) break;
      kd_split_fingerprint(&part, &d, &l);
      fp[0] += d;
      kd_split_free(&part);
    }
  }
  if ((rc = kd_agree(t->comm, rc, e))) return rc;
  if (kd_mpi_check(MPI_Allreduce(MPI_IN_PLACE, fp, 2, MPI_UINT64_T, MPI_SUM, t->comm), "MPI_Allreduce", e))
    return e->code;
  t->st.data_fp = fp[0];
  t->st.teacher_fp = t->cfg.teacher[0] ? fp[1] : 0;
  if (!t->cfg.teacher[0]) return KD_OK;
  /* Provenance: a teacher file written by kd logits names the data it was made from. */
  hid_t f;
  if (kd_h5_open_ro(&f, t->cfg.teacher, e)) return kd_agree(t->comm, e->code, e);
  char hex[64] = "";
  int has = H5Aexists(f, "data_fingerprint") > 0;
  if (has) rc = kd_h5_get_attr_str(f, t->cfg.teacher, "/", "data_fingerprint", hex, sizeof hex, e);
  H5Fclose(f);
  if (!rc && has && strtoull(hex, NULL, 16) != t->st.data_fp)
    rc = kd_fail(e, KD_ERR_RUNTIME,
                 "%s: the teacher logits were computed from other data (its data_fingerprint %s, /train of %s has "
                 "%016llx)",
                 t->cfg.teacher, hex, t->cfg.data, (unsigned long long)t->st.data_fp);
  if (!rc && !has && root(t))
    printf("kd: note: %s carries no data fingerprint (written by another tool): only its row counts were checked\n",
           t->cfg.teacher);
  return kd_agree(t->comm, rc, e);
}

static void grads_ready(void *ctx, size_t from) { kd_gsync_ready(ctx, from); }

static int alloc_buffers(trainer *t, kd_err *e) {
  const int C = t->model->out_dim, D = t->model->in_dim, b = t->model->max_batch;
  const size_t nm = t->model->n_params;
  const int nv = t->model->n_views;
  /* The hint regressor lives in the same buffers, after the student. */
  const size_t n_aux = t->hint_k ? (size_t)t->hint_ht * t->hint_hs + t->hint_ht : 0;
  const size_t n = nm + n_aux;
  t->n_total = n;
  t->params = kd_malloc(n * sizeof(float), "parameters", e);
  t->grads = kd_malloc((n + ST_COUNT) * sizeof(float), "gradients", e);
  t->all_views = kd_calloc((size_t)nv + 2, sizeof(kd_param_view), "parameter views", e);
  t->stage1_views = kd_calloc((size_t)nv + 2, sizeof(kd_param_view), "parameter views", e);
  if (e->code) return e->code;
  memcpy(t->all_views, t->model->views, sizeof(kd_param_view) * (size_t)nv);
  t->n_all_views = nv;
  if (t->hint_k) {
    kd_param_view *w = &t->aux_views[0], *bb = &t->aux_views[1];
    snprintf(w->name, sizeof w->name, "hint/weight");
    w->offset = nm;
    w->rows = t->hint_ht;
    w->cols = t->hint_hs;
    w->decay = 1;
    snprintf(bb->name, sizeof bb->name, "hint/bias");
    bb->offset = nm + (size_t)t->hint_ht * t->hint_hs;
    bb->rows = t->hint_ht;
    bb->cols = 1;
    bb->decay = 0;
    t->all_views[nv] = *w;
    t->all_views[nv + 1] = *bb;
    t->n_all_views = nv + 2;
    /* Stage 1: the student's layers 0..K-1 (2 views each) and the regressor. */
    memcpy(t->stage1_views, t->model->views, sizeof(kd_param_view) * (size_t)(2 * t->hint_k));
    t->stage1_views[2 * t->hint_k] = *w;
    t->stage1_views[2 * t->hint_k + 1] = *bb;
    t->n_stage1_views = 2 * t->hint_k + 2;
    t->fb = kd_malloc((size_t)b * t->hint_ht * sizeof(float), "batch features", e);
    t->hpred = kd_malloc((size_t)b * t->hint_ht * sizeof(float), "hint scratch", e);
    t->hdh = kd_malloc((size_t)b * t->hint_hs * sizeof(float), "hint gradient", e);
  }
  t->xb = kd_malloc((size_t)b * D * sizeof(float), "batch inputs", e);
  t->yb = kd_malloc((size_t)b * sizeof(int32_t), "batch labels", e);
  t->tb = kd_malloc((size_t)b * C * sizeof(float), "batch teacher logits", e);
  t->logits = kd_malloc((size_t)b * C * sizeof(float), "batch logits", e);
  t->dlogits = kd_malloc((size_t)b * C * sizeof(float), "batch logit gradients", e);
  t->rows = kd_malloc((size_t)b * sizeof(int64_t), "batch row ids", e);
  t->perm = kd_malloc((size_t)(t->train.n ? t->train.n : 1) * sizeof(int64_t), "shuffle order", e);
  if (e->code) return e->code;
  kd_model_bind(t->model, t->params, t->grads);
  /* Buckets may begin at any view boundary of the student; the tail (the
   * regressor's gradient and the step statistics) is allreduced last. */
  size_t *cuts = kd_malloc((size_t)nv * sizeof(size_t), "bucket boundaries", e);
  if (!cuts) return e->code;
  for (int k = 0; k < nv; k++) cuts[k] = t->model->views[k].offset;
  const int single = t->single_node;
  /* auto (docs/performance.md): on one node the "communication" is memory
   * copies by the same cores that compute, so overlap only adds contention;
   * at 2 ranks a reduce-scatter + allgather cost more than one allreduce. */
  const int overlap = strcmp(t->cfg.overlap, "on") == 0 || (strcmp(t->cfg.overlap, "auto") == 0 && !single);
  const int shard = strcmp(t->cfg.shard_optimizer, "on") == 0 || (strcmp(t->cfg.shard_optimizer, "auto") == 0 && t->size >= 3);
  int rc = kd_gsync_init(&t->sync, t->comm, t->grads, nm, n_aux + ST_COUNT, cuts, nv,
                         (size_t)t->cfg.bucket_kib * 1024 / sizeof(float), overlap, shard, e);
  free(cuts);
  if (rc) return rc;
  int n_own;
  const kd_range *own = kd_gsync_owned(&t->sync, &n_own);
  t->upd = kd_calloc((size_t)n_own + 1, sizeof *t->upd, "update ranges", e);
  if (!t->upd) return e->code;
  memcpy(t->upd, own, sizeof *own * (size_t)n_own);
  t->n_upd = n_own;
  if (n_aux) { /* every rank updates the (replicated) regressor */
    t->upd[t->n_upd].lo = nm;
    t->upd[t->n_upd].hi = n;
    t->n_upd++;
  }
  t->model->grads_ready = grads_ready;
  t->model->grads_ready_ctx = &t->sync;
  return KD_OK;
}

static void free_trainer(trainer *t) {
  kd_model_free(t->model);
  kd_model_free(t->snap);
  free(t->snap_params);
  kd_optim_free(&t->opt);
  kd_gsync_free(&t->sync);
  free(t->upd);
  kd_split_free(&t->train);
  kd_split_free(&t->valid);
  kd_split_free(&t->test);
  free(t->params);
  free(t->grads);
  free(t->xb);
  free(t->yb);
  free(t->tb);
  free(t->logits);
  free(t->dlogits);
  free(t->rows);
  free(t->perm);
  free(t->cfg_items);
  free(t->all_views);
  free(t->stage1_views);
  free(t->fb);
  free(t->hpred);
  free(t->hdh);
}

/* Replicas must stay bitwise equal: compare a hash of the parameters. */
static int check_replicas(trainer *t, kd_err *e) {
  if (t->size == 1) return KD_OK;
  uint64_t h = 0x9e37u;
  const uint32_t *w = (const uint32_t *)t->params;
  for (size_t i = 0; i < t->n_total; i++) h = kd_mix64(h ^ w[i]);
  unsigned long long mine = h, lo = 0, hi = 0;
  if (kd_mpi_check(MPI_Allreduce(&mine, &lo, 1, MPI_UNSIGNED_LONG_LONG, MPI_MIN, t->comm), "MPI_Allreduce", e) ||
      kd_mpi_check(MPI_Allreduce(&mine, &hi, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, t->comm), "MPI_Allreduce", e))
    return e->code;
  if (lo != hi) return kd_fail(e, KD_ERR_RUNTIME, "model replicas diverged across ranks (the allreduce gave ranks different sums)");
  return KD_OK;
}

/* The run configuration as text, for checkpoints. */
static int config_items(trainer *t, kd_err *e) {
  free(t->cfg_items);
  t->cfg_items = kd_calloc((size_t)kd_train_n_opts + 2, sizeof(kd_cfg_item), "configuration", e);
  if (!t->cfg_items) return e->code;
  int k = 0;
  for (int i = 0; i < kd_train_n_opts; i++) {
    snprintf(t->cfg_items[k].name, sizeof t->cfg_items[k].name, "%s", kd_train_opts[i].name);
    kd_opts_format(&kd_train_opts[i], &t->cfg, t->cfg_items[k].value, sizeof t->cfg_items[k].value);
    k++;
  }
  /* Resolved values, for the record (not options). */
  snprintf(t->cfg_items[k].name, sizeof t->cfg_items[k].name, "_ranks");
  snprintf(t->cfg_items[k++].value, sizeof t->cfg_items[0].value, "%d", t->size);
  snprintf(t->cfg_items[k].name, sizeof t->cfg_items[k].name, "_threads");
  snprintf(t->cfg_items[k++].value, sizeof t->cfg_items[0].value, "%d", t->threads);
  t->n_cfg_items = k;
  return KD_OK;
}

/* ---- evaluation and checkpoints (rank 0) ---- */

static int better(const trainer *t, double v) {
  if (isnan(v)) return 0;
  if (isnan(t->st.best_metric)) return 1;
  return strcmp(t->cfg.best_metric, "nll") == 0 ? v < t->st.best_metric : v > t->st.best_metric;
}

/* Rank 0: write the checkpoint of the current state; all ranks agree on
 * the outcome. ev: the evaluation at this step (NULL if none). */
static int checkpoint(trainer *t, const kd_eval_result *ev, kd_err *e) {
  int rc = KD_OK;
  /* A sharded optimizer keeps each slice's moments on its owner only. */
  if (kd_gsync_gather(&t->sync, t->opt.m, e) || (t->opt.v && kd_gsync_gather(&t->sync, t->opt.v, e))) {
    fprintf(stderr, "kd: rank %d: %s\n", t->rank, e->msg);
    MPI_Abort(t->comm, 1);
  }
  if (root(t)) {
    int is_best = 0;
    if (ev) {
      double v = strcmp(t->cfg.best_metric, "nll") == 0 ? ev->nll : ev->accuracy;
      if (better(t, v)) {
        t->st.best_metric = v;
        t->st.best_step = t->st.step;
        is_best = 1;
      }
    }
    t->st.ranks = t->size;
    t->st.last_ckpt_step = t->st.step;
    t->st.threads = t->threads;
    t->st.steps_per_epoch = t->steps_per_epoch;
    kd_ckpt_meta meta = {t->cfg_items, t->n_cfg_items, t->cfg.data, t->cfg.teacher, t->cfg.activation,
                         t->aux_views, t->hint_k ? 2 : 0, t->params};
    char path[KD_PATH_MAX + 64];
    rc = kd_ckpt_write(t->cfg.out, t->model, &t->opt, &t->st, &meta, path, sizeof path, e);
    char best_name[64] = "";
    if (t->st.best_step >= 0) snprintf(best_name, sizeof best_name, "ckpt-%08lld.h5", (long long)t->st.best_step);
    if (!rc && is_best) rc = kd_ckpt_set_pointer(t->cfg.out, "best", best_name, e);
    if (!rc) {
      /* Never rotate away the best checkpoint, nor the one teaching now. */
      const char *slash = strrchr(t->st.teacher_ckpt, '/');
      char stepn[64] = ""; /* --teacher-ckpt step:N must still be there when it is due */
      if (t->cfg.self_distill && strncmp(t->cfg.teacher_ckpt, "step:", 5) == 0)
        snprintf(stepn, sizeof stepn, "ckpt-%08lld.h5", atoll(t->cfg.teacher_ckpt + 5));
      const char *keep[3] = {best_name, slash ? slash + 1 : t->st.teacher_ckpt, stepn};
      rc = kd_ckpt_rotate(t->cfg.out, (int)t->cfg.keep, t->st.step, keep, 3, e);
    }
    if (!rc) {
      kd_progress_clear(&t->progress);
      printf("checkpoint: %s%s\n", path, is_best ? " (best so far)" : "");
      fflush(stdout);
    }
  }
  return kd_agree(t->comm, rc, e);
}

static void eval_row(kd_metrics_row *row, const kd_eval_result *ev) {
  row->has_eval = 1;
  row->eval_accuracy = ev->accuracy;
  row->eval_nll = ev->nll;
  row->eval_ece = ev->ece;
  row->eval_agreement = ev->agreement;
  row->eval_kl = ev->kl;
}

static void print_banner(const trainer *t) {
  const kd_train_cfg *c = &t->cfg;
  if (!root(t)) return;
  printf("kd %s train: %d rank%s x %d OpenBLAS thread%s, student %s %s (%zu parameters)\n", KD_VERSION, t->size,
         t->size > 1 ? "s" : "", t->threads, t->threads > 1 ? "s" : "", t->model->family, t->model->spec,
         t->model->n_params);
  printf("data: %s (/train %lld training rows, %lld per rank or fewer)%s%s", c->data, (long long)t->n_train,
         (long long)((t->n_train + t->size - 1) / t->size),
         c->self_distill ? ", teacher: a snapshot of this run (self-distillation, --teacher-ckpt " : c->teacher[0] ? ", teacher: " : ", no teacher",
         c->self_distill ? c->teacher_ckpt : c->teacher);
  printf("%s\n", c->self_distill ? ")" : "");
  if (t->has_valid || t->has_test)
    printf("evaluation by rank 0 on /%s (%lld rows)\n", t->valid_name,
           (long long)(t->has_valid ? t->valid.n : t->test.n));
  if (t->has_teacher)
    printf("loss: %.3g * CE + %.3g * T^2 * KL at T = %g\n", c->alpha, 1.0 - c->alpha, c->temperature);
  else
    printf("loss: CE on hard labels (no teacher)\n");
  printf("steps: %lld per epoch x %lld epochs, global batch %d, %s lr %g, %s schedule\n", (long long)t->steps_per_epoch,
         (long long)c->epochs, t->B, c->optimizer, c->lr, c->schedule);
  const char *forced = getenv("OPENBLAS_CORETYPE");
  printf("blas: OpenBLAS %s kernels", kd_blas_core());
  if (kd_blas_avx512_unused()) /* worth knowing: its AVX-512 kernels ran sgemm 1.8x faster here */
    printf(" on a CPU with AVX-512 (%s%s)", forced && *forced ? "set by OPENBLAS_CORETYPE=" : "OpenBLAS does not know this CPU",
           forced && *forced ? forced : "");
  printf("\n");
  if (t->size > 1)
    printf("gradients: %d bucket%s, %s, %s\n", t->sync.n_buckets, t->sync.n_buckets > 1 ? "s" : "",
           t->sync.shard ? "reduce-scatter + sharded optimizer + allgather" : "allreduce",
           t->sync.overlap ? "overlapped with the backward pass" : "after the backward pass");
  fflush(stdout);
}

/* Evaluate on the validation split (or /test when there is none): rank 0. */
static int evaluate(trainer *t, kd_eval_result *ev, kd_err *e) {
  const kd_split *s = t->has_valid ? &t->valid : t->has_test ? &t->test : NULL;
  if (!s) return KD_ERR_RUNTIME; /* nothing to evaluate: not an error */
  kd_err ee;
  kd_err_clear(&ee);
  if (kd_eval_model(ev, NULL, t->model, s, t->cfg.temperature, &ee)) {
    kd_fail(e, ee.code, "%s", ee.msg);
    return ee.code;
  }
  return KD_OK;
}

/* ---- self-distillation ---- */

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
  const char *out = t->cfg.snapshot_logits;
  char tmp[KD_PATH_MAX + 32];
  snprintf(tmp, sizeof tmp, "%s.tmp.%d", out, 0);
  hid_t f = H5I_INVALID_HID;
  int rc = KD_OK;
  if (root(t)) {
    f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    rc = f < 0 ? kd_fail(e, KD_ERR_RUNTIME, "--snapshot-logits %s: cannot create %s", out, tmp)
               : kd_logits_create(f, tmp, "/train/logits", t->n_train, t->classes, e);
  }
  if ((rc = kd_agree(t->comm, rc, e))) {
    if (f >= 0) H5Fclose(f);
    return rc;
  }
  rc = kd_logits_gather(t->comm, f, tmp, "/train/logits", t->n_train, t->classes, t->train.logits, e);
  if (root(t)) {
    if (!rc && (kd_h5_attr_str(f, "/", "kd_format", "teacher", e) || kd_h5_attr_i64(f, "/", "format_version", 1, e) ||
                kd_h5_attr_str(f, "/", "kd_version", KD_VERSION, e) ||
                kd_h5_attr_str(f, "/", "source_checkpoint", ckpt, e) ||
                kd_h5_attr_str(f, "/", "source_data", t->cfg.data, e) ||
                kd_h5_attr_i64(f, "/", "rows_train", t->n_train, e)))
      rc = e->code;
    if (H5Fclose(f) < 0 && !rc) rc = kd_fail(e, KD_ERR_RUNTIME, "%s: closing failed", tmp);
    if (!rc && rename(tmp, out) != 0) rc = kd_fail(e, KD_ERR_RUNTIME, "%s: rename failed (%s)", tmp, strerror(errno));
    if (rc) unlink(tmp);
  }
  return kd_agree(t->comm, rc, e);
}

/* Collective: load the teaching checkpoint (rank 0 reads, all receive its
 * parameters) and compute its logits for this rank's rows (and rank 0's
 * validation rows), in inference mode. keep_current: reload
 * st.teacher_ckpt (resume). */
static int refresh_snapshot(trainer *t, int keep_current, kd_err *e) {
  char path[2 * sizeof t->st.teacher_ckpt + 8] = "";
  if (root(t)) {
    if (keep_current && !strchr(t->st.teacher_ckpt, '/'))
      snprintf(path, sizeof path, "%s/%s", t->cfg.out, t->st.teacher_ckpt);
    else if (keep_current)
      snprintf(path, sizeof path, "%s", t->st.teacher_ckpt);
    else if (!snapshot_path(t, path, sizeof path)) path[0] = '\0';
  }
  if (kd_mpi_check(MPI_Bcast(path, (int)sizeof path, MPI_CHAR, 0, t->comm), "MPI_Bcast", e)) return e->code;
  if (!path[0]) {
    if (root(t) && !t->snap_announced)
      printf("self-distillation: no checkpoint yet: hard labels only (unlabelled rows weigh 0) until the first one\n");
    t->snap_announced = 1;
    return KD_OK;
  }
  const char *cur = t->st.teacher_ckpt, *pb = strrchr(path, '/');
  if (t->snap_active && !keep_current && (strcmp(path, cur) == 0 || (!strchr(cur, '/') && pb && strcmp(pb + 1, cur) == 0)))
    return KD_OK;
  int rc = KD_OK;
  if (!t->snap) {
    kd_model_spec ms;
    memset(&ms, 0, sizeof ms);
    snprintf(ms.family, sizeof ms.family, "%s", t->model->family);
    snprintf(ms.sizes, sizeof ms.sizes, "%s", t->model->spec);
    snprintf(ms.activation, sizeof ms.activation, "%s", t->cfg.activation);
    rc = kd_model_create(&t->snap, &ms, t->model->max_batch, e);
    if (!rc) {
      t->snap_params = kd_malloc(t->snap->n_params * sizeof(float), "snapshot parameters", e);
      rc = t->snap_params ? KD_OK : e->code;
      if (!rc) kd_model_bind(t->snap, t->snap_params, NULL);
    }
  }
  if ((rc = kd_agree(t->comm, rc, e))) return rc;
  if (root(t) && access(path, F_OK) != 0)
    rc = kd_fail(e, KD_ERR_RUNTIME,
                 "--teacher-ckpt %s: %s does not exist (this run writes checkpoints every --ckpt-every steps and at "
                 "epoch ends; a rotated-away one cannot teach)", t->cfg.teacher_ckpt, path);
  if (!rc && root(t)) rc = kd_ckpt_verify(path, e);
  if (!rc) rc = root(t) ? kd_ckpt_read(path, t->snap, NULL, NULL, e) : KD_OK;
  if ((rc = kd_agree(t->comm, rc, e))) return rc;
  if ((rc = bcast_floats(t->snap_params, t->snap->n_params, 0, t->comm, e))) return rc;
  kd_split rows = t->train;
  rows.logits = NULL;
  kd_eval_result r;
  rc = kd_eval_model(&r, t->train.logits, t->snap, &rows, 1.0, e);
  if (!rc && root(t) && t->has_valid) {
    if (!t->valid.logits) {
      t->valid.logits = kd_malloc(sizeof(float) * (size_t)t->valid.n * t->classes, "snapshot validation logits", e);
      t->valid.classes = t->classes;
    }
    kd_split v = t->valid;
    v.logits = NULL;
    rc = t->valid.logits ? kd_eval_model(&r, t->valid.logits, t->snap, &v, 1.0, e) : e->code;
  }
  if ((rc = kd_agree(t->comm, rc, e))) return rc;
  /* Stored relative to the run directory when it lives there, so a resume
   * from another working directory finds it. */
  size_t ol = strlen(t->cfg.out);
  const char *rel = strncmp(path, t->cfg.out, ol) == 0 && path[ol] == '/' && !strchr(path + ol + 1, '/') ? path + ol + 1 : path;
  snprintf(t->st.teacher_ckpt, sizeof t->st.teacher_ckpt, "%s", rel);
  t->snap_active = t->teacher_live = 1;
  if (root(t)) {
    kd_progress_clear(&t->progress);
    printf("self-distillation: the teacher is now %s\n", path);
    fflush(stdout);
  }
  if (t->cfg.snapshot_logits[0]) return write_snapshot_logits(t, path, e);
  return KD_OK;
}

/* ---- the loop ---- */

/* Seconds per phase of the training step: each mark charges the time since
 * the previous mark to phase k. */
typedef struct phase_clock {
  double s[KD_PHASES];
  double last;
  int on;
} phase_clock;

static void phase_mark(phase_clock *c, int k) {
  const double now = MPI_Wtime();
  if (c->on) c->s[k] += now - c->last;
  c->last = now;
}

static int run_loop(trainer *t, kd_train_result *res, kd_err *e) {
  const kd_train_cfg *cfg = &t->cfg;
  const MPI_Comm comm = t->comm;
  const size_t np = t->n_total; /* student + hint regressor: one gradient buffer */
  const size_t nm = t->model->n_params;
  const int C = t->model->out_dim;
  const kd_loss_cfg lcfg = {(float)cfg->alpha, (float)cfg->temperature};
  const kd_sched_kind sk = strcmp(cfg->schedule, "cosine") == 0 ? KD_SCHED_COSINE : KD_SCHED_CONST;
  const double t_start = MPI_Wtime();
  double t_first = 0, log_t0 = t_start;
  double t_side = 0, ep_side = 0; /* seconds in evaluation and checkpoints: not training throughput */
  phase_clock clock = {{0}, 0, 0}; /* where the time of a step goes (this rank) */
  double *log_s = t->st.log_sums, *ep_s = t->st.epoch_sums;
  const int64_t step0 = t->st.step;
  double ep_done[KD_CKPT_SUMS];
  int stop = 0, rc = KD_OK;

  while (t->st.epoch < cfg->epochs && t->st.step < t->end_step && !stop) {
    const int64_t epoch = t->st.epoch;
    const double ep_t0 = MPI_Wtime();
    int64_t ep_steps = 0;
    kd_permutation(t->perm, t->train.n, kd_key((uint64_t)cfg->seed, KD_RNG_SHUFFLE, (uint64_t)epoch, (uint64_t)t->rank));
    /* Self-distillation: the teacher may change only at an epoch start. */
    if (cfg->self_distill && t->st.step_in_epoch == 0 &&
        (!t->snap_active || (cfg->refresh_every > 0 && epoch > 0 && epoch % cfg->refresh_every == 0)) &&
        (rc = refresh_snapshot(t, 0, e)))
      return rc;
    for (int64_t s = t->st.step_in_epoch; s < t->steps_per_epoch && t->st.step < t->end_step; s++) {
      const int b = t->b_local;
      const int64_t step = t->st.step;
      clock.on = step > step0; /* the first step (warm-up) is excluded, like from samples/s */
      clock.last = MPI_Wtime();
      kd_split_gather(&t->train, t->perm + s * b, b, t->xb, t->yb, t->teacher_live ? t->tb : NULL,
                      t->hint_k ? t->fb : NULL, t->rows);
      const int stage1 = t->hint_k && epoch < cfg->hint_epochs; /* FitNets stage 1: hints alone */
      kd_fwd fwd = {1, kd_key((uint64_t)cfg->seed, KD_RNG_DROPOUT, (uint64_t)step, 0), t->rows};
      phase_mark(&clock, KD_PH_GATHER);
      rc = kd_model_forward(t->model, t->logits, t->xb, b, &fwd, e);
      phase_mark(&clock, KD_PH_FORWARD);
      memset(t->grads, 0, (np + ST_COUNT) * sizeof(float));
      kd_loss_sums ls = {0, 0, 0, 0, 0, 0};
      kd_targets tg = {t->yb, t->teacher_live ? t->tb : NULL};
      kd_loss_forward_backward(stage1 ? NULL : t->dlogits, &ls, t->logits, &tg, b, C, &lcfg, 1.0f / (float)t->B);
      double hint_rows = 0.0; /* sum over rows of BETA * 0.5 * ||W h_s + b - h_t||^2 / Ht */
      if (t->hint_k && !rc) {
        const float *hs = t->model->ops->hidden(t->model, t->hint_k, NULL);
        const float beta = (float)cfg->hint_weight;
        const size_t wsz = (size_t)t->hint_ht * t->hint_hs;
        hint_rows = beta / t->hint_ht *
                    kd_hint_forward_backward(t->hdh, t->grads + nm, t->grads + nm + wsz, t->hpred, hs, t->fb,
                                             t->params + nm, t->params + nm + wsz, b, t->hint_hs, t->hint_ht,
                                             beta / ((float)t->B * t->hint_ht));
      }
      phase_mark(&clock, KD_PH_LOSS);
      kd_gsync_begin(&t->sync);
      if (!rc)
        rc = kd_model_backward_hint(t->model, stage1 ? NULL : t->dlogits, b, t->hint_k, t->hint_k ? t->hdh : NULL, e);
      if (stage1) ls.loss = 0.0; /* stage 1 optimises the hint loss alone */
      ls.loss += hint_rows;
      float *st = t->grads + np;
      st[ST_LOSS] = (float)ls.loss;
      st[ST_CE] = (float)ls.ce;
      st[ST_KD] = (float)ls.kd;
      st[ST_CORRECT] = (float)ls.correct;
      st[ST_LABELLED] = (float)ls.labelled;
      st[ST_ROWS] = (float)ls.rows;
      st[ST_HINT] = (float)hint_rows;
      st[ST_NONFINITE] = isfinite(ls.loss) ? 0.0f : 1.0f;
      st[ST_ERROR] = rc ? 1.0f : 0.0f;
      st[ST_STOP] = g_stop_signal ? 1.0f : 0.0f;
      phase_mark(&clock, KD_PH_BACKWARD);
      if (s + 1 < t->steps_per_epoch) kd_split_prefetch(&t->train, t->perm + (s + 1) * b, b);
      phase_mark(&clock, KD_PH_GATHER);
      /* Gradients and this step's statistics are summed together; the model
       * buckets may already be under way (--overlap). A failed MPI call
       * cannot be agreed on: abort with the rank's message. */
      double sumsq = 0.0;
      if (kd_gsync_finish(&t->sync, e)) {
        fprintf(stderr, "kd: rank %d: %s\n", t->rank, e->msg);
        MPI_Abort(comm, 1);
      }
      phase_mark(&clock, KD_PH_ALLREDUCE);
      if (st[ST_ERROR] > 0) return kd_agree(comm, rc, e);
      if (kd_gsync_sumsq(&t->sync, &sumsq, e)) { /* the gradient norm, counted with the update */
        fprintf(stderr, "kd: rank %d: %s\n", t->rank, e->msg);
        MPI_Abort(comm, 1);
      }
      if (np > nm) sumsq += kd_sumsq(t->grads + nm, np - nm); /* the replicated regressor */
      const double norm = sqrt(sumsq);
      /* Every rank sees the same reduced values, so all decide alike. */
      const int nonfinite = st[ST_NONFINITE] > 0 || !isfinite(norm);
      if (nonfinite && strcmp(cfg->on_nonfinite, "skip") != 0)
        return kd_fail(e, KD_ERR_RUNTIME,
                       "step %lld (epoch %lld): the %s is not finite; stopping (lower --lr, set --clip, or "
                       "--on-nonfinite skip); the last checkpoint is untouched",
                       (long long)step + 1, (long long)epoch + 1, st[ST_NONFINITE] > 0 ? "loss" : "gradient");
      float lr = kd_lr_at(sk, (float)cfg->lr, step, t->total_steps, cfg->warmup);
      if (nonfinite) { /* --on-nonfinite skip: drop this update on every rank */
        t->st.skipped++;
        if (root(t)) {
          kd_progress_clear(&t->progress);
          printf("step %lld (epoch %lld): non-finite %s, update skipped (%lld skipped so far)\n", (long long)step + 1,
                 (long long)epoch + 1, st[ST_NONFINITE] > 0 ? "loss" : "gradient", (long long)t->st.skipped);
        }
      } else {
        /* Clipping is folded into the update's one pass over memory. */
        const float gs = kd_clip_scale(norm, cfg->clip);
        if (stage1)
          kd_optim_update(&t->opt, t->params, t->grads, lr, gs, t->stage1_views, t->n_stage1_views, t->upd, t->n_upd);
        else
          kd_optim_update(&t->opt, t->params, t->grads, lr, gs, t->all_views, t->n_all_views, t->upd, t->n_upd);
        phase_mark(&clock, KD_PH_UPDATE);
        if (kd_gsync_gather(&t->sync, t->params, e)) { /* sharded: every rank's slices to every rank */
          fprintf(stderr, "kd: rank %d: %s\n", t->rank, e->msg);
          MPI_Abort(comm, 1);
        }
        phase_mark(&clock, KD_PH_ALLREDUCE);
        for (int k = 0; k < ST_STOP; k++) {
          log_s[k] += st[k];
          ep_s[k] += st[k];
        }
      }
      t->st.step++;
      t->st.log_steps++;
      ep_steps++;
      stop = st[ST_STOP] > 0;
      const int epoch_end = (s == t->steps_per_epoch - 1);
      t->st.step_in_epoch = epoch_end ? 0 : s + 1;
      t->st.epoch = epoch_end ? epoch + 1 : epoch;

      const int64_t now_step = t->st.step;
      /* Scheduled checkpoints are evaluated (to rank them); the extra ones of
       * a stop (signal, --max-steps) are not, so an interrupted run logs
       * exactly what an uninterrupted one does. */
      const int sched_ckpt = (cfg->ckpt_every > 0 && now_step % cfg->ckpt_every == 0) ||
                             (epoch_end && cfg->ckpt_epochs > 0 && (epoch + 1) % cfg->ckpt_epochs == 0) ||
                             now_step == t->total_steps;
      const int ckpt_due = sched_ckpt || now_step == t->end_step || stop;
      const int eval_due = sched_ckpt || (cfg->eval_every > 0 && now_step % cfg->eval_every == 0);
      const int log_due = now_step % cfg->log_every == 0;
      double now = MPI_Wtime();
      const double side0 = now;
      if (now_step == step0 + 1) {
        t_first = now;
        t_side = 0;
      }
      kd_eval_result ev;
      int have_ev = 0;
      if (root(t)) {
        double sps = now_step > step0 + 1 ? (double)(now_step - step0 - 1) * t->B / (now - t_first - t_side) : 0;
        kd_progress_update(&t->progress, now, epoch + 1, cfg->epochs, s + 1, t->steps_per_epoch,
                           ep_s[ST_LOSS] / ep_s[ST_ROWS], sps, sps > 0 ? (t->end_step - now_step) * t->B / sps : -1);
        if (eval_due && evaluate(t, &ev, e) == KD_OK) have_ev = 1;
        if (e->code) { /* evaluation failed on rank 0: a real error */
          fprintf(stderr, "kd: rank 0: %s\n", e->msg);
          MPI_Abort(comm, 1);
        }
        if (have_ev && !ckpt_due) {
          kd_progress_clear(&t->progress);
          kd_eval_print(stdout, "eval", &ev);
        }
        if (log_due || have_ev) {
          kd_metrics_row row;
          memset(&row, 0, sizeof row);
          row.step = now_step;
          row.epoch = epoch + 1;
          if (log_due) {
            row.has_train = 1;
            row.loss = log_s[ST_LOSS] / log_s[ST_ROWS];
            row.has_ce = log_s[ST_LABELLED] > 0;
            row.ce = row.has_ce ? log_s[ST_CE] / log_s[ST_LABELLED] : 0;
            row.has_kd = t->teacher_live;
            row.has_hint = t->hint_k > 0;
            row.hint = log_s[ST_HINT] / log_s[ST_ROWS];
            row.kd = log_s[ST_KD] / log_s[ST_ROWS];
            row.acc = log_s[ST_LABELLED] > 0 ? log_s[ST_CORRECT] / log_s[ST_LABELLED] : NAN;
            row.lr = lr;
            row.grad_norm = norm;
            row.samples_per_s = (double)t->st.log_steps * t->B / (now - log_t0);
            row.elapsed_s = now - t_start;
          }
          if (have_ev) eval_row(&row, &ev);
          if (kd_metrics_write(&t->metrics, &row, e)) {
            fprintf(stderr, "kd: rank 0: %s\n", e->msg);
            MPI_Abort(comm, 1);
          }
        }
      }
      if (log_due) { /* every rank keeps the same accumulators (checkpoints) */
        memset(log_s, 0, sizeof t->st.log_sums);
        t->st.log_steps = 0;
        log_t0 = now;
      }
      if (epoch_end) {
        /* The next epoch starts from zero sums (and so do checkpoints). */
        memcpy(ep_done, ep_s, sizeof ep_done);
        memset(ep_s, 0, sizeof t->st.epoch_sums);
        res->final_loss = ep_done[ST_LOSS] / ep_done[ST_ROWS];
        res->train_accuracy = ep_done[ST_LABELLED] > 0 ? ep_done[ST_CORRECT] / ep_done[ST_LABELLED] : NAN;
        if (root(t)) {
          kd_progress_clear(&t->progress);
          char eta[32], elapsed[32];
          double sps = (double)ep_steps * t->B / (now - ep_t0 - ep_side);
          kd_format_duration(eta, sizeof eta, sps > 0 ? (t->end_step - now_step) * t->B / sps : 0);
          kd_format_duration(elapsed, sizeof elapsed, now - t_start);
          printf("epoch %lld/%lld  loss %.4f", (long long)epoch + 1, (long long)cfg->epochs, res->final_loss);
          if (t->has_teacher)
            printf(" (ce %.4f, kd %.4f)", ep_done[ST_LABELLED] > 0 ? ep_done[ST_CE] / ep_done[ST_LABELLED] : 0,
                   ep_done[ST_KD] / ep_done[ST_ROWS]);
          if (t->hint_k)
            printf(" (hint %.4f%s)", ep_done[ST_HINT] / ep_done[ST_ROWS], epoch < cfg->hint_epochs ? ", stage 1: hints alone" : "");
          printf("  train acc %.4f  %.0f samples/s  elapsed %s  ETA %s\n", res->train_accuracy, sps, elapsed, eta);
          fflush(stdout);
        }
      } else if (now_step == t->end_step || stop) {
        res->final_loss = ep_s[ST_LOSS] / ep_s[ST_ROWS];
        res->train_accuracy = ep_s[ST_LABELLED] > 0 ? ep_s[ST_CORRECT] / ep_s[ST_LABELLED] : NAN;
      }
      if (ckpt_due) {
        if ((rc = checkpoint(t, have_ev ? &ev : NULL, e))) return rc;
        if (have_ev && root(t)) kd_eval_print(stdout, "eval", &ev);
      }
      const double side = MPI_Wtime() - side0;
      t_side += side;
      ep_side += side;
      if (epoch_end) ep_side = 0;
      if (stop) break;
    }
    const double chk0 = MPI_Wtime(); /* like evaluation, not part of the training rate */
    if ((rc = check_replicas(t, e))) return rc;
    t_side += MPI_Wtime() - chk0;
  }
  res->steps = t->st.step;
  res->steps_run = t->st.step - step0;
  res->completed = t->st.step >= t->total_steps;
  /* Training throughput: time spent in evaluations and checkpoints excluded. */
  const double train_time = MPI_Wtime() - t_first - t_side;
  res->samples_per_s = t->st.step > step0 + 1 ? (double)(t->st.step - step0 - 1) * t->B / train_time : 0;
  const int64_t timed_steps = t->st.step - step0 - 1;
  res->allreduce_share = timed_steps > 0 && train_time > 0 ? clock.s[KD_PH_ALLREDUCE] / train_time : 0;
  if (timed_steps > 0) {
    double rest = train_time;
    for (int k = 0; k < KD_PHASES; k++) {
      res->step_ms[k] = 1e3 * clock.s[k] / (double)timed_steps;
      rest -= clock.s[k];
    }
    res->step_ms[KD_PHASES] = 1e3 * rest / (double)timed_steps;
  }
  if (stop) {
    char dir[KD_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", cfg->out);
    return kd_fail(e, KD_STOPPED,
                   "stopped by signal %d after step %lld; checkpoint written; continue with: kd train --resume %s",
                   (int)g_stop_signal, (long long)t->st.step, dir);
  }
  return KD_OK;
}

static int run_one(const kd_train_cfg *cli, MPI_Comm comm, kd_train_result *res, kd_train_cfg *eff, kd_err *e) {
  trainer *t = calloc(1, sizeof *t);
  if (!t) return kd_fail(e, KD_ERR_RUNTIME, "out of memory (trainer)");
  memset(res, 0, sizeof *res);
  res->test_accuracy = res->test_agreement = -1;
  t->comm = comm;
  MPI_Comm_rank(comm, &t->rank);
  MPI_Comm_size(comm, &t->size);
  t->st.best_metric = NAN;
  t->st.best_step = -1;
  t->st.last_ckpt_step = -1;
  kd_h5_quiet();
  int rc = KD_OK;

  /* Validation point 1: options (identical on every rank), resume, --out. */
  t->cfg = *cli;
  if (cli->resume[0]) {
    if ((rc = find_resume_checkpoint(t, cli->resume, e))) goto out;
    if (!rc) rc = kd_ckpt_read_config(t->resume_path, &t->cfg_items, &t->n_cfg_items, e);
    if (!rc) rc = merge_resume_config(t, cli, e);
    if ((rc = kd_agree(comm, rc, e))) goto out;
  }
  rc = check_setup(t, e);
  if (!rc) rc = prepare_out_dir(t, e);
  if ((rc = kd_agree(comm, rc, e))) goto out;

  t->threads = t->cfg.threads > 0 ? (int)t->cfg.threads : kd_default_threads(comm);
  kd_blas_set_threads(t->threads);

  /* Validation point 2: data shapes and values, each rank its own rows. */
  rc = load_data(t, e);
  if ((rc = kd_agree(comm, rc, e))) goto out;
  if ((rc = fingerprint(t, e))) goto out;

  /* Every rank runs the same number of steps: the fewest any rank can fill. */
  int64_t mine = t->train.n / t->b_local;
  if ((rc = kd_mpi_check(MPI_Allreduce(&mine, &t->steps_per_epoch, 1, MPI_INT64_T, MPI_MIN, comm), "MPI_Allreduce", e)))
    goto out;
  if (t->steps_per_epoch < 1) {
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: /train has %lld training rows, too few for one global batch of %d on %d ranks; lower --batch",
                 t->cfg.data, (long long)t->n_train, t->B, t->size);
    goto out;
  }
  t->total_steps = t->steps_per_epoch * t->cfg.epochs;
  t->end_step = t->cfg.max_steps > 0 && t->cfg.max_steps < t->total_steps ? t->cfg.max_steps : t->total_steps;

  rc = kd_single_node(comm, &t->single_node, e); /* collective: before anything may fail alone */
  if (!rc) rc = alloc_buffers(t, e);
  kd_optim_cfg ocfg = {strcmp(t->cfg.optimizer, "adamw") == 0 ? KD_OPT_ADAMW : KD_OPT_SGD, (float)t->cfg.momentum,
                       t->cfg.nesterov, (float)t->cfg.beta1, (float)t->cfg.beta2, (float)t->cfg.eps,
                       (float)t->cfg.weight_decay};
  if (!rc) rc = kd_optim_init(&t->opt, &ocfg, t->n_total, e);
  if (!rc) rc = config_items(t, e);
  if ((rc = kd_agree(comm, rc, e))) goto out;

  /* Parameters: from the checkpoint (resume, --init) or initialised on rank
   * 0; then broadcast so replicas start bitwise equal. */
  kd_run_state saved;
  memset(&saved, 0, sizeof saved);
  char init_path[KD_PATH_MAX] = "";
  if (root(t)) {
    if (t->cfg.resume[0]) {
      /* The regressor first: its shapes name a feature-width mismatch best. */
      if (t->hint_k) rc = kd_ckpt_read_aux(t->resume_path, t->aux_views, 2, t->params, e);
      if (!rc) rc = kd_ckpt_read(t->resume_path, t->model, &t->opt, &saved, e);
    } else if (t->cfg.init_from[0]) {
      rc = kd_ckpt_resolve(t->cfg.init_from, 0, init_path, sizeof init_path, NULL, 0, e);
      if (!rc) rc = kd_ckpt_read(init_path, t->model, NULL, NULL, e);
      if (!rc) printf("kd: initial weights from %s\n", init_path);
    } else {
      t->model->ops->init_params(t->model, (uint64_t)t->cfg.seed);
    }
    if (!rc && t->hint_k) {
      if (!t->cfg.resume[0]) { /* Xavier-normal regressor, zero bias */
        const double sd = sqrt(2.0 / (t->hint_hs + t->hint_ht));
        const uint64_t key = kd_key((uint64_t)t->cfg.seed, KD_RNG_INIT, 1000, 0);
        for (size_t i = 0; i < (size_t)t->hint_ht * t->hint_hs; i++)
          t->params[t->model->n_params + i] = (float)(sd * kd_normal(key, i));
        memset(t->params + t->aux_views[1].offset, 0, sizeof(float) * (size_t)t->hint_ht);
      }
    }
  }
  if ((rc = kd_agree(comm, rc, e))) goto out;
  if ((rc = bcast_floats(t->params, t->n_total, 0, comm, e))) goto out;
  if (t->cfg.resume[0]) {
    if ((rc = bcast_floats(t->opt.m, t->opt.n, 0, comm, e))) goto out;
    if (t->opt.v && (rc = bcast_floats(t->opt.v, t->opt.n, 0, comm, e))) goto out;
    if ((rc = kd_mpi_check(MPI_Bcast(&t->opt.t, 1, MPI_INT64_T, 0, comm), "MPI_Bcast", e))) goto out;
    if ((rc = kd_mpi_check(MPI_Bcast(&saved, (int)sizeof saved, MPI_BYTE, 0, comm), "MPI_Bcast", e))) goto out;
    if (saved.data_fp != t->st.data_fp)
      rc = kd_fail(e, KD_ERR_RUNTIME, "%s: /train rows differ from the data the checkpoint %s was trained on "
                   "(fingerprint %016llx, checkpoint %016llx)", t->cfg.data, t->resume_path,
                   (unsigned long long)t->st.data_fp, (unsigned long long)saved.data_fp);
    else if (saved.teacher_fp != t->st.teacher_fp)
      rc = kd_fail(e, KD_ERR_RUNTIME, "%s: teacher logits differ from those the checkpoint %s was trained on",
                   t->cfg.teacher[0] ? t->cfg.teacher : "(no teacher)", t->resume_path);
    if (rc) goto out;
    uint64_t fp[2] = {t->st.data_fp, t->st.teacher_fp};
    t->st = saved;
    t->st.data_fp = fp[0];
    t->st.teacher_fp = fp[1];
    if (saved.ranks != t->size || saved.steps_per_epoch != t->steps_per_epoch) {
      /* Reshard: same epoch, same samples seen inside it. */
      if (t->st.step_in_epoch >= t->steps_per_epoch) {
        t->st.epoch++;
        t->st.step_in_epoch = 0;
      }
      if (root(t))
        printf("kd: resume: %lld ranks now, %lld in the checkpoint: rows resharded, continuing at epoch %lld step "
               "%lld of %lld (not bitwise identical to an uninterrupted run)\n",
               (long long)t->size, (long long)saved.ranks, (long long)t->st.epoch + 1,
               (long long)t->st.step_in_epoch, (long long)t->steps_per_epoch);
    } else if (saved.threads != t->threads && root(t)) {
      printf("kd: resume: %d OpenBLAS threads now, %lld in the checkpoint: the run will not be bitwise identical\n",
             t->threads, (long long)saved.threads);
    }
  }

  if (t->cfg.self_distill && t->st.teacher_ckpt[0] && (rc = refresh_snapshot(t, 1, e))) goto out;
  if (root(t)) {
    rc = t->cfg.resume[0] ? kd_metrics_open_resume(&t->metrics, t->cfg.out, t->st.step, e)
                          : kd_metrics_open(&t->metrics, t->cfg.out, e);
  }
  if ((rc = kd_agree(comm, rc, e))) goto out;

  print_banner(t);
  if (root(t) && t->cfg.resume[0])
    printf("kd: resume at step %lld (epoch %lld, step %lld of %lld)\n", (long long)t->st.step,
           (long long)t->st.epoch + 1, (long long)t->st.step_in_epoch, (long long)t->steps_per_epoch);
  kd_progress_init(&t->progress, t->cfg.progress);

  rc = run_loop(t, res, e);
  if (rc) goto out;

  /* End of run: rank 0 reports, writes the deployable weights. */
  if (root(t)) {
    kd_eval_result ev;
    if (t->has_valid && kd_eval_model(&ev, NULL, t->model, &t->valid, t->cfg.temperature, e) == KD_OK)
      kd_eval_print(stdout, "valid", &ev);
    if (!e->code && t->has_test && kd_eval_model(&ev, NULL, t->model, &t->test, t->cfg.temperature, e) == KD_OK) {
      kd_eval_print(stdout, "test", &ev);
      res->test_accuracy = ev.accuracy;
      res->test_agreement = isnan(ev.agreement) ? -1 : ev.agreement;
      res->test_rows = ev.n;
    }
    char path[KD_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/final.h5", t->cfg.out);
    if (!e->code) rc = kd_weights_write(path, t->model, t->cfg.activation, e);
    else rc = e->code;
    if (!rc) rc = kd_metrics_close(&t->metrics, e);
  }
  if ((rc = kd_agree(comm, rc, e))) goto out;
  {
    /* Peak resident memory of the largest rank (ru_maxrss is in KiB on Linux). */
    struct rusage ru;
    double mine = getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss / 1024.0 : 0;
    MPI_Allreduce(&mine, &res->peak_rss_mib, 1, MPI_DOUBLE, MPI_MAX, comm);
  }
  if (root(t)) {
    printf("final: steps=%lld", (long long)res->steps);
    if (res->steps_run > 0) printf(" train_loss=%.4f train_acc=%.4f", res->final_loss, res->train_accuracy);
    if (res->test_accuracy >= 0) printf(" test_acc=%.4f", res->test_accuracy);
    if (res->test_agreement >= 0) printf(" test_agreement=%.4f", res->test_agreement);
    if (t->st.skipped) printf(" skipped=%lld", (long long)t->st.skipped);
    printf(" samples_per_s=%.0f", res->samples_per_s);
    if (t->size > 1) printf(" allreduce_share=%.3f", res->allreduce_share);
    printf(" peak_rss_mib=%.0f weights=%s/final.h5\n", res->peak_rss_mib, t->cfg.out);
    if (res->steps_run > 1) { /* where a step's time goes (rank 0) */
      printf("step_ms:");
      for (int k = 0; k < KD_PHASES; k++) printf(" %s=%.3f", kd_phase_names[k], res->step_ms[k]);
      printf(" other=%.3f\n", res->step_ms[KD_PHASES]);
    }
    fflush(stdout);
  }
out:
  if (eff) *eff = t->cfg;
  if (root(t) && t->metrics.csv) {
    kd_err ignore;
    kd_err_clear(&ignore);
    kd_metrics_close(&t->metrics, &ignore);
  }
  free_trainer(t);
  free(t);
  return rc;
}

/* ---- born-again generations ---- */

/* Rank 0: test accuracy of each generation's best checkpoint and of the
 * ensemble of their averaged logits. */
static void generation_table(const char *top, int G, const kd_train_cfg *c) {
  printf("\nborn-again generations (%s, best checkpoint of each, /test):\n", top);
  printf("  %-12s %s\n", "generation", "test accuracy");
  kd_split test;
  kd_err e;
  kd_err_clear(&e);
  int present, dim, cls;
  int64_t n;
  if (kd_split_probe(c->data, NULL, "test", &present, &n, &dim, &cls, &e) || !present ||
      kd_split_load(&test, c->data, NULL, "test", 0, n, &e)) {
    printf("  (no /test split in %s)\n", c->data);
    return;
  }
  float *sum = NULL, *logits = NULL;
  int members = 0, C = 0;
  for (int g = 0; g < G; g++) {
    char spec[KD_PATH_MAX + 32], path[KD_PATH_MAX + 64];
    snprintf(spec, sizeof spec, "%s/gen%d:best", top, g);
    kd_err_clear(&e);
    if (kd_ckpt_resolve(spec, 0, path, sizeof path, NULL, 0, &e)) {
      snprintf(spec, sizeof spec, "%s/gen%d", top, g);
      kd_err_clear(&e);
      if (kd_ckpt_resolve(spec, 0, path, sizeof path, NULL, 0, &e)) continue;
    }
    kd_model *m = NULL;
    float *params = NULL;
    kd_eval_result r;
    if (kd_model_load(&m, &params, path, 1024, &e) == KD_OK) {
      C = m->out_dim;
      if (!sum) {
        sum = calloc((size_t)n * C, sizeof(float));
        logits = malloc(sizeof(float) * (size_t)n * C);
      }
      if (sum && logits && kd_eval_model(&r, logits, m, &test, c->temperature, &e) == KD_OK) {
        printf("  %-12d %.4f\n", g, r.accuracy);
        for (size_t i = 0; i < (size_t)n * C; i++) sum[i] += logits[i];
        members++;
      }
    }
    kd_model_free(m);
    free(params);
  }
  if (members > 1) {
    kd_eval_sums es;
    memset(&es, 0, sizeof es);
    for (size_t i = 0; i < (size_t)n * C; i++) sum[i] /= (float)members;
    kd_eval_accumulate(&es, sum, test.y, NULL, (int)n, C, 1.0);
    kd_eval_result r;
    kd_eval_finish(&r, &es);
    printf("  %-12s %.4f  (averaged logits of %d generations)\n", "ensemble", r.accuracy, members);
  }
  free(sum);
  free(logits);
  kd_split_free(&test);
  fflush(stdout);
}

/* Does dir hold a generations run (gen0/ but no checkpoint of its own)? */
static int is_generations_dir(const char *dir) {
  char p[KD_PATH_MAX + 32];
  struct stat sb;
  snprintf(p, sizeof p, "%s/gen0", dir);
  if (stat(p, &sb) != 0 || !S_ISDIR(sb.st_mode)) return 0;
  snprintf(p, sizeof p, "%s/latest", dir);
  return access(p, F_OK) != 0;
}

static int run_chain(const kd_train_cfg *cli, MPI_Comm comm, kd_train_result *res, kd_err *e);

/* SIGTERM and SIGUSR1 set a flag that the next step's allreduce carries to
 * every rank (see run_loop); installed once for the whole run, generations
 * included, so a signal between two generations is not lost. */
int kd_train_run(const kd_train_cfg *cli, MPI_Comm comm, kd_train_result *res, kd_err *e) {
  struct sigaction sa, old_term, old_usr1;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  g_stop_signal = 0;
  sigaction(SIGTERM, &sa, &old_term);
  sigaction(SIGUSR1, &sa, &old_usr1);
  int rc = run_chain(cli, comm, res, e);
  sigaction(SIGTERM, &old_term, NULL);
  sigaction(SIGUSR1, &old_usr1, NULL);
  return rc;
}

static int run_chain(const kd_train_cfg *cli, MPI_Comm comm, kd_train_result *res, kd_err *e) {
  const int resuming_gens = cli->resume[0] && is_generations_dir(cli->resume);
  if (cli->generations <= 1 && !resuming_gens) return run_one(cli, comm, res, NULL, e);
  int rank;
  MPI_Comm_rank(comm, &rank);
  char top[KD_PATH_MAX - 64];
  kd_train_cfg cfg = *cli, eff;
  int g = 0, rc;
  if (resuming_gens) {
    /* Continue the newest generation that has a checkpoint. */
    if (strlen(cli->resume) >= sizeof top) return kd_fail(e, KD_ERR_USAGE, "--resume %s: path too long", cli->resume);
    memcpy(top, cli->resume, strlen(cli->resume) + 1);
    for (int k = 0; k < 1000; k++) {
      char p[KD_PATH_MAX + 32];
      snprintf(p, sizeof p, "%s/gen%d/latest", top, k);
      if (access(p, F_OK) == 0) g = k;
    }
    snprintf(cfg.resume, sizeof cfg.resume, "%s/gen%d", top, g);
  } else {
    if (strlen(cli->out) >= sizeof top) return kd_fail(e, KD_ERR_USAGE, "--out %s: path too long", cli->out);
    memcpy(top, cli->out, strlen(cli->out) + 1);
    snprintf(cfg.out, sizeof cfg.out, "%s/gen0", top);
    cfg.generation = 0;
  }
  int G = (int)cli->generations;
  for (;;) {
    if (rank == 0) {
      printf("== generation %d%s\n", g, cfg.resume[0] ? " (resumed)" : "");
      fflush(stdout);
    }
    if ((rc = run_one(&cfg, comm, res, &eff, e))) return rc;
    G = (int)eff.generations;
    if (!res->completed) { /* --max-steps ended this generation early: so ends the chain */
      if (rank == 0) printf("kd: generation %d stopped at --max-steps; kd train --resume %s continues the chain\n", g, top);
      return KD_OK;
    }
    if (++g >= G) break;
    /* Generation g: a fresh student (seed + 1) distilled from generation
     * g-1's best checkpoint, held fixed. */
    char spec[KD_PATH_MAX + 32], best[KD_PATH_MAX] = "";
    snprintf(spec, sizeof spec, "%s/gen%d:best", top, g - 1);
    rc = KD_OK;
    if (rank == 0) {
      kd_err ie;
      kd_err_clear(&ie);
      if (kd_ckpt_resolve(spec, 0, best, sizeof best, NULL, 0, &ie)) {
        snprintf(spec, sizeof spec, "%s/gen%d", top, g - 1);
        rc = kd_ckpt_resolve(spec, 0, best, sizeof best, NULL, 0, e);
      }
    }
    if ((rc = kd_agree(comm, rc, e))) return rc;
    MPI_Bcast(best, (int)sizeof best, MPI_CHAR, 0, comm);
    cfg = eff;
    memset(cfg.given, 0, sizeof cfg.given);
    cfg.resume[0] = cfg.init_from[0] = cfg.teacher[0] = cfg.snapshot_logits[0] = '\0';
    snprintf(cfg.out, sizeof cfg.out, "%s/gen%d", top, g);
    snprintf(cfg.teacher_ckpt, sizeof cfg.teacher_ckpt, "%s", best);
    cfg.self_distill = 1;
    cfg.refresh_every = 0;
    cfg.hint_layer = cfg.hint_epochs = 0; /* hints need teacher features: generation 0's teacher file only */
    cfg.generation = g;
    cfg.seed = eff.seed + 1;
    /* A resumed chain may find a generation's directory begun before a crash. */
    cfg.force = cli->force || resuming_gens;
    cfg.max_steps = cli->max_steps;
  }
  if (rank == 0) generation_table(top, G, &eff);
  return KD_OK;
}
