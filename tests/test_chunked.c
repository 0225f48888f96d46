/* The large-vocabulary loss: the dense rows' pass (each exp once, in float)
 * against the plain double-precision loss at V = 1000; and the head GEMM +
 * loss in chunks against the whole computed naively in double (logits
 * x W^T, the reference loss, dx = dz W, dW = dz^T x), for chunks of 1, 7
 * and all positions, with dense, sparse (tail, top-k, sampled) and no teacher
 * targets: the fast passes against the reference losses. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/rng.h"
#include "kd/loss.h"

enum { V = 1000, N = 20, D = 12, K = 6 };

static float rnd(uint64_t key, uint64_t i, double s) { return (float)(s * kd_normal(key, i)); }

static void test_dense_rows(void) {
  static float zs[N * V], zt[N * V], d1[N * V], d2[N * V];
  int32_t y[N];
  for (int i = 0; i < N * V; i++) zs[i] = rnd(1, (uint64_t)i, 3.0), zt[i] = rnd(2, (uint64_t)i, 3.0);
  for (int b = 0; b < N; b++) y[b] = b % 5 == 0 ? -1 : b % 7 == 3 ? KD_Y_IGNORE : (b * 37) % V;
  for (int teach = 0; teach < 2; teach++)
    for (int k = 0; k < 2; k++) {
      const float T = k ? 2.0f : 1.0f;
      kd_targets t = {y, teach ? zt : NULL, NULL, NULL, NULL, NULL};
      kd_loss_cfg cfg = {0.3f, T, {KD_DIV_FORWARD, 0.0}};
      kd_loss_sums a = {0}, b = {0};
      kd_err e = {0};
      kd_loss_forward_backward_ref(d1, &a, zs, &t, N, V, &cfg, 0.5f);
      CHECK(kd_loss_dense_rows(d2, &b, zs, &t, N, V, &cfg, 0.5f, &e) == KD_OK, "dense rows failed");
      CHECK(check_close(a.loss, b.loss, 2e-6, 1e-7), "dense rows T=%g teacher=%d: loss %.9g, reference %.9g", T, teach,
            b.loss, a.loss);
      CHECK(check_close(a.kd, b.kd, 2e-6, 1e-7) && a.rows == b.rows && a.correct == b.correct,
            "dense rows T=%g teacher=%d: kd %.9g vs %.9g, rows %g vs %g", T, teach, b.kd, a.kd, b.rows, a.rows);
      double worst = 0;
      for (int i = 0; i < N * V; i++) worst = fmax(worst, fabs(d1[i] - d2[i]));
      CHECK(worst < 1e-7, "dense rows T=%g teacher=%d: gradient off by %.3g", T, teach, worst);
    }
}

/* The whole head and loss in double from the same inputs: loss sums and dx [N, D], dW [V, D]. */
static void reference(kd_loss_sums *s, double *dx, double *dw, const float *x, const float *w, const kd_targets *t,
                      const kd_loss_cfg *cfg, float scale) {
  static float z[N * V], dz[N * V];
  for (int p = 0; p < N; p++)
    for (int v = 0; v < V; v++) {
      double acc = 0;
      for (int d = 0; d < D; d++) acc += (double)x[p * D + d] * w[v * D + d];
      z[p * V + v] = (float)acc;
    }
  kd_err e = {0};
  if (t->sparse)
    kd_loss_sparse_forward_backward(dz, s, z, t, N, V, cfg, scale, &e);
  else
    kd_loss_forward_backward_ref(dz, s, z, t, N, V, cfg, scale);
  memset(dx, 0, sizeof(double) * N * D);
  memset(dw, 0, sizeof(double) * V * D);
  for (int p = 0; p < N; p++)
    for (int v = 0; v < V; v++)
      for (int d = 0; d < D; d++) {
        dx[p * D + d] += (double)dz[p * V + v] * w[v * D + d];
        dw[v * D + d] += (double)dz[p * V + v] * x[p * D + d];
      }
}

