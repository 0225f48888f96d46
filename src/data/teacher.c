/* Teacher stores held in memory, as float32. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/h5io.h"
#include "core/rng.h"
#include "kd/teacher.h"

struct kd_teacher {
  char path[KD_PATH_MAX];  /* "" when filled by the trainer */
  char split[16];
  int64_t row0, n, total;
  int classes;             /* 0: no logits */
  float *logits;           /* [n, classes] */
  int feat_dim;            /* 0: no features */
  float *features;         /* [n, feat_dim] */
};

int kd_teacher_probe(const char *path, const char *split, const char *data_path, int64_t rows, int *classes,
                     kd_err *e) {
  char ls[64], xs[64];
  snprintf(ls, sizeof ls, "/%s/logits", split);
  snprintf(xs, sizeof xs, "/%s/x", split);
  *classes = 0;
  hid_t f;
  if (kd_h5_open_ro(&f, path, e)) return e->code;
  int nd;
  int64_t ld[KD_H5_MAX_DIMS];
  int rc = kd_h5_shape(f, path, ls, &nd, ld, e);
  if (!rc && nd != 2)
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: dataset %s must be 2-D [rows, classes], it is %d-D", path, ls, nd);
  if (!rc && ld[0] != rows)
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: %s has %lld rows but %s in %s has %lld: the teacher file was made for other data",
                 path, ls, (long long)ld[0], xs, data_path, (long long)rows);
  if (!rc) *classes = (int)ld[1];
  H5Fclose(f);
  return rc;
}

int kd_teacher_has(const char *path, const char *split, const char *what, int *has, kd_err *e) {
  char ds[64];
  snprintf(ds, sizeof ds, "/%s/%s", split, what);
  hid_t f;
  *has = 0;
  if (kd_h5_open_ro(&f, path, e)) return e->code;
  *has = kd_h5_exists(f, ds);
  H5Fclose(f);
  return KD_OK;
}

static int read_logits(kd_teacher *t, hid_t f, kd_err *e) {
  char ls[64];
  snprintf(ls, sizeof ls, "/%s/logits", t->split);
  int nd;
  int64_t ld[KD_H5_MAX_DIMS];
  if (kd_h5_shape(f, t->path, ls, &nd, ld, e)) return e->code;
  if (nd != 2 || ld[0] != t->total)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: dataset %s must be [%lld, classes], it has %lld rows", t->path, ls,
                   (long long)t->total, (long long)ld[0]);
  t->classes = (int)ld[1];
  t->logits = kd_malloc((size_t)t->n * t->classes * sizeof(float), ls, e);
  if (!t->logits) return e->code;
  return kd_h5_read_rows(f, t->path, ls, t->row0, t->n, H5T_NATIVE_FLOAT, t->logits, e);
}

static int read_features(kd_teacher *t, hid_t f, kd_err *e) {
  char ds[64];
  snprintf(ds, sizeof ds, "/%s/features", t->split);
  int nd;
  int64_t dims[KD_H5_MAX_DIMS];
  if (kd_h5_shape(f, t->path, ds, &nd, dims, e)) return e->code;
  if (nd != 2)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: dataset %s must be 2-D [rows, features], it is %d-D", t->path, ds, nd);
  if (dims[0] != t->total)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: %s has %lld rows but /%s/x has %lld: the features were made for other data",
                   t->path, ds, (long long)dims[0], t->split, (long long)t->total);
  t->feat_dim = (int)dims[1];
  t->features = kd_malloc((size_t)(t->n ? t->n : 1) * t->feat_dim * sizeof(float), ds, e);
  if (!t->features) return e->code;
  if (kd_h5_read_rows(f, t->path, ds, t->row0, t->n, H5T_NATIVE_FLOAT, t->features, e)) return e->code;
  for (size_t i = 0; i < (size_t)t->n * t->feat_dim; i++)
    if (!isfinite(t->features[i]))
      return kd_fail(e, KD_ERR_RUNTIME, "%s: %s row %lld column %d is not finite", t->path, ds,
                     (long long)(t->row0 + (int64_t)(i / t->feat_dim)), (int)(i % t->feat_dim));
  return KD_OK;
}

int kd_teacher_open(kd_teacher **out, const char *path, const char *split, int64_t lo, int64_t hi, int64_t total,
                    unsigned what, kd_err *e) {
  *out = NULL;
  kd_teacher *t = kd_calloc(1, sizeof *t, "teacher store", e);
  if (!t) return e->code;
  snprintf(t->path, sizeof t->path, "%s", path);
  snprintf(t->split, sizeof t->split, "%s", split);
  t->row0 = lo;
  t->n = hi - lo;
  t->total = total;
  hid_t f;
  int rc = kd_h5_open_ro(&f, path, e);
  if (!rc) {
    if (what & KD_TEACH_LOGITS) rc = read_logits(t, f, e);
    if (!rc && (what & KD_TEACH_FEATURES)) rc = read_features(t, f, e);
    H5Fclose(f);
  }
  if (rc) {
    kd_teacher_free(t);
    return rc;
  }
  *out = t;
  return KD_OK;
}

