/* The llama student's layers (issue 27), each kernel against its plain
 * reference and by finite differences: RMSNorm (and its fused residual),
 * RoPE, SwiGLU, grouped-query attention (G = 1 multi-query, G = 2, G = H;
 * across tile boundaries; with dropout); every parameter of whole tiny
 * llamas (untied, tied, multi-query, with attention dropout) through the
 * per-token KD loss; hidden-state and q/k/v injections; the key/value cache
 * (G heads cached) against the full forward at every position, and after a
 * beam-search reorder. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "decode_check.h"
#include "core/rng.h"
#include "kd/loss.h"
#include "models/llama.h"
#include "nn/attention.h"
#include "nn/norm.h"
#include "nn/rope.h"
#include "nn/swiglu.h"

static double rel(double a, double b) { return fabs(a - b) / (1e-2 + fabs(a) + fabs(b)); }

/* Central differences at h and h/2 combined (Richardson): the h^2 error term cancels, which the tied embedding
 * (an input and the head at once) and a key shared by four query heads need. */
static double richardson(double d_h, double d_half) { return (4.0 * d_half - d_h) / 3.0; }

/* ---- kernels ---- */

static void rmsnorm_checks(void) {
  enum { N = 3, D = 259 };
  float x[N * D], w[D], ya[N * D], yb[N * D], ra[N], rb[N], br[N * D], out[N * D], yc[N * D], rc[N];
  for (int i = 0; i < N * D; i++) x[i] = 2.0f + (float)kd_normal(11, i), br[i] = (float)kd_normal(12, i);
  for (int j = 0; j < D; j++) w[j] = 1.0f + 0.2f * (float)kd_normal(13, j);
  kd_rmsnorm_forward(ya, ra, x, w, 1e-5f, N, D);
  kd_rmsnorm_forward_ref(yb, rb, x, w, 1e-5f, N, D);
  double worst = 0;
  for (int i = 0; i < N * D; i++) worst = fmax(worst, fabs(ya[i] - yb[i]));
  CHECK(worst < 1e-5, "rmsnorm differs from the double reference by %.3g", worst);
  /* the fused residual equals the add then the norm, bit for bit */
  kd_residual_rmsnorm_forward(out, yc, rc, x, br, w, 1e-5f, N, D);
  for (int i = 0; i < N * D; i++) x[i] += br[i];
  kd_rmsnorm_forward(ya, ra, x, w, 1e-5f, N, D);
  CHECK(!memcmp(out, x, sizeof x) && !memcmp(yc, ya, sizeof ya), "residual + rmsnorm differs from add, then rmsnorm");
  /* gradients of sum(y * r) */
  enum { M = 3, E = 9 };
  float xs[M * E], ws[E], y[M * E], r[M * E], rs[M], dx[M * E] = {0}, dw[E] = {0};
  for (int i = 0; i < M * E; i++) xs[i] = (float)kd_normal(14, i), r[i] = (float)kd_normal(15, i);
  for (int j = 0; j < E; j++) ws[j] = 1.0f + 0.3f * (float)kd_normal(16, j);
  kd_rmsnorm_forward(y, rs, xs, ws, 1e-5f, M, E);
  kd_rmsnorm_backward(dx, dw, r, xs, ws, rs, M, E);
  float *vars[2] = {xs, ws}, *grads[2] = {dx, dw};
  const int lens[2] = {M * E, E};
  worst = 0;
  for (int v = 0; v < 2; v++)
    for (int i = 0; i < lens[v]; i++) {
      const float p0 = vars[v][i], h = 1e-3f;
      double l[2];
      for (int s = 0; s < 2; s++) {
        vars[v][i] = p0 + (s ? -h : h);
        kd_rmsnorm_forward(y, rs, xs, ws, 1e-5f, M, E);
        l[s] = 0;
        for (int k = 0; k < M * E; k++) l[s] += (double)y[k] * r[k];
      }
      vars[v][i] = p0;
      worst = fmax(worst, rel((l[0] - l[1]) / (2 * h), grads[v][i]));
    }
  CHECK(worst < 5e-3, "rmsnorm gradient off by %.3g", worst);
}

/* RoPE on two of three column blocks of rows of ld (heads of width 8) against its reference, its inverse, and
 * its gradient by finite differences. */
