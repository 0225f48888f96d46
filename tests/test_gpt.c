/* The GPT student's layers: the tiled causal attention against its plain
 * reference (forward and backward, T across tile boundaries); finite-
 * difference gradient checks of LayerNorm, the tanh GELU, the embedding
 * with the tied head, and every parameter of a whole tiny GPT through the
 * per-token KD loss (with and without dropout, with ignored positions);
 * hidden-state injections. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "decode_check.h"
#include "core/rng.h"
#include "kd/loss.h"
#include "models/gpt.h"
#include "nn/kernels.h"
#include "nn/fastmath.h"
#include "nn/attention.h"
#include "nn/norm.h"
#include "nn/transformer.h"

static double rel(double a, double b) { return fabs(a - b) / (1e-2 + fabs(a) + fabs(b)); }

static void attention_vs_reference(int B, int T, int D, int H) {
  const kd_attn_shape as = kd_attn_fused(B, T, H, H, D / H);
  const size_t n = (size_t)B * T;
  float *qkv = malloc(sizeof(float) * n * 3 * D), *dout = malloc(sizeof(float) * n * D);
  float *o1 = malloc(sizeof(float) * n * D), *o2 = malloc(sizeof(float) * n * D);
  float *a1 = malloc(sizeof(float) * B * H * T * T), *a2 = malloc(sizeof(float) * B * H * T * T);
  float *d1 = malloc(sizeof(float) * n * 3 * D), *d2 = malloc(sizeof(float) * n * 3 * D);
  float *scratch = malloc(sizeof(float) * T * T);
  for (size_t i = 0; i < n * 3 * D; i++) qkv[i] = (float)kd_normal(31, i);
  for (size_t i = 0; i < n * D; i++) dout[i] = (float)kd_normal(32, i);
  kd_attention_forward(o1, a1, NULL, NULL, qkv, NULL, 0, 0.0f, &as);
  kd_attention_forward_ref(o2, a2, qkv, &as);
  double wo = 0, wa = 0, wd = 0;
  int upper = 0;
  for (size_t i = 0; i < n * D; i++) wo = fmax(wo, fabs(o1[i] - o2[i]));
  for (int bh = 0; bh < B * H; bh++)
    for (int i = 0; i < T; i++)
      for (int j = 0; j < T; j++) {
        const size_t k = ((size_t)bh * T + i) * T + j;
        wa = fmax(wa, fabs(a1[k] - a2[k]));
        if (j > i && a1[k] != 0.0f) upper++;
      }
  kd_attention_backward(d1, scratch, dout, qkv, a1, NULL, NULL, 0.0f, &as);
  kd_attention_backward_ref(d2, dout, qkv, a2, &as);
  for (size_t i = 0; i < n * 3 * D; i++) wd = fmax(wd, fabs(d1[i] - d2[i]) / (1.0 + fabs(d2[i])));
  CHECK(wo < 1e-5 && wa < 1e-6 && upper == 0, "attention T=%d: out %.3g, probabilities %.3g, %d above the diagonal", T,
        wo, wa, upper);
  CHECK(wd < 1e-5, "attention backward T=%d: %.3g", T, wd);
  free(qkv), free(dout), free(o1), free(o2), free(a1), free(a2), free(d1), free(d2), free(scratch);
}

/* The attention kernel (with dropout) by finite differences of sum(out * r) over qkv. */
static void attention_gradcheck(void) {
  enum { B = 2, T = 9, D = 8, H = 2 };
  const kd_attn_shape as = kd_attn_fused(B, T, H, H, D / H);
  const size_t n = (size_t)B * T;
  float qkv[B * T * 3 * D], r[B * T * D], out[B * T * D], att[B * H * T * T], ad[B * H * T * T], dq[B * T * 3 * D],
      scratch[T * T];
  uint8_t mask[B * H * T * T];
  const int64_t ids[B] = {3, 8};
  for (size_t i = 0; i < n * 3 * D; i++) qkv[i] = (float)kd_normal(71, i);
  for (size_t i = 0; i < n * D; i++) r[i] = (float)kd_normal(72, i);
  const float p = 0.25f;
  kd_attention_forward(out, att, ad, mask, qkv, ids, 77, p, &as);
  kd_attention_backward(dq, scratch, r, qkv, att, ad, mask, p, &as);
  double worst = 0;
  for (size_t i = 0; i < n * 3 * D; i++) {
    const float q0 = qkv[i], h = 1e-3f;
    double l[2];
    for (int s = 0; s < 2; s++) {
      qkv[i] = q0 + (s ? -h : h);
      kd_attention_forward(out, att, ad, mask, qkv, ids, 77, p, &as);
      l[s] = 0;
      for (size_t k = 0; k < n * D; k++) l[s] += (double)out[k] * r[k];
    }
    qkv[i] = q0;
    worst = fmax(worst, rel((l[0] - l[1]) / (2 * h), dq[i]));
  }
  CHECK(worst < 1e-2, "attention (dropout %.2g) gradient off by %.3g", p, worst);
}

