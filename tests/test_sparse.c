/* The sparse KD losses (top-k, top-k with a tail bin, sampled) and their
 * gradients against an fp64 reference written from the formulas (loss) and
 * central differences of it (gradient); the limits they must meet: top-k
 * with K = V is the dense loss, tail at T = 1 with the exact lse is the
 * dense loss over the top-k classes plus one merged bin, and the sampled
 * gradient averaged over many draws is the dense gradient. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/rng.h"
#include "kd/loss.h"

enum { C = 7, KMAX = 8 };

typedef struct case_t {
  kd_sparse_mode mode;
  int K;
  int32_t ids[KMAX];
  float vals[KMAX];
  float lse;
} case_t;

static void log_softmax(double *out, const double *z, int n, double scale) {
  double mx = -INFINITY, s = 0;
  for (int c = 0; c < n; c++) mx = fmax(mx, z[c] * scale);
  for (int c = 0; c < n; c++) s += exp(z[c] * scale - mx);
  for (int c = 0; c < n; c++) out[c] = z[c] * scale - mx - log(s);
}

/* One position's loss as docs/training.md writes it. */
static double ref_loss(const double *zs, const case_t *k, int y, double T, double alpha) {
  double lp[C], lps[C];
  log_softmax(lp, zs, C, 1.0);
  log_softmax(lps, zs, C, 1.0 / T);
  const double ce = y >= 0 ? -lp[y] : 0.0;
  double q[KMAX + 1], kl = 0.0;
  const int K = k->K;
  if (k->mode == KD_SPARSE_SAMPLED) {
    double n = 0;
    for (int i = 0; i < K; i++) n += k->vals[i];
    for (int i = 0; i < K; i++)
      if (k->vals[i] > 0) kl += k->vals[i] / n * (log(k->vals[i] / n) - lps[k->ids[i]]);
  } else if (k->mode == KD_SPARSE_TOPK) {
    double v[KMAX] = {0};
    for (int i = 0; i < K; i++) v[i] = k->vals[i];
    log_softmax(q, v, K, 1.0 / T);
    for (int i = 0; i < K; i++) kl += exp(q[i]) * (q[i] - lps[k->ids[i]]);
  } else { /* tail */
    double v[KMAX + 1], m = 0;
    for (int i = 0; i < K; i++) m += exp((double)k->vals[i]);
    for (int i = 0; i < K; i++) v[i] = k->vals[i];
    v[K] = log(exp((double)k->lse) - m);
    log_softmax(q, v, K + 1, 1.0 / T);
    for (int i = 0; i < K; i++) kl += exp(q[i]) * (q[i] - lps[k->ids[i]]);
    double off = 0;
    for (int c = 0; c < C; c++) {
      int hit = 0;
      for (int i = 0; i < K; i++) hit |= k->ids[i] == c;
      if (!hit) off += exp(lps[c]);
    }
    kl += exp(q[K]) * (q[K] - log(off));
  }
  const double soft = T * T * kl;
  return y >= 0 ? alpha * ce + (1 - alpha) * soft : soft;
}

static int run(float *dl, kd_loss_sums *s, const float *zs, const case_t *k, int y, float T, float alpha) {
  int32_t yy = y;
  kd_sparse_targets sp = {k->mode, k->K, k->ids, k->vals, &k->lse};
  kd_targets t = {&yy, NULL, NULL, NULL, &sp, NULL};
  kd_loss_cfg cfg = {alpha, T, {KD_DIV_FORWARD, 0.0}};
  kd_err e = {0};
  memset(s, 0, sizeof *s);
  return kd_loss_sparse_forward_backward(dl, s, zs, &t, 1, C, &cfg, 1.0f, &e);
}

