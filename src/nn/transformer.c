#include "nn/transformer.h"

#include <math.h>
#include <string.h>

#include "core/rng.h"
#include "nn/fastmath.h"
#include "nn/gemm.h"
#include "nn/simd.h"

/* ---- GELU (tanh form) ----
 * 0.5 z (1 + tanh(u)) = z * sigmoid(2u), u = sqrt(2/pi) (z + 0.044715 z^3):
 * one exp per element, forward and backward, in loops that vectorize. */

#define GELU_C 0.7978845608028654f
#define GELU_A 0.044715f

/* sigmoid(2u) with 2u clamped to [-30, 30], where it is 1 or below 1e-13:
 * small enough a clamp that z * sigmoid is never a denormal on the
 * clamped side (kd_exp_fast explains why that matters). */
static inline float gelu_sigmoid(float z) {
  float v = -2.0f * GELU_C * (z + GELU_A * z * z * z);
  v = v > 30.0f ? 30.0f : v;
  v = v < -30.0f ? -30.0f : v;
  return 1.0f / (1.0f + kd_exp_fast(v));
}

KD_HOT void kd_bias_gelu_forward(float *y, float *pre, const float *bias, int n, int N) {
  for (int r = 0; r < n; r++) {
    float *yr = y + (size_t)r * N, *restrict pr = pre + (size_t)r * N;
    for (int j = 0; j < N; j++) {
      const float z = yr[j] + bias[j];
      pr[j] = z;
      yr[j] = z * gelu_sigmoid(z);
    }
  }
}

KD_HOT void kd_bias_gelu_backward(float *dz, float *dbias, const float *dy, const float *pre, int n, int N) {
  for (int r = 0; r < n; r++) {
    const float *dyr = dy + (size_t)r * N, *restrict pr = pre + (size_t)r * N;
    float *dzr = dz + (size_t)r * N;
    for (int j = 0; j < N; j++) {
      const float z = pr[j], z2 = z * z, s = gelu_sigmoid(z);
      const float g = dyr[j] * (s + z * s * (1.0f - s) * (2.0f * GELU_C) * (1.0f + 3.0f * GELU_A * z2));
      dzr[j] = g;
      dbias[j] += g;
    }
  }
}

KD_HOT void kd_bias_dropout_forward(float *y, uint8_t *mask, const float *bias, const int64_t *ids, uint64_t key,
                                    float p, int n, int N) {
  const float scale = 1.0f / (1.0f - p);
  for (int r = 0; r < n; r++) {
    const uint64_t rk = kd_mix64(key ^ (uint64_t)ids[r]);
    float *restrict yr = y + (size_t)r * N;
    uint8_t *restrict mr = mask + (size_t)r * N;
    for (int j = 0; j < N; j++) {
      const uint8_t keep = kd_uniform(rk, (uint64_t)j) >= p;
      mr[j] = keep;
      yr[j] = keep ? (yr[j] + bias[j]) * scale : 0.0f;
    }
  }
}

void kd_embed_forward(float *x, const int32_t *tokens, const float *wte, const float *wpe, int B, int T, int D) {
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++) {
      float *xr = x + ((size_t)b * T + t) * D;
      const float *e = wte + (size_t)tokens[(size_t)b * T + t] * D;
      if (!wpe) {
        memcpy(xr, e, sizeof(float) * (size_t)D);
        continue;
      }
      const float *p = wpe + (size_t)t * D;
      for (int j = 0; j < D; j++) xr[j] = e[j] + p[j];
    }
}

void kd_embed_backward(float *dwte, float *dwpe, const float *dx, const int32_t *tokens, int B, int T, int D) {
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++) {
      const float *g = dx + ((size_t)b * T + t) * D;
      float *e = dwte + (size_t)tokens[(size_t)b * T + t] * D;
      for (int j = 0; j < D; j++) e[j] += g[j];
      if (!dwpe) continue;
      float *p = dwpe + (size_t)t * D;
      for (int j = 0; j < D; j++) p[j] += g[j];
    }
}
