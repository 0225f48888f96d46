#include "kd/data.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kd/h5io.h"
#include "kd/rng.h"

void kd_shard_range(int64_t N, int P, int r, int64_t *lo, int64_t *hi) {
  /* 128-bit products: N * P may exceed 2^63 only in theory, but be exact. */
  *lo = (int64_t)(((__int128)r * N) / P);
  *hi = (int64_t)(((__int128)(r + 1) * N) / P);
}

int kd_local_batch(int B, int P, int r) {
  return (int)(((int64_t)(r + 1) * B) / P - ((int64_t)r * B) / P);
}

int kd_split_probe(const char *data_path, const char *teacher_path,
                   const char *split, int *present, int64_t *n, int *dim,
                   int *classes, kd_err *e) {
  char xs[64], ys[64], ls[64];
  snprintf(xs, sizeof xs, "/%s/x", split);
  snprintf(ys, sizeof ys, "/%s/y", split);
  snprintf(ls, sizeof ls, "/%s/logits", split);
  *present = 0;
  *n = 0;
  *dim = 0;
  *classes = 0;
  hid_t f;
  if (kd_h5_open_ro(&f, data_path, e)) return e->code;
  int rc = KD_OK;
  int nd;
  int64_t xd[2], yd[2];
  if (!kd_h5_exists(f, xs)) {
    H5Fclose(f);
    return KD_OK;
  }
  *present = 1;
  if ((rc = kd_h5_shape(f, data_path, xs, &nd, xd, e))) goto done;
  if (nd != 2) { rc = kd_fail(e, KD_ERR_RUNTIME, "%s: dataset %s must be 2-D [rows, features], it is 1-D", data_path, xs); goto done; }
  if ((rc = kd_h5_shape(f, data_path, ys, &nd, yd, e))) goto done;
  if (nd != 1 && yd[1] != 1) {
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: dataset %s must be 1-D [rows], it is [%lld, %lld]", data_path, ys,
                 (long long)yd[0], (long long)yd[1]);
    goto done;
  }
  if (xd[0] != yd[0]) {
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: %s has %lld rows but %s has %lld", data_path, xs, (long long)xd[0], ys,
                 (long long)yd[0]);
    goto done;
  }
  if (xd[0] < 1) { rc = kd_fail(e, KD_ERR_RUNTIME, "%s: split /%s is empty (0 rows)", data_path, split); goto done; }
  if (xd[1] < 1 || xd[1] > 1 << 24) {
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: %s has %lld features per row", data_path, xs, (long long)xd[1]);
    goto done;
  }
  *n = xd[0];
  *dim = (int)xd[1];
  if (teacher_path && teacher_path[0]) {
    hid_t tf;
    if ((rc = kd_h5_open_ro(&tf, teacher_path, e))) goto done;
    int64_t ld[2];
    rc = kd_h5_shape(tf, teacher_path, ls, &nd, ld, e);
    if (!rc && nd != 2)
      rc = kd_fail(e, KD_ERR_RUNTIME, "%s: dataset %s must be 2-D [rows, classes], it is 1-D", teacher_path, ls);
    if (!rc && ld[0] != xd[0])
      rc = kd_fail(e, KD_ERR_RUNTIME, "%s: %s has %lld rows but %s in %s has %lld: the teacher file was made for other data",
                   teacher_path, ls, (long long)ld[0], xs, data_path, (long long)xd[0]);
    if (!rc) *classes = (int)ld[1];
    H5Fclose(tf);
  }
done:
  H5Fclose(f);
  return rc;
}

