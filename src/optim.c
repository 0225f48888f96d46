#include "kd/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int kd_optim_init(kd_optim *o, const kd_optim_cfg *cfg, size_t n, kd_err *e) {
  memset(o, 0, sizeof *o);
  o->cfg = *cfg;
  o->n = n;
  o->m = kd_calloc(n, sizeof(float), "optimizer first moment", e);
  if (!o->m) return e->code;
  if (cfg->kind == KD_OPT_ADAMW) {
    o->v = kd_calloc(n, sizeof(float), "optimizer second moment", e);
    if (!o->v) { free(o->m); o->m = NULL; return e->code; }
  }
  return KD_OK;
}

void kd_optim_free(kd_optim *o) {
  free(o->m);
  free(o->v);
  o->m = o->v = NULL;
}

/* SGD as PyTorch defines it: g += wd*p; buf = mu*buf + g (buf = g at t=0);
 * step = nesterov ? g + mu*buf : buf; p -= lr*step. */
static void sgd_range(kd_optim *o, float *p, const float *g, float *buf, size_t n,
                      float lr, float wd) {
  const float mu = o->cfg.momentum;
  const int first = (o->t == 0), nest = o->cfg.nesterov;
  if (mu == 0.0f) {
    for (size_t i = 0; i < n; i++) p[i] -= lr * (g[i] + wd * p[i]);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    float gi = g[i] + wd * p[i];
    float b = first ? gi : mu * buf[i] + gi;
    buf[i] = b;
    p[i] -= lr * (nest ? gi + mu * b : b);
  }
}

/* AdamW (Loshchilov & Hutter): p -= lr*wd*p; then the Adam step with bias
 * correction. */
static void adamw_range(kd_optim *o, float *p, const float *g, float *m, float *v,
                        size_t n, float lr, float wd) {
  const float b1 = o->cfg.beta1, b2 = o->cfg.beta2, eps = o->cfg.eps;
  const double t = (double)(o->t + 1);
  const float c1 = (float)(1.0 / (1.0 - pow(b1, t)));
  const float c2 = (float)(1.0 / (1.0 - pow(b2, t)));
  const float decay = 1.0f - lr * wd;
  for (size_t i = 0; i < n; i++) {
    float gi = g[i];
    float mi = b1 * m[i] + (1.0f - b1) * gi;
    float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * decay - lr * (mi * c1) / (sqrtf(vi * c2) + eps);
  }
}

void kd_optim_step(kd_optim *o, float *params, const float *grads, float lr,
                   const kd_param_view *views, int n_views) {
  /* One pass over memory; the views only switch weight decay on and off. */
  for (int k = 0; k < n_views; k++) {
    const kd_param_view *v = &views[k];
    size_t off = v->offset, n = (size_t)v->rows * v->cols;
    float wd = v->decay ? o->cfg.weight_decay : 0.0f;
    if (o->cfg.kind == KD_OPT_SGD)
      sgd_range(o, params + off, grads + off, o->m + off, n, lr, wd);
    else
      adamw_range(o, params + off, grads + off, o->m + off, o->v + off, n, lr, wd);
  }
  o->t++;
}

float kd_lr_at(kd_sched_kind kind, float base_lr, int64_t step,
               int64_t total_steps, int64_t warmup) {
  if (warmup > 0 && step < warmup) return base_lr * (float)(step + 1) / (float)warmup;
  if (kind == KD_SCHED_CONST) return base_lr;
  int64_t span = total_steps - warmup;
  if (span <= 0) return base_lr;
  double prog = (double)(step - warmup) / (double)span;
  if (prog > 1.0) prog = 1.0;
  return (float)(0.5 * base_lr * (1.0 + cos(3.14159265358979323846 * prog)));
}

double kd_grad_norm(const float *g, size_t n) {
  double s = 0.0;
  for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
  return sqrt(s);
}

double kd_clip_grad(float *g, size_t n, double max_norm) {
  double norm = kd_grad_norm(g, n);
  if (max_norm > 0.0 && norm > max_norm && isfinite(norm)) {
    float s = (float)(max_norm / (norm + 1e-12));
    for (size_t i = 0; i < n; i++) g[i] *= s;
  }
  return norm;
}