static void rope_checks(void) {
  enum { T = 13, HEADS = 2, HD = 8, LD = 3 * HEADS * HD, COL = HEADS * HD, N = 2 * T };
  const int half = HD / 2;
  float cs[T * HD / 2], sn[T * HD / 2], x[N * LD], a[N * LD], b[N * LD], r[N * LD], g[N * LD];
  kd_rope_table(cs, sn, T, HD, 500.0);
  for (int i = 0; i < N * LD; i++) x[i] = (float)kd_normal(21, i), r[i] = (float)kd_normal(22, i);
  memcpy(a, x, sizeof x);
  memcpy(b, x, sizeof x);
  kd_rope_forward(a, LD, COL, HEADS, HD, cs, sn, NULL, N, T);
  kd_rope_forward_ref(b, LD, COL, HEADS, HD, 500.0, N, T);
  double worst = 0;
  int outside = 0;
  for (int i = 0; i < N * LD; i++) {
    worst = fmax(worst, fabs(a[i] - b[i]));
    const int c = i % LD;
    if ((c < COL || c >= 2 * COL) && a[i] != x[i]) outside++;
  }
  CHECK(worst < 1e-5 && outside == 0, "rope differs from the reference by %.3g; %d values outside its heads moved",
        worst, outside);
  CHECK(a[3] == x[3] && a[COL] == x[COL], "position 0 is not turned");
  /* explicit positions (decoding) equal r % T */
  int pos[N];
  for (int i = 0; i < N; i++) pos[i] = i % T;
  memcpy(b, x, sizeof x);
  kd_rope_forward(b, LD, COL, HEADS, HD, cs, sn, pos, N, 1);
  CHECK(!memcmp(a, b, sizeof a), "rope with explicit positions differs");
  kd_rope_backward(b, LD, COL, HEADS, HD, cs, sn, NULL, N, T);
  worst = 0;
  for (int i = 0; i < N * LD; i++) worst = fmax(worst, fabs(b[i] - x[i]));
  CHECK(worst < 1e-6, "the backward rotation does not undo the forward one (%.3g)", worst);
  memcpy(g, r, sizeof r);
  kd_rope_backward(g, LD, COL, HEADS, HD, cs, sn, NULL, N, T);
  worst = 0;
  for (int i = 0; i < N * LD; i += 3) {
    const float p0 = x[i], h = 1e-2f;
    double l[2];
    for (int s = 0; s < 2; s++) {
      memcpy(a, x, sizeof x);
      a[i] = p0 + (s ? -h : h);
      kd_rope_forward(a, LD, COL, HEADS, HD, cs, sn, NULL, N, T);
      l[s] = 0;
      for (int k = 0; k < N * LD; k++) l[s] += (double)a[k] * r[k];
    }
    worst = fmax(worst, rel((l[0] - l[1]) / (2 * h), g[i]));
  }
  CHECK(worst < 2e-3, "rope gradient off by %.3g", worst);
  (void)half;
}

static void swiglu_checks(void) {
  enum { N = 3, F = 301 };
  float gu[N * 2 * F], h1[N * F], h2[N * F], r[N * F], dgu[N * 2 * F];
  for (int i = 0; i < N * 2 * F; i++) gu[i] = 0.05f * (float)(i % 401 - 200) + 0.01f * (float)kd_normal(31, i);
  gu[0] = 200.0f, gu[1] = -200.0f; /* beyond the clamp */
  for (int i = 0; i < N * F; i++) r[i] = (float)kd_normal(32, i);
  kd_swiglu_forward(h1, gu, N, F);
  kd_swiglu_forward_ref(h2, gu, N, F);
  double worst = 0;
  for (int i = 0; i < N * F; i++) worst = fmax(worst, fabs(h1[i] - h2[i]) / (1e-6 + fabs(h2[i])));
  CHECK(worst < 1e-5, "swiglu differs from the double reference by %.3g relative", worst);
  kd_swiglu_backward(dgu, r, gu, N, F);
  worst = 0;
  for (int i = 2; i < N * 2 * F; i += 7) {
    const float p0 = gu[i], h = 1e-3f;
    double l[2];
    for (int s = 0; s < 2; s++) {
      gu[i] = p0 + (s ? -h : h);
      kd_swiglu_forward(h1, gu, N, F);
      l[s] = 0;
      for (int k = 0; k < N * F; k++) l[s] += (double)h1[k] * r[k];
    }
    gu[i] = p0;
    worst = fmax(worst, rel((l[0] - l[1]) / (2 * h), dgu[i]));
  }
  CHECK(worst < 5e-3, "swiglu gradient off by %.3g", worst);
}

