/* Finite-difference gradient checks: every parameter of every layer of an
 * MLP (ReLU and GELU, with and without dropout) through the KD loss at
 * T in {1, 4, 20} and alpha in {0, 0.5, 1}, with unlabelled rows, and
 * without a teacher. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kd/loss.h"
#include "kd/mlp.h"
#include "kd/rng.h"

enum { B = 6 };

typedef struct fixture {
  kd_model *m;
  float *params, *grads, *x, *tl, *logits, *dlogits;
  int32_t y[B];
  int64_t rows[B];
} fixture;

static double total_loss(fixture *f, const kd_targets *t, const kd_loss_cfg *lc, float *dlogits) {
  kd_err e;
  kd_err_clear(&e);
  kd_fwd fw = {1, 12345, f->rows};
  kd_model_forward(f->m, f->logits, f->x, B, &fw, &e);
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
  kd_targets t = {f.y, teacher ? f.tl : NULL};
  kd_loss_cfg lc = {alpha, T};

  memset(f.grads, 0, n * sizeof(float));
  total_loss(&f, &t, &lc, f.dlogits);
  CHECK(kd_model_backward(f.m, f.dlogits, B, &e) == KD_OK, "backward: %s", e.msg);
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

int main(void) {
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
