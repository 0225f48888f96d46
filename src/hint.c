#include "kd/hint.h"

#include <stddef.h>

#include "kd/gemm.h"

double kd_hint_forward_backward(float *dh_s, float *dW, float *db, float *pred,
                                const float *h_s, const float *h_t, const float *W,
                                const float *b, int B, int Hs, int Ht, float scale) {
  /* pred[B, Ht] = h_s[B, Hs] W[Ht, Hs]^T */
  kd_gemm(pred, Ht, h_s, Hs, 0, W, Hs, 1, B, Ht, Hs, 1.0f, 0.0f);
  double sum = 0.0;
  for (int r = 0; r < B; r++) {
    float *p = pred + (size_t)r * Ht;
    const float *t = h_t + (size_t)r * Ht;
    for (int j = 0; j < Ht; j++) {
      const float diff = p[j] + b[j] - t[j];
      sum += 0.5 * (double)diff * diff;
      p[j] = diff * scale; /* now d loss / d pred */
      if (db) db[j] += p[j];
    }
  }
  if (dW) kd_gemm(dW, Hs, pred, Ht, 1, h_s, Hs, 0, Ht, Hs, B, 1.0f, 1.0f); /* dW += dpred^T h_s */
  if (dh_s) kd_gemm(dh_s, Hs, pred, Ht, 0, W, Hs, 0, B, Hs, Ht, 1.0f, 0.0f); /* dh = dpred W */
  return sum;
}
