/* Intermediate-layer distillation terms (issue 17), through a tiny GPT
 * student against a frozen GPT teacher of another width (and head count):
 *   - the relation KL (q-q, k-k, v-v; 2 relation heads over 4 and 6
 *     columns), attention-map MSE on probabilities and on scores, and the
 *     hidden-state MSE with its projection: finite-difference gradient
 *     checks of every sampled student parameter (and the projection), the
 *     term's gradient reaching the student by injection and backward;
 *   - the relation KL and the map losses against plain fp64 references. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/rng.h"
#include "loss/attn.h"
#include "models/gpt.h"
#include "models/llama.h"

enum { B = 2, T = 7, V = 11 };

typedef struct setup {
  kd_model *s, *t;
  float *p, *g, *tp, *logits;
  size_t n_total;
  int32_t tokens[B * T];
  uint8_t mask[B * T];
  int64_t ids[B];
  kd_batch bt;
  const float *ptrs[KD_INTER_ARRAYS * 8];
  kd_inter inter;
  kd_targets tg;
} setup;

/* Families of the student and the teacher: 0 gpt, 1 llama (grouped-query: the student's 2 query heads share 1
 * key/value head, the teacher's share t_kv heads). */
static int s_llama, t_llama, t_kv = 1;

static void make(setup *u, int t_dim, int t_heads, size_t extra) {
  kd_err e;
  kd_err_clear(&e);
  memset(u, 0, sizeof *u);
  const kd_gpt_cfg cs = {V, 12, 2, 8, 2, 0.0f}, ct = {V, 12, 3, t_dim, t_heads, 0.0f};
  const kd_llama_cfg ls = {V, 12, 2, 8, 2, 1, 12, 10000.0, 1e-5, 0, 0.0f};
  const kd_llama_cfg lt = {V, 12, 3, t_dim, t_heads, t_kv, 20, 500.0, 1e-6, 1, 0.0f};
  CHECK((s_llama ? kd_llama_create(&u->s, &ls, B, 0, &e) : kd_gpt_create(&u->s, &cs, B, 0, &e)) == KD_OK, "student: %s",
        e.msg);
  CHECK((t_llama ? kd_llama_create(&u->t, &lt, B, 2, &e) : kd_gpt_create(&u->t, &ct, B, 2, &e)) == KD_OK, "teacher: %s",
        e.msg);
  u->n_total = u->s->n_params + extra;
  u->p = calloc(u->n_total, sizeof(float));
  u->g = calloc(u->n_total, sizeof(float));
  u->tp = malloc(sizeof(float) * u->t->n_params);
  u->logits = malloc(sizeof(float) * B * T * V);
  kd_model_bind(u->s, u->p, u->g);
  kd_model_bind(u->t, u->tp, NULL);
  u->s->ops->init_params(u->s, 3);
  u->t->ops->init_params(u->t, 4);
  for (size_t i = 0; i < u->s->n_params; i++) u->p[i] += 0.3f * (float)kd_normal(81, i);
  for (size_t i = 0; i < u->t->n_params; i++) u->tp[i] += 0.3f * (float)kd_normal(82, i);
  for (int i = 0; i < B * T; i++) u->tokens[i] = (int32_t)(kd_uniform(83, i) * V);
  u->ids[0] = 4, u->ids[1] = 9;
  u->bt = (kd_batch){KD_INPUT_TOKENS, B, T, B, NULL, u->tokens, u->mask, NULL, u->ids, T};
  const kd_fwd inf = {0, 0};
  CHECK(kd_model_forward(u->t, u->logits, &u->bt, &inf, &e) == KD_OK, "teacher forward: %s", e.msg);
  const int L = 3;
  kd_inter_bind(&u->inter, u->ptrs, L);
  kd_tap_shape sh;
  u->t->ops->tap(u->t, KD_TAP_Q, 1, &sh);
  u->inter.dim = t_dim, u->inter.heads = t_heads, u->inter.kv_heads = sh.kv_heads, u->inter.head_dim = sh.head_dim;
  u->inter.ld = sh.ld;
  for (int l = 0; l <= L; l++) {
    u->inter.hidden[l] = u->t->ops->tap(u->t, KD_TAP_HIDDEN, l, NULL);
    u->inter.q[l] = l ? u->t->ops->tap(u->t, KD_TAP_Q, l, NULL) : NULL;
    u->inter.k[l] = l ? u->t->ops->tap(u->t, KD_TAP_K, l, NULL) : NULL;
    u->inter.v[l] = l ? u->t->ops->tap(u->t, KD_TAP_V, l, NULL) : NULL;
    u->inter.attn[l] = l ? u->t->ops->tap(u->t, KD_TAP_ATTN, l, NULL) : NULL;
  }
  u->tg = (kd_targets){NULL, NULL, NULL, &u->inter, NULL, NULL};
}

