#include "kd/synth.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kd/h5io.h"
#include "kd/rng.h"

/* A Gaussian mixture: each class owns `clusters` centres in R^D, rows are a
 * centre plus isotropic noise. Centres are spread so that neighbouring
 * centres sit about --separation noise deviations apart: learnable, not separable.
 * The teacher is the Bayes classifier of the mixture (log-likelihood of each
 * class), so it is the best any student can do and its soft outputs carry
 * real information about class overlap. */
typedef struct synth {
  const kd_synth_cfg *c;
  float *centres; /* [classes * clusters, dim] */
} synth;

static int make_split(const synth *s, int64_t n, uint64_t split, float *x, int32_t *y, float *logits, kd_err *e) {
  const kd_synth_cfg *c = s->c;
  const int D = (int)c->dim, C = (int)c->classes, K = (int)c->clusters;
  const double sig = c->noise;
  uint64_t kpick = kd_key((uint64_t)c->seed, KD_RNG_SYNTH, split, 1);
  uint64_t knoise = kd_key((uint64_t)c->seed, KD_RNG_SYNTH, split, 2);
  double *ll = kd_malloc(sizeof(double) * (size_t)K, "synth likelihoods", e);
  if (!ll) return e->code;
  for (int64_t i = 0; i < n; i++) {
    int cls = (int)(kd_uniform(kpick, 2 * (uint64_t)i) * C);
    int k = (int)(kd_uniform(kpick, 2 * (uint64_t)i + 1) * K);
    if (cls >= C) cls = C - 1;
    if (k >= K) k = K - 1;
    const float *mu = s->centres + ((size_t)cls * K + k) * D;
    float *row = x + (size_t)i * D;
    for (int j = 0; j < D; j++) row[j] = (float)(mu[j] + sig * kd_normal(knoise, (uint64_t)i * D + j));
    y[i] = cls;
    if (!logits) continue;
    for (int cc = 0; cc < C; cc++) {
      double mx = -INFINITY;
      for (int kk = 0; kk < K; kk++) {
        const float *m2 = s->centres + ((size_t)cc * K + kk) * D;
        double d2 = 0;
        for (int j = 0; j < D; j++) {
          double d = row[j] - m2[j];
          d2 += d * d;
        }
        ll[kk] = -d2 / (2 * sig * sig);
        if (ll[kk] > mx) mx = ll[kk];
      }
      double sum = 0;
      for (int kk = 0; kk < K; kk++) sum += exp(ll[kk] - mx);
      logits[(size_t)i * C + cc] = (float)((mx + log(sum)) / c->teacher_temperature);
    }
  }
  free(ll);
  return KD_OK;
}

static int write_file_attrs(hid_t f, const char *path, const char *kind, const kd_synth_cfg *c, kd_err *e) {
  (void)path;
  if (kd_h5_attr_str(f, "/", "kd_format", kind, e) || kd_h5_attr_i64(f, "/", "format_version", 1, e) ||
      kd_h5_attr_str(f, "/", "kd_version", KD_VERSION, e) ||
      kd_h5_attr_str(f, "/", "generator", "kd synth (Gaussian mixture)", e) ||
      kd_h5_attr_i64(f, "/", "seed", c->seed, e))
    return e->code;
  return KD_OK;
}

int kd_synth_write(const kd_synth_cfg *c, kd_synth_stats *stats, kd_err *e) {
  kd_h5_quiet();
  const int D = (int)c->dim, C = (int)c->classes, K = (int)c->clusters;
  synth s = {c, NULL};
  if (stats) stats->teacher_acc[0] = stats->teacher_acc[1] = -1;
  const int same = c->teacher_out[0] && strcmp(c->out, c->teacher_out) == 0;
  const int want_t = c->teacher_out[0] != '\0';
  s.centres = kd_malloc(sizeof(float) * (size_t)C * K * D, "synth centres", e);
  if (!s.centres) return e->code;
  /* Per-coordinate spread so two centres sit ~separation noise deviations apart. */
  const double spread = c->separation * c->noise / sqrt(2.0);
  uint64_t kc = kd_key((uint64_t)c->seed, KD_RNG_SYNTH, 99, 0);
  for (size_t i = 0; i < (size_t)C * K * D; i++) s.centres[i] = (float)(spread * kd_normal(kc, i) / sqrt((double)D));
  int rc = KD_OK;
  hid_t fd = H5Fcreate(c->out, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hid_t ft = -1;
  if (fd < 0) {
    free(s.centres);
    return kd_fail(e, KD_ERR_RUNTIME, "%s: cannot create the HDF5 file (does the directory exist and is it writable?)",
                   c->out);
  }
  if (want_t && !same) {
    ft = H5Fcreate(c->teacher_out, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (ft < 0)
      rc = kd_fail(e, KD_ERR_RUNTIME,
                   "%s: cannot create the HDF5 file (does the directory exist and is it writable?)", c->teacher_out);
  } else if (same) {
    ft = fd;
  }
  if (!rc) rc = write_file_attrs(fd, c->out, same ? "data+teacher" : "data", c, e);
  if (!rc && want_t && !same) rc = write_file_attrs(ft, c->teacher_out, "teacher", c, e);
  const char *splits[2] = {"train", "test"};
  const int64_t rows[2] = {c->train, c->test};
  for (int sp = 0; sp < 2 && !rc; sp++) {
    int64_t n = rows[sp];
    if (n == 0) continue;
    float *x = kd_malloc(sizeof(float) * (size_t)n * D, "synth x", e);
    int32_t *y = kd_malloc(sizeof(int32_t) * (size_t)n, "synth y", e);
    float *lg = want_t ? kd_malloc(sizeof(float) * (size_t)n * C, "synth logits", e) : NULL;
    if (!e->code) {
      rc = make_split(&s, n, (uint64_t)sp, x, y, lg, e);
      if (!rc && stats && lg) {
        int64_t hit = 0;
        for (int64_t i = 0; i < n; i++) {
          int a = 0;
          for (int cc = 1; cc < C; cc++)
            if (lg[(size_t)i * C + cc] > lg[(size_t)i * C + a]) a = cc;
          hit += a == y[i];
        }
        stats->teacher_acc[sp] = (double)hit / (double)n;
      }
      char ds[64];
      int64_t dx[2] = {n, D}, dl[2] = {n, C};
      snprintf(ds, sizeof ds, "/%s/x", splits[sp]);
      if (!rc) rc = kd_h5_write_f32(fd, c->out, ds, 2, dx, x, e);
      snprintf(ds, sizeof ds, "/%s/y", splits[sp]);
      if (!rc) rc = kd_h5_write_i32(fd, c->out, ds, 1, dx, y, e);
      snprintf(ds, sizeof ds, "/%s/logits", splits[sp]);
      if (!rc && want_t) rc = kd_h5_write_f32(ft, c->teacher_out, ds, 2, dl, lg, e);
    } else {
      rc = e->code;
    }
    free(x);
    free(y);
    free(lg);
  }
  if (ft >= 0 && ft != fd && H5Fclose(ft) < 0 && !rc) rc = kd_fail(e, KD_ERR_RUNTIME, "%s: close failed", c->teacher_out);
  if (H5Fclose(fd) < 0 && !rc) rc = kd_fail(e, KD_ERR_RUNTIME, "%s: close failed", c->out);
  free(s.centres);
  if (rc) { /* never leave half-written files behind */
    unlink(c->out);
    if (want_t && !same) unlink(c->teacher_out);
  }
  return rc;
}