/* Grouped-query attention against its double reference, forward and backward. */
static void attention_vs_reference(int B, int T, int H, int G, int hd) {
  const kd_attn_shape s = kd_attn_fused(B, T, H, G, hd);
  const size_t n = (size_t)B * T, w = (size_t)s.ld, o = (size_t)H * hd, att = (size_t)B * H * T * T;
  float *qkv = malloc(sizeof(float) * n * w), *dout = malloc(sizeof(float) * n * o);
  float *o1 = malloc(sizeof(float) * n * o), *o2 = malloc(sizeof(float) * n * o);
  float *a1 = malloc(sizeof(float) * att), *a2 = malloc(sizeof(float) * att);
  float *d1 = malloc(sizeof(float) * n * w), *d2 = malloc(sizeof(float) * n * w), *scratch = malloc(sizeof(float) * T * T);
  for (size_t i = 0; i < n * w; i++) qkv[i] = (float)kd_normal(41, i);
  for (size_t i = 0; i < n * o; i++) dout[i] = (float)kd_normal(42, i);
  kd_attention_forward(o1, a1, NULL, NULL, qkv, NULL, 0, 0.0f, &s);
  kd_attention_forward_ref(o2, a2, qkv, &s);
  double wo = 0, wa = 0, wd = 0;
  for (size_t i = 0; i < n * o; i++) wo = fmax(wo, fabs(o1[i] - o2[i]));
  for (size_t i = 0; i < att; i++) wa = fmax(wa, fabs(a1[i] - a2[i]));
  kd_attention_backward(d1, scratch, dout, qkv, a1, NULL, NULL, 0.0f, &s);
  kd_attention_backward_ref(d2, dout, qkv, a2, &s);
  for (size_t i = 0; i < n * w; i++) wd = fmax(wd, fabs(d1[i] - d2[i]) / (1.0 + fabs(d2[i])));
  CHECK(wo < 1e-5 && wa < 1e-6 && wd < 1e-5, "attention H=%d G=%d T=%d: out %.3g, probabilities %.3g, backward %.3g", H,
        G, T, wo, wa, wd);
  free(qkv), free(dout), free(o1), free(o2), free(a1), free(a2), free(d1), free(d2), free(scratch);
}

/* Grouped-query attention with dropout by finite differences of sum(out * r) over q, k and v. */
static void attention_gradcheck(int G) {
  enum { B = 2, T = 9, H = 4, HD = 4 };
  const kd_attn_shape s = kd_attn_fused(B, T, H, G, HD);
  const size_t n = (size_t)B * T, w = (size_t)s.ld;
  float qkv[B * T * (H + 2 * H) * HD], r[B * T * H * HD], out[B * T * H * HD], att[B * H * T * T], ad[B * H * T * T];
  float dq[B * T * (H + 2 * H) * HD], scratch[T * T];
  uint8_t mask[B * H * T * T];
  const int64_t ids[B] = {3, 8};
  for (size_t i = 0; i < n * w; i++) qkv[i] = (float)kd_normal(51, i);
  for (size_t i = 0; i < n * H * HD; i++) r[i] = (float)kd_normal(52, i);
  const float p = 0.25f;
  kd_attention_forward(out, att, ad, mask, qkv, ids, 77, p, &s);
  kd_attention_backward(dq, scratch, r, qkv, att, ad, mask, p, &s);
  double worst = 0;
  for (size_t i = 0; i < n * w; i++) {
    const float q0 = qkv[i];
    double d[2];
    for (int t = 0; t < 2; t++) {
      const float h = t ? 4e-3f : 8e-3f; /* float's rounding of the summed outputs, not curvature, limits h here */
      double l[2];
      for (int k = 0; k < 2; k++) {
        qkv[i] = q0 + (k ? -h : h);
        kd_attention_forward(out, att, ad, mask, qkv, ids, 77, p, &s);
        l[k] = 0;
        for (size_t j = 0; j < n * H * HD; j++) l[k] += (double)out[j] * r[j];
      }
      d[t] = (l[0] - l[1]) / (2 * h);
    }
    qkv[i] = q0;
    worst = fmax(worst, rel(richardson(d[0], d[1]), dq[i]));
  }
  CHECK(worst < 1e-2, "grouped-query attention (G=%d, dropout %.2g) gradient off by %.3g", G, p, worst);
}

