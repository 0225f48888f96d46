/* The soft term's divergences (loss/divergence.h): each row's loss against a textbook fp64 reference written in
 * probability space (p, q, the mixture M as probabilities), and its gradient against central differences of that
 * reference; for reverse, jsd:BETA (0.1, 0.5, 0.9) and skew:ALPHA (0.1, 0.5), at T 1 and 2, labelled and
 * unlabelled rows, on the dense path (kd_loss_forward_backward) and the large-vocabulary pass
 * (kd_loss_dense_rows), both on the fast path (each exp once), which must also match the reference path.
 * jsd:0 and jsd:1 are forward and reverse exactly; the parser's refusals; sparse teacher logits refuse every
 * divergence but forward. reverse-sampled (the student's sampled token, a policy gradient): its mean gradient and
 * loss over many draws equal reverse's within 5 standard errors (a test with the power to tell forward's
 * gradient apart), on both dense paths alike. With --dump LOGITS_FILE it writes fixed logits and kd's jsd
 * values for tests/check_divergence.py (a numpy implementation of TRL's formula). */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/rng.h"
#include "kd/loss.h"
#include "loss/divergence.h"

enum { C = 6 };

static void softmax(double *p, const double *z, double invT) {
  double mx = -INFINITY, s = 0;
  for (int c = 0; c < C; c++) mx = fmax(mx, z[c] * invT);
  for (int c = 0; c < C; c++) s += (p[c] = exp(z[c] * invT - mx));
  for (int c = 0; c < C; c++) p[c] /= s;
}

/* D(p_t, p_s) from the probabilities, as the papers write it. */
static double ref_div(const kd_divergence *d, const double *zs, const double *zt, double T) {
  double q[C], p[C], D = 0;
  softmax(q, zs, 1.0 / T);
  softmax(p, zt, 1.0 / T);
  for (int c = 0; c < C; c++) {
    const double b = d->param;
    switch (d->kind) {
    case KD_DIV_REVERSE: D += q[c] * log(q[c] / p[c]); break;
    case KD_DIV_JSD: {
      const double m = b * p[c] + (1 - b) * q[c];
      D += b * p[c] * log(p[c] / m) + (1 - b) * q[c] * log(q[c] / m);
      break;
    }
    case KD_DIV_SKEW: D += p[c] * log(p[c] / (b * p[c] + (1 - b) * q[c])); break;
    default: D += p[c] * log(p[c] / q[c]);
    }
  }
  return D;
}

static double ref_loss(const kd_divergence *d, const double *zs, const double *zt, int y, double T, double alpha) {
  double q1[C];
  softmax(q1, zs, 1.0);
  const double soft = T * T * ref_div(d, zs, zt, T);
  return y >= 0 ? alpha * -log(q1[y]) + (1 - alpha) * soft : soft;
}

static void parse(kd_divergence *d, const char *text) {
  kd_err e = {0};
  CHECK(kd_divergence_parse(d, text, &e) == KD_OK, "parse %s: %s", text, e.msg);
}

