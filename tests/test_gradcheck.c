/* Finite-difference gradient checks: every parameter of every layer of an
 * MLP (ReLU and GELU, with and without dropout) through the KD loss at
 * T in {1, 4, 20} and alpha in {0, 0.5, 1}, with unlabelled rows, and
 * without a teacher. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "loss/hint.h"
#include "kd/loss.h"
#include "models/mlp.h"
#include "core/rng.h"

enum { B = 6 };

typedef struct fixture {
  kd_model *m;
  float *params, *grads, *x, *tl, *logits, *dlogits;
  int32_t y[B];
  int64_t rows[B];
  kd_batch bt;
} fixture;

static double total_loss(fixture *f, const kd_targets *t, const kd_loss_cfg *lc, float *dlogits) {
  kd_err e;
  kd_err_clear(&e);
  kd_fwd fw = {1, 12345};
  kd_model_forward(f->m, f->logits, &f->bt, &fw, &e);
  kd_loss_sums s = {0, 0, 0, 0, 0, 0};
  kd_loss_forward_backward(dlogits, &s, f->logits, t, B, f->m->out_dim, lc, 1.0f);
  return s.loss;
}

static void run_case(kd_act act, float dropout, int teacher, float T, float alpha, int unlabelled) {
  kd_mlp_cfg cfg;
  kd_err e;
  kd_err_clear(&e);
  kd_mlp_parse_spec(&cfg, "7-6-5-4", &e);
  cfg.act = act;
  cfg.dropout = dropout;
  cfg.init_xavier = 0;
  fixture f;
  memset(&f, 0, sizeof f);
  CHECK(kd_mlp_create(&f.m, &cfg, B, &e) == KD_OK, "create: %s", e.msg);
  const int C = f.m->out_dim;
  const size_t n = f.m->n_params;
  f.params = malloc(n * sizeof(float));
  f.grads = calloc(n, sizeof(float));
  f.x = malloc(sizeof(float) * B * 7);
  f.tl = malloc(sizeof(float) * B * C);
  f.logits = malloc(sizeof(float) * B * C);
  f.dlogits = malloc(sizeof(float) * B * C);
  kd_model_bind(f.m, f.params, f.grads);
  f.m->ops->init_params(f.m, 7);
  /* Non-zero biases so every bias gradient is exercised off the origin. */
  for (int v = 1; v < f.m->n_views; v += 2)
    for (int i = 0; i < f.m->views[v].rows; i++)
      f.params[f.m->views[v].offset + i] = 0.1f * (float)kd_normal(8, (uint64_t)(v * 100 + i));
  for (int i = 0; i < B * 7; i++) f.x[i] = (float)kd_normal(9, i);
  for (int i = 0; i < B * C; i++) f.tl[i] = 3.0f * (float)kd_normal(10, i);
  for (int b = 0; b < B; b++) {
    f.y[b] = b % C;
    f.rows[b] = 100 + b;
  }
  if (unlabelled) f.y[1] = f.y[4] = -1;
  f.bt = (kd_batch){KD_INPUT_FEATURES, B, 7, B, f.x, NULL, NULL, f.y, f.rows, 7};
  kd_targets t = {f.y, teacher ? f.tl : NULL, NULL, NULL, NULL, NULL};
  kd_loss_cfg lc = {alpha, T, {KD_DIV_FORWARD, 0.0}};

  memset(f.grads, 0, n * sizeof(float));
  total_loss(&f, &t, &lc, f.dlogits);
  CHECK(kd_model_backward(f.m, f.dlogits, &f.bt, &e) == KD_OK, "backward: %s", e.msg);
  float *ana = malloc(n * sizeof(float));
  memcpy(ana, f.grads, n * sizeof(float));

  const float eps = 1e-3f;
  int bad = 0;
  double worst = 0;
  char where[80] = "";
  for (size_t i = 0; i < n; i++) {
    float p0 = f.params[i];
    f.params[i] = p0 + eps;
    double lp = total_loss(&f, &t, &lc, NULL);
    f.params[i] = p0 - eps;
    double lm = total_loss(&f, &t, &lc, NULL);
    f.params[i] = p0;
    double num = (lp - lm) / (2.0 * eps);
    double d = fabs(num - ana[i]) / (1e-2 + fabs(num) + fabs(ana[i]));
    if (d > worst) {
      worst = d;
      for (int v = 0; v < f.m->n_views; v++) {
        const kd_param_view *pv = &f.m->views[v];
        if (i >= pv->offset && i < pv->offset + (size_t)pv->rows * pv->cols)
          snprintf(where, sizeof where, "%.40s[%zu] num %.6g ana %.6g", pv->name, i - pv->offset, num, ana[i]);
      }
    }
    if (d > 1e-2) bad++;
  }
  CHECK(bad == 0, "act=%d dropout=%.1f teacher=%d T=%g alpha=%g unlabelled=%d: %d of %zu gradients off, worst %s",
        (int)act, dropout, teacher, T, alpha, unlabelled, bad, n, where);
  free(ana);
  free(f.params); free(f.grads); free(f.x); free(f.tl); free(f.logits); free(f.dlogits);
  kd_model_free(f.m);
}

/* The hint loss through the regressor and the student layers below hidden
 * layer K, alone (stage 1) and added to the KD loss (stage 2). */
