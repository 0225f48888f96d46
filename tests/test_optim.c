/* Optimizers against hand-written formulas (PyTorch's SGD, AdamW), the
 * learning-rate schedule, gradient clipping. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kd/optim.h"

enum { N = 6 };

static kd_param_view views[2] = {{"w", 0, 2, 2, 1}, {"b", 4, 2, 1, 0}};

static void sgd_case(float mu, int nesterov, float wd) {
  kd_optim o;
  kd_err e;
  kd_err_clear(&e);
  kd_optim_cfg cfg = {KD_OPT_SGD, mu, nesterov, 0.9f, 0.999f, 1e-8f, wd};
  CHECK(kd_optim_init(&o, &cfg, N, &e) == KD_OK, "init");
  float p[N], g[N];
  double rp[N], buf[N];
  for (int i = 0; i < N; i++) rp[i] = p[i] = 0.5f - 0.2f * i;
  for (int t = 0; t < 4; t++) {
    for (int i = 0; i < N; i++) g[i] = (float)(0.3 * (i + 1) * (t % 2 ? -1 : 1) + 0.05 * t);
    const float lr = 0.1f + 0.01f * t;
    kd_optim_step(&o, p, g, lr, views, 2);
    for (int i = 0; i < N; i++) {
      double d = i < 4 ? wd : 0.0; /* biases are not decayed */
      double gi = g[i] + d * rp[i];
      buf[i] = t == 0 ? gi : mu * buf[i] + gi;
      double step = mu == 0 ? gi : nesterov ? gi + mu * buf[i] : buf[i];
      rp[i] -= lr * step;
      CHECK(check_close(p[i], rp[i], 1e-5, 1e-6), "sgd mu=%g nesterov=%d wd=%g t=%d i=%d: %g vs %g", mu, nesterov,
            wd, t, i, p[i], rp[i]);
    }
  }
  kd_optim_free(&o);
}

static void adamw_case(float wd) {
  kd_optim o;
  kd_err e;
  kd_err_clear(&e);
  const double b1 = 0.9, b2 = 0.99, eps = 1e-8;
  kd_optim_cfg cfg = {KD_OPT_ADAMW, 0, 0, (float)b1, (float)b2, (float)eps, wd};
  CHECK(kd_optim_init(&o, &cfg, N, &e) == KD_OK, "init");
  float p[N], g[N];
  double rp[N], m[N] = {0}, v[N] = {0};
  for (int i = 0; i < N; i++) rp[i] = p[i] = 0.5f - 0.2f * i;
  for (int t = 1; t <= 5; t++) {
    for (int i = 0; i < N; i++) g[i] = (float)(0.3 * (i + 1) * (t % 2 ? -1 : 1) + 0.05 * t);
    const float lr = 0.01f;
    kd_optim_step(&o, p, g, lr, views, 2);
    for (int i = 0; i < N; i++) {
      double d = i < 4 ? wd : 0.0;
      rp[i] *= 1 - lr * d;
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      double mh = m[i] / (1 - pow(b1, t)), vh = v[i] / (1 - pow(b2, t));
      rp[i] -= lr * mh / (sqrt(vh) + eps);
      CHECK(check_close(p[i], rp[i], 1e-5, 1e-6), "adamw wd=%g t=%d i=%d: %g vs %g", wd, t, i, p[i], rp[i]);
    }
  }
  kd_optim_free(&o);
}

int main(void) {
  sgd_case(0, 0, 0);
  sgd_case(0.9f, 0, 0);
  sgd_case(0.9f, 1, 0);
  sgd_case(0.9f, 1, 0.01f);
  sgd_case(0.5f, 0, 0.1f);
  adamw_case(0);
  adamw_case(0.1f);

  /* Schedule: linear warmup to the peak, then cosine to 0 or constant. */
  CHECK(check_close(kd_lr_at(KD_SCHED_COSINE, 1.0f, 0, 110, 10), 0.1, 1e-6, 0), "warmup start");
  CHECK(check_close(kd_lr_at(KD_SCHED_COSINE, 1.0f, 9, 110, 10), 1.0, 1e-6, 0), "warmup end");
  CHECK(check_close(kd_lr_at(KD_SCHED_COSINE, 1.0f, 10, 110, 10), 1.0, 1e-6, 0), "cosine start");
  CHECK(check_close(kd_lr_at(KD_SCHED_COSINE, 1.0f, 60, 110, 10), 0.5, 1e-6, 0), "cosine middle");
  CHECK(kd_lr_at(KD_SCHED_COSINE, 1.0f, 109, 110, 10) < 1e-3, "cosine end");
  CHECK(kd_lr_at(KD_SCHED_COSINE, 1.0f, 109, 110, 10) > 0, "cosine end positive");
  CHECK(check_close(kd_lr_at(KD_SCHED_CONST, 0.3f, 500, 110, 10), 0.3, 1e-6, 0), "const");
  CHECK(check_close(kd_lr_at(KD_SCHED_CONST, 0.3f, 4, 110, 10), 0.15, 1e-6, 0), "const warmup");

  /* Clipping scales to the norm, and leaves small gradients alone. */
  float g[4] = {3, 4, 0, 0};
  double n = kd_clip_grad(g, 4, 1.0);
  CHECK(check_close(n, 5.0, 1e-9, 0), "norm %g", n);
  CHECK(check_close(kd_grad_norm(g, 4), 1.0, 1e-6, 0), "clipped norm %g", kd_grad_norm(g, 4));
  float h[2] = {0.3f, 0.4f};
  kd_clip_grad(h, 2, 1.0);
  CHECK(h[0] == 0.3f && h[1] == 0.4f, "small gradient changed");
  return check_summary("test_optim");
}
