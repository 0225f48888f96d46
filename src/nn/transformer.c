#include "nn/transformer.h"

#include <math.h>
#include <string.h>

#include "core/rng.h"
#include "nn/fastmath.h"
#include "nn/gemm.h"
#include "nn/simd.h"

/* Row sums in eight lanes, added in a fixed order: vectorized, and the same
 * result on every node and rank count. */
static inline float lane_sum(const float *x, int D) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int j = 0;
  for (; j + 8 <= D; j += 8)
    for (int k = 0; k < 8; k++) acc[k] += x[j + k];
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; j < D; j++) s += x[j];
  return s;
}

static inline float lane_sq_dev(const float *x, float m, int D) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int j = 0;
  for (; j + 8 <= D; j += 8)
    for (int k = 0; k < 8; k++) {
      const float d = x[j + k] - m;
      acc[k] += d * d;
    }
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; j < D; j++) s += (x[j] - m) * (x[j] - m);
  return s;
}

/* One row of LayerNorm (two passes over a row that stays in L1). */
static inline void ln_row(float *restrict y, float *mean, float *rstd, const float *restrict x,
                          const float *restrict w, const float *restrict b, int D) {
  const float m = lane_sum(x, D) / (float)D;
  const float rs = 1.0f / sqrtf(lane_sq_dev(x, m, D) / (float)D + KD_LN_EPS);
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
      const float *e = wte + (size_t)tokens[(size_t)b * T + t] * D, *p = wpe + (size_t)t * D;
      for (int j = 0; j < D; j++) xr[j] = e[j] + p[j];
    }
}

void kd_embed_backward(float *dwte, float *dwpe, const float *dx, const int32_t *tokens, int B, int T, int D) {
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++) {
      const float *g = dx + ((size_t)b * T + t) * D;
      float *e = dwte + (size_t)tokens[(size_t)b * T + t] * D, *p = dwpe + (size_t)t * D;
      for (int j = 0; j < D; j++) {
        e[j] += g[j];
        p[j] += g[j];
      }
    }
}

/* ---- causal attention, tiled ---- */

enum { TILE = 64 };

static inline int tile_len(int t0, int T) { return T - t0 < TILE ? T - t0 : TILE; }

double kd_attention_pairs(int T) {
  double s = 0;
  for (int i0 = 0; i0 < T; i0 += TILE)
    for (int j0 = 0; j0 <= i0; j0 += TILE) s += (double)tile_len(i0, T) * tile_len(j0, T);
  return s;
}

static inline float lane_max(const float *x, int len) {
  float acc[8];
  for (int k = 0; k < 8; k++) acc[k] = x[0];
  int j = 0;
  for (; j + 8 <= len; j += 8)
    for (int k = 0; k < 8; k++) acc[k] = x[j + k] > acc[k] ? x[j + k] : acc[k];
  float mx = acc[0];
  for (int k = 1; k < 8; k++) mx = acc[k] > mx ? acc[k] : mx;
  for (; j < len; j++) mx = x[j] > mx ? x[j] : mx;
  return mx;
}

/* Row-wise softmax of S [T, T] over j <= i (in place), zero above the diagonal. */
KD_HOT static void causal_softmax(float *S, int T) {
  for (int i = 0; i < T; i++) {
    float *row = S + (size_t)i * T;
    const int len = i + 1;
    const float mx = lane_max(row, len);
    /* exp(-64) and below: kept as exp(-64), so no probability is a denormal (a microcode assist on x86);
     * written so that a NaN score stays NaN (and --on-nonfinite sees it) */
    for (int j = 0; j < len; j++) row[j] = kd_exp_fast(row[j] - mx < -64.0f ? -64.0f : row[j] - mx);
    const float inv = 1.0f / lane_sum(row, len);
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
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int j = 0;
    for (; j + 8 <= len; j += 8)
      for (int k = 0; k < 8; k++) acc[k] += pr[j + k] * row[j + k];
    float dot = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; j < len; j++) dot += pr[j] * row[j];
    for (j = 0; j < len; j++) row[j] = pr[j] * (row[j] - dot) * scale;
    const int tile_end = ((i / TILE) + 1) * TILE < T ? ((i / TILE) + 1) * TILE : T;
    for (j = len; j < tile_end; j++) row[j] = 0.0f;
  }
}

static void dropout_att(float *Pd, uint8_t *mask, const float *P, int64_t id, int h, int H, uint64_t key, float p,
                        int T) {
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
  (void)H;
}

void kd_attention_forward(float *out, float *att, float *att_drop, uint8_t *mask, const float *qkv,
                          const int64_t *ids, uint64_t key, float p, int B, int T, int D, int H) {
  const int hd = D / H, ld = 3 * D;
  const float scale = 1.0f / sqrtf((float)hd);
  for (int b = 0; b < B; b++)
    for (int h = 0; h < H; h++) {
      const float *Q = qkv + (size_t)b * T * ld + (size_t)h * hd, *K = Q + D, *V = Q + 2 * D;
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
        dropout_att(Pd, mask + ((size_t)b * H + h) * T * T, S, ids[b], h, H, key, p, T);
        P = Pd;
      }
      /* out_i = sum_j P[i, j] v_j */
      float *O = out + (size_t)b * T * D + (size_t)h * hd;
      for (int i0 = 0; i0 < T; i0 += TILE)
        for (int j0 = 0; j0 <= i0; j0 += TILE)
          kd_gemm(O + (size_t)i0 * D, D, P + (size_t)i0 * T + j0, T, 0, V + (size_t)j0 * ld, ld, 0, tile_len(i0, T),
                  hd, tile_len(j0, T), 1.0f, j0 == 0 ? 0.0f : 1.0f);
    }
}