static void test_chunked(void) {
  static float x[N * D], w[V * D], zt[N * V], dx[N * D], dw[V * D];
  static double rdx[N * D], rdw[V * D];
  static int32_t ids[N * K];
  static float vals[N * K], lse[N];
  int32_t y[N];
  for (int i = 0; i < N * D; i++) x[i] = rnd(3, (uint64_t)i, 1.0);
  for (int i = 0; i < V * D; i++) w[i] = rnd(4, (uint64_t)i, 0.5);
  for (int i = 0; i < N * V; i++) zt[i] = rnd(5, (uint64_t)i, 2.0);
  for (int b = 0; b < N; b++) y[b] = b % 6 == 1 ? -1 : b % 9 == 4 ? KD_Y_IGNORE : (b * 53) % V;
  for (int p = 0; p < N; p++) {
    for (int k = 0; k < K; k++) ids[p * K + k] = (p * 131 + k * 97) % V, vals[p * K + k] = 4.0f - 0.5f * k;
    lse[p] = 6.0f;
  }
  static float counts[N * K];
  for (int i = 0; i < N * K; i++) counts[i] = (float)(i % 4); /* some slots unused (0) */
  kd_sparse_targets sp = {KD_SPARSE_TAIL, K, ids, vals, lse}, sk = {KD_SPARSE_TOPK, K, ids, vals, NULL},
                    ss = {KD_SPARSE_SAMPLED, K, ids, counts, NULL};
  const kd_targets targets[5] = {{y, zt, NULL, NULL, NULL, NULL},
                                 {y, NULL, NULL, NULL, &sp, NULL},
                                 {y, NULL, NULL, NULL, &sk, NULL},
                                 {y, NULL, NULL, NULL, &ss, NULL},
                                 {y, NULL, NULL, NULL, NULL, NULL}};
  const char *names[5] = {"dense", "sparse tail", "sparse topk", "sampled", "hard labels"};
  const int chunks[3] = {1, 7, N};
  const kd_loss_cfg cfg = {0.4f, 2.0f, {KD_DIV_FORWARD, 0.0}};
  float *work = malloc(sizeof(float) * kd_loss_chunk_floats(N, V));
  for (int k = 0; k < 5; k++) {
    kd_loss_sums r = {0};
    reference(&r, rdx, rdw, x, w, &targets[k], &cfg, 0.25f);
    for (int c = 0; c < 3; c++) {
      kd_loss_sums s = {0};
      memset(dw, 0, sizeof dw);
      kd_head h = {x, w, dw, dx, N, D, V};
      kd_err e = {0};
      CHECK(kd_loss_chunked(&s, &h, &targets[k], &cfg, 0.25f, 1, work, chunks[c], NULL, &e) == KD_OK, "chunked failed");
      CHECK(check_close(s.loss, r.loss, 1e-5, 1e-6), "%s, chunks of %d: loss %.9g, reference %.9g", names[k], chunks[c],
            s.loss, r.loss);
      double ex = 0, ew = 0, mx = 0, mw = 0;
      for (int i = 0; i < N * D; i++) ex = fmax(ex, fabs(dx[i] - rdx[i])), mx = fmax(mx, fabs(rdx[i]));
      for (int i = 0; i < V * D; i++) ew = fmax(ew, fabs(dw[i] - rdw[i])), mw = fmax(mw, fabs(rdw[i]));
      CHECK(ex <= 1e-5 * mx && ew <= 1e-5 * mw, "%s, chunks of %d: dx off by %.3g (of %.3g), dW by %.3g (of %.3g)",
            names[k], chunks[c], ex, mx, ew, mw);
    }
  }
  /* the other divergences through the chunks (their rows against central differences: test_divergence) */
  const kd_divergence divs[3] = {{KD_DIV_REVERSE, 0.0}, {KD_DIV_JSD, 0.5}, {KD_DIV_SKEW, 0.1}};
  for (int k = 0; k < 3; k++) {
    const kd_loss_cfg dc = {0.4f, 2.0f, divs[k]};
    kd_loss_sums r = {0}, f = {0};
    reference(&f, rdx, rdw, x, w, &targets[0], &cfg, 0.25f); /* forward: the divergences differ from it */
    reference(&r, rdx, rdw, x, w, &targets[0], &dc, 0.25f);  /* rdx, rdw: this divergence's */
    CHECK(fabs(r.kd - f.kd) > 1e-3 * fabs(f.kd), "divergence %d gives forward's kd %.9g", k, r.kd);
    kd_loss_sums s = {0};
    memset(dw, 0, sizeof dw);
    kd_head h = {x, w, dw, dx, N, D, V};
    kd_err e = {0};
    CHECK(kd_loss_chunked(&s, &h, &targets[0], &dc, 0.25f, 1, work, 7, NULL, &e) == KD_OK, "chunked failed");
    double ex = 0, ew = 0, mx = 0, mw = 0;
    for (int i = 0; i < N * D; i++) ex = fmax(ex, fabs(dx[i] - rdx[i])), mx = fmax(mx, fabs(rdx[i]));
    for (int i = 0; i < V * D; i++) ew = fmax(ew, fabs(dw[i] - rdw[i])), mw = fmax(mw, fabs(rdw[i]));
    CHECK(check_close(s.loss, r.loss, 1e-5, 1e-6) && ex <= 1e-5 * mx && ew <= 1e-5 * mw,
          "divergence %d, chunks of 7: loss %.9g vs %.9g, dx off by %.3g, dW by %.3g", k, s.loss, r.loss, ex, ew);
    kd_err se = {0};
    const kd_targets sparse = targets[2];
    CHECK(kd_loss_chunked(&s, &h, &sparse, &dc, 0.25f, 1, work, 7, NULL, &se) == KD_ERR_USAGE,
          "chunked sparse targets took divergence %d", k);
  }
  free(work);
}

int main(void) {
  test_dense_rows();
  test_chunked();
  return check_summary("test_chunked");
}
