/* kd train: the data-parallel training loop.
 *
 * Data flows one way: shard -> gather batch -> model forward -> loss ->
 * model backward -> one in-place allreduce of (gradients | step statistics)
 * -> clip -> optimizer. Logging and the final evaluation sit beside it. */
#include "kd/train.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kd/data.h"
#include "kd/dist.h"
#include "kd/gemm.h"
#include "kd/h5io.h"
#include "kd/loss.h"
#include "kd/metrics.h"
#include "kd/mlp.h"
#include "kd/optim.h"
#include "kd/rng.h"
#include "kd/weights.h"

/* Step statistics travel at the end of the gradient buffer, so one
 * allreduce per step carries gradients, losses and control flags. */
enum { ST_LOSS, ST_CE, ST_KD, ST_CORRECT, ST_LABELLED, ST_ROWS, ST_NONFINITE, ST_ERROR, ST_COUNT };

typedef struct trainer {
  const kd_train_cfg *cfg;
  MPI_Comm comm;
  int rank, size, threads;
  kd_mlp_cfg mcfg;
  kd_model *model;
  float *params;
  float *grads; /* [n_params + ST_COUNT] */
  kd_optim opt;
  kd_split train, test;
  int has_teacher, has_test, test_has_logits;
  int B, b_local;
  int64_t steps_per_epoch, total_steps;
  float *xb, *tb, *logits, *dlogits;
  int32_t *yb;
  int64_t *rows, *perm;
  kd_metrics metrics;
  kd_progress progress;
} trainer;

static int root(const trainer *t) { return t->rank == 0; }

/* Allreduce (sum) in place, in chunks that fit MPI's int count. */
static int allreduce_sum(float *buf, size_t n, MPI_Comm comm, kd_err *e) {
  const size_t chunk = (size_t)1 << 30;
  for (size_t off = 0; off < n; off += chunk) {
    int cnt = (int)(n - off < chunk ? n - off : chunk);
    if (kd_mpi_check(MPI_Allreduce(MPI_IN_PLACE, buf + off, cnt, MPI_FLOAT, MPI_SUM, comm), "MPI_Allreduce", e))
      return e->code;
  }
  return KD_OK;
}

static int bcast_floats(float *buf, size_t n, int from, MPI_Comm comm, kd_err *e) {
  const size_t chunk = (size_t)1 << 30;
  for (size_t off = 0; off < n; off += chunk) {
    int cnt = (int)(n - off < chunk ? n - off : chunk);
    if (kd_mpi_check(MPI_Bcast(buf + off, cnt, MPI_FLOAT, from, comm), "MPI_Bcast", e)) return e->code;
  }
  return KD_OK;
}

/* Options that the table cannot check alone, and the output directory. */
static int check_setup(trainer *t, kd_err *e) {
  const kd_train_cfg *c = t->cfg;
  if (kd_train_cfg_check(c, e)) return e->code;
  if (kd_mlp_parse_spec(&t->mcfg, c->student, e)) return e->code;
  t->mcfg.act = strcmp(c->activation, "gelu") == 0 ? KD_ACT_GELU : KD_ACT_RELU;
  t->mcfg.dropout = (float)c->dropout;
  t->mcfg.init_xavier = strcmp(c->init, "xavier") == 0;
  if (c->batch < t->size)
    return kd_fail(e, KD_ERR_USAGE, "kd train: --batch %lld is smaller than the %d ranks: every rank needs a row",
                   (long long)c->batch, t->size);
  t->B = (int)c->batch;
  t->b_local = kd_local_batch(t->B, t->size, t->rank);
  t->has_teacher = c->teacher[0] != '\0';
  return KD_OK;
}

