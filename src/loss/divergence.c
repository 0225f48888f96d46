#include "loss/divergence.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loss/sums.h"

int kd_divergence_parse(kd_divergence *d, const char *text, kd_err *e) {
  memset(d, 0, sizeof *d);
  if (strcmp(text, "forward") == 0) return KD_OK;
  if (strcmp(text, "reverse") == 0 || strcmp(text, "reverse-sampled") == 0) {
    d->kind = text[7] ? KD_DIV_REVERSE_SAMPLED : KD_DIV_REVERSE;
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
                 "--divergence %s: not forward, reverse, reverse-sampled, jsd:BETA (0 <= BETA <= 1) or skew:ALPHA "
                 "(0 <= ALPHA < 1)",
                 text);
}

const char *kd_divergence_name(const kd_divergence *d, char *buf, size_t n) {
  if (d->kind == KD_DIV_JSD || d->kind == KD_DIV_SKEW)
    snprintf(buf, n, "%s:%g", d->kind == KD_DIV_JSD ? "jsd" : "skew", d->param);
  else
    snprintf(buf, n, "%s", d->kind == KD_DIV_REVERSE            ? "reverse"
                           : d->kind == KD_DIV_REVERSE_SAMPLED ? "reverse-sampled"
                                                               : "forward");
  return buf;
}

static int needs_p(const kd_divergence *d) {
  return d->kind != KD_DIV_REVERSE && d->kind != KD_DIV_REVERSE_SAMPLED;
}

/* One class: its term of D and q a (a = dD/dq), from ls = log p_s, lt = log p_t and the probabilities q = p_s
 * and p = p_t (p unused by reverse). The mixture M is formed from the probabilities (where both underflow it
 * is 0, and so is the class's share of D). */