static void check_row(const char *name, const float *zs, const float *zt, int y, float T, float alpha, int dense_rows) {
  kd_divergence d;
  parse(&d, name);
  double zd[C], ztd[C];
  for (int c = 0; c < C; c++) zd[c] = zs[c], ztd[c] = zt[c];
  float dl[C];
  kd_loss_sums s = {0};
  int32_t yy = y;
  const kd_targets t = {&yy, zt, NULL, NULL, NULL, NULL};
  const kd_loss_cfg cfg = {alpha, T, d};
  kd_err e = {0};
  if (dense_rows) CHECK(kd_loss_dense_rows(dl, &s, zs, &t, 1, C, &cfg, 1.0f, &e) == KD_OK, "dense rows: %s", e.msg);
  else kd_loss_forward_backward(dl, &s, zs, &t, 1, C, &cfg, 1.0f);
  const char *path = dense_rows ? "dense rows" : "dense";
  /* the reference path (each probability from its log) against the fast one (each exp once; forward's
   * large-vocabulary pass takes its exps in float, exact to float rounding) */
  const double ftol = dense_rows && d.kind == KD_DIV_FORWARD ? 2e-6 : 1e-12;
  float dr[C];
  kd_loss_sums sr = {0};
  kd_loss_forward_backward_ref(dr, &sr, zs, &t, 1, C, &cfg, 1.0f);
  CHECK(check_close(s.loss, sr.loss, ftol, 1e-14), "%s %s: fast loss %.17g, reference path %.17g", path, name, s.loss,
        sr.loss);
  for (int c = 0; c < C; c++)
    CHECK(check_close(dl[c], dr[c], ftol > 1e-6 ? 1e-5 : 1e-6, 1e-8),
          "%s %s: fast dlogit[%d] %.9g, reference path %.9g", path, name, c, dl[c], dr[c]);
  const double ref = ref_loss(&d, zd, ztd, y, T, alpha);
  const double tol = dense_rows && d.kind == KD_DIV_FORWARD ? 2e-6 : 1e-9;
  CHECK(check_close(s.loss, ref, tol, 1e-11), "%s %s T=%g alpha=%g y=%d: loss %.12g, reference %.12g", path, name, T,
        alpha, y, s.loss, ref);
  CHECK(check_close(s.kd, T * T * ref_div(&d, zd, ztd, T), tol, 1e-11), "%s %s: kd %.12g", path, name, s.kd);
  for (int c = 0; c < C; c++) {
    const double h = 1e-6 * fmax(1.0, fabs(zd[c]));
    double zp[C], zm[C];
    memcpy(zp, zd, sizeof zp);
    memcpy(zm, zd, sizeof zm);
    zp[c] += h;
    zm[c] -= h;
    const double g = (ref_loss(&d, zp, ztd, y, T, alpha) - ref_loss(&d, zm, ztd, y, T, alpha)) / (2 * h);
    CHECK(check_close(dl[c], g, 1e-6, 1e-7), "%s %s T=%g alpha=%g y=%d: dlogit[%d] %.9g, central difference %.9g",
          path, name, T, alpha, y, c, dl[c], g);
  }
}

static void test_rows(void) {
  const char *divs[] = {"forward", "reverse", "jsd:0.1", "jsd:0.5", "jsd:0.9", "skew:0.1", "skew:0.5"};
  const float Ts[] = {1, 2}, alphas[] = {0, 0.3f};
  float zs[C], zt[C];
  for (int r = 0; r < 8; r++) {
    for (int c = 0; c < C; c++) {
      zs[c] = 2.0f * (float)kd_normal(11, (uint64_t)(r * C + c));
      zt[c] = 3.0f * (float)kd_normal(12, (uint64_t)(r * C + c));
    }
    for (size_t k = 0; k < sizeof divs / sizeof *divs; k++)
      for (size_t i = 0; i < 2; i++)
        for (size_t j = 0; j < 2; j++) {
          check_row(divs[k], zs, zt, r % C, Ts[i], alphas[j], r % 2);
          check_row(divs[k], zs, zt, -1, Ts[i], alphas[j], r % 2);
        }
  }
}