static void unmake(setup *u) {
  kd_model_free(u->s);
  kd_model_free(u->t);
  free(u->p), free(u->g), free(u->tp), free(u->logits);
}

/* The term's loss at the current parameters; its gradient into u->g (with backward). */
static double loss(setup *u, kd_term *term, int backward) {
  kd_err e;
  kd_err_clear(&e);
  const kd_fwd fw = {1, 7};
  kd_model_forward(u->s, u->logits, &u->bt, &fw, &e);
  memset(u->g, 0, sizeof(float) * u->n_total);
  const kd_term_step st = {u->s, &u->bt, &u->tg, u->p, u->g, B};
  double l = 0.0;
  CHECK(term->ops->forward_backward(term, &st, &l, &e) == KD_OK, "term: %s", e.msg);
  if (backward)
    CHECK(kd_model_backward_inject(u->s, NULL, &u->bt, term->inject, term->n_inject, &e) == KD_OK, "backward: %s", e.msg);
  return l;
}

static void gradcheck(const char *what, int t_dim, int t_heads, kd_inter_cfg cfg, int which, float weight) {
  setup u;
  cfg.t_layers = 3, cfg.t_dim = t_dim, cfg.t_heads = t_heads, cfg.weight = weight;
  cfg.t_kv_heads = t_llama ? t_kv : t_heads, cfg.t_head_dim = t_dim / t_heads; /* a loss near 1: float's rounding stays below the differences */
  make(&u, t_dim, t_heads, which == 2 ? (size_t)t_dim * 8 : 0);
  kd_err e;
  kd_err_clear(&e);
  kd_term *term = NULL;
  const int rc = which == 0   ? kd_relation_term_create(&term, u.s, &cfg, &e)
                 : which == 1 ? kd_attn_term_create(&term, u.s, &cfg, &e)
                              : kd_hidden_term_create(&term, u.s, &cfg, &e);
  CHECK(rc == KD_OK, "%s: create: %s", what, e.msg);
  if (rc) {
    unmake(&u);
    return;
  }
  kd_term_place(term, u.s->n_params);
  term->ops->init_params(term, u.p, 5);
  const double l0 = loss(&u, term, 1);
  float *ana = malloc(sizeof(float) * u.n_total);
  memcpy(ana, u.g, sizeof(float) * u.n_total);
  int bad = 0, tested = 0, moved = 0;
  double worst = 0.0;
  const float h = 4e-3f; /* float's rounding of the summed loss, not curvature, limits h: measured best */
  for (size_t i = 0; i < u.n_total; i += (i < u.s->n_params ? 5 : 3)) {
    const float keep = u.p[i];
    u.p[i] = keep + h;
    const double lp = loss(&u, term, 0);
    u.p[i] = keep - h;
    const double lm = loss(&u, term, 0);
    u.p[i] = keep;
    const double num = (lp - lm) / (2.0 * h), r = fabs(num - ana[i]) / (1e-3 + fabs(num) + fabs(ana[i]));
    worst = fmax(worst, r);
    bad += r > 2e-2;
    moved += fabs(num) > 1e-4;
    tested++;
  }
  CHECK(l0 > 0 && bad == 0 && moved > tested / 4, "%s: loss %g, %d of %d parameters off (worst %.3g), %d moved", what,
        l0, bad, tested, worst, moved);
  printf("%s: loss %.5g, %d parameters checked, worst relative error %.2g\n", what, l0, tested, worst);
  free(ana);
  kd_term_free(term);
  unmake(&u);
}

/* ---- fp64 references ---- */

static double relation_ref(const float *A_s, int ld_s, int ds, const float *A_t, int ld_t, int dt) {
  double kl = 0.0;
  for (int i = 0; i < T; i++) {
    double gs[T], gt[T], ms = -1e300, mt = -1e300, ss = 0, st = 0;
    for (int j = 0; j <= i; j++) {
      double a = 0, b = 0;
      for (int k = 0; k < ds; k++) a += (double)A_s[i * ld_s + k] * A_s[j * ld_s + k];
      for (int k = 0; k < dt; k++) b += (double)A_t[i * ld_t + k] * A_t[j * ld_t + k];
      gs[j] = a / sqrt(ds), gt[j] = b / sqrt(dt);
      ms = fmax(ms, gs[j]), mt = fmax(mt, gt[j]);
    }
    for (int j = 0; j <= i; j++) ss += exp(gs[j] - ms), st += exp(gt[j] - mt);
    for (int j = 0; j <= i; j++) {
      const double lps = gs[j] - ms - log(ss), lpt = gt[j] - mt - log(st);
      kl += exp(lpt) * (lpt - lps);
    }
  }
  return kl;
}