static void check_case(const float *zs, const case_t *k, int y, float T, float alpha, const char *what) {
  double zd[C];
  for (int c = 0; c < C; c++) zd[c] = zs[c];
  float dl[C];
  kd_loss_sums s;
  CHECK(run(dl, &s, zs, k, y, T, alpha) == KD_OK, "%s: the loss failed", what);
  const double ref = ref_loss(zd, k, y, T, alpha);
  CHECK(check_close(s.loss, ref, 1e-9, 1e-9), "%s T=%g alpha=%g y=%d: loss %.12g, reference %.12g", what, T, alpha, y,
        s.loss, ref);
  for (int c = 0; c < C; c++) {
    const double h = 1e-6 * fmax(1.0, fabs(zd[c]));
    double zp[C], zm[C];
    memcpy(zp, zd, sizeof zp);
    memcpy(zm, zd, sizeof zm);
    zp[c] += h;
    zm[c] -= h;
    const double g = (ref_loss(zp, k, y, T, alpha) - ref_loss(zm, k, y, T, alpha)) / (2 * h);
    CHECK(check_close(dl[c], g, 2e-5, 2e-6), "%s T=%g alpha=%g y=%d: dlogit[%d] %.9g, reference %.9g", what, T, alpha,
          y, c, dl[c], g);
  }
}

/* The teacher's K largest logits (K <= C) and the full lse. */
static void top_k(case_t *k, const float *zt, int K) {
  int used[C] = {0};
  k->K = K;
  for (int i = 0; i < K; i++) {
    int best = -1;
    for (int c = 0; c < C; c++)
      if (!used[c] && (best < 0 || zt[c] > zt[best])) best = c;
    used[best] = 1;
    k->ids[i] = best;
    k->vals[i] = zt[best];
  }
  double mx = -INFINITY, s = 0;
  for (int c = 0; c < C; c++) mx = fmax(mx, zt[c]);
  for (int c = 0; c < C; c++) s += exp(zt[c] - mx);
  k->lse = (float)(mx + log(s));
}

static void random_logits(float *z, uint64_t key, double scale) {
  for (int c = 0; c < C; c++) z[c] = (float)(scale * kd_normal(key, (uint64_t)c));
}

static void test_against_reference(void) {
  const float Ts[3] = {1.0f, 2.0f, 4.0f}, alphas[2] = {0.0f, 0.5f};
  const int ys[3] = {3, -1, 0};
  for (int trial = 0; trial < 6; trial++) {
    float zs[C], zt[C];
    random_logits(zs, kd_key(7, 1, (uint64_t)trial, 0), 1.5);
    random_logits(zt, kd_key(7, 2, (uint64_t)trial, 0), 2.0);
    case_t topk, tail, sampled = {KD_SPARSE_SAMPLED, 4, {5, 1, 2, 0}, {3, 0, 1, 2}, 0};
    top_k(&topk, zt, 3);
    topk.mode = KD_SPARSE_TOPK;
    tail = topk;
    tail.mode = KD_SPARSE_TAIL;
    for (int a = 0; a < 3; a++)
      for (int b = 0; b < 2; b++) {
        const int y = ys[(trial + a + b) % 3];
        check_case(zs, &topk, y, Ts[a], alphas[b], "topk");
        check_case(zs, &tail, y, Ts[a], alphas[b], "tail");
        check_case(zs, &sampled, y, Ts[a], alphas[b], "sampled");
      }
  }
}

/* Dense loss and gradient of one position. */
static void dense(float *dl, kd_loss_sums *s, const float *zs, const float *zt, int y, float T, float alpha) {
  int32_t yy = y;
  kd_targets t = {&yy, zt, NULL, NULL, NULL, NULL};
  kd_loss_cfg cfg = {alpha, T, {KD_DIV_FORWARD, 0.0}};
  memset(s, 0, sizeof *s);
  kd_loss_forward_backward_ref(dl, s, zs, &t, 1, C, &cfg, 1.0f);
}

