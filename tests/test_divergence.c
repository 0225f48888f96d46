/* The soft term's divergences (loss/divergence.h): each row's loss against a textbook fp64 reference written in
 * probability space (p, q, the mixture M as probabilities), and its gradient against central differences of that
 * reference; for reverse, jsd:BETA (0.1, 0.5, 0.9) and skew:ALPHA (0.1, 0.5), at T 1 and 2, labelled and
 * unlabelled rows, on the dense path (kd_loss_forward_backward) and the large-vocabulary pass
 * (kd_loss_dense_rows). jsd:0 and jsd:1 are forward and reverse exactly; the parser's refusals; sparse teacher
 * logits refuse every divergence but forward. With --dump LOGITS_FILE it writes fixed logits and kd's jsd values
 * for tests/check_divergence.py (a numpy implementation of TRL's formula). */
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
  const kd_targets t = {&yy, zt, NULL, NULL, NULL};
  const kd_loss_cfg cfg = {alpha, T, d};
  kd_err e = {0};
  if (dense_rows) CHECK(kd_loss_dense_rows(dl, &s, zs, &t, 1, C, &cfg, 1.0f, &e) == KD_OK, "dense rows: %s", e.msg);
  else kd_loss_forward_backward(dl, &s, zs, &t, 1, C, &cfg, 1.0f);
  const char *path = dense_rows ? "dense rows" : "dense";
  const double ref = ref_loss(&d, zd, ztd, y, T, alpha);
  /* forward's large-vocabulary pass takes its exps in float (exact to float rounding); the rest is double */
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
  const char *bad[] = {"", "kl", "jsd", "jsd:", "jsd:1.5", "jsd:-0.1", "jsd:0.5x", "skew:1", "skew:-1", "Reverse"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    kd_divergence d;
    kd_err e = {0};
    CHECK(kd_divergence_parse(&d, bad[i], &e) == KD_ERR_USAGE && strstr(e.msg, "--divergence"),
          "'%s' accepted (%s)", bad[i], e.msg);
  }
  int32_t ids[2] = {0, 1}, y = 0;
  float vals[2] = {1, 0}, zs[C] = {0}, dl[C];
  kd_sparse_targets sp = {KD_SPARSE_TOPK, 2, ids, vals, NULL};
  const kd_targets t = {&y, NULL, NULL, NULL, &sp};
  kd_loss_cfg cfg = {0.5f, 1.0f, {KD_DIV_REVERSE, 0.0}};
  kd_loss_sums s = {0};
  kd_err e = {0};
  CHECK(kd_loss_sparse_forward_backward(dl, &s, zs, &t, 1, C, &cfg, 1.0f, &e) == KD_ERR_USAGE,
        "sparse targets took the reverse divergence");
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
  return check_summary("test_divergence");
}
