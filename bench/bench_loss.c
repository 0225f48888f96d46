/* bench_loss [C] [ROWS]: nanoseconds per row of the KD loss and its gradient on unlabelled rows (the on-policy
 * case) for each --divergence, on the fast path (kd_loss_forward_backward: each exp once) and the reference path
 * (kd_loss_forward_backward_ref), and the ratio to forward's fast path; C classes (default 256), ROWS rows of
 * random logits (default 4096), the best of 5 passes. Prints; asserts nothing. */
#include <stdio.h>
#include <stdlib.h>

#include "core/files.h"
#include "core/rng.h"
#include "kd/loss.h"
#include "loss/divergence.h"

typedef void loss_fn(float *, kd_loss_sums *, const float *, const kd_targets *, int, int, const kd_loss_cfg *, float);

static double ns_per_row(loss_fn *f, float *dl, const float *zs, const kd_targets *t, int B, int C,
                         const kd_loss_cfg *cfg) {
  double best = 1e30;
  for (int pass = 0; pass < 5; pass++) {
    kd_loss_sums s = {0};
    const double t0 = kd_seconds();
    f(dl, &s, zs, t, B, C, cfg, 1.0f / B);
    const double dt = kd_seconds() - t0;
    if (dt < best) best = dt;
  }
  return 1e9 * best / B;
}

int main(int argc, char **argv) {
  const int C = argc > 1 ? atoi(argv[1]) : 256, B = argc > 2 ? atoi(argv[2]) : 4096;
  float *zs = malloc(sizeof(float) * (size_t)B * C), *zt = malloc(sizeof(float) * (size_t)B * C);
  float *dl = malloc(sizeof(float) * (size_t)B * C);
  int32_t *y = malloc(sizeof(int32_t) * (size_t)B), *a = malloc(sizeof(int32_t) * (size_t)B);
  if (!zs || !zt || !dl || !y || !a || C < 2 || B < 1) return 1;
  for (size_t i = 0; i < (size_t)B * C; i++) zs[i] = 2.0f * kd_normal(1, i), zt[i] = 3.0f * kd_normal(2, i);
  for (int b = 0; b < B; b++) y[b] = -1, a[b] = (int32_t)(kd_uniform(3, (uint64_t)b) * C) % C;
  const kd_targets t = {y, zt, NULL, NULL, NULL, a};
  const char *divs[] = {"forward", "reverse", "jsd:0.5", "skew:0.1", "reverse-sampled"};
  printf("loss and gradient of %d unlabelled rows of %d classes, T = 1, ns per row (best of 5)\n", B, C);
  printf("%-16s %10s %10s %12s\n", "divergence", "fast", "reference", "fast/forward");
  double fwd = 0;
  for (size_t k = 0; k < sizeof divs / sizeof *divs; k++) {
    kd_loss_cfg cfg = {0.5f, 1.0f, {KD_DIV_FORWARD, 0.0}};
    kd_err e = {0};
    if (kd_divergence_parse(&cfg.div, divs[k], &e)) return 1;
    const double fast = ns_per_row(kd_loss_forward_backward, dl, zs, &t, B, C, &cfg);
    const double ref = ns_per_row(kd_loss_forward_backward_ref, dl, zs, &t, B, C, &cfg);
    if (k == 0) fwd = fast;
    printf("%-16s %10.0f %10.0f %12.2f\n", divs[k], fast, ref, fast / fwd);
  }
  free(zs), free(zt), free(dl), free(y), free(a);
  return 0;
}