/* ---- whole models ---- */

enum { FB = 3, FT = 7, FV = 11 };

typedef struct fixture {
  kd_model *m;
  float *p, *g, *logits, *dl, *tl;
  int32_t tokens[FB * FT], y[FB * FT];
  int64_t ids[FB];
  uint8_t mask[FB * FT];
  kd_batch bt;
} fixture;

static double loss_of(fixture *f, float *dl) {
  kd_err e;
  kd_err_clear(&e);
  const kd_fwd fw = {1, 99};
  kd_model_forward(f->m, f->logits, &f->bt, &fw, &e);
  const kd_targets t = {f->y, f->tl, NULL, NULL, NULL, NULL};
  const kd_loss_cfg lc = {0.3f, 2.0f, {KD_DIV_FORWARD, 0.0}};
  kd_loss_sums s = {0, 0, 0, 0, 0, 0};
  kd_loss_forward_backward(dl, &s, f->logits, &t, FB * FT, FV, &lc, 1.0f);
  return s.loss;
}

static void make_fixture(fixture *f, int kv_heads, int tie, float dropout) {
  const kd_llama_cfg c = {FV, 12, 2, 8, 2, kv_heads, 12, 10000.0, 1e-5, tie, dropout};
  kd_err e;
  kd_err_clear(&e);
  memset(f, 0, sizeof *f);
  CHECK(kd_llama_create(&f->m, &c, FB, 0, &e) == KD_OK, "create: %s", e.msg);
  const size_t n = f->m->n_params;
  f->p = malloc(sizeof(float) * n);
  f->g = calloc(n, sizeof(float));
  f->logits = malloc(sizeof(float) * FB * FT * FV);
  f->dl = malloc(sizeof(float) * FB * FT * FV);
  f->tl = malloc(sizeof(float) * FB * FT * FV);
  kd_model_bind(f->m, f->p, f->g);
  f->m->ops->init_params(f->m, 5);
  for (size_t i = 0; i < n; i++) f->p[i] += 0.2f * (float)kd_normal(61, i); /* every parameter moves the loss */
  for (int i = 0; i < FB * FT; i++) {
    f->tokens[i] = (int32_t)(kd_uniform(62, i) * FV);
    f->y[i] = i % FT == FT - 1 || i % 5 == 2 ? KD_Y_IGNORE : (int32_t)(kd_uniform(63, i) * FV);
  }
  for (int i = 0; i < FB * FT * FV; i++) f->tl[i] = 2.0f * (float)kd_normal(64, i);
  for (int b = 0; b < FB; b++) f->ids[b] = 10 + b;
  f->bt = (kd_batch){KD_INPUT_TOKENS, FB, FT, FB, NULL, f->tokens, f->mask, NULL, f->ids, FT};
}

static void free_fixture(fixture *f) {
  kd_model_free(f->m);
  free(f->p), free(f->g), free(f->logits), free(f->dl), free(f->tl);
}

static void whole_model(int kv_heads, int tie, float dropout) {
  fixture f;
  make_fixture(&f, kv_heads, tie, dropout);
  kd_err e;
  kd_err_clear(&e);
  const size_t n = f.m->n_params;
  loss_of(&f, f.dl);
  CHECK(kd_model_backward(f.m, f.dl, &f.bt, &e) == KD_OK, "backward: %s", e.msg);
  float *ana = malloc(sizeof(float) * n);
  memcpy(ana, f.g, sizeof(float) * n);
  double worst = 0;
  int bad = 0;
  char where[80] = "";
  for (size_t i = 0; i < n; i++) {
    const float p0 = f.p[i];
    double dd[2];
    for (int t = 0; t < 2; t++) {
      const float h = t ? 1e-3f : 2e-3f;
      f.p[i] = p0 + h;
      const double lp = loss_of(&f, NULL);
      f.p[i] = p0 - h;
      const double lm = loss_of(&f, NULL);
      dd[t] = (lp - lm) / (2 * h);
    }
    f.p[i] = p0;
    const double num = richardson(dd[0], dd[1]);
    const double d = fabs(num - ana[i]) / (5e-2 + fabs(num) + fabs(ana[i]));
    if (d > worst) {
      worst = d;
      for (int v = 0; v < f.m->n_views; v++)
        if (i >= f.m->views[v].offset) snprintf(where, sizeof where, "%s", f.m->views[v].name);
    }
    if (d > 2e-2) bad++;
  }
  CHECK(bad == 0, "llama (kv_heads %d, tie %d, dropout %g): %d of %zu gradients off, worst %.3g at %s", kv_heads, tie,
        dropout, bad, n, worst, where);
  printf("llama kv_heads=%d tie=%d dropout=%g: %zu parameters, worst relative error %.2g\n", kv_heads, tie, dropout,
         n, worst);
  free(ana);
  free_fixture(&f);
}