void kd_attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv, const float *att,
                           const float *att_drop, const uint8_t *mask, float p, int B, int T, int D, int H) {
  const int hd = D / H, ld = 3 * D;
  const float scale = 1.0f / sqrtf((float)hd), keep = p > 0.0f ? 1.0f / (1.0f - p) : 1.0f;
  memset(dqkv, 0, sizeof(float) * (size_t)B * T * ld);
  for (int b = 0; b < B; b++)
    for (int h = 0; h < H; h++) {
      const size_t off = (size_t)b * T * ld + (size_t)h * hd, ah = ((size_t)b * H + h) * T * T;
      const float *Q = qkv + off, *K = Q + D, *V = Q + 2 * D, *P = att + ah;
      const float *Pd = p > 0.0f ? att_drop + ah : P;
      float *dQ = dqkv + off, *dK = dQ + D, *dV = dQ + 2 * D, *dS = scratch;
      const float *dO = dout + (size_t)b * T * D + (size_t)h * hd;
      for (int i0 = 0; i0 < T; i0 += TILE)
        for (int j0 = 0; j0 <= i0; j0 += TILE) {
          const int mi = tile_len(i0, T), mj = tile_len(j0, T);
          /* dP = dO V^T; dV += Pd^T dO */
          kd_gemm(dS + (size_t)i0 * T + j0, T, dO + (size_t)i0 * D, D, 0, V + (size_t)j0 * ld, ld, 1, mi, mj, hd, 1.0f,
                  0.0f);
          kd_gemm(dV + (size_t)j0 * ld, ld, Pd + (size_t)i0 * T + j0, T, 1, dO + (size_t)i0 * D, D, 0, mj, hd, mi,
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

/* ---- the plain reference ---- */

void kd_attention_forward_ref(float *out, float *att, const float *qkv, int B, int T, int D, int H) {
  const int hd = D / H, ld = 3 * D;
  const double scale = 1.0 / sqrt((double)hd);
  for (int b = 0; b < B; b++)
    for (int h = 0; h < H; h++)
      for (int i = 0; i < T; i++) {
        const float *q = qkv + ((size_t)b * T + i) * ld + (size_t)h * hd;
        float *P = att + (((size_t)b * H + h) * T + i) * T;
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j <= i; j++) {
          const float *k = qkv + ((size_t)b * T + j) * ld + D + (size_t)h * hd;
          double s = 0;
          for (int c = 0; c < hd; c++) s += (double)q[c] * k[c];
          P[j] = (float)(s * scale);
          if (P[j] > mx) mx = P[j];
        }
        for (int j = 0; j <= i; j++) sum += exp(P[j] - mx);
        for (int j = 0; j < T; j++) P[j] = j <= i ? (float)(exp(P[j] - mx) / sum) : 0.0f;
        float *o = out + ((size_t)b * T + i) * D + (size_t)h * hd;
        for (int c = 0; c < hd; c++) {
          double acc = 0;
          for (int j = 0; j <= i; j++) acc += (double)P[j] * qkv[((size_t)b * T + j) * ld + 2 * D + (size_t)h * hd + c];
          o[c] = (float)acc;
        }
      }
}

void kd_attention_backward_ref(float *dqkv, const float *dout, const float *qkv, const float *att, int B, int T, int D,
                               int H) {
  const int hd = D / H, ld = 3 * D;
  const double scale = 1.0 / sqrt((double)hd);
  memset(dqkv, 0, sizeof(float) * (size_t)B * T * ld);
  for (int b = 0; b < B; b++)
    for (int h = 0; h < H; h++)
      for (int i = 0; i < T; i++) {
        const float *P = att + (((size_t)b * H + h) * T + i) * T;
        const float *dO = dout + ((size_t)b * T + i) * D + (size_t)h * hd;
        const size_t qi = ((size_t)b * T + i) * ld + (size_t)h * hd;
        double dP[4096], dot = 0; /* T <= 4096 in the tests */
        for (int j = 0; j <= i; j++) {
          const size_t vj = ((size_t)b * T + j) * ld + 2 * D + (size_t)h * hd;
          double s = 0;
          for (int c = 0; c < hd; c++) {
            s += (double)dO[c] * qkv[vj + c];
            dqkv[vj + c] += (float)(P[j] * dO[c]);
          }
          dP[j] = s;
          dot += P[j] * s;
        }
        for (int j = 0; j <= i; j++) {
          const double dS = P[j] * (dP[j] - dot) * scale;
          const size_t kj = ((size_t)b * T + j) * ld + D + (size_t)h * hd;
          for (int c = 0; c < hd; c++) {
            dqkv[qi + c] += (float)(dS * qkv[kj + c]);
            dqkv[kj + c] += (float)(dS * qkv[qi + c]);
          }
        }
      }
}
