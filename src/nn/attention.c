#include "nn/attention.h"

#include <math.h>
#include <string.h>

#include "core/rng.h"
#include "nn/fastmath.h"
#include "nn/gemm.h"
#include "nn/lanes.h"
#include "nn/simd.h"

enum { TILE = 64 };

static inline int tile_len(int t0, int T) { return T - t0 < TILE ? T - t0 : TILE; }

double kd_attention_pairs(int T) {
  double s = 0;
  for (int i0 = 0; i0 < T; i0 += TILE)
    for (int j0 = 0; j0 <= i0; j0 += TILE) s += (double)tile_len(i0, T) * tile_len(j0, T);
  return s;
}

/* Row-wise softmax of S [T, T] over j <= i (in place), zero above the diagonal. */
KD_HOT static void causal_softmax(float *S, int T) {
  for (int i = 0; i < T; i++) {
    float *row = S + (size_t)i * T;
    const int len = i + 1;
    const float mx = kd_lane_max(row, len);
    /* exp(-64) and below: kept as exp(-64), so no probability is a denormal (a microcode assist on x86);
     * written so that a NaN score stays NaN (and --on-nonfinite sees it) */
    for (int j = 0; j < len; j++) row[j] = kd_exp_fast(row[j] - mx < -64.0f ? -64.0f : row[j] - mx);
    const float inv = 1.0f / kd_lane_sum(row, len);
    for (int j = 0; j < len; j++) row[j] *= inv;
    for (int j = len; j < T; j++) row[j] = 0.0f;
  }
}

/* Through the softmax, row by row: dS_ij = P_ij (dP_ij - sum_k P_ik dP_ik) * scale,
 * dP first through the dropout mask; the rest of the diagonal tile zeroed. */
KD_HOT static void softmax_backward(float *dS, const float *P, const uint8_t *mask, float keep, float scale, int T) {
  for (int i = 0; i < T; i++) {
    float *restrict row = dS + (size_t)i * T;
    const float *restrict pr = P + (size_t)i * T;
    const int len = i + 1;
    if (mask) {
      const uint8_t *restrict mr = mask + (size_t)i * T;
      for (int j = 0; j < len; j++) row[j] = mr[j] ? row[j] * keep : 0.0f;
    }
    const float dot = kd_lane_dot(pr, row, len);
    for (int j = 0; j < len; j++) row[j] = pr[j] * (row[j] - dot) * scale;
    const int tile_end = ((i / TILE) + 1) * TILE < T ? ((i / TILE) + 1) * TILE : T;
    for (int j = len; j < tile_end; j++) row[j] = 0.0f;
  }
}

static void dropout_att(float *Pd, uint8_t *mask, const float *P, int64_t id, int h, uint64_t key, float p, int T) {
  const float scale = 1.0f / (1.0f - p);
  const uint64_t rk = kd_mix64(key ^ (uint64_t)id);
  for (int i = 0; i < T; i++)
    for (int j = 0; j < T; j++) {
      const size_t k = (size_t)i * T + j;
      /* keyed on (head, i, j) alone, not on T: a trimmed batch draws the same masks */
      const uint8_t keep = j <= i && kd_uniform(rk, ((uint64_t)h << 32) | ((uint64_t)i << 16) | (uint64_t)j) >= p;
      mask[k] = keep;
      Pd[k] = keep ? P[k] * scale : 0.0f;
    }
}

/* Row b's query head h, and the key and value head it reads. */
static inline size_t q_off(const kd_attn_shape *s, int b, int h) {
  return (size_t)b * s->T * s->ld + (size_t)s->q_col + (size_t)h * s->hd;
}
static inline size_t kv_off(const kd_attn_shape *s, int b, int h, int col) {
  return (size_t)b * s->T * s->ld + (size_t)col + (size_t)(h / (s->H / s->G)) * s->hd;
}

