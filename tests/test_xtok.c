/* Cross-tokenizer losses (src/loss/xtok.c) and the alignment of two tokenizations (src/data/align.c):
 *  - uld on hand-worked vectors, and against a naive reference (ranks by counting) on random ones;
 *  - exact with one tokenizer on both sides equals the ordinary soft term (kd_divergence_row) exactly, for
 *    forward, reverse and jsd:0.5 at T 1 and 2; hybrid then equals it to rounding (its weight is the sum 1);
 *  - exact and hybrid against a naive fp64 reference on a partial map (forward KL by its formula);
 *  - every gradient against central differences of the loss (uld, exact, hybrid; T 1 and 2);
 *  - the shared vocabulary of two hand-made records (specials left out, the lower id of a twice-spelled token),
 *    and aligned positions of two lists of end offsets. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/align.h"
#include "loss/divergence.h"
#include "loss/xtok.h"

static int failures = 0;
#define CHECK(cond, ...)                  \
  do {                                    \
    if (!(cond)) {                        \
      failures++;                         \
      fprintf(stderr, "FAIL: " __VA_ARGS__); \
      fprintf(stderr, "\n");              \
    }                                     \
  } while (0)

static uint64_t rng = 88172645463325252ull;
static double uniform(void) {
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return (double)(rng >> 11) / 9007199254740992.0;
}

static void softmax_ref(double *p, const float *z, int n, double T) {
  double mx = -INFINITY, s = 0;
  for (int i = 0; i < n; i++) mx = fmax(mx, z[i] / T);
  for (int i = 0; i < n; i++) s += p[i] = exp(z[i] / T - mx);
  for (int i = 0; i < n; i++) p[i] /= s;
}

/* The k-th largest of x (ranks by counting: no sort shared with the code under test); 0 past n. */
static double kth_largest(const double *x, int n, int k) {
  if (k >= n) return 0.0;
  for (int i = 0; i < n; i++) {
    int above = 0, tie_before = 0;
    for (int j = 0; j < n; j++) above += x[j] > x[i], tie_before += x[j] == x[i] && j < i;
    if (above + tie_before == k) return x[i];
  }
  return NAN;
}

static double uld_ref(const double *x, int nx, const double *y, int ny) {
  double L = 0;
  for (int k = 0; k < (nx > ny ? nx : ny); k++) L += fabs(kth_largest(x, nx, k) - kth_largest(y, ny, k));
  return L;
}

static kd_tokenizer record(const char *const *tokens, int n, int pad_id) {
  kd_tokenizer t;
  memset(&t, 0, sizeof t);
  t.pad_id = pad_id, t.sep_id = t.end_id = t.unk_id = t.target_id0 = -1;
  t.vocab = n;
  t.offsets = calloc((size_t)n + 1, sizeof(int64_t));
  t.bytes = malloc(256);
  for (int i = 0; i < n; i++) {
    memcpy(t.bytes + t.offsets[i], tokens[i], strlen(tokens[i]));
    t.offsets[i + 1] = t.offsets[i] + (int64_t)strlen(tokens[i]);
  }
  return t;
}

static void test_map_and_align(void) {
  const char *st[] = {"a", "b", "ab", "<pad>", "zz"}, *tt[] = {"b", "ab", "c", "a", "a", "<pad>"};
  kd_tokenizer s = record(st, 5, 3), t = record(tt, 6, -1);
  kd_vocab_map m;
  kd_err e = {0};
  CHECK(kd_vocab_map_build(&m, &s, 5, &t, 8, &e) == KD_OK, "map: %s", e.msg);
  const int32_t want_s[] = {0, 1, 2, 3}, want_t[] = {3, 0, 1, 5};
  /* "<pad>" is the student's pad id: not text, so not shared even though the teacher spells it */
  CHECK(m.n == 3, "map: %d shared ids, want 3", m.n);
  for (int k = 0; k < 3 && k < m.n; k++)
    CHECK(m.s_ids[k] == want_s[k] && m.t_ids[k] == want_t[k], "map pair %d: (%d, %d), want (%d, %d)", k, m.s_ids[k],
          m.t_ids[k], want_s[k], want_t[k]);
  CHECK(m.Vs == 5 && m.Vt == 8, "map widths");
  kd_vocab_map_free(&m);
  free(s.offsets), free(s.bytes), free(t.offsets), free(t.bytes);

  const int32_t se[] = {1, 3, 4, 7, 9}, te[] = {3, 4, 5, 7, 8};
  int32_t pi[5], pa[5];
  const int n = kd_align_positions(pi, pa, se, 5, te, 5);
  CHECK(n == 3 && pi[0] == 1 && pa[0] == 0 && pi[1] == 2 && pa[1] == 1 && pi[2] == 3 && pa[2] == 3,
        "aligned positions: %d pairs", n);
}

