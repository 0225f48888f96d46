#include "nn/transformer.h"

#include <math.h>
#include <string.h>

#include "core/rng.h"
#include "nn/gemm.h"

void kd_layernorm_forward(float *y, float *mean, float *rstd, const float *x, const float *w, const float *b, int n,
                          int D) {
  for (int r = 0; r < n; r++) {
    const float *xr = x + (size_t)r * D;
    float *yr = y + (size_t)r * D;
    double s = 0, ss = 0;
    for (int j = 0; j < D; j++) s += xr[j];
    const float m = (float)(s / D);
    for (int j = 0; j < D; j++) {
      const double d = xr[j] - m;
      ss += d * d;
    }
    const float rs = 1.0f / sqrtf((float)(ss / D) + KD_LN_EPS);
    for (int j = 0; j < D; j++) yr[j] = (xr[j] - m) * rs * w[j] + b[j];
    mean[r] = m;
    rstd[r] = rs;
  }
}

void kd_layernorm_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                           const float *mean, const float *rstd, int n, int D) {
  for (int r = 0; r < n; r++) {
    const float *xr = x + (size_t)r * D, *dyr = dy + (size_t)r * D;
    float *dxr = dx + (size_t)r * D;
    const float m = mean[r], rs = rstd[r];
    /* with xhat = (x - m) * rs and g = dy * w: dx = rs * (g - mean(g) - xhat * mean(g * xhat)) */
    double sg = 0, sgx = 0;
    for (int j = 0; j < D; j++) {
      const float xh = (xr[j] - m) * rs, g = dyr[j] * w[j];
      sg += g;
      sgx += (double)g * xh;
      dw[j] += dyr[j] * xh;
      db[j] += dyr[j];
    }
    const float mg = (float)(sg / D), mgx = (float)(sgx / D);
    for (int j = 0; j < D; j++) {
      const float xh = (xr[j] - m) * rs;
      dxr[j] += rs * (dyr[j] * w[j] - mg - xh * mgx);
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

/* Row-wise softmax of S [T, T] over j <= i (in place), zero above the diagonal. */
static void causal_softmax(float *S, int T) {
  for (int i = 0; i < T; i++) {
    float *row = S + (size_t)i * T;
    float mx = row[0];
    for (int j = 1; j <= i; j++) mx = row[j] > mx ? row[j] : mx;
    float sum = 0.0f;
    for (int j = 0; j <= i; j++) {
      row[j] = expf(row[j] - mx);
      sum += row[j];
    }
    const float inv = 1.0f / sum;
    for (int j = 0; j <= i; j++) row[j] *= inv;
    for (int j = i + 1; j < T; j++) row[j] = 0.0f;
  }
}

static void dropout_att(float *Pd, uint8_t *mask, const float *P, int64_t id, int h, int H, uint64_t key, float p,
                        int T) {
  const float scale = 1.0f / (1.0f - p);
  const uint64_t rk = kd_mix64(key ^ (uint64_t)id);
  for (int i = 0; i < T; i++)
    for (int j = 0; j < T; j++) {
      const size_t k = (size_t)i * T + j;
      const uint8_t keep = j <= i && kd_uniform(rk, ((uint64_t)h * T + i) * T + j) >= p;
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
      /* through dropout and softmax: dS_ij = P_ij (dP_ij - sum_k P_ik dP_ik), times the score scale */
      for (int i = 0; i < T; i++) {
        float *row = dS + (size_t)i * T;
        const float *pr = P + (size_t)i * T;
        if (p > 0.0f) {
          const uint8_t *mr = mask + ah + (size_t)i * T;
          for (int j = 0; j <= i; j++) row[j] = mr[j] ? row[j] * keep : 0.0f;
        }
        float dot = 0.0f;
        for (int j = 0; j <= i; j++) dot += pr[j] * row[j];
        for (int j = 0; j <= i; j++) row[j] = pr[j] * (row[j] - dot) * scale;
        for (int j = i + 1; j < T && j < ((i / TILE) + 1) * TILE; j++) row[j] = 0.0f; /* the diagonal tile's upper part */
      }
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