void kd_attention_forward(float *out, float *att, float *att_drop, uint8_t *mask, const float *qkv,
                          const int64_t *ids, uint64_t key, float p, const kd_attn_shape *s) {
  const int T = s->T, H = s->H, hd = s->hd, ld = s->ld, ldo = H * hd;
  const float scale = 1.0f / sqrtf((float)hd);
  for (int b = 0; b < s->B; b++)
    for (int h = 0; h < H; h++) {
      const float *Q = qkv + q_off(s, b, h), *K = qkv + kv_off(s, b, h, s->k_col), *V = qkv + kv_off(s, b, h, s->v_col);
      float *S = att + ((size_t)b * H + h) * T * T;
      /* S[i, j] = scale * q_i . k_j, for the tiles on or below the diagonal */
      for (int i0 = 0; i0 < T; i0 += TILE)
        for (int j0 = 0; j0 <= i0; j0 += TILE)
          kd_gemm(S + (size_t)i0 * T + j0, T, Q + (size_t)i0 * ld, ld, 0, K + (size_t)j0 * ld, ld, 1,
                  tile_len(i0, T), tile_len(j0, T), hd, scale, 0.0f);
      causal_softmax(S, T);
      const float *P = S;
      if (p > 0.0f) {
        float *Pd = att_drop + ((size_t)b * H + h) * T * T;
        dropout_att(Pd, mask + ((size_t)b * H + h) * T * T, S, ids[b], h, key, p, T);
        P = Pd;
      }
      /* out_i = sum_j P[i, j] v_j */
      float *O = out + (size_t)b * T * ldo + (size_t)h * hd;
      for (int i0 = 0; i0 < T; i0 += TILE)
        for (int j0 = 0; j0 <= i0; j0 += TILE)
          kd_gemm(O + (size_t)i0 * ldo, ldo, P + (size_t)i0 * T + j0, T, 0, V + (size_t)j0 * ld, ld, 0, tile_len(i0, T),
                  hd, tile_len(j0, T), 1.0f, j0 == 0 ? 0.0f : 1.0f);
    }
}

void kd_attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv, const float *att,
                           const float *att_drop, const uint8_t *mask, float p, const kd_attn_shape *s) {
  const int T = s->T, H = s->H, hd = s->hd, ld = s->ld, ldo = H * hd;
  const float scale = 1.0f / sqrtf((float)hd), keep = p > 0.0f ? 1.0f / (1.0f - p) : 1.0f;
  memset(dqkv, 0, sizeof(float) * (size_t)s->B * T * ld);
  for (int b = 0; b < s->B; b++)
    for (int h = 0; h < H; h++) {
      const size_t oq = q_off(s, b, h), ok = kv_off(s, b, h, s->k_col), ov = kv_off(s, b, h, s->v_col);
      const size_t ah = ((size_t)b * H + h) * T * T;
      const float *Q = qkv + oq, *K = qkv + ok, *V = qkv + ov, *P = att + ah;
      const float *Pd = p > 0.0f ? att_drop + ah : P;
      float *dQ = dqkv + oq, *dK = dqkv + ok, *dV = dqkv + ov, *dS = scratch;
      const float *dO = dout + (size_t)b * T * ldo + (size_t)h * hd;
      for (int i0 = 0; i0 < T; i0 += TILE)
        for (int j0 = 0; j0 <= i0; j0 += TILE) {
          const int mi = tile_len(i0, T), mj = tile_len(j0, T);
          /* dP = dO V^T; dV += Pd^T dO */
          kd_gemm(dS + (size_t)i0 * T + j0, T, dO + (size_t)i0 * ldo, ldo, 0, V + (size_t)j0 * ld, ld, 1, mi, mj, hd,
                  1.0f, 0.0f);
          kd_gemm(dV + (size_t)j0 * ld, ld, Pd + (size_t)i0 * T + j0, T, 1, dO + (size_t)i0 * ldo, ldo, 0, mj, hd, mi,
                  1.0f, 1.0f);
        }
      softmax_backward(dS, P, p > 0.0f ? mask + ah : NULL, keep, scale, T);
      for (int i0 = 0; i0 < T; i0 += TILE)
        for (int j0 = 0; j0 <= i0; j0 += TILE) {
          const int mi = tile_len(i0, T), mj = tile_len(j0, T);
          const float *dSt = dS + (size_t)i0 * T + j0;
          /* dQ += dS K; dK += dS^T Q */
          kd_gemm(dQ + (size_t)i0 * ld, ld, dSt, T, 0, K + (size_t)j0 * ld, ld, 0, mi, hd, mj, 1.0f, 1.0f);
          kd_gemm(dK + (size_t)j0 * ld, ld, dSt, T, 1, Q + (size_t)i0 * ld, ld, 0, mj, hd, mi, 1.0f, 1.0f);
        }
    }
}

/* The scores' dot products and the softmax in the lanes and the fast exp of the training kernels (a plain float
 * loop is one dependency chain per score: at head size 32 it took most of a decode step). */