static void test_uld_hand(void) {
  /* p_s = (0.2, 0.5, 0.3), p_t = (0.1, 0.6, 0.1, 0.2): sorted (0.5, 0.3, 0.2, 0) and (0.6, 0.2, 0.1, 0.1), L1 0.4 */
  const float zs[3] = {logf(0.2f), logf(0.5f), logf(0.3f)}, zt[4] = {logf(0.1f), logf(0.6f), logf(0.1f), logf(0.2f)};
  kd_vocab_map m;
  kd_err e = {0};
  kd_xtok_work w;
  m.n = 0, m.Vs = 3, m.Vt = 4, m.s_ids = m.t_ids = NULL;
  CHECK(kd_xtok_work_init(&w, &m, &e) == KD_OK, "work");
  const kd_divergence fwd = {KD_DIV_FORWARD, 0};
  const double L = kd_xtok_pair(KD_XTOK_ULD, &fwd, zs, zt, 1.0, NULL, &w);
  CHECK(fabs(L - 0.4) < 1e-6, "uld by hand: %.9f, want 0.4", L);
  /* no shared ids: hybrid is uld alone, exact is 0 */
  CHECK(fabs(kd_xtok_pair(KD_XTOK_HYBRID, &fwd, zs, zt, 1.0, NULL, &w) - L) < 1e-15, "hybrid without S");
  CHECK(kd_xtok_pair(KD_XTOK_EXACT, &fwd, zs, zt, 1.0, NULL, &w) == 0.0, "exact without S");
  kd_xtok_work_free(&w);
}

static void random_logits(float *z, int n, double scale) {
  for (int i = 0; i < n; i++) z[i] = (float)(scale * (2 * uniform() - 1));
}

static void test_identity(void) {
  enum { V = 37 };
  float zs[V], zt[V];
  double g1[V], g2[V];
  kd_vocab_map m;
  kd_err e = {0};
  kd_xtok_work w;
  CHECK(kd_vocab_map_identity(&m, V, &e) == KD_OK && kd_xtok_work_init(&w, &m, &e) == KD_OK, "identity map");
  const kd_divergence divs[3] = {{KD_DIV_FORWARD, 0}, {KD_DIV_REVERSE, 0}, {KD_DIV_JSD, 0.5}};
  for (int d = 0; d < 3; d++)
    for (int ti = 0; ti < 2; ti++) {
      const double T = ti ? 2.0 : 1.0;
      random_logits(zs, V, 4), random_logits(zt, V, 4);
      const double want = kd_divergence_row(&divs[d], zs, zt, V, T, g1);
      const double got = kd_xtok_pair(KD_XTOK_EXACT, &divs[d], zs, zt, T, g2, &w);
      int same = got == want;
      for (int i = 0; i < V; i++) same &= g1[i] == g2[i];
      CHECK(same, "exact with one tokenizer == the soft term, bitwise (div %d, T %g): %.17g vs %.17g", d, T, got, want);
      const double hy = kd_xtok_pair(KD_XTOK_HYBRID, &divs[d], zs, zt, T, g2, &w);
      double gd = 0;
      for (int i = 0; i < V; i++) gd = fmax(gd, fabs(g1[i] - g2[i]));
      CHECK(fabs(hy - want) < 1e-13 && gd < 1e-13, "hybrid with one tokenizer == the soft term (div %d, T %g)", d, T);
    }
  kd_xtok_work_free(&w);
  kd_vocab_map_free(&m);
}

/* A partial map: student 11 ids, teacher 14, 6 shared in scrambled order. */
static void partial_map(kd_vocab_map *m) {
  static int32_t s_ids[6] = {0, 2, 3, 6, 7, 10}, t_ids[6] = {5, 1, 13, 0, 8, 4};
  m->n = 6, m->Vs = 11, m->Vt = 14, m->s_ids = s_ids, m->t_ids = t_ids;
}

