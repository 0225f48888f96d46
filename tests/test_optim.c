/* Optimizers against hand-written formulas (PyTorch's SGD, AdamW), the
 * learning-rate schedule, gradient clipping. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "optim/optim.h"

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

/* The fast update (per-case vectorized loops, ranges, clipping folded in)
 * against the plain loops fed the pre-scaled gradient: bit for bit. */
static void fast_vs_ref(kd_optim_kind kind, float mu, int nesterov, float wd) {
  enum { M = 1003 };
  static kd_param_view v[3] = {{"w", 0, 20, 25, 1}, {"b", 500, 500, 1, 0}, {"c", 1000, 3, 1, 1}};
  const kd_range ranges[3] = {{0, 257}, {257, 700}, {700, M}}; /* splits views, as slices do */
  kd_optim o1, o2;
  kd_err e;
  kd_err_clear(&e);
  kd_optim_cfg cfg = {kind, mu, nesterov, 0.9f, 0.99f, 1e-8f, wd};
  CHECK(kd_optim_init(&o1, &cfg, M, &e) == KD_OK && kd_optim_init(&o2, &cfg, M, &e) == KD_OK, "init");
  static float p1[M], p2[M], g[M], gs_g[M];
  for (int i = 0; i < M; i++) p1[i] = p2[i] = 0.01f * (float)((i * 37) % 101) - 0.5f;
  for (int t = 0; t < 4; t++) {
    const float gs = t == 2 ? 0.37f : 1.0f, lr = 0.05f;
    for (int i = 0; i < M; i++) {
      g[i] = 0.02f * (float)((i * 13 + t * 7) % 29) - 0.3f;
      gs_g[i] = g[i] * gs;
    }
    kd_optim_update(&o1, p1, g, lr, gs, v, 3, ranges, 3);
    kd_optim_step_ref(&o2, p2, gs_g, lr, v, 3);
    CHECK(memcmp(p1, p2, sizeof p1) == 0, "fast vs reference: kind %d mu %g nesterov %d wd %g step %d", kind, mu,
          nesterov, wd, t);
    CHECK(memcmp(o1.m, o2.m, sizeof(float) * M) == 0, "fast vs reference moments: kind %d step %d", kind, t);
  }
  kd_optim_free(&o1);
  kd_optim_free(&o2);
}

int main(void) {
  fast_vs_ref(KD_OPT_SGD, 0, 0, 0.01f);
  fast_vs_ref(KD_OPT_SGD, 0.9f, 0, 0);
  fast_vs_ref(KD_OPT_SGD, 0.9f, 1, 0.01f);
  fast_vs_ref(KD_OPT_ADAMW, 0, 0, 0.1f);
  {
    static float g[1003];
    for (int i = 0; i < 1003; i++) g[i] = 0.001f * (float)(i % 97) - 0.04f;
    for (int n = 0; n <= 1003; n += 59) {
      double a = kd_sumsq(g, (size_t)n), b = kd_sumsq_ref(g, (size_t)n);
      CHECK(check_close(a, b, 1e-13, 0), "sumsq n=%d: %.17g vs %.17g", n, a, b);
    }
  }

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
  double n = sqrt(kd_sumsq(g, 4));
  const float s = kd_clip_scale(n, 1.0);
  CHECK(check_close(n, 5.0, 1e-9, 0), "norm %g", n);
  for (int i = 0; i < 4; i++) g[i] *= s;
  CHECK(check_close(sqrt(kd_sumsq(g, 4)), 1.0, 1e-6, 0), "clipped norm %g", sqrt(kd_sumsq(g, 4)));
  float h[2] = {0.3f, 0.4f};
  CHECK(kd_clip_scale(sqrt(kd_sumsq(h, 2)), 1.0) == 1.0f, "small gradient changed");
  CHECK(kd_clip_scale(NAN, 1.0) == 1.0f && kd_clip_scale(5.0, 0.0) == 1.0f, "clip scale without a finite norm or max");
  return check_summary("test_optim");
}