/* Gradients injected at hidden state 1 and at the queries, keys and values of block 2 (alone: no logits):
 * d/dparams of sum(h_1 * r1) + sum(qkv_2 * r2), q and k after RoPE. */
static void injection(void) {
  fixture f;
  make_fixture(&f, 1, 0, 0.0f);
  kd_err e;
  kd_err_clear(&e);
  kd_tap_shape sh;
  const kd_fwd fw = {1, 99};
  kd_model_forward(f.m, f.logits, &f.bt, &fw, &e);
  f.m->ops->tap(f.m, KD_TAP_Q, 2, &sh);
  const size_t n = f.m->n_params, nh = (size_t)FB * FT * 8, nq = (size_t)FB * FT * sh.ld;
  float *r1 = malloc(sizeof(float) * nh), *r2 = malloc(sizeof(float) * nq);
  for (size_t i = 0; i < nh; i++) r1[i] = (float)kd_normal(71, i);
  for (size_t i = 0; i < nq; i++) r2[i] = 0.3f * (float)kd_normal(72, i);
  const kd_inject inj[2] = {{1, r1, KD_INJ_HIDDEN}, {2, r2, KD_INJ_QKV}};
  CHECK(kd_model_backward_inject(f.m, NULL, &f.bt, inj, 2, &e) == KD_OK, "backward: %s", e.msg);
  double worst = 0;
  int above = 0;
  const size_t through = f.m->views[f.m->ops->views_through(f.m, 2)].offset;
  for (size_t i = 0; i < n; i++) {
    if (i >= through) {
      above += f.g[i] != 0.0f;
      continue;
    }
    const float p0 = f.p[i];
    double dd[2];
    for (int t = 0; t < 2; t++) {
      const float h = t ? 1e-3f : 2e-3f;
      double l[2];
      for (int s = 0; s < 2; s++) {
        f.p[i] = p0 + (s ? -h : h);
        kd_model_forward(f.m, f.logits, &f.bt, &fw, &e);
        const float *hs = f.m->ops->hidden(f.m, 1, NULL), *q = f.m->ops->tap(f.m, KD_TAP_Q, 2, NULL);
        l[s] = 0;
        for (size_t k = 0; k < nh; k++) l[s] += (double)hs[k] * r1[k];
        for (size_t k = 0; k < nq; k++) l[s] += (double)q[k] * r2[k]; /* the Q tap is the buffer's column 0 */
      }
      dd[t] = (l[0] - l[1]) / (2 * h);
    }
    f.p[i] = p0;
    const double num = richardson(dd[0], dd[1]);
    worst = fmax(worst, fabs(num - f.g[i]) / (5e-2 + fabs(num) + fabs(f.g[i])));
  }
  CHECK(above == 0, "%d gradients above the injected layers", above);
  CHECK(worst < 2e-2, "injected hidden-state and q/k/v gradients off by %.3g", worst);
  free(r1), free(r2);
  free_fixture(&f);
}

/* The cache holds G heads per position; two sequences decoded one position at a time give the full forward's
 * logits at every position; after a reorder both continue as sequence 1. */