int kd_split_load(kd_split *s, const char *data_path, const char *teacher_path,
                  const char *split, int64_t lo, int64_t hi, kd_err *e) {
  memset(s, 0, sizeof *s);
  snprintf(s->name, sizeof s->name, "%s", split);
  int present;
  int64_t n;
  int dim, classes;
  if (kd_split_probe(data_path, teacher_path, split, &present, &n, &dim, &classes, e)) return e->code;
  if (!present) return kd_fail(e, KD_ERR_RUNTIME, "%s: dataset /%s/x is missing", data_path, split);
  if (lo < 0 || hi > n || lo > hi)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: shard rows [%lld, %lld) outside /%s of %lld rows", data_path,
                   (long long)lo, (long long)hi, split, (long long)n);
  s->n_total = n;
  s->row0 = lo;
  s->n = hi - lo;
  s->dim = dim;
  s->classes = classes;
  char xs[64], ys[64], ls[64];
  snprintf(xs, sizeof xs, "/%s/x", split);
  snprintf(ys, sizeof ys, "/%s/y", split);
  snprintf(ls, sizeof ls, "/%s/logits", split);
  s->x = kd_malloc((size_t)s->n * dim * sizeof(float), xs, e);
  s->y = kd_malloc((size_t)s->n * sizeof(int32_t), ys, e);
  if (classes) s->logits = kd_malloc((size_t)s->n * classes * sizeof(float), ls, e);
  if (e->code) { kd_split_free(s); return e->code; }
  hid_t f;
  if (kd_h5_open_ro(&f, data_path, e)) { kd_split_free(s); return e->code; }
  int rc = kd_h5_read_rows(f, data_path, xs, lo, s->n, H5T_NATIVE_FLOAT, s->x, e);
  if (!rc) rc = kd_h5_read_rows(f, data_path, ys, lo, s->n, H5T_NATIVE_INT32, s->y, e);
  if (!rc && kd_h5_is_float(f, ys)) {
    /* Labels stored as floats must hold whole numbers: HDF5's conversion to
     * int would silently truncate 2.7 to 2 and turn NaN into INT_MIN. */
    double *yd = kd_malloc((size_t)s->n * sizeof(double), ys, e);
    rc = yd ? kd_h5_read_rows(f, data_path, ys, lo, s->n, H5T_NATIVE_DOUBLE, yd, e) : e->code;
    for (int64_t i = 0; i < s->n && !rc; i++)
      if (!(yd[i] == floor(yd[i])) || yd[i] < -2147483648.0 || yd[i] > 2147483647.0)
        rc = kd_fail(e, KD_ERR_RUNTIME, "%s: %s row %lld holds %g, not a whole-number class label", data_path, ys,
                     (long long)(lo + i), yd[i]);
    free(yd);
  }
  H5Fclose(f);
  if (!rc && classes) {
    hid_t tf;
    rc = kd_h5_open_ro(&tf, teacher_path, e);
    if (!rc) {
      rc = kd_h5_read_rows(tf, teacher_path, ls, lo, s->n, H5T_NATIVE_FLOAT, s->logits, e);
      H5Fclose(tf);
    }
  }
  if (rc) kd_split_free(s);
  return rc;
}

int kd_split_validate(const kd_split *s, int n_classes, int allow_unlabelled,
                      const char *data_path, const char *teacher_path,
                      kd_err *e) {
  for (int64_t i = 0; i < s->n; i++) {
    int32_t y = s->y[i];
    if (y >= n_classes || y < -1 || (y == -1 && !allow_unlabelled)) {
      if (y == -1)
        return kd_fail(e, KD_ERR_RUNTIME,
                       "%s: /%s/y row %lld is -1 (unlabelled), which needs a teacher (--teacher)",
                       data_path, s->name, (long long)(s->row0 + i));
      return kd_fail(e, KD_ERR_RUNTIME, "%s: /%s/y row %lld holds label %d, outside [0, %d)%s", data_path,
                     s->name, (long long)(s->row0 + i), (int)y, n_classes,
                     allow_unlabelled ? " (or -1 for unlabelled)" : "");
    }
  }
  const size_t nx = (size_t)s->n * s->dim;
  for (size_t i = 0; i < nx; i++)
    if (!isfinite(s->x[i]))
      return kd_fail(e, KD_ERR_RUNTIME, "%s: /%s/x row %lld column %d is %s", data_path, s->name,
                     (long long)(s->row0 + (int64_t)(i / s->dim)), (int)(i % s->dim),
                     isnan(s->x[i]) ? "NaN" : "infinite");
  if (s->logits) {
    const size_t nl = (size_t)s->n * s->classes;
    for (size_t i = 0; i < nl; i++)
      if (!isfinite(s->logits[i]))
        return kd_fail(e, KD_ERR_RUNTIME, "%s: /%s/logits row %lld column %d is %s", teacher_path, s->name,
                       (long long)(s->row0 + (int64_t)(i / s->classes)), (int)(i % s->classes),
                       isnan(s->logits[i]) ? "NaN" : "infinite (or beyond float32 range)");
  }
  return KD_OK;
}

