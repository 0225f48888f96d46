#include "nn/kernels.h"

#include <math.h>

#include "core/rng.h"
#include "nn/simd.h"

float kd_gelu(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }

float kd_gelu_grad(float x) {
  /* d/dx x*Phi(x) = Phi(x) + x*phi(x) */
  float cdf = 0.5f * (1.0f + erff(x * 0.70710678118654752f));
  float pdf = 0.39894228040143268f * expf(-0.5f * x * x);
  return cdf + x * pdf;
}

/* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
float kd_gelu_tanh(float x) {
  const float c = 0.7978845608028654f, u = c * (x + 0.044715f * x * x * x);
  return 0.5f * x * (1.0f + tanhf(u));
}

float kd_gelu_tanh_grad(float x) {
  const float c = 0.7978845608028654f, u = c * (x + 0.044715f * x * x * x), t = tanhf(u);
  return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * c * (1.0f + 3.0f * 0.044715f * x * x);
}

KD_HOT void kd_bias_act_forward(float *y, float *pre, const float *bias, kd_act act,
                         int B, int N) {
  for (int b = 0; b < B; b++) {
    float *row = y + (size_t)b * N;
    float *prow = pre ? pre + (size_t)b * N : 0;
    switch (act) {
      case KD_ACT_RELU:
        for (int n = 0; n < N; n++) {
          float z = row[n] + bias[n];
          row[n] = z > 0.0f ? z : 0.0f;
        }
        break;
      case KD_ACT_GELU:
        for (int n = 0; n < N; n++) {
          float z = row[n] + bias[n];
          if (prow) prow[n] = z;
          row[n] = kd_gelu(z);
        }
        break;
      case KD_ACT_GELU_TANH:
        for (int n = 0; n < N; n++) {
          float z = row[n] + bias[n];
          if (prow) prow[n] = z;
          row[n] = kd_gelu_tanh(z);
        }
        break;
      default:
        for (int n = 0; n < N; n++) row[n] += bias[n];
        break;
    }
  }
}

void kd_dropout_forward(float *y, uint8_t *mask, const int64_t *row_ids,
                        uint64_t key, float p, int B, int N) {
  const float scale = 1.0f / (1.0f - p);
  for (int b = 0; b < B; b++) {
    uint64_t rk = kd_mix64(key ^ (uint64_t)row_ids[b]);
    float *row = y + (size_t)b * N;
    uint8_t *mrow = mask + (size_t)b * N;
    for (int n = 0; n < N; n++) {
      uint8_t keep = kd_uniform(rk, (uint64_t)n) >= p;
      mrow[n] = keep;
      row[n] = keep ? row[n] * scale : 0.0f;
    }
  }
}

/* The tanh-GELU case of kd_act_backward, its own loop (the MLP's loops stay as they were). */
static void gelu_tanh_backward(float *dz, float *dbias, const float *da, const float *pre, const uint8_t *mask,
                               float p, int B, int N) {
  const float scale = mask ? 1.0f / (1.0f - p) : 1.0f;
  for (int b = 0; b < B; b++) {
    const float *darow = da + (size_t)b * N, *prow = pre + (size_t)b * N;
    const uint8_t *mrow = mask ? mask + (size_t)b * N : 0;
    float *dzrow = dz + (size_t)b * N;
    for (int n = 0; n < N; n++) {
      float g = darow[n];
      if (mrow) g = mrow[n] ? g * scale : 0.0f;
      g *= kd_gelu_tanh_grad(prow[n]);
      dzrow[n] = g;
      dbias[n] += g;
    }
  }
}

KD_HOT void kd_act_backward(float *dz, float *dbias, const float *da, const float *y,
                     const float *pre, const uint8_t *mask, float p, kd_act act,
                     int B, int N) {
  if (act == KD_ACT_GELU_TANH) {
    gelu_tanh_backward(dz, dbias, da, pre, mask, p, B, N);
    return;
  }
  const float scale = mask ? 1.0f / (1.0f - p) : 1.0f;
  for (int b = 0; b < B; b++) {
    const float *darow = da + (size_t)b * N;
    const float *yrow = y + (size_t)b * N;
    const float *prow = pre ? pre + (size_t)b * N : 0;
    const uint8_t *mrow = mask ? mask + (size_t)b * N : 0;
    float *dzrow = dz + (size_t)b * N;
    for (int n = 0; n < N; n++) {
      float g = darow[n];
      if (mrow) g = mrow[n] ? g * scale : 0.0f;
      if (act == KD_ACT_RELU) g = yrow[n] > 0.0f ? g : 0.0f;
      else if (act == KD_ACT_GELU) g *= kd_gelu_grad(prow[n]);
      dzrow[n] = g;
      dbias[n] += g;
    }
  }
}

KD_HOT void kd_bias_backward(float *dbias, const float *dy, int B, int N) {
  for (int b = 0; b < B; b++) {
    const float *row = dy + (size_t)b * N;
    for (int n = 0; n < N; n++) dbias[n] += row[n];
  }
}