static void references(void) {
  enum { DS = 6, DT = 10, LD = 16 };
  float As[T * LD], At[T * LD], scratch[3 * T * T + 2 * T], Ps[T * T], Pt[T * T];
  for (int i = 0; i < T * LD; i++) As[i] = 1.5f * (float)kd_normal(91, i), At[i] = 1.5f * (float)kd_normal(92, i);
  const double kl = kd_relation_kl(NULL, As, LD, DS, At, LD, DT, T, 1.0f, scratch);
  const double ref = relation_ref(As, LD, DS, At, LD, DT);
  CHECK(check_close(kl, ref, 1e-5, 1e-7), "relation KL %.9g, fp64 %.9g", kl, ref);
  /* probabilities of q k^T / sqrt(d) against random maps; scores MSE of two heads */
  double mse_ref = 0.0, sc_ref = 0.0;
  for (int i = 0; i < T; i++) {
    double s[T], mx = -1e300, sum = 0.0;
    for (int j = 0; j <= i; j++) {
      double d = 0, dt = 0;
      for (int k = 0; k < DS; k++) d += (double)As[i * LD + k] * As[j * LD + DS + k];
      for (int k = 0; k < DT / 2; k++) dt += (double)At[i * LD + k] * At[j * LD + DT / 2 + k];
      s[j] = d / sqrt(DS), mx = fmax(mx, s[j]);
      sc_ref += pow(s[j] - dt / sqrt(DT / 2), 2);
    }
    for (int j = 0; j <= i; j++) sum += exp(s[j] - mx);
    for (int j = 0; j < T; j++) {
      Ps[i * T + j] = j <= i ? (float)(exp(s[j] - mx) / sum) : 0.0f;
      Pt[i * T + j] = j <= i ? (float)kd_uniform(93, (uint64_t)(i * T + j)) : 0.0f;
      mse_ref += pow((double)Ps[i * T + j] - Pt[i * T + j], 2);
    }
  }
  const double mse = kd_attn_probs_mse(NULL, NULL, Ps, Pt, As, As + DS, LD, DS, T, 1.0f, scratch);
  const double sc = kd_attn_scores_mse(NULL, NULL, As, As + DS, LD, DS, At, At + DT / 2, LD, DT / 2, T, 1.0f, scratch);
  CHECK(check_close(mse, mse_ref, 1e-5, 1e-7), "attention-map MSE %.9g, fp64 %.9g", mse, mse_ref);
  CHECK(check_close(sc, sc_ref, 1e-5, 1e-7), "score MSE %.9g, fp64 %.9g", sc, sc_ref);
}

int main(void) {
  references();
  kd_inter_cfg rel = {0};
  rel.n_pairs = 2;
  rel.pairs[0] = (kd_layer_pair){1, 2}, rel.pairs[1] = (kd_layer_pair){2, 3};
  rel.relations = KD_REL_Q | KD_REL_K | KD_REL_V;
  rel.relation_heads = 2;
  gradcheck("relation KL (student 8 wide, 2 heads; teacher 12, 3 heads)", 12, 3, rel, 0, 3.0f);
  kd_inter_cfg map = rel;
  map.attn = KD_ATTN_PROBS;
  gradcheck("attention-map MSE, probabilities", 12, 2, map, 1, 3.0f);
  map.attn = KD_ATTN_SCORES;
  gradcheck("attention-map MSE, scores", 12, 2, map, 1, 3.0f);
  kd_inter_cfg hid = {0};
  hid.n_pairs = 3;
  hid.pairs[0] = (kd_layer_pair){0, 0}, hid.pairs[1] = (kd_layer_pair){1, 2}, hid.pairs[2] = (kd_layer_pair){2, 3};
  gradcheck("hidden-state MSE with its projection", 12, 3, hid, 2, 0.02f);
  /* The llama family (issue 27): grouped-query attention on either side, and across families. */
  s_llama = 1, t_llama = 1, t_kv = 1;
  gradcheck("llama: relation KL (student 2 query heads on 1 key/value head; teacher 3 on 1)", 12, 3, rel, 0, 3.0f);
  map.attn = KD_ATTN_PROBS;
  gradcheck("llama: attention-map MSE, probabilities (2 query heads each, 1 key/value head)", 12, 2, map, 1, 3.0f);
  map.attn = KD_ATTN_SCORES;
  t_kv = 2;
  gradcheck("llama: attention-map MSE, scores (teacher 2 key/value heads)", 12, 2, map, 1, 3.0f);
  gradcheck("llama: hidden-state MSE with its projection", 12, 3, hid, 2, 0.02f);
  s_llama = 1, t_llama = 0;
  gradcheck("llama student, gpt teacher: relation KL", 12, 3, rel, 0, 3.0f);
  s_llama = 0, t_llama = 1, t_kv = 1;
  gradcheck("gpt student, llama teacher: relation KL", 12, 3, rel, 0, 3.0f);
  map.attn = KD_ATTN_SCORES;
  gradcheck("gpt student, llama teacher: attention-map MSE, scores", 12, 2, map, 1, 3.0f);
  return check_summary("test_inter");
}
