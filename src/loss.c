#include "kd/loss.h"

#include <math.h>

/* log(sum_c exp(z_c * s)) with the max subtracted first. */
static double lse_scaled(const float *z, int C, double s, double *max_out) {
  double mx = -INFINITY;
  for (int c = 0; c < C; c++) {
    double v = (double)z[c] * s;
    if (v > mx) mx = v;
  }
  double sum = 0.0;
  for (int c = 0; c < C; c++) sum += exp((double)z[c] * s - mx);
  *max_out = mx;
  return mx + log(sum);
}

void kd_loss_forward_backward(float *dlogits, kd_loss_sums *sums,
                              const float *z_s, const kd_targets *t, int B,
                              int C, const kd_loss_cfg *cfg, float grad_scale) {
  const double T = cfg->temperature, invT = 1.0 / T;
  const int has_teacher = t->t_logits != NULL;
  for (int b = 0; b < B; b++) {
    const float *zs = z_s + (size_t)b * C;
    const float *zt = has_teacher ? t->t_logits + (size_t)b * C : 0;
    const int y = t->y[b];
    const int labelled = y >= 0;
    /* Row weights: a labelled row mixes both terms; an unlabelled row has
     * only the soft term; without a teacher it is plain cross-entropy. */
    double w_hard = has_teacher ? (labelled ? cfg->alpha : 0.0) : 1.0;
    double w_soft = has_teacher ? (labelled ? 1.0 - cfg->alpha : 1.0) : 0.0;
    if (!labelled && !has_teacher) {
      /* An unlabelled row with no teacher yet (self-distillation before the
       * first snapshot) carries no signal: weight 0, but it still counts in
       * the batch's B. */
      if (dlogits)
        for (int c = 0; c < C; c++) dlogits[(size_t)b * C + c] = 0.0f;
      sums->rows += 1.0;
      continue;
    }

    double mx;
    double lse1 = lse_scaled(zs, C, 1.0, &mx);
    double lse_sT = 0.0, lse_tT = 0.0;
    if (has_teacher) {
      lse_sT = lse_scaled(zs, C, invT, &mx);
      lse_tT = lse_scaled(zt, C, invT, &mx);
    }
    double ce = labelled ? lse1 - (double)zs[y] : 0.0;
    double kl = 0.0;
    int arg = 0;
    for (int c = 0; c < C; c++) {
      if (zs[c] > zs[arg]) arg = c;
      double g = 0.0;
      if (w_hard != 0.0) g += w_hard * (exp((double)zs[c] - lse1) - (c == y ? 1.0 : 0.0));
      if (has_teacher) {
        double lps = (double)zs[c] * invT - lse_sT;
        double lpt = (double)zt[c] * invT - lse_tT;
        double pt = exp(lpt);
        kl += pt * (lpt - lps);
        /* d/dz_s of T^2 * KL(p_t^T || p_s^T) = T * (p_s^T - p_t^T) */
        if (w_soft != 0.0) g += w_soft * T * (exp(lps) - pt);
      }
      if (dlogits) dlogits[(size_t)b * C + c] = (float)(g * grad_scale);
    }
    double kd = T * T * kl;
    sums->loss += w_hard * ce + w_soft * kd;
    sums->ce += ce;
    sums->kd += kd;
    sums->rows += 1.0;
    if (labelled) {
      sums->labelled += 1.0;
      sums->correct += (arg == y);
    }
  }
}