KD_HOT void kd_attention_cached(float *y, float *scores, const float *q, int ldq, const float *K, const float *V,
                                size_t stride, const int *pos, int n, int H, int G, int hd) {
  const int width = G * hd, group = H / G;
  const float scale = 1.0f / sqrtf((float)hd);
  for (int i = 0; i < n; i++) {
    const float *qi = q + (size_t)i * ldq, *Ki = K + (size_t)i * stride, *Vi = V + (size_t)i * stride;
    const int len = pos[i] + 1;
    for (int h = 0; h < H; h++) {
      const int g = h / group;
      float *sc = scores;
      for (int j = 0; j < len; j++) sc[j] = kd_lane_dot(qi + h * hd, Ki + (size_t)j * width + g * hd, hd) * scale;
      const float mx = kd_lane_max(sc, len);
      for (int j = 0; j < len; j++) sc[j] = kd_exp_fast(sc[j] - mx < -64.0f ? -64.0f : sc[j] - mx);
      const float inv = 1.0f / kd_lane_sum(sc, len);
      float *restrict yi = y + (size_t)i * H * hd + h * hd;
      for (int k = 0; k < hd; k++) yi[k] = 0.0f;
      for (int j = 0; j < len; j++) {
        const float pj = sc[j];
        const float *restrict v = Vi + (size_t)j * width + g * hd;
        for (int k = 0; k < hd; k++) yi[k] += pj * v[k];
      }
      for (int k = 0; k < hd; k++) yi[k] *= inv;
    }
  }
}

/* ---- the plain reference ---- */

void kd_attention_forward_ref(float *out, float *att, const float *qkv, const kd_attn_shape *s) {
  const int T = s->T, H = s->H, hd = s->hd, ld = s->ld;
  const double scale = 1.0 / sqrt((double)hd);
  for (int b = 0; b < s->B; b++)
    for (int h = 0; h < H; h++)
      for (int i = 0; i < T; i++) {
        const float *q = qkv + q_off(s, b, h) + (size_t)i * ld;
        float *P = att + (((size_t)b * H + h) * T + i) * T;
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j <= i; j++) {
          const float *k = qkv + kv_off(s, b, h, s->k_col) + (size_t)j * ld;
          double d = 0;
          for (int c = 0; c < hd; c++) d += (double)q[c] * k[c];
          P[j] = (float)(d * scale);
          if (P[j] > mx) mx = P[j];
        }
        for (int j = 0; j <= i; j++) sum += exp(P[j] - mx);
        for (int j = 0; j < T; j++) P[j] = j <= i ? (float)(exp(P[j] - mx) / sum) : 0.0f;
        float *o = out + ((size_t)b * T + i) * H * hd + (size_t)h * hd;
        for (int c = 0; c < hd; c++) {
          double acc = 0;
          for (int j = 0; j <= i; j++) acc += (double)P[j] * qkv[kv_off(s, b, h, s->v_col) + (size_t)j * ld + c];
          o[c] = (float)acc;
        }
      }
}

void kd_attention_backward_ref(float *dqkv, const float *dout, const float *qkv, const float *att,
                               const kd_attn_shape *s) {
  const int T = s->T, H = s->H, hd = s->hd, ld = s->ld;
  const double scale = 1.0 / sqrt((double)hd);
  memset(dqkv, 0, sizeof(float) * (size_t)s->B * T * ld);
  for (int b = 0; b < s->B; b++)
    for (int h = 0; h < H; h++)
      for (int i = 0; i < T; i++) {
        const float *P = att + (((size_t)b * H + h) * T + i) * T;
        const float *dO = dout + ((size_t)b * T + i) * H * hd + (size_t)h * hd;
        const size_t qi = q_off(s, b, h) + (size_t)i * ld;
        double dP[4096], dot = 0; /* T <= 4096 in the tests */
        for (int j = 0; j <= i; j++) {
          const size_t vj = kv_off(s, b, h, s->v_col) + (size_t)j * ld;
          double d = 0;
          for (int c = 0; c < hd; c++) {
            d += (double)dO[c] * qkv[vj + c];
            dqkv[vj + c] += (float)(P[j] * dO[c]);
          }
          dP[j] = d;
          dot += P[j] * d;
        }
        for (int j = 0; j <= i; j++) {
          const double dS = P[j] * (dP[j] - dot) * scale;
          const size_t kj = kv_off(s, b, h, s->k_col) + (size_t)j * ld;
          for (int c = 0; c < hd; c++) {
            dqkv[qi + c] += (float)(dS * qkv[kj + c]);
            dqkv[kj + c] += (float)(dS * qkv[qi + c]);
          }
        }
      }
}
