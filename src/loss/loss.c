#include "kd/loss.h"

#include <math.h>

#include "loss/divergence.h"
#include "loss/sums.h"

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

/* Row weights: a labelled row mixes both terms; an unlabelled row has only
 * the soft term; without a teacher it is plain cross-entropy. An unlabelled
 * row with no teacher yet (self-distillation before the first snapshot)
 * carries no signal: weight 0, but it still counts in the batch's B.
 * Returns 0 for such a row (its gradient zeroed, its count taken). */
static int row_weights(float *dl, kd_loss_sums *sums, int has_teacher, int y, int C, const kd_loss_cfg *cfg,
                       double *w_hard, double *w_soft) {
  if (y == KD_Y_IGNORE) { /* a position that is no target: no loss, no gradient, not counted */
    if (dl)
      for (int c = 0; c < C; c++) dl[c] = 0.0f;
    return 0;
  }
  const int labelled = y >= 0;
  *w_hard = has_teacher ? (labelled ? cfg->alpha : 0.0) : 1.0;
  *w_soft = has_teacher ? (labelled ? 1.0 - cfg->alpha : 1.0) : 0.0;
  if (labelled || has_teacher) return 1;
  if (dl)
    for (int c = 0; c < C; c++) dl[c] = 0.0f;
  sums->rows += 1.0;
  return 0;
}

static void add_row(kd_loss_sums *sums, int y, int arg, double w_hard, double w_soft, double ce, double kd) {
  kd_loss_sums_row(sums, y >= 0, arg == y, w_hard, w_soft, ce, kd);
}

/* The plain form: every probability from its own exp (60 per row at C = 10
 * with a teacher). */
static void row_plain(float *dl, kd_loss_sums *sums, const float *zs, const float *zt, int y, int C,
                      const kd_loss_cfg *cfg, float grad_scale) {
  const double T = cfg->temperature, invT = 1.0 / T;
  double w_hard, w_soft;
  if (!row_weights(dl, sums, zt != NULL, y, C, cfg, &w_hard, &w_soft)) return;
  double mx;
  double lse1 = lse_scaled(zs, C, 1.0, &mx);
  double lse_sT = 0.0, lse_tT = 0.0;
  if (zt) {
    lse_sT = lse_scaled(zs, C, invT, &mx);
    lse_tT = lse_scaled(zt, C, invT, &mx);
  }
  double ce = y >= 0 ? lse1 - (double)zs[y] : 0.0;
  double kl = 0.0;
  int arg = 0;
  for (int c = 0; c < C; c++) {
    if (zs[c] > zs[arg]) arg = c;
    double g = 0.0;
    if (w_hard != 0.0) g += w_hard * (exp((double)zs[c] - lse1) - (c == y ? 1.0 : 0.0));
    if (zt) {
      double lps = (double)zs[c] * invT - lse_sT;
      double lpt = (double)zt[c] * invT - lse_tT;
      double pt = exp(lpt);
      kl += pt * (lpt - lps);
      /* d/dz_s of T^2 * KL(p_t^T || p_s^T) = T * (p_s^T - p_t^T) */
      if (w_soft != 0.0) g += w_soft * T * (exp(lps) - pt);
    }
    if (dl) dl[c] = (float)(g * grad_scale);
  }
  add_row(sums, y, arg, w_hard, w_soft, ce, T * T * kl);
}

/* The same row with each exp computed once and kept (up to KD_LOSS_CACHE_C
 * classes, on the stack): the probabilities are the kept exps over their
 * sums, 30 exps per row at C = 10 instead of 60. */
