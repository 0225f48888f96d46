#include "nn/norm.h"

#include <math.h>
#include <stddef.h>

#include "nn/lanes.h"
#include "nn/simd.h"

/* One row of LayerNorm (two passes over a row that stays in L1). */
static inline void ln_row(float *restrict y, float *mean, float *rstd, const float *restrict x,
                          const float *restrict w, const float *restrict b, int D) {
  const float m = kd_lane_sum(x, D) / (float)D;
  const float rs = 1.0f / sqrtf(kd_lane_sq_dev(x, m, D) / (float)D + KD_LN_EPS);
  for (int j = 0; j < D; j++) y[j] = (x[j] - m) * rs * w[j] + b[j];
  *mean = m;
  *rstd = rs;
}

KD_HOT void kd_layernorm_forward(float *y, float *mean, float *rstd, const float *x, const float *w, const float *b,
                                 int n, int D) {
  for (int r = 0; r < n; r++) ln_row(y + (size_t)r * D, mean + r, rstd + r, x + (size_t)r * D, w, b, D);
}

KD_HOT void kd_residual_layernorm_forward(float *out, float *y, float *mean, float *rstd, const float *x,
                                          const float *br, const float *bias, const float *w, const float *b, int n,
                                          int D) {
  for (int r = 0; r < n; r++) {
    const size_t o = (size_t)r * D;
    float *restrict orow = out + o;
    const float *restrict xr = x + o, *restrict brr = br + o;
    if (bias)
      for (int j = 0; j < D; j++) orow[j] = xr[j] + (brr[j] + bias[j]);
    else
      for (int j = 0; j < D; j++) orow[j] = xr[j] + brr[j];
    if (y) ln_row(y + o, mean + r, rstd + r, orow, w, b, D);
  }
}

KD_HOT void kd_layernorm_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                                  const float *mean, const float *rstd, int n, int D) {
  for (int r = 0; r < n; r++) {
    const float *restrict xr = x + (size_t)r * D, *restrict dyr = dy + (size_t)r * D;
    float *restrict dxr = dx + (size_t)r * D;
    const float m = mean[r], rs = rstd[r];
    /* with xhat = (x - m) * rs and g = dy * w: dx = rs * (g - mean(g) - xhat * mean(g * xhat)) */
    float ag[8] = {0, 0, 0, 0, 0, 0, 0, 0}, agx[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int j = 0;
    for (; j + 8 <= D; j += 8)
      for (int k = 0; k < 8; k++) {
        const float xh = (xr[j + k] - m) * rs, g = dyr[j + k] * w[j + k];
        ag[k] += g;
        agx[k] += g * xh;
        dw[j + k] += dyr[j + k] * xh;
        db[j + k] += dyr[j + k];
      }
    float sg = ((ag[0] + ag[1]) + (ag[2] + ag[3])) + ((ag[4] + ag[5]) + (ag[6] + ag[7]));
    float sgx = ((agx[0] + agx[1]) + (agx[2] + agx[3])) + ((agx[4] + agx[5]) + (agx[6] + agx[7]));
    for (; j < D; j++) {
      const float xh = (xr[j] - m) * rs, g = dyr[j] * w[j];
      sg += g;
      sgx += g * xh;
      dw[j] += dyr[j] * xh;
      db[j] += dyr[j];
    }
    const float mg = sg / (float)D, mgx = sgx / (float)D;
    for (j = 0; j < D; j++) {
      const float xh = (xr[j] - m) * rs;
      dxr[j] += rs * (dyr[j] * w[j] - mg - xh * mgx);
    }
  }
}

void kd_layernorm_forward_ref(float *y, float *mean, float *rstd, const float *x, const float *w, const float *b,
                              int n, int D) {
  for (int r = 0; r < n; r++) {
    const float *xr = x + (size_t)r * D;
    double s = 0, ss = 0;
    for (int j = 0; j < D; j++) s += xr[j];
    const double m = s / D;
    for (int j = 0; j < D; j++) ss += (xr[j] - m) * (xr[j] - m);
    const double rs = 1.0 / sqrt(ss / D + KD_LN_EPS);
    for (int j = 0; j < D; j++) y[(size_t)r * D + j] = (float)((xr[j] - m) * rs * w[j] + b[j]);
    mean[r] = (float)m;
    rstd[r] = (float)rs;
  }
}

/* ---- RMSNorm ---- */

static inline void rms_row(float *restrict y, float *rstd, const float *restrict x, const float *restrict w, float eps,
                           int D) {
  const float rs = 1.0f / sqrtf(kd_lane_dot(x, x, D) / (float)D + eps);
  for (int j = 0; j < D; j++) y[j] = x[j] * rs * w[j];
  *rstd = rs;
}

KD_HOT void kd_rmsnorm_forward(float *y, float *rstd, const float *x, const float *w, float eps, int n, int D) {
  for (int r = 0; r < n; r++) rms_row(y + (size_t)r * D, rstd + r, x + (size_t)r * D, w, eps, D);
}

KD_HOT void kd_residual_rmsnorm_forward(float *out, float *y, float *rstd, const float *x, const float *br,
                                        const float *w, float eps, int n, int D) {
  for (int r = 0; r < n; r++) {
    const size_t o = (size_t)r * D;
    float *restrict orow = out + o;
    const float *restrict xr = x + o, *restrict brr = br + o;
    for (int j = 0; j < D; j++) orow[j] = xr[j] + brr[j];
    if (y) rms_row(y + o, rstd + r, orow, w, eps, D);
  }
}

/* With g = dy * w and xhat = x * rs: dx = rs * (g - xhat * mean(g * xhat)), dw = sum over rows of dy * xhat. */
KD_HOT void kd_rmsnorm_backward(float *dx, float *dw, const float *dy, const float *x, const float *w,
                                const float *rstd, int n, int D) {
  for (int r = 0; r < n; r++) {
    const float *restrict xr = x + (size_t)r * D, *restrict dyr = dy + (size_t)r * D;
    float *restrict dxr = dx + (size_t)r * D;
    const float rs = rstd[r];
    float agx[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int j = 0;
    for (; j + 8 <= D; j += 8)
      for (int k = 0; k < 8; k++) {
        const float xh = xr[j + k] * rs;
        agx[k] += dyr[j + k] * w[j + k] * xh;
        dw[j + k] += dyr[j + k] * xh;
      }
    float sgx = ((agx[0] + agx[1]) + (agx[2] + agx[3])) + ((agx[4] + agx[5]) + (agx[6] + agx[7]));
    for (; j < D; j++) {
      const float xh = xr[j] * rs;
      sgx += dyr[j] * w[j] * xh;
      dw[j] += dyr[j] * xh;
    }
    const float mgx = sgx / (float)D;
    for (j = 0; j < D; j++) dxr[j] += rs * (dyr[j] * w[j] - xr[j] * rs * mgx);
  }
}

void kd_rmsnorm_forward_ref(float *y, float *rstd, const float *x, const float *w, float eps, int n, int D) {
  for (int r = 0; r < n; r++) {
    const float *xr = x + (size_t)r * D;
    double ss = 0;
    for (int j = 0; j < D; j++) ss += (double)xr[j] * xr[j];
    const double rs = 1.0 / sqrt(ss / D + eps);
    for (int j = 0; j < D; j++) y[(size_t)r * D + j] = (float)(xr[j] * rs * w[j]);
    rstd[r] = (float)rs;
  }
}
