/* The KD loss and its gradient against an independent fp64 reference:
 * loss from the textbook formula, gradient by central differences of that
 * reference in double precision. Also: the T^2 factor matters at the data
 * used (so dropping it fails), logits of +-1e4 stay finite, unlabelled rows
 * and the no-teacher case. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kd/loss.h"
#include "core/rng.h"

enum { C = 5 };

static void log_softmax(double *out, const double *z, double scale) {
  double mx = -INFINITY, s = 0;
  for (int c = 0; c < C; c++) mx = fmax(mx, z[c] * scale);
  for (int c = 0; c < C; c++) s += exp(z[c] * scale - mx);
  for (int c = 0; c < C; c++) out[c] = z[c] * scale - mx - log(s);
}

/* One row's loss as the paper writes it; t2 = 0 drops the T^2 factor. */
static double ref_loss(const double *zs, const double *zt, int y, double T, double alpha, int t2) {
  double lp[C], lps[C], lpt[C];
  log_softmax(lp, zs, 1.0);
  double ce = y >= 0 ? -lp[y] : 0.0;
  if (!zt) return ce;
  log_softmax(lps, zs, 1.0 / T);
  log_softmax(lpt, zt, 1.0 / T);
  double kl = 0;
  for (int c = 0; c < C; c++) kl += exp(lpt[c]) * (lpt[c] - lps[c]);
  double soft = (t2 ? T * T : 1.0) * kl;
  return y >= 0 ? alpha * ce + (1 - alpha) * soft : soft;
}

static void check_row(const float *zs, const float *zt, int y, float T, float alpha, double gtol, const char *what) {
  double zd[C], ztd[C];
  for (int c = 0; c < C; c++) {
    zd[c] = zs[c];
    ztd[c] = zt ? zt[c] : 0;
  }
  float dl[C];
  kd_loss_sums s = {0, 0, 0, 0, 0, 0};
  int32_t yy = y;
  kd_targets t = {&yy, zt, NULL, NULL, NULL, NULL};
  kd_loss_cfg cfg = {alpha, T, {KD_DIV_FORWARD, 0.0}};
  kd_loss_forward_backward(dl, &s, zs, &t, 1, C, &cfg, 1.0f);
  double ref = ref_loss(zd, zt ? ztd : NULL, y, T, alpha, 1);
  CHECK(check_close(s.loss, ref, 1e-9, 1e-9), "%s T=%g alpha=%g y=%d: loss %.12g, reference %.12g", what, T, alpha,
        y, s.loss, ref);
  for (int c = 0; c < C; c++) {
    const double h = 1e-6 * fmax(1.0, fabs(zd[c]));
    double zp[C], zm[C];
    memcpy(zp, zd, sizeof zp);
    memcpy(zm, zd, sizeof zm);
    zp[c] += h;
    zm[c] -= h;
    double g = (ref_loss(zp, zt ? ztd : NULL, y, T, alpha, 1) - ref_loss(zm, zt ? ztd : NULL, y, T, alpha, 1)) / (2 * h);
    CHECK(check_close(dl[c], g, gtol, gtol), "%s T=%g alpha=%g: dlogit[%d] %.9g, reference %.9g", what, T, alpha, c,
          dl[c], g);
    CHECK(isfinite(dl[c]), "%s: non-finite gradient", what);
  }
}

