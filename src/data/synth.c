#include "data/synth.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/atomic.h"
#include "core/h5io.h"
#include "core/provenance.h"
#include "core/rng.h"
#include "kd/data.h"

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

/* What the file is; a teacher file also names the /train rows its logits
 * belong to (kd train checks the data file against it). */
static int write_file_attrs(hid_t f, const char *path, const char *kind, const kd_synth_cfg *c, uint64_t fp,
                            kd_err *e) {
  kd_provenance p = kd_provenance_of(kind);
  p.generator = "kd synth (Gaussian mixture)";
  p.seed = c->seed;
  p.has_fingerprint = 1;
  p.data_fingerprint = fp;
  p.rows[0] = c->train;
  p.rows[2] = c->test;
  return kd_provenance_write(f, path, &p, e);
}

/* One split: rows, labels and (want_t) the teacher's logits, written into
 * the data file fd and the teacher file ft. */
static int write_split(const synth *s, int sp, hid_t fd, const char *dpath, hid_t ft, const char *tpath,
                       kd_synth_stats *stats, uint64_t *fp, kd_err *e) {
  static const char *splits[2] = {"train", "test"};
  const kd_synth_cfg *c = s->c;
  const int64_t n = sp == 0 ? c->train : c->test;
  const int D = (int)c->dim, C = (int)c->classes, want_t = ft >= 0;
  if (n == 0) return KD_OK;
  float *x = kd_malloc(sizeof(float) * (size_t)n * D, "synth x", e);
  int32_t *y = kd_malloc(sizeof(int32_t) * (size_t)n, "synth y", e);
  float *lg = want_t ? kd_malloc(sizeof(float) * (size_t)n * C, "synth logits", e) : NULL;
  int rc = e->code ? e->code : make_split(s, n, (uint64_t)sp, x, y, lg, e);
  if (!rc && sp == 0) *fp = kd_fingerprint_rows(0, n, x, D, y);
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
  if (!rc) rc = kd_h5_write_f32(fd, dpath, ds, 2, dx, x, e);
  snprintf(ds, sizeof ds, "/%s/y", splits[sp]);
  if (!rc) rc = kd_h5_write_i32(fd, dpath, ds, 1, dx, y, e);
  snprintf(ds, sizeof ds, "/%s/logits", splits[sp]);
  if (!rc && want_t) rc = kd_h5_write_f32(ft, tpath, ds, 2, dl, lg, e);
  free(x);
  free(y);
  free(lg);
  return rc;
}

/* Centres spread so that two of them sit about --separation noise
 * deviations apart. */
static int make_centres(synth *s, kd_err *e) {
  const kd_synth_cfg *c = s->c;
  const size_t n = (size_t)c->classes * c->clusters * c->dim;
  s->centres = kd_malloc(sizeof(float) * n, "synth centres", e);
  if (!s->centres) return e->code;
  const double spread = c->separation * c->noise / sqrt(2.0);
  uint64_t kc = kd_key((uint64_t)c->seed, KD_RNG_SYNTH, 99, 0);
  for (size_t i = 0; i < n; i++) s->centres[i] = (float)(spread * kd_normal(kc, i) / sqrt((double)c->dim));
  return KD_OK;
}

int kd_synth_write(const kd_synth_cfg *c, kd_synth_stats *stats, kd_err *e) {
  kd_h5_quiet();
  synth s = {c, NULL};
  if (stats) stats->teacher_acc[0] = stats->teacher_acc[1] = -1;
  const int same = c->teacher_out[0] && strcmp(c->out, c->teacher_out) == 0;
  const int separate = c->teacher_out[0] && !same;
  kd_atomic ad, at;
  memset(&ad, 0, sizeof ad);
  memset(&at, 0, sizeof at);
  hid_t fd = H5I_INVALID_HID, ft = H5I_INVALID_HID;
  int rc = make_centres(&s, e);
  if (!rc) rc = kd_atomic_begin(&ad, c->out, e);
  if (!rc && separate) rc = kd_atomic_begin(&at, c->teacher_out, e);
  if (!rc) rc = kd_h5_create(&fd, ad.tmp, e);
  if (!rc && separate) rc = kd_h5_create(&ft, at.tmp, e);
  if (same) ft = fd;
  const char *tpath = separate ? at.tmp : ad.tmp;
  uint64_t fp = 0;
  for (int sp = 0; sp < 2 && !rc; sp++) rc = write_split(&s, sp, fd, ad.tmp, ft, tpath, stats, &fp, e);
  if (!rc) rc = write_file_attrs(fd, ad.tmp, same ? "data+teacher" : "data", c, fp, e);
  if (!rc && separate) rc = write_file_attrs(ft, at.tmp, "teacher", c, fp, e);
  if (separate) rc = kd_h5_close(ft, at.tmp, rc, e);
  rc = kd_h5_close(fd, ad.tmp, rc, e);
  if (!rc && separate) rc = kd_atomic_commit(&at, e);
  if (!rc) rc = kd_atomic_commit(&ad, e);
  if (rc) { /* never leave half-written files behind */
    kd_atomic_abort(&ad);
    if (separate) kd_atomic_abort(&at);
  }
  free(s.centres);
  return rc;
}