/* The vectorized element-wise passes against plain references: exp
 * against exp in double, the fused bias + GELU against tanhf's form, the
 * lane-summed LayerNorm against the double one (a wide row). */
static void fast_math_checks(void) {
  double worst = 0;
  for (int i = -86900; i <= 87900; i += 7) {
    const float x = 1e-3f * (float)i;
    const double r = exp((double)x);
    worst = fmax(worst, fabs(kd_exp_fast(x) - r) / r);
  }
  CHECK(worst < 3e-7, "kd_exp_fast off by %.3g relative", worst);
  CHECK(kd_exp_fast(-87.0f) >= 1.17549435e-38f && kd_exp_fast(88.0f) < INFINITY, "kd_exp_fast at its range's ends");
  enum { N = 601 };
  float y[N], pre[N], bias[N], dz[N], dy[N], db[N] = {0};
  for (int j = 0; j < N; j++) {
    y[j] = 0.02f * (float)(j - 300) - 0.01f;
    bias[j] = 0.01f;
    dy[j] = 1.0f;
  }
  kd_bias_gelu_forward(y, pre, bias, 1, N);
  kd_bias_gelu_backward(dz, db, dy, pre, 1, N);
  double wf = 0, wb = 0;
  for (int j = 0; j < N; j++) { /* in double: 0.5 z (1 + tanh(u)) and its derivative */
    const double z = pre[j], c = 0.79788456080286536, u = c * (z + 0.044715 * z * z * z), t = tanh(u);
    const double g = 0.5 * z * (1.0 + t), dg = 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * c * (1.0 + 3 * 0.044715 * z * z);
    wf = fmax(wf, fabs(y[j] - g) / (1e-6 + fabs(g)));
    wb = fmax(wb, fabs(dz[j] - dg) / (1e-6 + fabs(dg)));
    if (db[j] != dz[j]) wb = 1;
  }
  CHECK(wf < 1e-5 && wb < 1e-5, "bias + GELU: forward off by %.3g, backward by %.3g", wf, wb);
  enum { R = 3, D = 259 };
  float x[R * D], w[D], b[D], ya[R * D], yb[R * D], ma[R], mb[R], ra[R], rb[R];
  for (int i = 0; i < R * D; i++) x[i] = 3.0f + (float)kd_normal(61, i);
  for (int j = 0; j < D; j++) w[j] = 1.0f + 0.1f * (float)kd_normal(62, j), b[j] = 0.1f * (float)kd_normal(63, j);
  kd_layernorm_forward(ya, ma, ra, x, w, b, R, D);
  kd_layernorm_forward_ref(yb, mb, rb, x, w, b, R, D);
  worst = 0;
  for (int i = 0; i < R * D; i++) worst = fmax(worst, fabs(ya[i] - yb[i]));
  CHECK(worst < 1e-5, "layernorm differs from the double reference by %.3g", worst);
}