static int prepare_out_dir(trainer *t, kd_err *e) {
  const kd_train_cfg *c = t->cfg;
  if (!root(t)) return KD_OK;
  /* mkdir -p */
  char path[KD_PATH_MAX];
  snprintf(path, sizeof path, "%s", c->out);
  for (char *p = path + 1; ; p++) {
    if (*p == '/' || *p == '\0') {
      char ch = *p;
      *p = '\0';
      if (mkdir(path, 0777) != 0 && errno != EEXIST)
        return kd_fail(e, KD_ERR_RUNTIME, "--out %s: cannot create directory %s (%s)", c->out, path,
                       strerror(errno));
      if (!ch) break;
      *p = ch;
    }
  }
  struct stat st;
  if (stat(c->out, &st) != 0 || !S_ISDIR(st.st_mode))
    return kd_fail(e, KD_ERR_RUNTIME, "--out %s: not a directory", c->out);
  char m[KD_PATH_MAX + 32];
  snprintf(m, sizeof m, "%s/metrics.csv", c->out);
  if (access(m, F_OK) == 0 && !c->force)
    return kd_fail(e, KD_ERR_USAGE, "--out %s already holds a run (metrics.csv); pass --force to overwrite it",
                   c->out);
  if (access(c->out, W_OK) != 0)
    return kd_fail(e, KD_ERR_RUNTIME, "--out %s: directory is not writable (%s)", c->out, strerror(errno));
  return KD_OK;
}

/* Shapes of the train split against the student, then this rank's rows. */
static int load_train(trainer *t, kd_err *e) {
  const kd_train_cfg *c = t->cfg;
  int present, dim, classes;
  int64_t n;
  if (kd_split_probe(c->data, c->teacher, "train", &present, &n, &dim, &classes, e)) return e->code;
  const int in = t->mcfg.sizes[0], C = t->mcfg.sizes[t->mcfg.n_sizes - 1];
  if (!present) return kd_fail(e, KD_ERR_RUNTIME, "%s: dataset /train/x is missing", c->data);
  if (dim != in)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: /train/x has %d features per row but --student %s takes %d", c->data,
                   dim, c->student, in);
  if (t->has_teacher && classes != C)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: /train/logits has %d classes but --student %s outputs %d", c->teacher,
                   classes, c->student, C);
  if (n < t->size)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: /train has %lld rows, fewer than the %d ranks", c->data, (long long)n,
                   t->size);
  int64_t lo, hi;
  kd_shard_range(n, t->size, t->rank, &lo, &hi);
  if (kd_split_load(&t->train, c->data, c->teacher, "train", lo, hi, e)) return e->code;
  return kd_split_validate(&t->train, C, t->has_teacher, c->data, c->teacher, e);
}

/* The optional /test split, for the end-of-run report. */
static int load_test(trainer *t, kd_err *e) {
  const kd_train_cfg *c = t->cfg;
  int present, dim, classes;
  int64_t n;
  if (kd_split_probe(c->data, NULL, "test", &present, &n, &dim, &classes, e)) return e->code;
  if (!present) return KD_OK;
  const int in = t->mcfg.sizes[0], C = t->mcfg.sizes[t->mcfg.n_sizes - 1];
  if (dim != in)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: /test/x has %d features per row but --student %s takes %d", c->data,
                   dim, c->student, in);
  const char *teacher = NULL;
  if (t->has_teacher) {
    hid_t f;
    if (kd_h5_open_ro(&f, c->teacher, e)) return e->code;
    if (kd_h5_exists(f, "/test/logits")) teacher = c->teacher;
    H5Fclose(f);
  }
  int64_t lo, hi;
  kd_shard_range(n, t->size, t->rank, &lo, &hi);
  if (kd_split_load(&t->test, c->data, teacher, "test", lo, hi, e)) return e->code;
  if (teacher && t->test.classes != C)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: /test/logits has %d classes but --student %s outputs %d", c->teacher,
                   t->test.classes, c->student, C);
  t->has_test = 1;
  t->test_has_logits = teacher != NULL;
  return kd_split_validate(&t->test, C, 1, c->data, teacher, e);
}

static int alloc_buffers(trainer *t, kd_err *e) {
  const int C = t->model->out_dim, D = t->model->in_dim, b = t->model->max_batch;
  const size_t n = t->model->n_params;
  t->params = kd_malloc(n * sizeof(float), "parameters", e);
  t->grads = kd_malloc((n + ST_COUNT) * sizeof(float), "gradients", e);
  t->xb = kd_malloc((size_t)b * D * sizeof(float), "batch inputs", e);
  t->yb = kd_malloc((size_t)b * sizeof(int32_t), "batch labels", e);
  t->tb = kd_malloc((size_t)b * C * sizeof(float), "batch teacher logits", e);
  t->logits = kd_malloc((size_t)b * C * sizeof(float), "batch logits", e);
  t->dlogits = kd_malloc((size_t)b * C * sizeof(float), "batch logit gradients", e);
  t->rows = kd_malloc((size_t)b * sizeof(int64_t), "batch row ids", e);
  t->perm = kd_malloc((size_t)(t->train.n ? t->train.n : 1) * sizeof(int64_t), "shuffle order", e);
  if (e->code) return e->code;
  kd_model_bind(t->model, t->params, t->grads);
  return KD_OK;
}