/* jsd's ends are forward and reverse, bit for bit; the divergences differ from each other at these logits. */
static void test_ends(void) {
  kd_divergence d0, d1, f, rv, half;
  parse(&d0, "jsd:0");
  parse(&d1, "jsd:1");
  parse(&f, "forward");
  parse(&rv, "reverse");
  parse(&half, "jsd:0.5");
  CHECK(d0.kind == KD_DIV_FORWARD && d1.kind == KD_DIV_REVERSE, "jsd:0 / jsd:1 not forward / reverse");
  float zs[C], zt[C];
  for (int c = 0; c < C; c++) zs[c] = (float)kd_normal(13, (uint64_t)c), zt[c] = 2.0f * (float)kd_normal(14, (uint64_t)c);
  const double a = kd_divergence_row(&d0, zs, zt, C, 2.0, NULL), b = kd_divergence_row(&f, zs, zt, C, 2.0, NULL);
  const double c1 = kd_divergence_row(&d1, zs, zt, C, 2.0, NULL), c2 = kd_divergence_row(&rv, zs, zt, C, 2.0, NULL);
  CHECK(a == b && c1 == c2, "jsd:0 %.17g vs forward %.17g; jsd:1 %.17g vs reverse %.17g", a, b, c1, c2);
  const double j = kd_divergence_row(&half, zs, zt, C, 2.0, NULL);
  CHECK(fabs(b - c2) > 1e-3 && j > 0 && j < fmax(b, c2), "forward %g, reverse %g, jsd:0.5 %g", b, c2, j);
}

static void test_refusals(void) {
  const char *bad[] = {"", "kl", "jsd", "jsd:", "jsd:1.5", "jsd:-0.1", "jsd:0.5x", "skew:1", "skew:-1", "Reverse", "reverse-"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    kd_divergence d;
    kd_err e = {0};
    CHECK(kd_divergence_parse(&d, bad[i], &e) == KD_ERR_USAGE && strstr(e.msg, "--divergence"),
          "'%s' accepted (%s)", bad[i], e.msg);
  }
  int32_t ids[2] = {0, 1}, y = 0;
  float vals[2] = {1, 0}, zs[C] = {0}, dl[C];
  kd_sparse_targets sp = {KD_SPARSE_TOPK, 2, ids, vals, NULL};
  const kd_targets t = {&y, NULL, NULL, NULL, &sp, NULL};
  kd_loss_cfg cfg = {0.5f, 1.0f, {KD_DIV_REVERSE, 0.0}};
  kd_loss_sums s = {0};
  kd_err e = {0};
  CHECK(kd_loss_sparse_forward_backward(dl, &s, zs, &t, 1, C, &cfg, 1.0f, &e) == KD_ERR_USAGE,
        "sparse targets took the reverse divergence");
}

/* One draw from softmax(zs) by the inverse of its distribution function. */
static int draw(const double *q, double u) {
  int a = 0;
  for (double acc = q[0]; a < C - 1 && u >= acc; acc += q[++a]) {
  }
  return a;
}

/* reverse-sampled: over N draws a ~ q, the mean of the sampled row's gradient and loss are reverse's (5 standard
 * errors, each class); forward's gradient is told apart at the same sample size (the test can fail). A labelled
 * row or a row without a sample is the exact reverse. */