/* LayerNorm and the tanh GELU by finite differences of sum(y * r). */
static void layer_checks(void) {
  enum { N = 3, D = 7 };
  float x[N * D], w[D], b[D], y[N * D], r[N * D], mean[N], rstd[N], dx[N * D] = {0}, dw[D] = {0}, db[D] = {0};
  for (int i = 0; i < N * D; i++) x[i] = (float)kd_normal(41, i), r[i] = (float)kd_normal(42, i);
  for (int j = 0; j < D; j++) w[j] = 1.0f + 0.3f * (float)kd_normal(43, j), b[j] = 0.1f * (float)kd_normal(44, j);
  kd_layernorm_forward(y, mean, rstd, x, w, b, N, D);
  kd_layernorm_backward(dx, dw, db, r, x, w, mean, rstd, N, D);
  float *vars[3] = {x, w, b}, *grads[3] = {dx, dw, db};
  const int lens[3] = {N * D, D, D};
  double worst = 0;
  for (int v = 0; v < 3; v++)
    for (int i = 0; i < lens[v]; i++) {
      const float p0 = vars[v][i], h = 1e-3f;
      double l[2];
      for (int s = 0; s < 2; s++) {
        vars[v][i] = p0 + (s ? -h : h);
        kd_layernorm_forward(y, mean, rstd, x, w, b, N, D);
        l[s] = 0;
        for (int k = 0; k < N * D; k++) l[s] += (double)y[k] * r[k];
      }
      vars[v][i] = p0;
      worst = fmax(worst, rel((l[0] - l[1]) / (2 * h), grads[v][i]));
    }
  CHECK(worst < 5e-3, "layernorm gradient off by %.3g", worst);
  worst = 0;
  for (int i = -40; i <= 40; i++) {
    const float z = 0.1f * (float)i, h = 1e-3f;
    worst = fmax(worst, rel((kd_gelu_tanh(z + h) - kd_gelu_tanh(z - h)) / (2.0 * h), kd_gelu_tanh_grad(z)));
  }
  CHECK(worst < 5e-3, "tanh GELU gradient off by %.3g", worst);
  CHECK(fabs(kd_gelu_tanh(1.0f) - 0.8411920f) < 1e-6, "gelu_tanh(1) = %.7f", kd_gelu_tanh(1.0f));
  fast_math_checks();
}

/* A tiny GPT and one batch: its loss (KD at T = 2, alpha 0.3, some positions ignored). */
typedef struct fixture {
  kd_model *m;
  float *p, *g, *logits, *dl, *tl;
  int32_t tokens[3 * 7], y[3 * 7];
  int64_t ids[3];
  uint8_t mask[3 * 7];
  kd_batch bt;
} fixture;

enum { FB = 3, FT = 7, FV = 11 };

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

static void make_fixture(fixture *f, float dropout) {
  kd_gpt_cfg c = {FV, 12, 2, 8, 2, dropout};
  kd_err e;
  kd_err_clear(&e);
  memset(f, 0, sizeof *f);
  CHECK(kd_gpt_create(&f->m, &c, FB, 0, &e) == KD_OK, "create: %s", e.msg);
  const size_t n = f->m->n_params;
  f->p = malloc(sizeof(float) * n);
  f->g = calloc(n, sizeof(float));
  f->logits = malloc(sizeof(float) * FB * FT * FV);
  f->dl = malloc(sizeof(float) * FB * FT * FV);
  f->tl = malloc(sizeof(float) * FB * FT * FV);
  kd_model_bind(f->m, f->p, f->g);
  f->m->ops->init_params(f->m, 5);
  /* larger than nanoGPT's init so every parameter moves the loss measurably */
  for (size_t i = 0; i < n; i++) f->p[i] += 0.2f * (float)kd_normal(51, i);
  for (int i = 0; i < FB * FT; i++) {
    f->tokens[i] = (int32_t)(kd_uniform(52, i) * FV);
    f->y[i] = i % FT == FT - 1 || i % 5 == 2 ? KD_Y_IGNORE : (int32_t)(kd_uniform(53, i) * FV);
  }
  for (int i = 0; i < FB * FT * FV; i++) f->tl[i] = 2.0f * (float)kd_normal(54, i);
  for (int b = 0; b < FB; b++) f->ids[b] = 10 + b;
  f->bt = (kd_batch){KD_INPUT_TOKENS, FB, FT, FB, NULL, f->tokens, f->mask, NULL, f->ids, FT};
}