static void free_trainer(trainer *t) {
  kd_model_free(t->model);
  kd_optim_free(&t->opt);
  kd_split_free(&t->train);
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
}

/* Replicas must stay bitwise equal: compare a hash of the parameters. */
static int check_replicas(trainer *t, kd_err *e) {
  if (t->size == 1) return KD_OK;
  uint64_t h = 0x9e37u;
  const uint32_t *w = (const uint32_t *)t->params;
  for (size_t i = 0; i < t->model->n_params; i++) h = kd_mix64(h ^ w[i]);
  unsigned long long mine = h, lo = 0, hi = 0;
  if (kd_mpi_check(MPI_Allreduce(&mine, &lo, 1, MPI_UNSIGNED_LONG_LONG, MPI_MIN, t->comm), "MPI_Allreduce", e) ||
      kd_mpi_check(MPI_Allreduce(&mine, &hi, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, t->comm), "MPI_Allreduce", e))
    return e->code;
  if (lo != hi)
    return kd_fail(e, KD_ERR_RUNTIME, "model replicas diverged across ranks (the allreduce gave ranks different sums)");
  return KD_OK;
}

/* Accuracy (and teacher agreement) on this rank's /test rows, summed over ranks. */
static int evaluate_test(trainer *t, kd_train_result *res, kd_err *e) {
  double s[4] = {0, 0, 0, 0}; /* correct, agree, nll, rows */
  const int C = t->model->out_dim, D = t->model->in_dim;
  const int chunk = t->model->max_batch;
  kd_fwd f = {0, 0, NULL};
  for (int64_t r0 = 0; r0 < t->test.n; r0 += chunk) {
    int nb = (int)(t->test.n - r0 < chunk ? t->test.n - r0 : chunk);
    if (kd_model_forward(t->model, t->logits, t->test.x + (size_t)r0 * D, nb, &f, e)) break;
    for (int i = 0; i < nb; i++) {
      const float *z = t->logits + (size_t)i * C;
      int arg = 0;
      double mx = z[0], sum = 0;
      for (int c = 1; c < C; c++) {
        if (z[c] > z[arg]) arg = c;
        if (z[c] > mx) mx = z[c];
      }
      for (int c = 0; c < C; c++) sum += exp(z[c] - mx);
      int y = t->test.y[r0 + i];
      if (y >= 0) {
        s[0] += arg == y;
        s[2] += mx + log(sum) - z[y];
        s[3] += 1;
      }
      if (t->test_has_logits) {
        const float *zt = t->test.logits + (size_t)(r0 + i) * C;
        int ta = 0;
        for (int c = 1; c < C; c++)
          if (zt[c] > zt[ta]) ta = c;
        s[1] += ta == arg;
      }
    }
  }
  if (kd_agree(t->comm, e->code, e)) return e->code;
  if (kd_mpi_check(MPI_Allreduce(MPI_IN_PLACE, s, 4, MPI_DOUBLE, MPI_SUM, t->comm), "MPI_Allreduce", e))
    return e->code;
  int64_t n_all = t->test.n;
  MPI_Allreduce(MPI_IN_PLACE, &n_all, 1, MPI_INT64_T, MPI_SUM, t->comm);
  res->test_rows = n_all;
  res->test_accuracy = s[3] > 0 ? s[0] / s[3] : -1;
  res->test_agreement = t->test_has_logits && n_all ? s[1] / (double)n_all : -1;
  if (root(t)) {
    printf("test: accuracy %.4f  nll %.4f", res->test_accuracy, s[3] > 0 ? s[2] / s[3] : NAN);
    if (t->test_has_logits) printf("  teacher agreement %.4f", res->test_agreement);
    printf("  (%lld rows)\n", (long long)n_all);
  }
  return KD_OK;
}

