#define _GNU_SOURCE
#include "kd/ckpt.h"

#include <dirent.h>
#include <errno.h>
#include <hdf5.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt/weights.h"
#include "core/atomic.h"
#include "core/h5io.h"
#include "core/rng.h"
#include "optim/optim.h"

void kd_ckpt_name(char *buf, size_t n, const char *dir, int64_t step) {
  snprintf(buf, n, "%s/ckpt-%08lld.h5", dir, (long long)step);
}

/* Checksum of a checkpoint's tensors: the sum (mod 2^64) over datasets of a
 * hash of (dataset path, float32 words). A sum, so the reader may visit the
 * datasets in any order. */
static uint64_t hash_str(const char *s) {
  uint64_t h = 0x6b64636b7074ULL;
  for (; *s; s++) h = kd_mix64(h ^ (unsigned char)*s);
  return h;
}

static uint64_t hash_tensor(const char *name, const float *v, size_t n) {
  uint64_t h = hash_str(name);
  const uint32_t *w = (const uint32_t *)v;
  for (size_t i = 0; i < n; i++) h = kd_mix64(h ^ w[i]);
  return kd_mix64(h ^ n);
}

/* The run state and the configuration are covered too: a damaged attribute
 * must send a resume to the previous checkpoint, not into a wrong run. */
static uint64_t hash_words(uint64_t h, const void *p, size_t bytes) {
  const unsigned char *c = p;
  for (size_t i = 0; i < bytes; i++) h = kd_mix64(h ^ c[i]);
  return h;
}

static uint64_t state_hash(const kd_run_state *st) {
  int64_t v[] = {st->step, st->epoch, st->step_in_epoch, st->steps_per_epoch, st->ranks, st->threads,
                 st->best_step, st->skipped, st->log_steps, st->last_ckpt_step};
  uint64_t h = hash_words(0x5747u, v, sizeof v);
  h = hash_words(h, &st->best_metric, sizeof st->best_metric);
  h = hash_words(h, st->log_sums, sizeof st->log_sums);
  h = hash_words(h, st->epoch_sums, sizeof st->epoch_sums);
  uint64_t fp[2] = {st->data_fp, st->teacher_fp};
  h = hash_words(h, fp, sizeof fp);
  return hash_words(h, st->teacher_ckpt, strlen(st->teacher_ckpt));
}

static uint64_t config_item_hash(const char *name, const char *value) {
  uint64_t h = hash_str(name);
  return hash_words(kd_mix64(h ^ 0x3d), value, strlen(value));
}

static uint64_t checksum_of(const kd_model *m, const kd_optim *o, const kd_ckpt_meta *meta) {
  uint64_t sum = 0;
  char name[128];
  for (int i = 0; meta && i < meta->n_aux; i++) {
    const kd_param_view *v = &meta->aux_views[i];
    snprintf(name, sizeof name, "/aux/%s", v->name);
    sum += hash_tensor(name, meta->aux_base + v->offset, (size_t)v->rows * v->cols);
  }
  for (int i = 0; i < m->n_views; i++) {
    const kd_param_view *v = &m->views[i];
    snprintf(name, sizeof name, "/model/%s", v->name);
    sum += hash_tensor(name, m->params + v->offset, (size_t)v->rows * v->cols);
  }
  const kd_preprocess *p = meta ? meta->pre : NULL;
  if (p && p->kind != KD_NORM_NONE) {
    sum += hash_tensor("/preprocess/offset", p->offset, (size_t)p->dim);
    sum += hash_tensor("/preprocess/scale", p->scale, (size_t)p->dim);
  }
  if (o && o->m) sum += hash_tensor("/optim/m", o->m, o->n);
  if (o && o->v) sum += hash_tensor("/optim/v", o->v, o->n);
  return sum;
}

