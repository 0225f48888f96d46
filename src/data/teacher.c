/* Teacher stores held in memory: float32, or float16 as the file holds it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/h5io.h"
#include "core/half.h"
#include "core/rng.h"
#include "kd/teacher.h"

struct kd_teacher {
  char path[KD_PATH_MAX];  /* "" when filled by the trainer */
  char split[16];
  int64_t row0, n, total;
  int classes, positions;  /* logits [n, positions, classes]; classes 0: none */
  int f16;                 /* logits held as IEEE float16 */
  void *logits;            /* float or uint16_t */
  int feat_dim;            /* 0: no features */
  float *features;         /* [n, feat_dim] */
};

static size_t row_values(const kd_teacher *t) { return (size_t)t->positions * t->classes; }

static float logit(const kd_teacher *t, size_t i) {
  return t->f16 ? kd_half_to_float(((const uint16_t *)t->logits)[i]) : ((const float *)t->logits)[i];
}

int kd_teacher_probe(const char *path, const char *split, const char *data_path, int64_t rows, int positions,
                     int *classes, kd_err *e) {
  char ls[64], xs[64];
  snprintf(ls, sizeof ls, "/%s/logits", split);
  snprintf(xs, sizeof xs, positions ? "/%s/tokens" : "/%s/x", split);
  *classes = 0;
  hid_t f;
  if (kd_h5_open_ro(&f, path, e)) return e->code;
  int nd;
  int64_t ld[KD_H5_MAX_DIMS];
  int rc = kd_h5_shape(f, path, ls, &nd, ld, e);
  if (!rc && !positions && nd != 2)
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: dataset %s must be 2-D [rows, classes], it is %d-D", path, ls, nd);
  if (!rc && positions && nd != 3)
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: dataset %s must be 3-D [rows, positions, vocabulary] for token rows, it is %d-D",
                 path, ls, nd);
  if (!rc && ld[0] != rows)
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: %s has %lld rows but %s in %s has %lld: the teacher file was made for other data",
                 path, ls, (long long)ld[0], xs, data_path, (long long)rows);
  if (!rc && positions && ld[1] != positions)
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: %s has %lld positions per row but %s in %s has %d", path, ls, (long long)ld[1],
                 xs, data_path, positions);
  if (!rc) *classes = (int)(positions ? ld[2] : ld[1]);
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
  if ((nd != 2 && nd != 3) || ld[0] != t->total)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: dataset %s must be [%lld, classes] or [%lld, positions, vocabulary]", t->path,
                   ls, (long long)t->total, (long long)t->total);
  t->positions = nd == 3 ? (int)ld[1] : 1;
  t->classes = (int)(nd == 3 ? ld[2] : ld[1]);
  const hid_t ht = kd_h5_half_mem_type(f, ls);
  t->f16 = ht >= 0;
  t->logits = kd_malloc((size_t)t->n * row_values(t) * (t->f16 ? 2 : sizeof(float)), ls, e);
  int rc = t->logits ? kd_h5_read_rows(f, t->path, ls, t->row0, t->n, t->f16 ? ht : H5T_NATIVE_FLOAT, t->logits, e)
                     : e->code;
  if (ht >= 0) H5Tclose(ht);
  return rc;
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
  t->positions = 1;
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