static void at_class_qp(const kd_divergence *d, double ls, double lt, double q, double p, double *term, double *qa) {
  if (!needs_p(d)) { /* reverse, and the sampled one's expectation */
    *term = *qa = q * (ls - lt);
    return;
  }
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

/* The same with q and p from their logs (the reference: every probability its own exp); qo receives q. */
static void at_class(const kd_divergence *d, double ls, double lt, double *term, double *qa, double *qo) {
  const double q = exp(ls), p = needs_p(d) ? exp(lt) : 0.0;
  *qo = q;
  at_class_qp(d, ls, lt, q, p, term, qa);
}

static double lse_of(const float *z, int C, double invT) {
  double mx = -INFINITY, s = 0.0;
  for (int c = 0; c < C; c++) mx = fmax(mx, (double)z[c] * invT);
  for (int c = 0; c < C; c++) s += exp((double)z[c] * invT - mx);
  return mx + log(s);
}

/* log sum_c exp(z_c / T), each exp kept in out[2 c] (the fast path's cache; out is the [2 C] workspace) and
 * their sum in *sum. */
static double lse_keep(const float *z, int C, double invT, double *out, double *sum) {
  double mx = -INFINITY, s = 0.0;
  for (int c = 0; c < C; c++) mx = fmax(mx, (double)z[c] * invT);
  for (int c = 0; c < C; c++) s += (out[2 * c] = exp((double)z[c] * invT - mx));
  *sum = s;
  return mx + log(s);
}

/* The fast path's first pass: D and S = sum_c q_c a_c with every exp taken once. work[2 c] and work[2 c + 1]
 * hold the student's and the teacher's exps on entry (lse_keep, sums ss and st), q and q a on return. */
static double first_pass_kept(const kd_divergence *d, const float *zs, const float *zt, int C, double invT,
                              double ls0, double lt0, double ss, double st, double *S, double *work) {
  const double rs = 1.0 / ss, rt = 1.0 / st;
  double D = 0.0, sum = 0.0;
  for (int c = 0; c < C; c++) {
    double term, qa;
    const double q = work[2 * c] * rs, p = work[2 * c + 1] * rt;
    at_class_qp(d, (double)zs[c] * invT - ls0, (double)zt[c] * invT - lt0, q, p, &term, &qa);
    D += term;
    sum += qa;
    work[2 * c] = q, work[2 * c + 1] = qa;
  }
  *S = sum;
  return D;
}

/* D and S = sum_c q_c a_c of a row (the reference: every probability from its log). */
static double first_pass(const kd_divergence *d, const float *zs, const float *zt, int C, double invT, double ls0,
                         double lt0, double *S) {
  double D = 0.0, s = 0.0;
  for (int c = 0; c < C; c++) {
    double term, qa, q;
    at_class(d, (double)zs[c] * invT - ls0, (double)zt[c] * invT - lt0, &term, &qa, &q);
    D += term;
    s += qa;
  }
  *S = s;
  return D;
}

double kd_divergence_row(const kd_divergence *d, const float *zs, const float *zt, int C, double T, double *g) {
  const double invT = 1.0 / T, ls0 = lse_of(zs, C, invT), lt0 = lse_of(zt, C, invT);
  double S;
  const double D = first_pass(d, zs, zt, C, invT, ls0, lt0, &S);
  for (int c = 0; g && c < C; c++) {
    double term, qa, q;
    at_class(d, (double)zs[c] * invT - ls0, (double)zt[c] * invT - lt0, &term, &qa, &q);
    g[c] = (qa - q * S) * invT;
  }
  return D;
}

/* reverse-sampled on an unlabelled row where the student sampled a (T = 1, checked by the trainer): the loss is
 * the sample log q_a - log p_a, the gradient its policy gradient (log q_a - log p_a)(onehot(a) - q). */
static void sampled_row(float *dl, kd_loss_sums *sums, const float *zs, const float *zt, int a, int C,
                        float grad_scale) {
  const double ls0 = lse_of(zs, C, 1.0), lt0 = lse_of(zt, C, 1.0);
  const double D = ((double)zs[a] - ls0) - ((double)zt[a] - lt0);
  for (int c = 0; dl && c < C; c++)
    dl[c] = (float)(D * ((c == a ? 1.0 : 0.0) - exp((double)zs[c] - ls0)) * grad_scale);
  kd_loss_sums_row(sums, 0, 0, 0.0, 1.0, 0.0, D);
}

void kd_divergence_loss_row(float *dl, kd_loss_sums *sums, const float *zs, const float *zt, int y, int a, int C,
                            const kd_loss_cfg *cfg, float grad_scale, double *work) {
  const int labelled = y >= 0;
  if (cfg->div.kind == KD_DIV_REVERSE_SAMPLED && a >= 0 && a < C && zt && y == -1) {
    sampled_row(dl, sums, zs, zt, a, C, grad_scale);
    return;
  }
  if (y == KD_Y_IGNORE || (!labelled && !zt)) { /* no target; or no signal yet (counted, no gradient) */
    if (dl) memset(dl, 0, sizeof(float) * (size_t)C);
    if (y != KD_Y_IGNORE) sums->rows += 1.0;
    return;
  }
  const double T = cfg->temperature, invT = 1.0 / T;
  const double w_hard = zt ? (labelled ? cfg->alpha : 0.0) : 1.0, w_soft = zt ? (labelled ? 1.0 - cfg->alpha : 1.0) : 0.0;
  /* the fast path: with a workspace, each exp once (the reference computes p_s, p_t again from their logs) */
  const int kept = zt && work;
  double ls0 = 0.0, lt0 = 0.0, S = 0.0, D = 0.0;
  if (kept) {
    double ss, st;
    ls0 = lse_keep(zs, C, invT, work, &ss);
    lt0 = lse_keep(zt, C, invT, work + 1, &st);
    D = first_pass_kept(&cfg->div, zs, zt, C, invT, ls0, lt0, ss, st, &S, work);
  } else if (zt) {
    ls0 = lse_of(zs, C, invT);
    lt0 = lse_of(zt, C, invT);
    D = first_pass(&cfg->div, zs, zt, C, invT, ls0, lt0, &S);
  }
  /* the hard term's (none on an unlabelled row); at T = 1 the soft term's, and so is its softmax */
  const int same = kept && T == 1.0;
  const double lse1 = same ? ls0 : labelled || !zt ? lse_of(zs, C, 1.0) : 0.0;
  int arg = 0;
  for (int c = 1; c < C; c++)
    if (zs[c] > zs[arg]) arg = c;
  for (int c = 0; dl && c < C; c++) {
    double g = w_hard != 0.0 ? w_hard * ((same ? work[2 * c] : exp((double)zs[c] - lse1)) - (c == y ? 1.0 : 0.0)) : 0.0;
    if (zt) { /* d/dz_s of T^2 D = T (q a - q S) */
      double term, qa, q;
      if (kept) q = work[2 * c], qa = work[2 * c + 1];
      else at_class(&cfg->div, (double)zs[c] * invT - ls0, (double)zt[c] * invT - lt0, &term, &qa, &q);
      g += w_soft * T * (qa - q * S);
    }
    dl[c] = (float)(g * grad_scale);
  }
  kd_loss_sums_row(sums, labelled, arg == y, w_hard, w_soft, labelled ? lse1 - (double)zs[y] : 0.0, T * T * D);
}