static void free_fixture(fixture *f) {
  kd_model_free(f->m);
  free(f->p), free(f->g), free(f->logits), free(f->dl), free(f->tl);
}

static void whole_model(float dropout) {
  fixture f;
  make_fixture(&f, dropout);
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
    const float p0 = f.p[i], h = 2e-3f;
    f.p[i] = p0 + h;
    const double lp = loss_of(&f, NULL);
    f.p[i] = p0 - h;
    const double lm = loss_of(&f, NULL);
    f.p[i] = p0;
    const double d = fabs((lp - lm) / (2 * h) - ana[i]) / (5e-2 + fabs((lp - lm) / (2 * h)) + fabs(ana[i]));
    if (d > worst) {
      worst = d;
      for (int v = 0; v < f.m->n_views; v++)
        if (i >= f.m->views[v].offset) snprintf(where, sizeof where, "%s", f.m->views[v].name);
    }
    if (d > 2e-2) bad++;
  }
  CHECK(bad == 0, "gpt (dropout %g): %d of %zu gradients off, worst %.3g at %s", dropout, bad, n, worst, where);
  free(ana);
  free_fixture(&f);
}

/* A hidden-state gradient injected at block output l, alone (no logits):
 * the blocks above l and the head get nothing; d/dparams of sum(h_l * r). */
static void injection(void) {
  fixture f;
  make_fixture(&f, 0.0f);
  kd_err e;
  kd_err_clear(&e);
  const int L = 1, D = 8;
  const size_t n = f.m->n_params, nh = (size_t)FB * FT * D;
  float *r = malloc(sizeof(float) * nh);
  for (size_t i = 0; i < nh; i++) r[i] = (float)kd_normal(61, i);
  const kd_fwd fw = {1, 99};
  kd_model_forward(f.m, f.logits, &f.bt, &fw, &e);
  const kd_inject inj = {L, r, KD_INJ_HIDDEN};
  CHECK(kd_model_backward_inject(f.m, NULL, &f.bt, &inj, 1, &e) == KD_OK, "backward: %s", e.msg);
  double worst = 0;
  int above = 0;
  const size_t through = f.m->views[f.m->ops->views_through(f.m, L)].offset;
  for (size_t i = 0; i < n; i++) {
    if (i >= through) {
      above += f.g[i] != 0.0f;
      continue;
    }
    const float p0 = f.p[i], h = 2e-3f;
    double l[2];
    for (int s = 0; s < 2; s++) {
      f.p[i] = p0 + (s ? -h : h);
      kd_model_forward(f.m, f.logits, &f.bt, &fw, &e);
      const float *hs = f.m->ops->hidden(f.m, L, NULL);
      l[s] = 0;
      for (size_t k = 0; k < nh; k++) l[s] += (double)hs[k] * r[k];
    }
    f.p[i] = p0;
    worst = fmax(worst, fabs((l[0] - l[1]) / (2 * h) - f.g[i]) / (5e-2 + fabs(f.g[i])));
  }
  CHECK(above == 0, "%d gradients above the injected layer", above);
  CHECK(worst < 2e-2, "injected hidden-state gradient off by %.3g", worst);
  free(r);
  free_fixture(&f);
}

/* The key/value cache: two sequences decoded one position at a time give the
 * logits of a full forward at every position; after a reorder (both take
 * sequence 1's cache) they continue as sequence 1 does. */
static void kv_cache(void) {
  fixture f;
  make_fixture(&f, 0.2f); /* decoding is inference: no dropout whatever the model's setting */
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
      for (int v = 0; v < FV; v++)
        worst = fmax(worst, fabs(z[s * FV + v] - f.logits[((size_t)s * FT + p) * FV + v]));
  }
  CHECK(worst < 1e-5, "cached decoding differs from the full forward by %.3g", worst);
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