int kd_teacher_new(kd_teacher **out, const char *split, int64_t row0, int64_t rows, int positions, int classes,
                   kd_err *e) {
  *out = NULL;
  kd_teacher *t = kd_calloc(1, sizeof *t, "teacher store", e);
  if (!t) return e->code;
  snprintf(t->split, sizeof t->split, "%s", split);
  t->row0 = row0;
  t->n = rows;
  t->total = rows;
  t->classes = classes;
  t->positions = positions;
  t->logits = kd_calloc((size_t)(rows ? rows : 1) * row_values(t), sizeof(float), "snapshot logits", e);
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

size_t kd_teacher_bytes(const kd_teacher *t) {
  if (!t) return 0;
  return (t->logits ? (size_t)t->n * row_values(t) * (t->f16 ? 2 : sizeof(float)) : 0) +
         (t->features ? (size_t)t->n * t->feat_dim * sizeof(float) : 0);
}
int kd_teacher_positions(const kd_teacher *t) { return t ? t->positions : 1; }
int kd_teacher_feat_dim(const kd_teacher *t) { return t ? t->feat_dim : 0; }
int kd_teacher_is_f16(const kd_teacher *t) { return t && t->f16; }
float *kd_teacher_logits(kd_teacher *t) { return t->f16 ? NULL : t->logits; }

int kd_teacher_validate(const kd_teacher *t, kd_err *e) {
  if (!t->logits) return KD_OK;
  const size_t C = (size_t)t->classes, P = (size_t)t->positions, nl = (size_t)t->n * P * C;
  for (size_t i = 0; i < nl; i++) {
    const float v = logit(t, i);
    if (isfinite(v)) continue;
    const int64_t row = t->row0 + (int64_t)(i / (P * C));
    const char *what = isnan(v) ? "NaN" : "infinite (or beyond float32 range)";
    if (P > 1)
      return kd_fail(e, KD_ERR_RUNTIME, "%s: /%s/logits row %lld position %d column %d is %s", t->path, t->split,
                     (long long)row, (int)(i / C % P), (int)(i % C), what);
    return kd_fail(e, KD_ERR_RUNTIME, "%s: /%s/logits row %lld column %d is %s", t->path, t->split, (long long)row,
                   (int)(i % C), what);
  }
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

/* Logits of shard row r into out [positions * classes] as float32. */
static void copy_logits(const kd_teacher *t, int64_t r, float *out) {
  const size_t W = row_values(t), base = (size_t)r * W;
  if (!t->f16) {
    memcpy(out, (const float *)t->logits + base, W * sizeof(float));
    return;
  }
  const uint16_t *h = (const uint16_t *)t->logits + base;
  for (size_t i = 0; i < W; i++) out[i] = kd_half_to_float(h[i]);
}

size_t kd_teacher_stored_row_bytes(const kd_teacher *t) { return row_values(t) * (t->f16 ? 2 : sizeof(float)); }

int kd_teacher_copy_stored(const kd_teacher *t, int64_t r, void *out, kd_err *e) {
  if (r < 0 || r >= t->n || !t->logits)
    return kd_fail(e, KD_ERR_RUNTIME, "teacher copy: row %lld outside the shard of %lld rows of /%s", (long long)r,
                   (long long)t->n, t->split);
  const size_t bytes = kd_teacher_stored_row_bytes(t);
  memcpy(out, (const char *)t->logits + (size_t)r * bytes, bytes);
  return KD_OK;
}

void kd_logits_to_float(float *out, const void *stored, size_t n, int f16) {
  if (!f16) {
    memcpy(out, stored, n * sizeof(float));
    return;
  }
  const uint16_t *h = stored;
  for (size_t i = 0; i < n; i++) out[i] = kd_half_to_float(h[i]);
}

int kd_teacher_gather(const kd_teacher *t, const int64_t *idx, int count, kd_teacher_batch *b, kd_err *e) {
  const size_t W = row_values(t), H = (size_t)t->feat_dim;
  for (int i = 0; i < count; i++) {
    const int64_t r = idx[i];
    if (r < 0 || r >= t->n)
      return kd_fail(e, KD_ERR_RUNTIME, "teacher gather: row %lld outside the shard of %lld rows of /%s",
                     (long long)r, (long long)t->n, t->split);
    if (b->logits && t->logits) copy_logits(t, r, b->logits + i * W);
    if (b->features && t->features) memcpy(b->features + i * H, t->features + (size_t)r * H, H * sizeof(float));
  }
  return KD_OK;
}

int kd_teacher_gather_range(const kd_teacher *t, int64_t r0, int count, float *out, kd_err *e) {
  if (r0 < 0 || r0 + count > t->n)
    return kd_fail(e, KD_ERR_RUNTIME, "teacher gather: rows [%lld, %lld) outside the shard of %lld rows of /%s",
                   (long long)r0, (long long)(r0 + count), (long long)t->n, t->split);
  for (int i = 0; i < count; i++) copy_logits(t, r0 + i, out + (size_t)i * row_values(t));
  return KD_OK;
}

void kd_teacher_prefetch(const kd_teacher *t, const int64_t *idx, int count) {
#if defined(__GNUC__) || defined(__clang__)
  if (!t || !t->logits) return;
  const size_t bytes = row_values(t) * (t->f16 ? 2 : sizeof(float));
  for (int i = 0; i < count; i++) __builtin_prefetch((const char *)t->logits + (size_t)idx[i] * bytes, 0, 3);
#else
  (void)t, (void)idx, (void)count;
#endif
}

uint64_t kd_teacher_fingerprint(const kd_teacher *t) {
  uint64_t sum = 0;
  if (!t || !t->logits) return 0;
  const size_t W = row_values(t);
  for (int64_t i = 0; i < t->n; i++) {
    uint64_t g = kd_mix64((uint64_t)(t->row0 + i) ^ 0x74u);
    for (size_t j = 0; j < W; j++) {
      const float v = logit(t, (size_t)i * W + j);
      uint32_t w;
      memcpy(&w, &v, sizeof w);
      g = kd_mix64(g ^ w);
    }
    sum += g;
  }
  return sum;
}