static void print_banner(const trainer *t) {
  const kd_train_cfg *c = t->cfg;
  if (!root(t)) return;
  printf("kd %s train: %d rank%s x %d OpenBLAS thread%s, student %s %s (%zu parameters)\n", KD_VERSION, t->size,
         t->size > 1 ? "s" : "", t->threads, t->threads > 1 ? "s" : "", t->model->family, t->model->spec,
         t->model->n_params);
  printf("data: %s (/train %lld rows, %lld per rank or fewer)%s%s\n", c->data, (long long)t->train.n_total,
         (long long)((t->train.n_total + t->size - 1) / t->size), t->has_teacher ? ", teacher: " : ", no teacher",
         t->has_teacher ? c->teacher : "");
  if (t->has_teacher)
    printf("loss: %.3g * CE + %.3g * T^2 * KL at T = %g\n", c->alpha, 1.0 - c->alpha, c->temperature);
  else
    printf("loss: CE on hard labels (no teacher)\n");
  printf("steps: %lld per epoch x %lld epochs, global batch %d, %s lr %g, %s schedule\n",
         (long long)t->steps_per_epoch, (long long)c->epochs, t->B, c->optimizer, c->lr, c->schedule);
  fflush(stdout);
}

int kd_train_run(const kd_train_cfg *cfg, MPI_Comm comm, kd_train_result *res, kd_err *e) {
  trainer T;
  memset(&T, 0, sizeof T);
  memset(res, 0, sizeof *res);
  trainer *t = &T;
  t->cfg = cfg;
  t->comm = comm;
  MPI_Comm_rank(comm, &t->rank);
  MPI_Comm_size(comm, &t->size);
  kd_h5_quiet();
  int rc;

  /* Validation point 1: options (identical on every rank) and --out. */
  rc = check_setup(t, e);
  if (!rc) rc = prepare_out_dir(t, e);
  if ((rc = kd_agree(comm, rc, e))) goto out;

  t->threads = cfg->threads > 0 ? (int)cfg->threads : kd_default_threads(comm);
  kd_blas_set_threads(t->threads);

  /* Validation point 2: data shapes and values, each rank its own rows. */
  rc = load_train(t, e);
  if (!rc) rc = load_test(t, e);
  if ((rc = kd_agree(comm, rc, e))) goto out;

  /* Every rank runs the same number of steps: the fewest any rank can fill. */
  int64_t mine = t->train.n / t->b_local;
  MPI_Allreduce(&mine, &t->steps_per_epoch, 1, MPI_INT64_T, MPI_MIN, comm);
  if (t->steps_per_epoch < 1) {
    rc = kd_fail(e, KD_ERR_RUNTIME,
                 "%s: /train has %lld rows, too few for one global batch of %d on %d ranks; lower --batch",
                 cfg->data, (long long)t->train.n_total, t->B, t->size);
    goto out;
  }
  t->total_steps = t->steps_per_epoch * cfg->epochs;

  int max_b = t->b_local > 256 ? t->b_local : 256;
  rc = kd_mlp_create(&t->model, &t->mcfg, max_b, e);
  if (!rc) rc = alloc_buffers(t, e);
  kd_optim_cfg ocfg = {strcmp(cfg->optimizer, "adamw") == 0 ? KD_OPT_ADAMW : KD_OPT_SGD,
                       (float)cfg->momentum, cfg->nesterov, (float)cfg->beta1, (float)cfg->beta2,
                       (float)cfg->eps, (float)cfg->weight_decay};
  if (!rc) rc = kd_optim_init(&t->opt, &ocfg, t->model->n_params, e);
  /* Only a run that passed validation leaves a metrics file behind. */
  if (!rc && root(t)) rc = kd_metrics_open(&t->metrics, cfg->out, e);
  if ((rc = kd_agree(comm, rc, e))) goto out;

  /* Initialise on rank 0 and broadcast, so replicas start bitwise equal. */
  if (root(t)) t->model->ops->init_params(t->model, (uint64_t)cfg->seed);
  if ((rc = bcast_floats(t->params, t->model->n_params, 0, comm, e))) goto out;

  print_banner(t);
  kd_progress_init(&t->progress, cfg->progress);

  const size_t np = t->model->n_params;
  const int C = t->model->out_dim;
  const kd_loss_cfg lcfg = {(float)cfg->alpha, (float)cfg->temperature};
  const kd_sched_kind sk = strcmp(cfg->schedule, "cosine") == 0 ? KD_SCHED_COSINE : KD_SCHED_CONST;
  const double t_start = MPI_Wtime();
  double t_first = 0, log_t0 = t_start;
  double log_s[ST_COUNT] = {0}, ep_s[ST_COUNT] = {0};
  int64_t step = 0, log_steps = 0;
  double last_norm = 0;
  int stop = 0;

  for (int64_t epoch = 0; epoch < cfg->epochs && !stop; epoch++) {
    const double ep_t0 = MPI_Wtime();
    memset(ep_s, 0, sizeof ep_s);
    int64_t ep_steps = 0;
    kd_permutation(t->perm, t->train.n, kd_key((uint64_t)cfg->seed, KD_RNG_SHUFFLE, (uint64_t)epoch, (uint64_t)t->rank));
    for (int64_t s = 0; s < t->steps_per_epoch; s++) {
      if (cfg->max_steps > 0 && step >= cfg->max_steps) { stop = 1; break; }
      const int b = t->b_local;
      kd_split_gather(&t->train, t->perm + s * b, b, t->xb, t->yb, t->has_teacher ? t->tb : NULL, t->rows);
      kd_fwd fwd = {1, kd_key((uint64_t)cfg->seed, KD_RNG_DROPOUT, (uint64_t)step, 0), t->rows};
      rc = kd_model_forward(t->model, t->logits, t->xb, b, &fwd, e);
      memset(t->grads, 0, (np + ST_COUNT) * sizeof(float));
      kd_loss_sums ls = {0, 0, 0, 0, 0, 0};
      kd_targets tg = {t->yb, t->has_teacher ? t->tb : NULL};
      kd_loss_forward_backward(t->dlogits, &ls, t->logits, &tg, b, C, &lcfg, 1.0f / (float)t->B);
      if (!rc) rc = kd_model_backward(t->model, t->dlogits, b, e);
      float *st = t->grads + np;
      st[ST_LOSS] = (float)ls.loss;
      st[ST_CE] = (float)ls.ce;
      st[ST_KD] = (float)ls.kd;
      st[ST_CORRECT] = (float)ls.correct;
      st[ST_LABELLED] = (float)ls.labelled;
      st[ST_ROWS] = (float)ls.rows;
      st[ST_NONFINITE] = isfinite(ls.loss) ? 0.0f : 1.0f;
      st[ST_ERROR] = rc ? 1.0f : 0.0f;
      /* One allreduce: gradients and this step's statistics together. */
      if (t->size > 1 && allreduce_sum(t->grads, np + ST_COUNT, comm, e)) {
        fprintf(stderr, "kd: rank %d: %s\n", t->rank, e->msg);
        MPI_Abort(comm, 1);
      }
      if (st[ST_ERROR] > 0) { rc = kd_agree(comm, rc, e); goto out; }
      double norm = kd_clip_grad(t->grads, np, cfg->clip);
      if (st[ST_NONFINITE] > 0 || !isfinite(norm)) {
        rc = kd_fail(e, KD_ERR_RUNTIME, "step %lld (epoch %lld): the %s is not finite; stopping (lower --lr or set --clip)",
                     (long long)step, (long long)epoch + 1, st[ST_NONFINITE] > 0 ? "loss" : "gradient");
        goto out;
      }
      last_norm = norm;
      float lr = kd_lr_at(sk, (float)cfg->lr, step, t->total_steps, cfg->warmup);
      kd_optim_step(&t->opt, t->params, t->grads, lr, t->model->views, t->model->n_views);
      for (int k = 0; k < ST_COUNT; k++) {
        log_s[k] += st[k];
        ep_s[k] += st[k];
      }
      step++;
      ep_steps++;
      log_steps++;
      double now = MPI_Wtime();
      if (step == 1) t_first = now;
      if (root(t)) {
        double sps = step > 1 ? (double)(step - 1) * t->B / (now - t_first) : 0;
        int64_t left = (cfg->max_steps > 0 && cfg->max_steps < t->total_steps ? cfg->max_steps : t->total_steps) - step;
        kd_progress_update(&t->progress, now, epoch + 1, cfg->epochs, s + 1, t->steps_per_epoch,
                           ep_s[ST_LOSS] / ep_s[ST_ROWS], sps, sps > 0 ? left * t->B / sps : -1);
        if (step % cfg->log_every == 0) {
          kd_metrics_row row = {step, epoch + 1, log_s[ST_LOSS] / log_s[ST_ROWS],
                                log_s[ST_LABELLED] > 0 ? log_s[ST_CE] / log_s[ST_LABELLED] : 0,
                                log_s[ST_KD] / log_s[ST_ROWS],
                                log_s[ST_LABELLED] > 0 ? log_s[ST_CORRECT] / log_s[ST_LABELLED] : 0, lr, norm,
                                (double)log_steps * t->B / (now - log_t0), now - t_start,
                                log_s[ST_LABELLED] > 0, t->has_teacher};
          if (kd_metrics_write(&t->metrics, &row, e)) {
            /* Rank 0 cannot log: tell the others at the next allreduce. */
            fprintf(stderr, "kd: rank 0: %s\n", e->msg);
            MPI_Abort(comm, 1);
          }
          memset(log_s, 0, sizeof log_s);
          log_steps = 0;
          log_t0 = now;
        }
      }
    }
    if ((rc = check_replicas(t, e))) goto out;
    if (root(t) && ep_steps > 0) {
      kd_progress_clear(&t->progress);
      double now = MPI_Wtime(), el = now - t_start;
      double sps = (double)ep_steps * t->B / (now - ep_t0);
      int64_t left = (cfg->max_steps > 0 && cfg->max_steps < t->total_steps ? cfg->max_steps : t->total_steps) - step;
      char eta[32], elapsed[32];
      kd_format_duration(eta, sizeof eta, sps > 0 ? left * t->B / sps : 0);
      kd_format_duration(elapsed, sizeof elapsed, el);
      printf("epoch %lld/%lld  loss %.4f", (long long)epoch + 1, (long long)cfg->epochs, ep_s[ST_LOSS] / ep_s[ST_ROWS]);
      if (t->has_teacher)
        printf(" (ce %.4f, kd %.4f)", ep_s[ST_LABELLED] > 0 ? ep_s[ST_CE] / ep_s[ST_LABELLED] : 0,
               ep_s[ST_KD] / ep_s[ST_ROWS]);
      printf("  train acc %.4f  %.0f samples/s  elapsed %s  ETA %s\n",
             ep_s[ST_LABELLED] > 0 ? ep_s[ST_CORRECT] / ep_s[ST_LABELLED] : 0, sps, elapsed, eta);
      fflush(stdout);
    }
    if (ep_steps > 0) {
      res->final_loss = ep_s[ST_LOSS] / ep_s[ST_ROWS];
      res->train_accuracy = ep_s[ST_LABELLED] > 0 ? ep_s[ST_CORRECT] / ep_s[ST_LABELLED] : 0;
    }
  }
  (void)last_norm;
  res->steps = step;
  res->samples_per_s = step > 1 ? (double)(step - 1) * t->B / (MPI_Wtime() - t_first) : 0;
  res->test_accuracy = -1;
  res->test_agreement = -1;

  if (t->has_test && (rc = evaluate_test(t, res, e))) goto out;

  /* Final weights, by rank 0; every rank learns whether it worked. */
  rc = KD_OK;
  if (root(t)) {
    char path[KD_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/final.h5", cfg->out);
    rc = kd_weights_write(path, t->model, cfg->activation, e);
    if (!rc) rc = kd_metrics_close(&t->metrics, e);
  }
  if ((rc = kd_agree(comm, rc, e))) goto out;
  if (root(t)) {
    printf("final: steps=%lld train_loss=%.4f train_acc=%.4f", (long long)res->steps, res->final_loss,
           res->train_accuracy);
    if (res->test_accuracy >= 0) printf(" test_acc=%.4f", res->test_accuracy);
    if (res->test_agreement >= 0) printf(" test_agreement=%.4f", res->test_agreement);
    printf(" samples_per_s=%.0f weights=%s/final.h5\n", res->samples_per_s, cfg->out);
    fflush(stdout);
  }
out:
  if (root(t) && t->metrics.csv) {
    kd_err ignore;
    kd_err_clear(&ignore);
    kd_metrics_close(&t->metrics, &ignore);
  }
  free_trainer(t);
  return rc;
}
