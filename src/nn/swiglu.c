#include "nn/swiglu.h"

#include <math.h>
#include <stddef.h>

#include "nn/fastmath.h"
#include "nn/simd.h"

/* sigmoid(g) with -g clamped to [-80, 80]: beyond, sigmoid is 1 or below
 * 2e-35, and neither side of a vectorized select makes a denormal
 * (kd_exp_fast). */
static inline float sigmoid(float g) {
  float v = -g;
  v = v > 80.0f ? 80.0f : v;
  v = v < -80.0f ? -80.0f : v;
  return 1.0f / (1.0f + kd_exp_fast(v));
}

KD_HOT void kd_swiglu_forward(float *h, const float *gu, int n, int F) {
  for (int r = 0; r < n; r++) {
    const float *restrict g = gu + (size_t)r * 2 * F, *restrict u = g + F;
    float *restrict hr = h + (size_t)r * F;
    for (int j = 0; j < F; j++) hr[j] = g[j] * sigmoid(g[j]) * u[j];
  }
}

/* d silu(g)/dg = s + g s (1 - s), s = sigmoid(g). */
KD_HOT void kd_swiglu_backward(float *dgu, const float *dh, const float *gu, int n, int F) {
  for (int r = 0; r < n; r++) {
    const float *restrict g = gu + (size_t)r * 2 * F, *restrict u = g + F, *restrict d = dh + (size_t)r * F;
    float *restrict dg = dgu + (size_t)r * 2 * F, *restrict du = dg + F;
    for (int j = 0; j < F; j++) {
      const float s = sigmoid(g[j]), silu = g[j] * s;
      du[j] = d[j] * silu;
      dg[j] = d[j] * u[j] * (s + g[j] * s * (1.0f - s));
    }
  }
}

void kd_swiglu_forward_ref(float *h, const float *gu, int n, int F) {
  for (int r = 0; r < n; r++)
    for (int j = 0; j < F; j++) {
      const double g = gu[(size_t)r * 2 * F + j], u = gu[(size_t)r * 2 * F + F + j];
      h[(size_t)r * F + j] = (float)(g / (1.0 + exp(-g)) * u);
    }
}