static void test_topk_full_is_dense(void) {
  for (int trial = 0; trial < 4; trial++) {
    float zs[C], zt[C], d1[C], d2[C];
    random_logits(zs, kd_key(8, 1, (uint64_t)trial, 0), 2.0);
    random_logits(zt, kd_key(8, 2, (uint64_t)trial, 0), 2.0);
    case_t k;
    top_k(&k, zt, C);
    k.mode = KD_SPARSE_TOPK;
    kd_loss_sums a, b;
    const float T = trial % 2 ? 2.0f : 1.0f;
    const int y = trial == 3 ? -1 : trial;
    dense(d1, &a, zs, zt, y, T, 0.3f);
    run(d2, &b, zs, &k, y, T, 0.3f);
    CHECK(check_close(a.loss, b.loss, 1e-12, 1e-12), "topk K=V: loss %.15g, dense %.15g", b.loss, a.loss);
    CHECK(check_close(a.kd, b.kd, 1e-12, 1e-12), "topk K=V: kd %.15g, dense %.15g", b.kd, a.kd);
    for (int c = 0; c < C; c++)
      CHECK(check_close(d1[c], d2[c], 1e-6, 1e-7), "topk K=V: dlogit[%d] %.9g, dense %.9g", c, d2[c], d1[c]);
    k.mode = KD_SPARSE_TAIL; /* with K = V there is no tail: the same */
    run(d2, &b, zs, &k, y, T, 0.3f);
    CHECK(check_close(a.loss, b.loss, 1e-6, 1e-7), "tail K=V: loss %.15g, dense %.15g", b.loss, a.loss);
  }
}

/* At T = 1: KL(teacher || student) over the top-k classes and one bin of all the others, from the dense logits. */
static void test_tail_is_merged_dense(void) {
  for (int trial = 0; trial < 4; trial++) {
    float zs[C], zt[C];
    random_logits(zs, kd_key(9, 1, (uint64_t)trial, 0), 2.0);
    random_logits(zt, kd_key(9, 2, (uint64_t)trial, 0), 2.0);
    case_t k;
    top_k(&k, zt, 1 + trial % 4);
    k.mode = KD_SPARSE_TAIL;
    double zsd[C], ztd[C], lps[C], lpt[C];
    for (int c = 0; c < C; c++) zsd[c] = zs[c], ztd[c] = zt[c];
    log_softmax(lps, zsd, C, 1.0);
    log_softmax(lpt, ztd, C, 1.0);
    double kl = 0, pt_off = 0, ps_off = 0;
    for (int c = 0; c < C; c++) {
      int hit = 0;
      for (int i = 0; i < k.K; i++) hit |= k.ids[i] == c;
      if (hit)
        kl += exp(lpt[c]) * (lpt[c] - lps[c]);
      else
        pt_off += exp(lpt[c]), ps_off += exp(lps[c]);
    }
    kl += pt_off * (log(pt_off) - log(ps_off));
    float dl[C];
    kd_loss_sums s;
    run(dl, &s, zs, &k, -1, 1.0f, 0.0f);
    CHECK(check_close(s.kd, kl, 1e-6, 1e-9), "tail T=1 K=%d: %.12g, merged dense %.12g", k.K, s.kd, kl);
  }
}

/* The soft gradient from S draws of the teacher's softmax at T, averaged over many draws, against the dense
 * gradient: each component within 5 standard errors of the mean (estimated from the draws) + 1e-6. */