static double reference(kd_xtok_kind kind, const kd_vocab_map *m, const float *zs, const float *zt, double T) {
  double ps[64], pt[64], xs[64], xt[64], ls = 0, lt = 0, mt = 0, kl = 0;
  softmax_ref(ps, zs, m->Vs, T), softmax_ref(pt, zt, m->Vt, T);
  if (kind == KD_XTOK_ULD) return uld_ref(ps, m->Vs, pt, m->Vt);
  for (int k = 0; k < m->n; k++) ls += ps[m->s_ids[k]], lt += pt[m->t_ids[k]];
  mt = lt;
  for (int k = 0; k < m->n; k++) {
    const double P = pt[m->t_ids[k]] / lt, Q = ps[m->s_ids[k]] / ls;
    kl += P * log(P / Q);
  }
  if (kind == KD_XTOK_EXACT) return kl;
  int ns = 0, nt = 0;
  for (int i = 0; i < m->Vs; i++) {
    int in = 0;
    for (int k = 0; k < m->n; k++) in |= m->s_ids[k] == i;
    if (!in) xs[ns++] = ps[i];
  }
  for (int j = 0; j < m->Vt; j++) {
    int in = 0;
    for (int k = 0; k < m->n; k++) in |= m->t_ids[k] == j;
    if (!in) xt[nt++] = pt[j];
  }
  return mt * kl + uld_ref(xs, ns, xt, nt);
}

static void test_partial(void) {
  kd_vocab_map m;
  kd_err e = {0};
  kd_xtok_work w;
  partial_map(&m);
  CHECK(kd_xtok_work_init(&w, &m, &e) == KD_OK, "work");
  CHECK(w.n_off_s == 5 && w.n_off_t == 8, "ids outside S: %d and %d", w.n_off_s, w.n_off_t);
  const kd_divergence fwd = {KD_DIV_FORWARD, 0};
  const kd_xtok_kind kinds[3] = {KD_XTOK_ULD, KD_XTOK_EXACT, KD_XTOK_HYBRID};
  float zs[11], zt[14];
  double g[11];
  int kinks = 0, checked = 0;
  for (int trial = 0; trial < 20; trial++)
    for (int k = 0; k < 3; k++) {
      const double T = trial % 2 ? 2.0 : 1.0;
      random_logits(zs, 11, 3), random_logits(zt, 14, 3);
      const double got = kd_xtok_pair(kinds[k], &fwd, zs, zt, T, NULL, &w), want = reference(kinds[k], &m, zs, zt, T);
      CHECK(fabs(got - want) <= 1e-12 * (1 + fabs(want)), "%s against the naive reference: %.15g vs %.15g",
            kd_xtok_name(kinds[k]), got, want);
      /* the gradient by central differences; the step is what the float logits actually moved. ULD is piecewise
       * linear in p: where a kink (a change of the sorted order or of a difference's sign) falls inside the step,
       * the one-sided slopes disagree and that coordinate is skipped (counted: a wrong gradient cannot hide there) */
      const double f0 = kd_xtok_pair(kinds[k], &fwd, zs, zt, T, g, &w);
      double worst = 0;
      for (int i = 0; i < 11; i++) {
        const float z0 = zs[i];
        zs[i] = z0 + 1e-3f;
        const double up = kd_xtok_pair(kinds[k], &fwd, zs, zt, T, NULL, &w), zu = zs[i];
        zs[i] = z0 - 1e-3f;
        const double dn = kd_xtok_pair(kinds[k], &fwd, zs, zt, T, NULL, &w), zd = zs[i];
        zs[i] = z0;
        if (fabs((up - f0) / (zu - z0) - (f0 - dn) / (z0 - zd)) > 1e-3) {
          kinks++;
          continue;
        }
        checked++;
        worst = fmax(worst, fabs((up - dn) / (zu - zd) - g[i]));
      }
      CHECK(worst < 2e-5, "%s gradient against central differences (T %g, trial %d): off by %.3g", kd_xtok_name(kinds[k]),
            T, trial, worst);
    }
  CHECK(kinks * 20 < checked, "central differences: %d coordinates with a kink in the step, %d checked", kinks, checked);
  kd_xtok_work_free(&w);
}

static void test_parse(void) {
  kd_xtok_kind k;
  kd_err e = {0};
  CHECK(kd_xtok_parse(&k, "uld", &e) == KD_OK && k == KD_XTOK_ULD, "parse uld");
  CHECK(kd_xtok_parse(&k, "hybrid", &e) == KD_OK && k == KD_XTOK_HYBRID, "parse hybrid");
  CHECK(kd_xtok_parse(&k, "gold", &e) == KD_ERR_USAGE && strstr(e.msg, "not uld, exact or hybrid"), "parse refuses");
}

int main(void) {
  test_map_and_align();
  test_uld_hand();
  test_identity();
  test_partial();
  test_parse();
  if (failures) {
    fprintf(stderr, "%d failures\n", failures);
    return 1;
  }
  printf("xtok: all checks passed\n");
  return 0;
}