/* A batch whose targets end at position 4 of 7: kd_batch_trim keeps 5
 * positions, compacts tokens, mask and teacher logits, and the forward over
 * the trimmed rows gives the untrimmed logits at those positions. */
static void trimmed_batch(void) {
  fixture f;
  make_fixture(&f, 0.0f);
  kd_err e;
  kd_err_clear(&e);
  memset(f.mask, 0, sizeof f.mask);
  for (int b = 0; b < FB; b++)
    for (int p = 1; p <= (b == 1 ? 4 : 2); p++) f.mask[b * FT + p] = 1;
  const kd_fwd fw = {0, 0};
  CHECK(kd_model_forward(f.m, f.logits, &f.bt, &fw, &e) == KD_OK, "forward: %s", e.msg);
  float *full = malloc(sizeof(float) * FB * FT * FV), *tl = malloc(sizeof(float) * FB * FT * FV);
  memcpy(full, f.logits, sizeof(float) * FB * FT * FV);
  memcpy(tl, f.tl, sizeof(float) * FB * FT * FV);
  int32_t tok[FB * FT];
  memcpy(tok, f.tokens, sizeof tok);
  f.bt.alloc_width = FT;
  kd_batch_trim(&f.bt, f.tl, FV);
  CHECK(f.bt.width == 5, "trimmed to %d positions, expected 5", f.bt.width);
  CHECK(kd_model_forward(f.m, f.logits, &f.bt, &fw, &e) == KD_OK, "trimmed forward: %s", e.msg);
  double worst = 0;
  int moved = 0;
  for (int b = 0; b < FB; b++)
    for (int p = 0; p < 5; p++) {
      moved += f.tokens[b * 5 + p] != tok[b * FT + p] || f.mask[b * 5 + p] != (p >= 1 && p <= (b == 1 ? 4 : 2));
      for (int c = 0; c < FV; c++) {
        const size_t a = ((size_t)b * 5 + p) * FV + c, o = ((size_t)b * FT + p) * FV + c;
        worst = fmax(worst, fabs(f.logits[a] - full[o]));
        moved += f.tl[a] != tl[o];
      }
    }
  CHECK(moved == 0, "%d tokens, mask bits or teacher logits misplaced by the trim", moved);
  CHECK(worst < 1e-5, "trimmed logits differ from the full rows' by %.3g", worst);
  { /* each target position's next token (reverse-sampled's sampled ids) is the token after it, as its target */
    int32_t y[FB * 5], next[FB * 5], row_y[FB] = {0};
    row_y[1] = -1; /* an unlabelled row (an on-policy sample's): targets -1, next tokens still there */
    f.bt.y = row_y;
    kd_batch_targets(&f.bt, y);
    kd_batch_next_tokens(&f.bt, next);
    f.bt.y = NULL;
    int wrong = 0;
    for (int b = 0; b < FB; b++)
      for (int p = 0; p < 5; p++) {
        const int k = b * 5 + p, target = p + 1 <= (b == 1 ? 4 : 2);
        wrong += next[k] != (target ? tok[b * FT + p + 1] : -1) || (y[k] >= 0 && y[k] != next[k]) ||
                 (target && b == 1 && y[k] != -1);
      }
    CHECK(wrong == 0, "%d next tokens misplaced", wrong);
  }
  kd_batch_untrim(&f.bt);
  CHECK(f.bt.width == FT, "untrim restores %d positions, got %d", FT, f.bt.width);
  free(full);
  free(tl);
  free_fixture(&f);
}

int main(void) {
  attention_vs_reference(2, 5, 8, 2);
  attention_vs_reference(2, 70, 8, 2);   /* across a tile boundary */
  attention_vs_reference(1, 130, 12, 3); /* three tiles */
  layer_checks();
  attention_gradcheck();
  whole_model(0.0f);
  whole_model(0.3f);
  injection();
  kv_cache();
  trimmed_batch();
  return check_summary("test_gpt");
}