static void test_sampled_unbiased(void) {
  enum { S = 8, DRAWS = 20000 };
  const float T = 2.0f;
  float zs[C], zt[C], gd[C];
  random_logits(zs, kd_key(10, 1, 0, 0), 1.0);
  random_logits(zt, kd_key(10, 2, 0, 0), 2.0);
  kd_loss_sums s;
  dense(gd, &s, zs, zt, -1, T, 0.0f);
  double cdf[C], acc = 0, mx = -INFINITY;
  for (int c = 0; c < C; c++) mx = fmax(mx, zt[c] / T);
  for (int c = 0; c < C; c++) cdf[c] = (acc += exp(zt[c] / T - mx));
  double sum[C] = {0}, sumsq[C] = {0}, topk_bias = 0;
  for (int d = 0; d < DRAWS; d++) {
    case_t k = {KD_SPARSE_SAMPLED, 0, {0}, {0}, 0};
    const uint64_t key = kd_key(11, 3, (uint64_t)d, 0);
    for (int i = 0; i < S; i++) {
      const double u = kd_uniform(key, (uint64_t)i) * acc;
      int c = 0;
      while (c < C - 1 && cdf[c] <= u) c++;
      int slot = 0;
      while (slot < k.K && k.ids[slot] != c) slot++;
      if (slot == k.K) k.ids[k.K++] = c;
      k.vals[slot] += 1.0f;
    }
    float g[C];
    run(g, &s, zs, &k, -1, T, 0.0f);
    for (int c = 0; c < C; c++) sum[c] += g[c], sumsq[c] += (double)g[c] * g[c];
  }
  for (int c = 0; c < C; c++) {
    const double mean = sum[c] / DRAWS, var = sumsq[c] / DRAWS - mean * mean, se = sqrt(var / DRAWS);
    CHECK(fabs(mean - gd[c]) <= 5 * se + 1e-6, "sampled: mean gradient[%d] %.6g over %d draws, dense %.6g (5 SE %.3g)", c,
          mean, DRAWS, gd[c], 5 * se);
    topk_bias += fabs(mean - gd[c]);
  }
  /* and the renormalised top-3 is biased: its gradient is far from the dense one here */
  case_t k;
  top_k(&k, zt, 3);
  k.mode = KD_SPARSE_TOPK;
  float g[C];
  run(g, &s, zs, &k, -1, T, 0.0f);
  double dist = 0;
  for (int c = 0; c < C; c++) dist += fabs(g[c] - gd[c]);
  CHECK(dist > 10 * topk_bias, "topk K=3 should be biased: |g - dense| %.3g, sampled's %.3g", dist, topk_bias);
}

static void test_edges(void) {
  float zs[C] = {1e4f, -1e4f, 0, 3, -2, 5e3f, 1}, dl[C];
  case_t k = {KD_SPARSE_TAIL, 2, {0, 5}, {8e3f, 1e4f}, 1e4f + 0.5f};
  kd_loss_sums s;
  run(dl, &s, zs, &k, 2, 2.0f, 0.5f);
  int finite = isfinite(s.loss);
  for (int c = 0; c < C; c++) finite &= isfinite(dl[c]);
  CHECK(finite, "logits of +-1e4: loss %g", s.loss);
  /* a position that is no target: no gradient, not counted */
  int32_t y = KD_Y_IGNORE;
  kd_sparse_targets sp = {KD_SPARSE_TOPK, 2, k.ids, k.vals, NULL};
  kd_targets t = {&y, NULL, NULL, NULL, &sp, NULL};
  kd_loss_cfg cfg = {0.5f, 2.0f, {KD_DIV_FORWARD, 0.0}};
  kd_err e = {0};
  memset(&s, 0, sizeof s);
  for (int c = 0; c < C; c++) dl[c] = 1.0f;
  kd_loss_sparse_forward_backward(dl, &s, zs, &t, 1, C, &cfg, 1.0f, &e);
  int zero = 1;
  for (int c = 0; c < C; c++) zero &= dl[c] == 0.0f;
  CHECK(zero && s.rows == 0, "ignored position: gradient zero and not counted (rows %g)", s.rows);
  /* all counts 0: no soft term, the hard term alone */
  case_t none = {KD_SPARSE_SAMPLED, 2, {1, 2}, {0, 0}, 0};
  float zz[C] = {0.1f, 0.2f, -0.3f, 0.4f, 0.5f, -0.6f, 0.7f};
  run(dl, &s, zz, &none, 3, 2.0f, 0.5f);
  CHECK(s.kd == 0 && check_close(s.loss, 0.5 * s.ce, 1e-12, 1e-12), "counts all 0: loss %g, 0.5 * CE %g", s.loss,
        0.5 * s.ce);
}

int main(void) {
  test_against_reference();
  test_topk_full_is_dense();
  test_tail_is_merged_dense();
  test_sampled_unbiased();
  test_edges();
  return check_summary("test_sparse");
}