static void kv_cache(int kv_heads, int tie) {
  fixture f;
  make_fixture(&f, kv_heads, tie, 0.2f); /* decoding is inference: no dropout */
  kd_err e;
  kd_err_clear(&e);
  const kd_fwd fw = {0, 0};
  f.bt.rows = 2;
  kd_model_forward(f.m, f.logits, &f.bt, &fw, &e);
  float z[2 * FV];
  double worst = 0;
  CHECK(f.m->ops->decode_begin(f.m, 2, &e) == KD_OK, "decode_begin: %s", e.msg);
  for (int p = 0; p < FT; p++) {
    const int32_t tok[2] = {f.tokens[p], f.tokens[FT + p]};
    const int pos[2] = {p, p};
    CHECK(f.m->ops->decode_step(f.m, z, tok, pos, 2, &e) == KD_OK, "decode_step: %s", e.msg);
    for (int s = 0; s < 2; s++)
      for (int v = 0; v < FV; v++) worst = fmax(worst, fabs(z[s * FV + v] - f.logits[((size_t)s * FT + p) * FV + v]));
  }
  CHECK(worst < 1e-5, "llama (kv_heads %d, tie %d): cached decoding differs from the full forward by %.3g", kv_heads,
        tie, worst);
  float zl[2 * FV];
  memcpy(zl, z, sizeof zl);
  check_prefix_without_logits(f.m, f.tokens, FT, FV, zl); /* leaves a decode begun on the same cache */
  const int src[2] = {1, 1};
  CHECK(f.m->ops->decode_reorder(f.m, src, 2, FT, &e) == KD_OK, "reorder: %s", e.msg);
  const int32_t tok[2] = {3, 3};
  const int pos[2] = {FT, FT};
  CHECK(f.m->ops->decode_step(f.m, z, tok, pos, 2, &e) == KD_OK, "decode after reorder: %s", e.msg);
  CHECK(memcmp(z, z + FV, sizeof(float) * FV) == 0, "after a reorder both sequences continue as the same one");
  f.m->ops->decode_end(f.m);
  free_fixture(&f);
}

/* One-line usage errors of bad specs. */
static void specs(void) {
  static const char *const bad[][2] = {
    {"vocab=11,ctx=8,layers=1,dim=8,heads=3,kv_heads=1,ffn=8", "heads=3 does not divide dim=8"},
    {"vocab=11,ctx=8,layers=1,dim=8,heads=4,kv_heads=3,ffn=8", "kv_heads=3 does not divide heads=4"},
    {"vocab=11,ctx=8,layers=1,dim=12,heads=4,kv_heads=2,ffn=8", "the head width dim / heads = 3 is odd"},
    {"vocab=11,ctx=8,layers=1,dim=8,heads=2,kv_heads=1", "ffn is missing"},
    {"vocab=11,ctx=8,layers=1,dim=8,heads=2,ffn=8,tie=2", "tie must be an integer in [0, 1]"},
    {"vocab=11,ctx=8,layers=1,dim=8,heads=2,ffn=8,bogus=1", "unknown key 'bogus'"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    kd_llama_cfg c;
    kd_err e;
    kd_err_clear(&e);
    const int rc = kd_llama_parse_spec(&c, bad[i][0], &e);
    CHECK(rc == KD_ERR_USAGE && strstr(e.msg, bad[i][1]), "spec %s: wanted '%s', got %d '%s'", bad[i][0], bad[i][1], rc,
          e.msg);
  }
  kd_llama_cfg c;
  kd_err e;
  kd_err_clear(&e);
  CHECK(kd_llama_parse_spec(&c, "vocab=11,ctx=8,layers=1,dim=8,heads=2,ffn=8", &e) == KD_OK && c.kv_heads == 2 &&
            c.rope_theta == 10000.0 && c.norm_eps == 1e-5 && c.tie == 0,
        "defaults: kv_heads = heads, rope_theta 10000, norm_eps 1e-5, untied (%s)", e.msg);
}

int main(void) {
  rmsnorm_checks();
  rope_checks();
  swiglu_checks();
  attention_vs_reference(2, 5, 4, 1, 4);
  attention_vs_reference(2, 70, 4, 2, 4); /* across a tile boundary */
  attention_vs_reference(1, 130, 4, 4, 6);
  attention_vs_reference(2, 9, 6, 3, 2);
  attention_gradcheck(1);
  attention_gradcheck(2);
  whole_model(2, 0, 0.0f);
  whole_model(1, 0, 0.0f);
  whole_model(1, 1, 0.0f);
  whole_model(2, 0, 0.3f);
  injection();
  kv_cache(1, 0);
  kv_cache(2, 1);
  specs();
  return check_summary("test_llama");
}