static void hint_case(int K, int with_kd, kd_act act) {
  kd_mlp_cfg cfg;
  kd_err e;
  kd_err_clear(&e);
  kd_mlp_parse_spec(&cfg, "7-6-5-4", &e);
  cfg.act = act;
  cfg.dropout = 0.0f;
  cfg.init_xavier = 0;
  kd_model *m;
  CHECK(kd_mlp_create(&m, &cfg, B, &e) == KD_OK, "create: %s", e.msg);
  int Hs = 0;
  const int Ht = 3;
  const size_t nm = m->n_params, naux = (size_t)Ht * 6 + Ht, n = nm + naux;
  float *p = malloc(n * sizeof(float)), *g = calloc(n, sizeof(float)), *ana = malloc(n * sizeof(float));
  float x[B * 7], ht[B * Ht], tl[B * 4], logits[B * 4], dl[B * 4], dh[B * 6], pred[B * Ht];
  int32_t y[B];
  int64_t rows[B];
  kd_model_bind(m, p, g);
  m->ops->init_params(m, 3);
  for (size_t i = nm; i < n; i++) p[i] = 0.3f * (float)kd_normal(21, i);
  for (int i = 0; i < B * 7; i++) x[i] = (float)kd_normal(22, i);
  for (int i = 0; i < B * Ht; i++) ht[i] = (float)kd_normal(23, i);
  for (int i = 0; i < B * 4; i++) tl[i] = 2.0f * (float)kd_normal(24, i);
  for (int b = 0; b < B; b++) {
    y[b] = b % 4;
    rows[b] = b;
  }
  kd_targets t = {y, tl, NULL, NULL, NULL, NULL};
  kd_loss_cfg lc = {0.3f, 2.0f, {KD_DIV_FORWARD, 0.0}};
  const float beta = 0.7f;
  kd_fwd fw = {1, 5};
  kd_batch bt = {KD_INPUT_FEATURES, B, 7, B, x, NULL, NULL, y, rows, 7};
  /* total(p) = hint (+ KD) loss, summed over rows */
#define TOTAL(out_dl, out_dh, out_g)                                                                     \
  do {                                                                                                   \
    kd_model_forward(m, logits, &bt, &fw, &e);                                                           \
    const float *hs = m->ops->hidden(m, K, &Hs);                                                         \
    float *W = p + nm, *bb = p + nm + (size_t)Ht * Hs;                                                  \
    hint_sum = beta * kd_hint_forward_backward(out_dh, out_g ? out_g + nm : NULL,                        \
                                               out_g ? out_g + nm + (size_t)Ht * Hs : NULL, pred, hs, ht, \
                                               W, bb, B, Hs, Ht, beta);                                  \
    kd_loss_sums ls = {0, 0, 0, 0, 0, 0};                                                                \
    if (with_kd) kd_loss_forward_backward(out_dl, &ls, logits, &t, B, 4, &lc, 1.0f);                     \
    total = hint_sum + ls.loss;                                                                          \
  } while (0)
  double hint_sum, total;
  TOTAL(dl, dh, g);
  CHECK(Hs == cfg.sizes[K], "hidden width %d", Hs);
  const kd_inject inj = {K, dh, KD_INJ_HIDDEN};
  CHECK(kd_model_backward_inject(m, with_kd ? dl : NULL, &bt, &inj, 1, &e) == KD_OK, "backward: %s", e.msg);
  memcpy(ana, g, n * sizeof(float));
  int bad = 0;
  double worst = 0;
  for (size_t i = 0; i < n; i++) {
    const float p0 = p[i], eps = 1e-3f;
    p[i] = p0 + eps;
    TOTAL(NULL, NULL, (float *)NULL);
    double lp = total;
    p[i] = p0 - eps;
    TOTAL(NULL, NULL, (float *)NULL);
    double lm = total;
    p[i] = p0;
    double num = (lp - lm) / (2.0 * eps);
    /* float32 forward passes: the larger hint losses leave ~1e-5 of rounding in each difference */
    double d = fabs(num - ana[i]) / (5e-2 + fabs(num) + fabs(ana[i]));
    if (d > worst) worst = d;
    if (d > 1e-2) bad++;
  }
#undef TOTAL
  CHECK(bad == 0, "hint K=%d with_kd=%d act=%d: %d of %zu gradients off (worst %.3g)", K, with_kd, (int)act, bad, n,
        worst);
  /* Stage 1 (hint alone): the layers above K get no gradient. */
  if (!with_kd)
    for (int v = 2 * K; v < m->n_views; v++)
      for (size_t i = 0; i < (size_t)m->views[v].rows * m->views[v].cols; i++)
        CHECK(ana[m->views[v].offset + i] == 0.0f, "layer above K=%d got a gradient", K);
  free(p);
  free(g);
  free(ana);
  kd_model_free(m);
}

int main(void) {
  for (int K = 1; K <= 2; K++)
    for (int kd = 0; kd < 2; kd++) {
      hint_case(K, kd, KD_ACT_RELU);
      hint_case(K, kd, KD_ACT_GELU);
    }
  const float Ts[3] = {1, 4, 20}, alphas[3] = {0, 0.5f, 1};
  const kd_act acts[2] = {KD_ACT_RELU, KD_ACT_GELU};
  for (int a = 0; a < 2; a++)
    for (int i = 0; i < 3; i++)
      for (int j = 0; j < 3; j++) run_case(acts[a], 0.0f, 1, Ts[i], alphas[j], 0);
  for (int a = 0; a < 2; a++) {
    run_case(acts[a], 0.0f, 0, 4, 0.1f, 0);   /* no teacher: plain CE */
    run_case(acts[a], 0.3f, 1, 4, 0.1f, 0);   /* dropout masks in the backward */
    run_case(acts[a], 0.0f, 1, 4, 0.3f, 1);   /* unlabelled rows: soft term alone */
  }
  return check_summary("test_gradcheck");
}