int main(void) {
  float zs[C], zt[C];
  const float Ts[] = {1, 2, 4, 20}, alphas[] = {0, 0.1f, 0.5f, 1};
  for (int r = 0; r < 20; r++) {
    for (int c = 0; c < C; c++) {
      zs[c] = 2.0f * (float)kd_normal(1, (uint64_t)(r * C + c));
      zt[c] = 4.0f * (float)kd_normal(2, (uint64_t)(r * C + c));
    }
    for (size_t i = 0; i < sizeof Ts / sizeof *Ts; i++)
      for (size_t j = 0; j < sizeof alphas / sizeof *alphas; j++) {
        check_row(zs, zt, r % C, Ts[i], alphas[j], 1e-6, "labelled");
        check_row(zs, zt, -1, Ts[i], alphas[j], 1e-6, "unlabelled");
      }
    check_row(zs, NULL, r % C, 4, 0.1f, 1e-6, "no teacher");
  }

  /* The T^2 factor must be visible at these values: a loss without it
   * differs from the reference by far more than the tolerance above. */
  {
    double zd[C], ztd[C];
    for (int c = 0; c < C; c++) {
      zd[c] = zs[c];
      ztd[c] = zt[c];
    }
    double with = ref_loss(zd, ztd, 0, 4, 0.1, 1), without = ref_loss(zd, ztd, 0, 4, 0.1, 0);
    CHECK(fabs(with - without) > 1e-2 * fabs(with), "T^2 invisible: %g vs %g", with, without);
    float dl[C];
    kd_loss_sums s = {0, 0, 0, 0, 0, 0};
    int32_t y = 0;
    kd_targets t = {&y, zt, NULL, NULL, NULL, NULL};
    kd_loss_cfg cfg = {0.1f, 4, {KD_DIV_FORWARD, 0.0}};
    kd_loss_forward_backward(dl, &s, zs, &t, 1, C, &cfg, 1.0f);
    CHECK(fabs(s.loss - without) > 1e-3, "loss equals the T^2-less formula: %g", s.loss);
    /* The logged soft part is T^2 * KL: (loss - alpha*ce) / (1 - alpha). */
    CHECK(check_close(s.kd, (with - 0.1 * s.ce) / 0.9, 1e-6, 1e-9), "kd part %g", s.kd);
  }

  /* Extreme logits: finite loss and gradient, still equal to the reference. */
  {
    float big_s[C] = {1e4f, -1e4f, 0, 5e3f, -3e3f}, big_t[C] = {-1e4f, 1e4f, 0, -5e3f, 2e3f};
    check_row(big_s, big_t, 1, 4, 0.1f, 1e-5, "+-1e4 logits");
    check_row(big_s, big_t, 0, 1, 0.5f, 1e-5, "+-1e4 logits");
    check_row(big_s, NULL, 1, 4, 0.1f, 1e-5, "+-1e4 logits, no teacher");
    float dl[C];
    kd_loss_sums s = {0, 0, 0, 0, 0, 0};
    int32_t y = 1;
    kd_targets t = {&y, big_t, NULL, NULL, NULL, NULL};
    kd_loss_cfg cfg = {0.1f, 20, {KD_DIV_FORWARD, 0.0}};
    kd_loss_forward_backward(dl, &s, big_s, &t, 1, C, &cfg, 1.0f);
    CHECK(isfinite(s.loss) && isfinite(s.ce) && isfinite(s.kd), "loss not finite at +-1e4: %g", s.loss);
    for (int c = 0; c < C; c++) CHECK(isfinite(dl[c]), "gradient %d not finite at +-1e4", c);
  }

  /* Sums: the batch's mean comes out of grad_scale = 1/B. */
  {
    enum { NB = 4 };
    float z[NB * C], tz[NB * C], dl[NB * C], dl1[C];
    int32_t y[NB] = {0, 3, -1, 2};
    for (int i = 0; i < NB * C; i++) {
      z[i] = (float)kd_normal(5, i);
      tz[i] = (float)kd_normal(6, i);
    }
    kd_targets t = {y, tz, NULL, NULL, NULL, NULL};
    kd_loss_cfg cfg = {0.3f, 2, {KD_DIV_FORWARD, 0.0}};
    kd_loss_sums s = {0, 0, 0, 0, 0, 0};
    kd_loss_forward_backward(dl, &s, z, &t, NB, C, &cfg, 1.0f / NB);
    CHECK(s.rows == NB && s.labelled == 3, "rows %g labelled %g", s.rows, s.labelled);
    for (int b = 0; b < NB; b++) {
      kd_targets t1 = {&y[b], tz + b * C, NULL, NULL, NULL, NULL};
      kd_loss_sums s1 = {0, 0, 0, 0, 0, 0};
      kd_loss_forward_backward(dl1, &s1, z + b * C, &t1, 1, C, &cfg, 1.0f);
      for (int c = 0; c < C; c++)
        CHECK(check_close(dl[b * C + c], dl1[c] / NB, 1e-6, 1e-9), "row %d col %d: batch gradient not the mean", b, c);
    }
  }
  /* An unlabelled row without a teacher weighs nothing. */
  {
    float z[C] = {1, -2, 0.5f, 3, 0}, dl[C];
    int32_t y = -1;
    kd_targets t = {&y, NULL, NULL, NULL, NULL, NULL};
    kd_loss_cfg cfg = {0.1f, 4, {KD_DIV_FORWARD, 0.0}};
    kd_loss_sums s = {0, 0, 0, 0, 0, 0};
    kd_loss_forward_backward(dl, &s, z, &t, 1, C, &cfg, 1.0f);
    CHECK(s.loss == 0 && s.rows == 1 && s.labelled == 0, "unlabelled row without teacher: loss %g", s.loss);
    for (int c = 0; c < C; c++) CHECK(dl[c] == 0.0f, "unlabelled row without teacher: gradient %g", dl[c]);
  }
  /* The fast path (cached exps) against the plain form, at C = 10 and at
   * C = 300 (beyond the cache: both take the plain form), with labelled,
   * unlabelled and no-teacher batches and logits up to +-40. */
  for (int Cb = 10; Cb <= 300; Cb += 290) {
    enum { NB = 6 };
    static float z[NB * 300], tz[NB * 300], d1[NB * 300], d2[NB * 300];
    int32_t y[NB] = {0, 3, -1, 7, -1, 9};
    for (int i = 0; i < NB * Cb; i++) {
      z[i] = (float)(8 * kd_normal(11, i));
      tz[i] = (float)(8 * kd_normal(12, i));
    }
    for (int teach = 0; teach < 2; teach++) {
      kd_targets t = {y, teach ? tz : NULL, NULL, NULL, NULL, NULL};
      kd_loss_cfg cfg = {0.3f, 3, {KD_DIV_FORWARD, 0.0}};
      kd_loss_sums s1 = {0, 0, 0, 0, 0, 0}, s2 = {0, 0, 0, 0, 0, 0};
      kd_loss_forward_backward(d1, &s1, z, &t, NB, Cb, &cfg, 0.5f);
      kd_loss_forward_backward_ref(d2, &s2, z, &t, NB, Cb, &cfg, 0.5f);
      CHECK(check_close(s1.loss, s2.loss, 1e-12, 1e-12) && check_close(s1.kd, s2.kd, 1e-12, 1e-12) &&
            s1.correct == s2.correct && s1.rows == s2.rows, "C=%d teacher %d: fast loss %.15g vs plain %.15g", Cb,
            teach, s1.loss, s2.loss);
      for (int i = 0; i < NB * Cb; i++)
        CHECK(check_close(d1[i], d2[i], 1e-6, 1e-9), "C=%d teacher %d: dlogit %d fast %.9g vs plain %.9g", Cb, teach,
              i, d1[i], d2[i]);
    }
  }
  return check_summary("test_loss");
}
