#include "optim/optim.h"

#include "nn/simd.h"

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

/* ---- the plain loops: the reference the fast path is tested against ---- */

/* SGD as PyTorch defines it: g += wd*p; buf = mu*buf + g (buf = g at t=0);
 * step = nesterov ? g + mu*buf : buf; p -= lr*step. */
static void sgd_ref(kd_optim *o, float *p, const float *g, float *buf, size_t n, float lr, float wd) {
  const float mu = o->cfg.momentum;
  const int first = (o->t == 0), nest = o->cfg.nesterov;
  for (size_t i = 0; i < n; i++) {
    float gi = g[i] + wd * p[i];
    if (mu == 0.0f) {
      p[i] -= lr * gi;
      continue;
    }
    float b = first ? gi : mu * buf[i] + gi;
    buf[i] = b;
    p[i] -= lr * (nest ? gi + mu * b : b);
  }
}

/* AdamW (Loshchilov & Hutter): p -= lr*wd*p; then the Adam step with bias
 * correction. */
static void adamw_ref(kd_optim *o, float *p, const float *g, float *m, float *v, size_t n, float lr, float wd) {
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

void kd_optim_step_ref(kd_optim *o, float *params, const float *grads, float lr, const kd_param_view *views,
                       int n_views) {
  for (int k = 0; k < n_views; k++) {
    const kd_param_view *v = &views[k];
    size_t off = v->offset, n = (size_t)v->rows * v->cols;
    float wd = v->decay ? o->cfg.weight_decay : 0.0f;
    if (o->cfg.kind == KD_OPT_SGD)
      sgd_ref(o, params + off, grads + off, o->m + off, n, lr, wd);
    else
      adamw_ref(o, params + off, grads + off, o->m + off, o->v + off, n, lr, wd);
  }
  o->t++;
}

/* ---- the fast path: a loop per case, vectorized (KD_HOT) ----
 * Each computes exactly the reference's float expressions, element by
 * element, with g scaled by gs first (gs = 1 leaves g unchanged). */

KD_HOT static void sgd_plain(float *restrict p, const float *restrict g, size_t n, float lr, float wd, float gs) {
  for (size_t i = 0; i < n; i++) p[i] -= lr * (g[i] * gs + wd * p[i]);
}

KD_HOT static void sgd_first(float *restrict p, const float *restrict g, float *restrict buf, size_t n, float lr,
                             float wd, float gs, float mu, int nest) {
  for (size_t i = 0; i < n; i++) {
    float gi = g[i] * gs + wd * p[i];
    buf[i] = gi;
    p[i] -= lr * (nest ? gi + mu * gi : gi);
  }
}

KD_HOT static void sgd_momentum(float *restrict p, const float *restrict g, float *restrict buf, size_t n, float lr,
                                float wd, float gs, float mu, int nest) {
  for (size_t i = 0; i < n; i++) { /* nest is loop-invariant: the compiler unswitches it */
    float gi = g[i] * gs + wd * p[i];
    float b = mu * buf[i] + gi;
    buf[i] = b;
    p[i] -= lr * (nest ? gi + mu * b : b);
  }
}

KD_HOT static void adamw_fast(float *restrict p, const float *restrict g, float *restrict m, float *restrict v,
                              size_t n, float lr, float decay, float gs, float b1, float b2, float c1, float c2,
                              float eps) {
  for (size_t i = 0; i < n; i++) {
    float gi = g[i] * gs;
    float mi = b1 * m[i] + (1.0f - b1) * gi;
    float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * decay - lr * (mi * c1) / (sqrtf(vi * c2) + eps);
  }
}

static void update_span(kd_optim *o, float *p, const float *g, size_t off, size_t n, float lr, float wd, float gs) {
  const kd_optim_cfg *c = &o->cfg;
  if (c->kind == KD_OPT_SGD) {
    if (c->momentum == 0.0f) sgd_plain(p + off, g + off, n, lr, wd, gs);
    else if (o->t == 0) sgd_first(p + off, g + off, o->m + off, n, lr, wd, gs, c->momentum, c->nesterov);
    else sgd_momentum(p + off, g + off, o->m + off, n, lr, wd, gs, c->momentum, c->nesterov);
  } else {
    const double t = (double)(o->t + 1);
    const float c1 = (float)(1.0 / (1.0 - pow(c->beta1, t)));
    const float c2 = (float)(1.0 / (1.0 - pow(c->beta2, t)));
    adamw_fast(p + off, g + off, o->m + off, o->v + off, n, lr, 1.0f - lr * wd, gs, c->beta1, c->beta2, c1, c2,
               c->eps);
  }
}

void kd_optim_update(kd_optim *o, float *params, const float *grads, float lr, float gscale,
                     const kd_param_view *views, int n_views, const kd_range *ranges, int n_ranges) {
  const kd_range all = {0, (size_t)-1};
  if (!ranges) {
    ranges = &all;
    n_ranges = 1;
  }
  /* The views only switch weight decay on and off; the ranges select what
   * this rank owns. Both are sorted, short lists. */
  for (int k = 0; k < n_views; k++) {
    const kd_param_view *v = &views[k];
    const size_t vlo = v->offset, vhi = v->offset + (size_t)v->rows * v->cols;
    const float wd = v->decay ? o->cfg.weight_decay : 0.0f;
    for (int r = 0; r < n_ranges; r++) {
      size_t lo = ranges[r].lo > vlo ? ranges[r].lo : vlo;
      size_t hi = ranges[r].hi < vhi ? ranges[r].hi : vhi;
      if (lo < hi) update_span(o, params, grads, lo, hi - lo, lr, wd, gscale);
    }
  }
  o->t++;
}

void kd_optim_step(kd_optim *o, float *params, const float *grads, float lr, const kd_param_view *views,
                   int n_views) {
  kd_optim_update(o, params, grads, lr, 1.0f, views, n_views, NULL, 0);
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

double kd_sumsq_ref(const float *g, size_t n) {
  double s = 0.0;
  for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
  return s;
}

/* One running sum is a chain of dependent adds (about 1 ms for 1.3 M floats);
 * 16 interleaved ones vectorize and run at memory speed. */
KD_HOT double kd_sumsq(const float *g, size_t n) {
  enum { LANES = 16 };
  double acc[LANES] = {0};
  size_t i = 0;
  for (; i + LANES <= n; i += LANES)
    for (int k = 0; k < LANES; k++) acc[k] += (double)g[i + k] * g[i + k];
  double s = 0.0;
  for (int k = 0; k < LANES; k++) s += acc[k];
  for (; i < n; i++) s += (double)g[i] * g[i];
  return s;
}

float kd_clip_scale(double norm, double max_norm) {
  return max_norm > 0.0 && norm > max_norm && isfinite(norm) ? (float)(max_norm / (norm + 1e-12)) : 1.0f;
}