int kd_split_load_features(kd_split *s, const char *teacher_path, kd_err *e) {
  char ds[64];
  snprintf(ds, sizeof ds, "/%s/features", s->name);
  hid_t f;
  if (kd_h5_open_ro(&f, teacher_path, e)) return e->code;
  int nd;
  int64_t dims[2];
  int rc = kd_h5_shape(f, teacher_path, ds, &nd, dims, e);
  if (!rc && nd != 2)
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: dataset %s must be 2-D [rows, features], it is 1-D", teacher_path, ds);
  if (!rc && dims[0] != s->n_total)
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: %s has %lld rows but /%s/x has %lld: the features were made for other data",
                 teacher_path, ds, (long long)dims[0], s->name, (long long)s->n_total);
  if (!rc) {
    s->feat_dim = (int)dims[1];
    s->features = kd_malloc((size_t)(s->n ? s->n : 1) * s->feat_dim * sizeof(float), ds, e);
    rc = s->features ? kd_h5_read_rows(f, teacher_path, ds, s->row0, s->n, H5T_NATIVE_FLOAT, s->features, e) : e->code;
  }
  H5Fclose(f);
  for (size_t i = 0; !rc && i < (size_t)s->n * s->feat_dim; i++)
    if (!isfinite(s->features[i]))
      rc = kd_fail(e, KD_ERR_RUNTIME, "%s: %s row %lld column %d is not finite", teacher_path, ds,
                   (long long)(s->row0 + (int64_t)(i / s->feat_dim)), (int)(i % s->feat_dim));
  return rc;
}

void kd_split_gather(const kd_split *s, const int64_t *idx, int count,
                     float *x_out, int32_t *y_out, float *t_out, float *f_out,
                     int64_t *row_ids) {
  const size_t D = (size_t)s->dim, C = (size_t)s->classes, H = (size_t)s->feat_dim;
  for (int i = 0; i < count; i++) {
    int64_t r = idx[i];
    memcpy(x_out + i * D, s->x + (size_t)r * D, D * sizeof(float));
    y_out[i] = s->y[r];
    if (t_out && s->logits) memcpy(t_out + i * C, s->logits + (size_t)r * C, C * sizeof(float));
    if (f_out && s->features) memcpy(f_out + i * H, s->features + (size_t)r * H, H * sizeof(float));
    if (row_ids) row_ids[i] = s->row0 + r;
  }
}

void kd_split_prefetch(const kd_split *s, const int64_t *idx, int count) {
#if defined(__GNUC__) || defined(__clang__)
  const size_t D = (size_t)s->dim, C = (size_t)s->classes;
  for (int i = 0; i < count; i++) {
    const char *x = (const char *)(s->x + (size_t)idx[i] * D);
    for (size_t off = 0; off < D * sizeof(float); off += 64) __builtin_prefetch(x + off, 0, 3);
    if (s->logits) __builtin_prefetch(s->logits + (size_t)idx[i] * C, 0, 3);
  }
#else
  (void)s, (void)idx, (void)count;
#endif
}

void kd_split_fingerprint(const kd_split *s, uint64_t *data_fp, uint64_t *teacher_fp) {
  uint64_t d = 0, t = 0;
  for (int64_t i = 0; i < s->n; i++) {
    const uint64_t row = (uint64_t)(s->row0 + i);
    uint64_t h = kd_mix64(row ^ 0x78u);
    const uint32_t *w = (const uint32_t *)(s->x + (size_t)i * s->dim);
    for (int j = 0; j < s->dim; j++) h = kd_mix64(h ^ w[j]);
    h = kd_mix64(h ^ (uint32_t)s->y[i]);
    d += h;
    if (s->logits) {
      uint64_t g = kd_mix64(row ^ 0x74u);
      const uint32_t *l = (const uint32_t *)(s->logits + (size_t)i * s->classes);
      for (int j = 0; j < s->classes; j++) g = kd_mix64(g ^ l[j]);
      t += g;
    }
  }
  *data_fp = d;
  *teacher_fp = t;
}

void kd_split_free(kd_split *s) {
  free(s->features);
  s->features = NULL;
  free(s->x);
  free(s->y);
  free(s->logits);
  s->x = NULL;
  s->y = NULL;
  s->logits = NULL;
}