static int write_state(hid_t f, const char *p, const kd_run_state *st, kd_err *e) {
  char fp[32];
  hid_t g = H5Gcreate2(f, "/state", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (g < 0) return kd_fail(e, KD_ERR_RUNTIME, "%s: cannot create group /state", p);
  H5Gclose(g);
  if (kd_h5_attr_i64(f, "/state", "step", st->step, e) || kd_h5_attr_i64(f, "/state", "epoch", st->epoch, e) ||
      kd_h5_attr_i64(f, "/state", "step_in_epoch", st->step_in_epoch, e) ||
      kd_h5_attr_i64(f, "/state", "steps_per_epoch", st->steps_per_epoch, e) ||
      kd_h5_attr_i64(f, "/state", "ranks", st->ranks, e) || kd_h5_attr_i64(f, "/state", "threads", st->threads, e) ||
      kd_h5_attr_f64(f, "/state", "best_metric", st->best_metric, e) ||
      kd_h5_attr_i64(f, "/state", "best_step", st->best_step, e) ||
      kd_h5_attr_i64(f, "/state", "skipped", st->skipped, e) ||
      kd_h5_attr_i64(f, "/state", "log_steps", st->log_steps, e) ||
      kd_h5_attr_f64_array(f, "/state", "log_sums", st->log_sums, KD_CKPT_SUMS, e) ||
      kd_h5_attr_f64_array(f, "/state", "epoch_sums", st->epoch_sums, KD_CKPT_SUMS, e) ||
      kd_h5_attr_i64(f, "/state", "last_ckpt_step", st->last_ckpt_step, e) ||
      kd_h5_attr_str(f, "/state", "teacher_ckpt", st->teacher_ckpt, e) ||
      kd_h5_attr_str(f, "/state", "rng", "counter-based (splitmix64) streams keyed on seed, epoch, step and row", e))
    return e->code;
  hid_t d = H5Gcreate2(f, "/data", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (d < 0) return kd_fail(e, KD_ERR_RUNTIME, "%s: cannot create group /data", p);
  H5Gclose(d);
  snprintf(fp, sizeof fp, "%016" PRIx64, st->data_fp);
  if (kd_h5_attr_str(f, "/data", "data_fingerprint", fp, e)) return e->code;
  snprintf(fp, sizeof fp, "%016" PRIx64, st->teacher_fp);
  return kd_h5_attr_str(f, "/data", "teacher_fingerprint", st->teacher_fp ? fp : "", e);
}

/* Test-only fault injection, see ckpt.h. */
static int fault_hook(const char *tmp, int64_t step, kd_err *e) {
  const char *spec = getenv("KD_FAULT_CKPT");
  if (!spec || !*spec) return KD_OK;
  const char *at = getenv("KD_FAULT_CKPT_STEP");
  if (at && *at && strtoll(at, NULL, 10) != step) return KD_OK;
  long long bytes = 0;
  const char *colon = strchr(spec, ':');
  if (colon) bytes = strtoll(colon + 1, NULL, 10);
  if (truncate(tmp, bytes) != 0)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: fault hook could not truncate (%s)", tmp, strerror(errno));
  if (strncmp(spec, "kill", 4) == 0) {
    fprintf(stderr, "kd: KD_FAULT_CKPT: killing rank 0 after %lld bytes of %s\n", bytes, tmp);
    fflush(stderr);
    raise(SIGKILL);
  }
  errno = ENOSPC;
  return kd_fail(e, KD_ERR_RUNTIME, "%s: write failed after %lld bytes (%s; simulated by KD_FAULT_CKPT)", tmp, bytes,
                 strerror(ENOSPC));
}

/* Everything but the checksum: attributes, /model, /aux, /optim, /state, /config. */
static int write_body(hid_t f, const char *tmp, const kd_model *m, const kd_optim *o, const kd_run_state *st,
                      const kd_ckpt_meta *meta, kd_err *e) {
  if (kd_h5_attr_str(f, "/", "kd_format", "checkpoint", e) ||
      kd_h5_attr_i64(f, "/", "format_version", KD_CKPT_FORMAT_VERSION, e) ||
      kd_h5_attr_str(f, "/", "kd_version", KD_VERSION, e) || kd_write_model_attrs(f, tmp, m, e) ||
      kd_h5_attr_i64(f, "/", "step", st->step, e))
    return e->code;
  if (kd_write_views(f, tmp, "/model", m->views, m->n_views, m->params, e)) return e->code;
  if (meta->n_aux && kd_write_views(f, tmp, "/aux", meta->aux_views, meta->n_aux, meta->aux_base, e)) return e->code;
  int64_t n = (int64_t)o->n;
  if (o->m && kd_h5_write_f32(f, tmp, "/optim/m", 1, &n, o->m, e)) return e->code;
  if (o->v && kd_h5_write_f32(f, tmp, "/optim/v", 1, &n, o->v, e)) return e->code;
  if (kd_h5_attr_str(f, "/optim", "kind", o->cfg.kind == KD_OPT_ADAMW ? "adamw" : "sgd", e) ||
      kd_h5_attr_i64(f, "/optim", "t", o->t, e) || write_state(f, tmp, st, e))
    return e->code;
  if (kd_write_run_meta(f, tmp, meta, e)) return e->code;
  if (kd_h5_attr_str(f, "/data", "data_path", meta->data_path, e) ||
      kd_h5_attr_str(f, "/data", "teacher_path", meta->teacher_path ? meta->teacher_path : "", e))
    return e->code;
  return KD_OK;
}

int kd_ckpt_write(const char *dir, const kd_model *m, const kd_optim *o,
                  const kd_run_state *st, const kd_ckpt_meta *meta,
                  char *path_out, size_t path_n, kd_err *e) {
  char path[KD_PATH_MAX], hex[32];
  kd_ckpt_name(path, sizeof path, dir, st->step);
  kd_atomic a;
  hid_t f = H5I_INVALID_HID;
  if (kd_atomic_begin(&a, path, e) || kd_h5_create(&f, a.tmp, e)) return e->code;
  int rc = write_body(f, a.tmp, m, o, st, meta, e);
  /* Written last: a file without them is incomplete. */
  uint64_t sum = checksum_of(m, o, meta) + state_hash(st);
  for (int i = 0; i < meta->n_cfg; i++) sum += config_item_hash(meta->cfg[i].name, meta->cfg[i].value);
  snprintf(hex, sizeof hex, "%016" PRIx64, sum);
  if (!rc && (kd_h5_attr_str(f, "/", "checksum", hex, e) || kd_h5_attr_i64(f, "/", "complete", 1, e))) rc = e->code;
  rc = kd_h5_close(f, a.tmp, rc, e);
  if (!rc) rc = fault_hook(a.tmp, st->step, e);
  if (!rc) rc = kd_atomic_commit(&a, e);
  if (rc) {
    kd_atomic_abort(&a);
    return rc;
  }
  rc = kd_ckpt_set_pointer(dir, "latest", strrchr(path, '/') + 1, e);
  if (path_out) snprintf(path_out, path_n, "%s", path);
  return rc;
}

int kd_ckpt_set_pointer(const char *dir, const char *pointer, const char *target, kd_err *e) {
  char p[KD_PATH_MAX + 64];
  snprintf(p, sizeof p, "%s/%s", dir, pointer);
  kd_atomic a;
  if (kd_atomic_begin(&a, p, e)) return e->code;
  FILE *f = fopen(a.tmp, "w");
  if (!f) return kd_fail(e, KD_ERR_RUNTIME, "%s: cannot create (%s)", a.tmp, strerror(errno));
  int bad = fprintf(f, "%s\n", target) < 0;
  bad |= fflush(f) != 0;
  int err = errno;
  bad |= fclose(f) != 0;
  if (bad) {
    kd_atomic_abort(&a);
    return kd_fail(e, KD_ERR_RUNTIME, "%s: write failed (%s)", a.tmp, strerror(err ? err : errno));
  }
  return kd_atomic_commit(&a, e);
}

/* Steps of the ckpt-*.h5 files in dir, newest first. */
static int list_steps(const char *dir, int64_t **steps, int *n, kd_err *e) {
  *steps = NULL;
  *n = 0;
  DIR *d = opendir(dir);
  if (!d) return kd_fail(e, KD_ERR_RUNTIME, "%s: cannot list the directory (%s)", dir, strerror(errno));
  int cap = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    long long s;
    char tail[8];
    if (sscanf(de->d_name, "ckpt-%lld.%7s", &s, tail) == 2 && strcmp(tail, "h5") == 0) {
      if (*n == cap) {
        cap = cap ? 2 * cap : 16;
        int64_t *grown = realloc(*steps, sizeof(int64_t) * (size_t)cap);
        if (!grown) {
          closedir(d);
          return kd_fail(e, KD_ERR_RUNTIME, "out of memory listing %s", dir);
        }
        *steps = grown;
      }
      (*steps)[(*n)++] = s;
    }
  }
  closedir(d);
  for (int i = 1; i < *n; i++) /* insertion sort, descending */
    for (int j = i; j > 0 && (*steps)[j] > (*steps)[j - 1]; j--) {
      int64_t t = (*steps)[j];
      (*steps)[j] = (*steps)[j - 1];
      (*steps)[j - 1] = t;
    }
  return KD_OK;
}

int kd_ckpt_rotate(const char *dir, int keep, int64_t current_step, const char *const *protect, int n_protect,
                   kd_err *e) {
  int64_t *steps;
  int n;
  if (list_steps(dir, &steps, &n, e)) return e->code;
  /* Names that must stay: the caller's, plus the teacher each kept checkpoint names (so resuming
   * from any kept checkpoint can reload its self-distillation snapshot). */
  char (*teachers)[256] = calloc((size_t)(keep > 0 ? keep : 1), sizeof *teachers);
  int n_teachers = 0, kept = 0, rc = KD_OK;
  for (int i = 0; i < n; i++) {
    char p[4300];
    kd_ckpt_name(p, sizeof p, dir, steps[i]);
    const char *base = strrchr(p, '/') + 1;
    int keepit = 0;
    for (int k = 0; k < n_protect; k++)
      if (protect[k] && strcmp(protect[k], base) == 0) keepit = 1;
    for (int k = 0; k < n_teachers; k++)
      if (strcmp(teachers[k], base) == 0) keepit = 1;
    /* Checkpoints past the current step belong to an abandoned future (a resume from an older
     * one): they go, or a later fallback could pick them. */
    if (steps[i] <= current_step && kept < keep) {
      kept++;
      keepit = 1;
      hid_t f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
      if (f >= 0 && teachers && n_teachers < keep) {
        kd_err ignore;
        kd_err_clear(&ignore);
        char t[4096];
        if (kd_h5_get_attr_str(f, p, "/state", "teacher_ckpt", t, sizeof t, &ignore) == KD_OK && t[0]) {
          const char *tb = strrchr(t, '/') ? strrchr(t, '/') + 1 : t;
          if (strlen(tb) < sizeof teachers[0]) memcpy(teachers[n_teachers++], tb, strlen(tb) + 1);
        }
      }
      if (f >= 0) H5Fclose(f);
      H5Eclear2(H5E_DEFAULT);
    }
    if (!keepit && unlink(p) != 0 && errno != ENOENT)
      rc = kd_fail(e, KD_ERR_RUNTIME, "%s: cannot remove old checkpoint (%s)", p, strerror(errno));
  }
  free(teachers);
  free(steps);
  return rc;
}

/* Verification: hash every dataset under /model and /optim. */
typedef struct verify_ctx {
  hid_t f;
  const char *path;
  const char *group;
  uint64_t sum;
  kd_err *e;
  int rc;
} verify_ctx;

static herr_t verify_visit(hid_t g, const char *name, const H5O_info_t *info, void *data) {
  verify_ctx *c = data;
  if (info->type != H5O_TYPE_DATASET) return 0;
  char full[512];
  snprintf(full, sizeof full, "%s/%s", c->group, name);
  int nd;
  int64_t dims[KD_H5_MAX_DIMS];
  (void)g;
  if ((c->rc = kd_h5_shape(c->f, c->path, full, &nd, dims, c->e))) return 1;
  size_t n = (size_t)kd_h5_count(dims);
  float *buf = kd_malloc(n * sizeof(float), full, c->e);
  if (!buf) {
    c->rc = c->e->code;
    return 1;
  }
  if ((c->rc = kd_h5_read_rows(c->f, c->path, full, 0, dims[0], H5T_NATIVE_FLOAT, buf, c->e))) {
    free(buf);
    return 1;
  }
  c->sum += hash_tensor(full, buf, n);
  free(buf);
  return 0;
}

static int read_state(hid_t f, const char *p, kd_run_state *st, kd_err *e);
typedef struct cfg_sum_ctx { uint64_t sum; } cfg_sum_ctx;
static int add_cfg_hash(const char *name, const char *value, void *ctx) {
  ((cfg_sum_ctx *)ctx)->sum += config_item_hash(name, value);
  return KD_OK;
}

int kd_ckpt_verify(const char *path, kd_err *e) {
  hid_t f;
  if (kd_h5_open_ro(&f, path, e)) return e->code;
  char fmt[64], sum_s[64];
  int64_t complete = 0;
  int rc = kd_h5_get_attr_str(f, path, "/", "kd_format", fmt, sizeof fmt, e);
  if (!rc && strcmp(fmt, "weights") == 0) { /* final.h5: weights only, written atomically */
    H5Fclose(f);
    return KD_OK;
  }
  if (!rc && strcmp(fmt, "checkpoint") != 0)
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: not a kd checkpoint (kd_format is '%s')", path, fmt);
  if (!rc && (H5Aexists_by_name(f, "/", "complete", H5P_DEFAULT) <= 0 ||
              kd_h5_get_attr_i64(f, path, "/", "complete", &complete, e) || complete != 1))
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: incomplete checkpoint (no completion mark)", path);
  if (!rc) rc = kd_h5_get_attr_str(f, path, "/", "checksum", sum_s, sizeof sum_s, e);
  verify_ctx c = {f, path, "/model", 0, e, KD_OK};
  if (!rc) {
    if (H5Ovisit_by_name(f, "/model", H5_INDEX_NAME, H5_ITER_INC, verify_visit, &c, H5P_DEFAULT) < 0 && !c.rc)
      c.rc = kd_fail(e, KD_ERR_RUNTIME, "%s: cannot walk /model (damaged file)", path);
    rc = c.rc;
  }
  if (!rc && kd_h5_exists(f, "/aux")) {
    c.group = "/aux";
    if (H5Ovisit_by_name(f, "/aux", H5_INDEX_NAME, H5_ITER_INC, verify_visit, &c, H5P_DEFAULT) < 0 && !c.rc)
      c.rc = kd_fail(e, KD_ERR_RUNTIME, "%s: cannot walk /aux (damaged file)", path);
    rc = c.rc;
  }
  if (!rc && kd_h5_exists(f, "/preprocess")) {
    c.group = "/preprocess";
    if (H5Ovisit_by_name(f, "/preprocess", H5_INDEX_NAME, H5_ITER_INC, verify_visit, &c, H5P_DEFAULT) < 0 && !c.rc)
      c.rc = kd_fail(e, KD_ERR_RUNTIME, "%s: cannot walk /preprocess (damaged file)", path);
    rc = c.rc;
  }
  if (!rc && kd_h5_exists(f, "/optim")) {
    c.group = "/optim";
    if (H5Ovisit_by_name(f, "/optim", H5_INDEX_NAME, H5_ITER_INC, verify_visit, &c, H5P_DEFAULT) < 0 && !c.rc)
      c.rc = kd_fail(e, KD_ERR_RUNTIME, "%s: cannot walk /optim (damaged file)", path);
    rc = c.rc;
  }
  if (!rc) {
    kd_run_state st;
    rc = read_state(f, path, &st, e);
    if (!rc) c.sum += state_hash(&st);
  }
  if (!rc) {
    cfg_sum_ctx cs = {0};
    rc = kd_h5_each_str_attr(f, path, "/config", add_cfg_hash, &cs, e);
    c.sum += cs.sum;
  }
  if (!rc) {
    char got[32];
    snprintf(got, sizeof got, "%016" PRIx64, c.sum);
    if (strcmp(got, sum_s) != 0)
      rc = kd_fail(e, KD_ERR_RUNTIME, "%s: checksum mismatch (stored %s, computed %s): the file is corrupt", path, sum_s,
                   got);
  }
  H5Eclear2(H5E_DEFAULT);
  H5Fclose(f);
  return rc;
}

static int read_pointer(const char *dir, const char *pointer, char *path, size_t n) {
  char p[4300], name[512];
  snprintf(p, sizeof p, "%s/%s", dir, pointer);
  FILE *f = fopen(p, "r");
  if (!f) return -1;
  int ok = fgets(name, sizeof name, f) != NULL;
  fclose(f);
  if (!ok) return -1;
  name[strcspn(name, "\r\n")] = '\0';
  if (!name[0] || strchr(name, '/')) return -1;
  snprintf(path, n, "%s/%s", dir, name);
  return 0;
}

static void note(char *notes, size_t n, const char *msg) {
  size_t l = strlen(notes);
  if (l + 1 < n) snprintf(notes + l, n - l, "%s\n", msg);
}

int kd_ckpt_resolve(const char *spec, int fallback, char *path, size_t n,
                    char *notes, size_t notes_n, kd_err *e) {
  char dir[4096], sel[64] = "latest";
  if (notes && notes_n) notes[0] = '\0';
  struct stat sb;
  if (stat(spec, &sb) == 0 && S_ISREG(sb.st_mode)) {
    snprintf(path, n, "%s", spec);
    return kd_ckpt_verify(path, e);
  }
  snprintf(dir, sizeof dir, "%s", spec);
  char *c = strstr(dir, ":step:");
  if (c) {
    snprintf(sel, sizeof sel, "%s", c + 1);
    *c = '\0';
  } else if ((c = strrchr(dir, ':')) && (strcmp(c, ":latest") == 0 || strcmp(c, ":best") == 0)) {
    snprintf(sel, sizeof sel, "%s", c + 1);
    *c = '\0';
  }
  if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
    return kd_fail(e, KD_ERR_RUNTIME, "%s: no such checkpoint file or run directory", spec);
  if (strncmp(sel, "step:", 5) == 0) {
    char *end;
    long long s = strtoll(sel + 5, &end, 10);
    if (end == sel + 5 || *end || s < 0)
      return kd_fail(e, KD_ERR_USAGE, "%s: expected DIR:step:N with a step number", spec);
    kd_ckpt_name(path, n, dir, s);
    if (access(path, F_OK) != 0) return kd_fail(e, KD_ERR_RUNTIME, "%s: no checkpoint of step %lld", spec, s);
    return kd_ckpt_verify(path, e);
  }
  if (strcmp(sel, "best") == 0) {
    if (read_pointer(dir, "best", path, n) != 0)
      return kd_fail(e, KD_ERR_RUNTIME, "%s: no best checkpoint recorded (%s/best is missing)", spec, dir);
    return kd_ckpt_verify(path, e);
  }
  /* latest, with an optional fall back to older valid checkpoints */
  char tried[4400] = "";
  if (read_pointer(dir, "latest", path, n) == 0) {
    kd_err ve;
    kd_err_clear(&ve);
    if (kd_ckpt_verify(path, &ve) == KD_OK) return KD_OK;
    if (!fallback) return kd_fail(e, ve.code, "%s", ve.msg);
    char msg[1400];
    snprintf(msg, sizeof msg, "latest checkpoint is damaged: %s", ve.msg);
    note(notes, notes_n, msg);
    snprintf(tried, sizeof tried, "%s", path);
  } else if (!fallback) {
    return kd_fail(e, KD_ERR_RUNTIME, "%s: no checkpoint (%s/latest is missing)", spec, dir);
  }
  int64_t *steps;
  int cnt;
  if (list_steps(dir, &steps, &cnt, e)) return e->code;
  for (int i = 0; i < cnt; i++) {
    kd_ckpt_name(path, n, dir, steps[i]);
    if (strcmp(path, tried) == 0) continue;
    kd_err ve;
    kd_err_clear(&ve);
    if (kd_ckpt_verify(path, &ve) == KD_OK) {
      char msg[4400];
      snprintf(msg, sizeof msg, "falling back to %s", path);
      if (tried[0]) note(notes, notes_n, msg);
      free(steps);
      return KD_OK;
    }
    char msg[1400];
    snprintf(msg, sizeof msg, "skipping damaged checkpoint: %s", ve.msg);
    note(notes, notes_n, msg);
  }
  free(steps);
  return kd_fail(e, KD_ERR_RUNTIME, "%s: no valid checkpoint to resume from", spec);
}

typedef struct cfg_ctx {
  kd_cfg_item *items;
  int n, cap;
} cfg_ctx;

static int add_cfg(const char *name, const char *value, void *ctx) {
  cfg_ctx *c = ctx;
  if (c->n == c->cap) {
    c->cap = c->cap ? 2 * c->cap : 64;
    kd_cfg_item *g = realloc(c->items, sizeof(kd_cfg_item) * (size_t)c->cap);
    if (!g) return KD_ERR_RUNTIME;
    c->items = g;
  }
  snprintf(c->items[c->n].name, sizeof c->items[c->n].name, "%s", name);
  snprintf(c->items[c->n].value, sizeof c->items[c->n].value, "%s", value);
  c->n++;
  return KD_OK;
}

int kd_ckpt_read_config(const char *path, kd_cfg_item **items, int *n, kd_err *e) {
  hid_t f;
  *items = NULL;
  *n = 0;
  if (kd_h5_open_ro(&f, path, e)) return e->code;
  cfg_ctx c = {NULL, 0, 0};
  int rc = kd_h5_each_str_attr(f, path, "/config", add_cfg, &c, e);
  if (rc == KD_ERR_RUNTIME && !e->code) rc = kd_fail(e, KD_ERR_RUNTIME, "out of memory reading %s /config", path);
  H5Fclose(f);
  if (rc) {
    free(c.items);
    return rc;
  }
  *items = c.items;
  *n = c.n;
  return KD_OK;
}

int kd_ckpt_config_get(const char *path, const char *name, char *val, size_t n) {
  hid_t f;
  kd_err ignore;
  kd_err_clear(&ignore);
  val[0] = '\0';
  if (kd_h5_open_ro(&f, path, &ignore)) return 0;
  int found = kd_h5_exists(f, "/config") && H5Aexists_by_name(f, "/config", name, H5P_DEFAULT) > 0 &&
              kd_h5_get_attr_str(f, path, "/config", name, val, n, &ignore) == KD_OK;
  H5Eclear2(H5E_DEFAULT);
  H5Fclose(f);
  return found;
}

static int read_state(hid_t f, const char *p, kd_run_state *st, kd_err *e) {
  char fp[64];
  memset(st, 0, sizeof *st);
  if (kd_h5_get_attr_i64(f, p, "/state", "step", &st->step, e) ||
      kd_h5_get_attr_i64(f, p, "/state", "epoch", &st->epoch, e) ||
      kd_h5_get_attr_i64(f, p, "/state", "step_in_epoch", &st->step_in_epoch, e) ||
      kd_h5_get_attr_i64(f, p, "/state", "steps_per_epoch", &st->steps_per_epoch, e) ||
      kd_h5_get_attr_i64(f, p, "/state", "ranks", &st->ranks, e) ||
      kd_h5_get_attr_i64(f, p, "/state", "threads", &st->threads, e) ||
      kd_h5_get_attr_f64(f, p, "/state", "best_metric", &st->best_metric, e) ||
      kd_h5_get_attr_i64(f, p, "/state", "best_step", &st->best_step, e) ||
      kd_h5_get_attr_i64(f, p, "/state", "skipped", &st->skipped, e) ||
      kd_h5_get_attr_i64(f, p, "/state", "log_steps", &st->log_steps, e) ||
      kd_h5_get_attr_f64_array(f, p, "/state", "log_sums", st->log_sums, KD_CKPT_SUMS, e) ||
      kd_h5_get_attr_f64_array(f, p, "/state", "epoch_sums", st->epoch_sums, KD_CKPT_SUMS, e) ||
      kd_h5_get_attr_i64(f, p, "/state", "last_ckpt_step", &st->last_ckpt_step, e) ||
      kd_h5_get_attr_str(f, p, "/state", "teacher_ckpt", st->teacher_ckpt, sizeof st->teacher_ckpt, e) ||
      kd_h5_get_attr_str(f, p, "/data", "data_fingerprint", fp, sizeof fp, e))
    return e->code;
  st->data_fp = strtoull(fp, NULL, 16);
  if (kd_h5_get_attr_str(f, p, "/data", "teacher_fingerprint", fp, sizeof fp, e)) return e->code;
  st->teacher_fp = fp[0] ? strtoull(fp, NULL, 16) : 0;
  return KD_OK;
}

int kd_ckpt_read(const char *path, kd_model *m, kd_optim *o, kd_run_state *st, kd_err *e) {
  char student[256];
  hid_t f;
  if (kd_h5_open_ro(&f, path, e)) return e->code;
  int rc = kd_h5_get_attr_str(f, path, "/", "student", student, sizeof student, e);
  if (!rc && strcmp(student, m->spec) != 0)
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: the checkpoint is of student %s, not %s", path, student, m->spec);
  if (!rc && o && !kd_h5_exists(f, "/optim"))
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: holds weights only, no optimizer or run state: start a new run from it with --init",
                 path);
  if (!rc && o) {
    char kind[16];
    int64_t n, t;
    int nd;
    int64_t dims[KD_H5_MAX_DIMS];
    rc = kd_h5_get_attr_str(f, path, "/optim", "kind", kind, sizeof kind, e);
    if (!rc && strcmp(kind, o->cfg.kind == KD_OPT_ADAMW ? "adamw" : "sgd") != 0)
      rc = kd_fail(e, KD_ERR_RUNTIME, "%s: optimizer state is for %s", path, kind);
    if (!rc) rc = kd_h5_get_attr_i64(f, path, "/optim", "t", &t, e);
    if (!rc) rc = kd_h5_shape(f, path, "/optim/m", &nd, dims, e);
    n = rc ? 0 : dims[0];
    if (!rc && n != (int64_t)o->n)
      rc = kd_fail(e, KD_ERR_RUNTIME, "%s: /optim/m has %lld values but this run trains %zu parameters", path,
                   (long long)n, o->n);
    if (!rc) rc = kd_h5_read_rows(f, path, "/optim/m", 0, n, H5T_NATIVE_FLOAT, o->m, e);
    if (!rc && o->v) rc = kd_h5_read_rows(f, path, "/optim/v", 0, n, H5T_NATIVE_FLOAT, o->v, e);
    if (!rc) o->t = t;
  }
  if (!rc && st) rc = read_state(f, path, st, e);
  H5Fclose(f);
  if (!rc) rc = kd_weights_read(path, m, e);
  return rc;
}

int kd_ckpt_read_aux(const char *path, const kd_param_view *views, int n, float *base, kd_err *e) {
  hid_t f;
  if (kd_h5_open_ro(&f, path, e)) return e->code;
  int rc = KD_OK;
  for (int i = 0; i < n && !rc; i++) {
    char ds[128];
    snprintf(ds, sizeof ds, "/aux/%s", views[i].name);
    int nd;
    int64_t dims[KD_H5_MAX_DIMS];
    rc = kd_h5_shape(f, path, ds, &nd, dims, e);
    if (!rc && (nd > 2 || dims[0] != views[i].rows || dims[1] != views[i].cols))
      rc = kd_fail(e, KD_ERR_RUNTIME, "%s: %s is [%lld, %lld] but this run needs [%d, %d] (other feature or hidden widths)",
                   path, ds, (long long)dims[0], (long long)dims[1], views[i].rows, views[i].cols);
    if (!rc) rc = kd_h5_read_rows(f, path, ds, 0, views[i].rows, H5T_NATIVE_FLOAT, base + views[i].offset, e);
  }
  H5Fclose(f);
  return rc;
}