static void test_sampled(void) {
  enum { N = 200000 };
  kd_divergence rs, rv, fw;
  parse(&rs, "reverse-sampled");
  parse(&rv, "reverse");
  parse(&fw, "forward");
  float zs[C], zt[C], dl[C], dl2[C];
  double zd[C], q[C], g_rev[C], g_fwd[C], sum[C] = {0}, sq[C] = {0}, ls = 0, lsq = 0;
  for (int c = 0; c < C; c++)
    zs[c] = 1.5f * (float)kd_normal(31, (uint64_t)c), zt[c] = 2.0f * (float)kd_normal(32, (uint64_t)c), zd[c] = zs[c];
  softmax(q, zd, 1.0);
  const double D = kd_divergence_row(&rv, zs, zt, C, 1.0, g_rev);
  kd_divergence_row(&fw, zs, zt, C, 1.0, g_fwd);
  const kd_loss_cfg cfg = {0.5f, 1.0f, rs};
  int32_t y = -1;
  kd_err e = {0};
  int same = 1;
  for (int i = 0; i < N; i++) {
    int32_t a = draw(q, kd_uniform(kd_key(33, 0, 0, 0), (uint64_t)i));
    const kd_targets t = {&y, zt, NULL, NULL, NULL, &a};
    kd_loss_sums s = {0}, s2 = {0};
    kd_loss_forward_backward(dl, &s, zs, &t, 1, C, &cfg, 1.0f);
    if (i < 64) { /* the large-vocabulary pass gives the same row */
      CHECK(kd_loss_dense_rows(dl2, &s2, zs, &t, 1, C, &cfg, 1.0f, &e) == KD_OK, "dense rows: %s", e.msg);
      same &= memcmp(dl, dl2, sizeof dl) == 0 && s.loss == s2.loss;
    }
    for (int c = 0; c < C; c++) sum[c] += dl[c], sq[c] += (double)dl[c] * dl[c];
    ls += s.kd, lsq += s.kd * s.kd;
  }
  CHECK(same, "reverse-sampled: kd_loss_dense_rows differs from kd_loss_forward_backward");
  int told_apart = 0;
  for (int c = 0; c < C; c++) {
    const double m = sum[c] / N, se = sqrt((sq[c] / N - m * m) / N);
    CHECK(fabs(m - g_rev[c]) <= 5 * se, "reverse-sampled: mean dlogit[%d] %.6g, reverse %.6g (standard error %.2g)", c,
          m, g_rev[c], se);
    told_apart |= fabs(m - g_fwd[c]) > 5 * se;
  }
  CHECK(told_apart, "reverse-sampled: forward's gradient is within 5 standard errors too (no power)");
  const double lm = ls / N, lse = sqrt((lsq / N - lm * lm) / N);
  CHECK(fabs(lm - D) <= 5 * lse, "reverse-sampled: mean loss %.6g, reverse KL %.6g (standard error %.2g)", lm, D, lse);
  /* no sample, or a labelled row: the exact reverse */
  for (int k = 0; k < 2; k++) {
    int32_t yy = k ? 2 : -1, none = k ? 3 : -1;
    const kd_targets t = {&yy, zt, NULL, NULL, NULL, &none};
    const kd_loss_cfg rcfg = {0.5f, 1.0f, rv};
    kd_loss_sums s = {0}, s2 = {0};
    kd_loss_forward_backward(dl, &s, zs, &t, 1, C, &cfg, 1.0f);
    kd_loss_forward_backward(dl2, &s2, zs, &t, 1, C, &rcfg, 1.0f);
    CHECK(memcmp(dl, dl2, sizeof dl) == 0 && s.loss == s2.loss, "reverse-sampled on a %s row is not reverse",
          k ? "labelled" : "sample-less");
  }
}

/* Fixed logits and kd's jsd values (T = 1 and 2) for the numpy implementation of TRL's formula. */
static int dump(const char *path) {
  FILE *f = fopen(path, "w");
  if (!f) return 1;
  const char *divs[] = {"jsd:0.1", "jsd:0.5", "jsd:0.9", "reverse", "forward"};
  for (int r = 0; r < 4; r++) {
    float zs[C], zt[C];
    for (int c = 0; c < C; c++) zs[c] = 3.0f * (float)kd_normal(21, (uint64_t)(r * C + c)),
                                zt[c] = 3.0f * (float)kd_normal(22, (uint64_t)(r * C + c));
    for (size_t k = 0; k < sizeof divs / sizeof *divs; k++)
      for (int T = 1; T <= 2; T++) {
        kd_divergence d;
        parse(&d, divs[k]);
        fprintf(f, "%s %d %.17g", divs[k], T, kd_divergence_row(&d, zs, zt, C, T, NULL));
        for (int c = 0; c < C; c++) fprintf(f, " %.9g", zs[c]);
        for (int c = 0; c < C; c++) fprintf(f, " %.9g", zt[c]);
        fputc('\n', f);
      }
  }
  return fclose(f) != 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--dump") == 0) return dump(argv[2]);
  test_rows();
  test_ends();
  test_refusals();
  test_sampled();
  return check_summary("test_divergence");
}
