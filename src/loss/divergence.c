#include "loss/divergence.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loss/sums.h"

int kd_divergence_parse(kd_divergence *d, const char *text, kd_err *e) {
  memset(d, 0, sizeof *d);
  if (strcmp(text, "forward") == 0) return KD_OK;
  if (strcmp(text, "reverse") == 0) {
    d->kind = KD_DIV_REVERSE;
    return KD_OK;
  }
  const int jsd = strncmp(text, "jsd:", 4) == 0, skew = strncmp(text, "skew:", 5) == 0;
  char *end = NULL;
  const double v = jsd || skew ? strtod(text + (jsd ? 4 : 5), &end) : NAN;
  if (jsd && end != text + 4 && !*end && v >= 0.0 && v <= 1.0) {
    /* the formula goes to 0 at both ends: there it is the KL it tends to, as TRL takes it */
    d->kind = v == 0.0 ? KD_DIV_FORWARD : v == 1.0 ? KD_DIV_REVERSE : KD_DIV_JSD;
    d->param = d->kind == KD_DIV_JSD ? v : 0.0;
    return KD_OK;
  }
  if (skew && end != text + 5 && !*end && v >= 0.0 && v < 1.0) {
    d->kind = v == 0.0 ? KD_DIV_FORWARD : KD_DIV_SKEW;
    d->param = d->kind == KD_DIV_SKEW ? v : 0.0;
    return KD_OK;
  }
  return kd_fail(e, KD_ERR_USAGE,
                 "--divergence %s: not forward, reverse, jsd:BETA (0 <= BETA <= 1) or skew:ALPHA (0 <= ALPHA < 1)", text);
}

const char *kd_divergence_name(const kd_divergence *d, char *buf, size_t n) {
  if (d->kind == KD_DIV_JSD || d->kind == KD_DIV_SKEW)
    snprintf(buf, n, "%s:%g", d->kind == KD_DIV_JSD ? "jsd" : "skew", d->param);
  else
    snprintf(buf, n, "%s", d->kind == KD_DIV_REVERSE ? "reverse" : "forward");
  return buf;
}

/* One class: its term of D, q a (a = dD/dq) and q there, from ls = log p_s and lt = log p_t. The mixture M is
 * formed from the probabilities (where both underflow it is 0, and so is the class's share of D). */
static void at_class(const kd_divergence *d, double ls, double lt, double *term, double *qa, double *qo) {
  const double q = exp(ls);
  *qo = q;
  if (d->kind == KD_DIV_REVERSE) {
    *term = *qa = q * (ls - lt);
    return;
  }
  const double p = exp(lt);
  if (d->kind == KD_DIV_FORWARD) {
    *term = p * (lt - ls);
    *qa = -p;
    return;
  }
  const double b = d->param, M = b * p + (1.0 - b) * q; /* jsd: beta p_t + (1 - beta) p_s; skew: alpha p_t + ... */
  if (M <= 0.0) {
    *term = *qa = 0.0;
    return;
  }
  const double lm = log(M);
  if (d->kind == KD_DIV_JSD) {
    *term = b * p * (lt - lm) + (1.0 - b) * q * (ls - lm);
    *qa = (1.0 - b) * q * (ls - lm);
  } else { /* skew */
    *term = p * (lt - lm);
    *qa = -(1.0 - b) * p * q / M;
  }
}

static double lse_of(const float *z, int C, double invT) {
  double mx = -INFINITY, s = 0.0;
  for (int c = 0; c < C; c++) mx = fmax(mx, (double)z[c] * invT);
  for (int c = 0; c < C; c++) s += exp((double)z[c] * invT - mx);
  return mx + log(s);
}

/* D and S = sum_c q_c a_c of a row; work (nullable, [2 C]) keeps each class's q and q a for the second pass. */
static double first_pass(const kd_divergence *d, const float *zs, const float *zt, int C, double invT, double ls0,
                         double lt0, double *S, double *work) {
  double D = 0.0, s = 0.0;
  for (int c = 0; c < C; c++) {
    double term, qa, q;
    at_class(d, (double)zs[c] * invT - ls0, (double)zt[c] * invT - lt0, &term, &qa, &q);
    D += term;
    s += qa;
    if (work) work[2 * c] = q, work[2 * c + 1] = qa;
  }
  *S = s;
  return D;
}

double kd_divergence_row(const kd_divergence *d, const float *zs, const float *zt, int C, double T, double *g) {
  const double invT = 1.0 / T, ls0 = lse_of(zs, C, invT), lt0 = lse_of(zt, C, invT);
  double S;
  const double D = first_pass(d, zs, zt, C, invT, ls0, lt0, &S, NULL);
  for (int c = 0; g && c < C; c++) {
    double term, qa, q;
    at_class(d, (double)zs[c] * invT - ls0, (double)zt[c] * invT - lt0, &term, &qa, &q);
    g[c] = (qa - q * S) * invT;
  }
  return D;
}

void kd_divergence_loss_row(float *dl, kd_loss_sums *sums, const float *zs, const float *zt, int y, int C,
                            const kd_loss_cfg *cfg, float grad_scale, double *work) {
  const int labelled = y >= 0;
  if (y == KD_Y_IGNORE || (!labelled && !zt)) { /* no target; or no signal yet (counted, no gradient) */
    if (dl) memset(dl, 0, sizeof(float) * (size_t)C);
    if (y != KD_Y_IGNORE) sums->rows += 1.0;
    return;
  }
  const double T = cfg->temperature, invT = 1.0 / T;
  const double w_hard = zt ? (labelled ? cfg->alpha : 0.0) : 1.0, w_soft = zt ? (labelled ? 1.0 - cfg->alpha : 1.0) : 0.0;
  const double lse1 = labelled || !zt ? lse_of(zs, C, 1.0) : 0.0; /* the hard term's (none on an unlabelled row) */
  const double ls0 = zt ? lse_of(zs, C, invT) : 0.0, lt0 = zt ? lse_of(zt, C, invT) : 0.0;
  double S = 0.0;
  const double D = zt ? first_pass(&cfg->div, zs, zt, C, invT, ls0, lt0, &S, dl ? work : NULL) : 0.0;
  int arg = 0;
  for (int c = 1; c < C; c++)
    if (zs[c] > zs[arg]) arg = c;
  for (int c = 0; dl && c < C; c++) {
    double g = w_hard != 0.0 ? w_hard * (exp((double)zs[c] - lse1) - (c == y ? 1.0 : 0.0)) : 0.0;
    if (zt) { /* d/dz_s of T^2 D = T (q a - q S) */
      double term, qa, q;
      if (work) q = work[2 * c], qa = work[2 * c + 1];
      else at_class(&cfg->div, (double)zs[c] * invT - ls0, (double)zt[c] * invT - lt0, &term, &qa, &q);
      g += w_soft * T * (qa - q * S);
    }
    dl[c] = (float)(g * grad_scale);
  }
  kd_loss_sums_row(sums, labelled, arg == y, w_hard, w_soft, labelled ? lse1 - (double)zs[y] : 0.0, T * T * D);
}