int kd_teacher_load_features(kd_teacher *t, kd_err *e) {
  hid_t f;
  if (kd_h5_open_ro(&f, t->path, e)) return e->code;
  int rc = read_features(t, f, e);
  H5Fclose(f);
  return rc;
}

int kd_teacher_new(kd_teacher **out, const char *split, int64_t row0, int64_t rows, int classes, kd_err *e) {
  *out = NULL;
  kd_teacher *t = kd_calloc(1, sizeof *t, "teacher store", e);
  if (!t) return e->code;
  snprintf(t->split, sizeof t->split, "%s", split);
  t->row0 = row0;
  t->n = rows;
  t->total = rows;
  t->classes = classes;
  t->logits = kd_calloc((size_t)(rows ? rows : 1) * classes, sizeof(float), "snapshot logits", e);
  if (!t->logits) {
    free(t);
    return e->code;
  }
  *out = t;
  return KD_OK;
}

void kd_teacher_free(kd_teacher *t) {
  if (!t) return;
  free(t->logits);
  free(t->features);
  free(t);
}

int kd_teacher_classes(const kd_teacher *t) { return t ? t->classes : 0; }
int kd_teacher_feat_dim(const kd_teacher *t) { return t ? t->feat_dim : 0; }
float *kd_teacher_logits(kd_teacher *t) { return t->logits; }
const float *kd_teacher_logits_at(const kd_teacher *t, int64_t r0) {
  return t && t->logits ? t->logits + (size_t)r0 * t->classes : NULL;
}

int kd_teacher_validate(const kd_teacher *t, kd_err *e) {
  if (!t->logits) return KD_OK;
  const size_t C = (size_t)t->classes, nl = (size_t)t->n * C;
  for (size_t i = 0; i < nl; i++)
    if (!isfinite(t->logits[i]))
      return kd_fail(e, KD_ERR_RUNTIME, "%s: /%s/logits row %lld column %d is %s", t->path, t->split,
                     (long long)(t->row0 + (int64_t)(i / C)), (int)(i % C),
                     isnan(t->logits[i]) ? "NaN" : "infinite (or beyond float32 range)");
  return KD_OK;
}

int kd_teacher_batch_init(kd_teacher_batch *b, int capacity, int classes, int feat_dim, kd_err *e) {
  memset(b, 0, sizeof *b);
  if (classes) b->logits = kd_malloc((size_t)capacity * classes * sizeof(float), "batch teacher logits", e);
  if (feat_dim) b->features = kd_malloc((size_t)capacity * feat_dim * sizeof(float), "batch features", e);
  if (e->code) kd_teacher_batch_free(b);
  return e->code;
}

void kd_teacher_batch_free(kd_teacher_batch *b) {
  free(b->logits);
  free(b->features);
  b->logits = b->features = NULL;
}

int kd_teacher_gather(const kd_teacher *t, const int64_t *idx, int count, kd_teacher_batch *b, kd_err *e) {
  const size_t C = (size_t)t->classes, H = (size_t)t->feat_dim;
  for (int i = 0; i < count; i++) {
    const int64_t r = idx[i];
    if (r < 0 || r >= t->n)
      return kd_fail(e, KD_ERR_RUNTIME, "teacher gather: row %lld outside the shard of %lld rows of /%s",
                     (long long)r, (long long)t->n, t->split);
    if (b->logits && t->logits) memcpy(b->logits + i * C, t->logits + (size_t)r * C, C * sizeof(float));
    if (b->features && t->features) memcpy(b->features + i * H, t->features + (size_t)r * H, H * sizeof(float));
  }
  return KD_OK;
}

void kd_teacher_prefetch(const kd_teacher *t, const int64_t *idx, int count) {
#if defined(__GNUC__) || defined(__clang__)
  if (!t || !t->logits) return;
  for (int i = 0; i < count; i++) __builtin_prefetch(t->logits + (size_t)idx[i] * t->classes, 0, 3);
#else
  (void)t, (void)idx, (void)count;
#endif
}

uint64_t kd_teacher_fingerprint(const kd_teacher *t) {
  uint64_t sum = 0;
  if (!t || !t->logits) return 0;
  for (int64_t i = 0; i < t->n; i++) {
    uint64_t g = kd_mix64((uint64_t)(t->row0 + i) ^ 0x74u);
    const uint32_t *l = (const uint32_t *)(t->logits + (size_t)i * t->classes);
    for (int j = 0; j < t->classes; j++) g = kd_mix64(g ^ l[j]);
    sum += g;
  }
  return sum;
}