enum { KD_LOSS_CACHE_C = 256 };
static void row_cached(float *dl, kd_loss_sums *sums, const float *zs, const float *zt, int y, int C,
                       const kd_loss_cfg *cfg, float grad_scale) {
  const double T = cfg->temperature, invT = 1.0 / T;
  double w_hard, w_soft;
  if (!row_weights(dl, sums, zt != NULL, y, C, cfg, &w_hard, &w_soft)) return;
  double e1[KD_LOSS_CACHE_C], esT[KD_LOSS_CACHE_C], etT[KD_LOSS_CACHE_C];
  int arg = 0;
  for (int c = 1; c < C; c++)
    if (zs[c] > zs[arg]) arg = c;
  /* max_c z_c / T = (max_c z_c) / T for T > 0: the same doubles. */
  const double mx1 = zs[arg], mxs = (double)zs[arg] * invT;
  double s1 = 0.0, ssT = 0.0, stT = 0.0, mxt = -INFINITY;
  for (int c = 0; c < C; c++) {
    e1[c] = exp((double)zs[c] - mx1);
    s1 += e1[c];
  }
  if (zt) {
    for (int c = 0; c < C; c++) {
      double v = (double)zt[c] * invT;
      if (v > mxt) mxt = v;
    }
    for (int c = 0; c < C; c++) {
      esT[c] = exp((double)zs[c] * invT - mxs);
      etT[c] = exp((double)zt[c] * invT - mxt);
      ssT += esT[c];
      stT += etT[c];
    }
  }
  const double lse1 = mx1 + log(s1);
  const double lse_sT = zt ? mxs + log(ssT) : 0.0, lse_tT = zt ? mxt + log(stT) : 0.0;
  const double ce = y >= 0 ? lse1 - (double)zs[y] : 0.0;
  const double r1 = 1.0 / s1, rsT = zt ? 1.0 / ssT : 0.0, rtT = zt ? 1.0 / stT : 0.0;
  double kl = 0.0;
  for (int c = 0; c < C; c++) {
    double g = 0.0;
    if (w_hard != 0.0) g += w_hard * (e1[c] * r1 - (c == y ? 1.0 : 0.0));
    if (zt) {
      const double lps = (double)zs[c] * invT - lse_sT;
      const double lpt = (double)zt[c] * invT - lse_tT;
      const double pt = etT[c] * rtT;
      kl += pt * (lpt - lps);
      if (w_soft != 0.0) g += w_soft * T * (esT[c] * rsT - pt);
    }
    if (dl) dl[c] = (float)(g * grad_scale);
  }
  add_row(sums, y, arg, w_hard, w_soft, ce, T * T * kl);
}

void kd_loss_forward_backward(float *dlogits, kd_loss_sums *sums, const float *z_s, const kd_targets *t, int B,
                              int C, const kd_loss_cfg *cfg, float grad_scale) {
  for (int b = 0; b < B; b++) {
    const float *zt = t->t_logits ? t->t_logits + (size_t)b * C : NULL;
    float *dl = dlogits ? dlogits + (size_t)b * C : NULL;
    if (zt && cfg->div.kind != KD_DIV_FORWARD) {
      double work[2 * KD_LOSS_CACHE_C]; /* beyond it, the second pass computes its values again */
      kd_divergence_loss_row(dl, sums, z_s + (size_t)b * C, zt, t->y[b], t->sampled ? t->sampled[b] : -1, C, cfg,
                             grad_scale, C <= KD_LOSS_CACHE_C ? work : NULL);
    } else if (C <= KD_LOSS_CACHE_C)
      row_cached(dl, sums, z_s + (size_t)b * C, zt, t->y[b], C, cfg, grad_scale);
    else
      row_plain(dl, sums, z_s + (size_t)b * C, zt, t->y[b], C, cfg, grad_scale);
  }
}

void kd_loss_forward_backward_ref(float *dlogits, kd_loss_sums *sums, const float *z_s, const kd_targets *t, int B,
                                  int C, const kd_loss_cfg *cfg, float grad_scale) {
  for (int b = 0; b < B; b++) {
    const float *zt = t->t_logits ? t->t_logits + (size_t)b * C : NULL;
    float *dl = dlogits ? dlogits + (size_t)b * C : NULL;
    if (zt && cfg->div.kind != KD_DIV_FORWARD)
      kd_divergence_loss_row(dl, sums, z_s + (size_t)b * C, zt, t->y[b], t->sampled ? t->sampled[b] : -1, C, cfg,
                             grad_scale, NULL);
    else
      row_plain(dl, sums, z_s + (size_t)b * C, zt, t->y[b], C, cfg, grad_scale);
  }
}
