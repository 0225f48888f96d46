/* Attention relations (MiniLM) and attention maps (TinyBERT): kernels and
 * the "relation" and "attn" loss terms (loss/attn.h). */
#include "loss/attn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/fastmath.h"
#include "nn/gemm.h"

/* p[0..n) = softmax(g[0..n)); returns its log-sum-exp. */
static float softmax_row(float *p, const float *g, int n) {
  float mx = g[0], sum = 0.0f;
  for (int j = 1; j < n; j++) mx = g[j] > mx ? g[j] : mx;
  for (int j = 0; j < n; j++) {
    const float x = g[j] - mx;
    p[j] = kd_exp_fast(x > -87.0f ? x : -87.0f); /* a weight below e^-87 is 0 to float anyway */
    sum += p[j];
  }
  const float inv = 1.0f / sum;
  for (int j = 0; j < n; j++) p[j] *= inv;
  return mx + logf(sum);
}

double kd_relation_kl(float *dA_s, const float *A_s, int ld_s, int d_s, const float *A_t, int ld_t, int d_t, int T,
                      float scale, float *scratch) {
  float *Gs = scratch, *Gt = scratch + (size_t)T * T, *S = scratch + (size_t)2 * T * T;
  const float cs = 1.0f / sqrtf((float)d_s), ct = 1.0f / sqrtf((float)d_t);
  kd_gemm(Gs, T, A_s, ld_s, 0, A_s, ld_s, 1, T, T, d_s, cs, 0.0f);
  kd_gemm(Gt, T, A_t, ld_t, 0, A_t, ld_t, 1, T, T, d_t, ct, 0.0f);
  double kl = 0.0;
  float *ps = S, *pt = S + T; /* row scratch (S is free until the gradient) */
  for (int i = 0; i < T; i++) {
    float *gs = Gs + (size_t)i * T;
    const float *gt = Gt + (size_t)i * T;
    const float ls = softmax_row(ps, gs, i + 1), lt = softmax_row(pt, gt, i + 1);
    float row = 0.0f;
    for (int j = 0; j <= i; j++) {
      row += pt[j] * ((gt[j] - lt) - (gs[j] - ls));
      gs[j] = scale * (ps[j] - pt[j]); /* now d loss / d (student relation logit) */
    }
    kl += row;
    for (int j = i + 1; j < T; j++) gs[j] = 0.0f;
  }
  if (!dA_s) return kl;
  /* logit_ij = a_i . a_j * cs: d/dA = (dG + dG^T) A * cs */
  for (int i = 0; i < T; i++)
    for (int j = 0; j < T; j++) S[(size_t)i * T + j] = Gs[(size_t)i * T + j] + Gs[(size_t)j * T + i];
  kd_gemm(dA_s, ld_s, S, T, 0, A_s, ld_s, 0, T, d_s, T, cs, 1.0f);
  return kl;
}

/* dq += dS k / sqrt(d), dk += dS^T q / sqrt(d): through scores = q k^T / sqrt(d). */
static void scores_backward(float *dq, float *dk, const float *dS, const float *q, const float *k, int ld, int d,
                            int T) {
  const float c = 1.0f / sqrtf((float)d);
  kd_gemm(dq, ld, dS, T, 0, k, ld, 0, T, d, T, c, 1.0f);
  kd_gemm(dk, ld, dS, T, 1, q, ld, 0, T, d, T, c, 1.0f);
}

double kd_attn_probs_mse(float *dq, float *dk, const float *P_s, const float *P_t, const float *q, const float *k,
                         int ld, int d, int T, float scale, float *scratch) {
  float *dS = scratch;
  double sum = 0.0;
  for (int i = 0; i < T; i++) {
    const float *ps = P_s + (size_t)i * T, *pt = P_t + (size_t)i * T;
    float *ds = dS + (size_t)i * T;
    double dot = 0.0;
    for (int j = 0; j < T; j++) {
      const float diff = ps[j] - pt[j];
      sum += (double)diff * diff;
      ds[j] = j <= i ? 2.0f * scale * diff : 0.0f; /* the masked entries are constant zeros */
      dot += (double)ds[j] * ps[j];
    }
    for (int j = 0; j <= i; j++) ds[j] = ps[j] * (ds[j] - (float)dot); /* through the softmax */
  }
  if (dq) scores_backward(dq, dk, dS, q, k, ld, d, T);
  return sum;
}

double kd_attn_scores_mse(float *dq, float *dk, const float *q_s, const float *k_s, int ld_s, int d_s,
                          const float *q_t, const float *k_t, int ld_t, int d_t, int T, float scale, float *scratch) {
  float *Ss = scratch, *St = scratch + (size_t)T * T;
  kd_gemm(Ss, T, q_s, ld_s, 0, k_s, ld_s, 1, T, T, d_s, 1.0f / sqrtf((float)d_s), 0.0f);
  kd_gemm(St, T, q_t, ld_t, 0, k_t, ld_t, 1, T, T, d_t, 1.0f / sqrtf((float)d_t), 0.0f);
  double sum = 0.0;
  for (int i = 0; i < T; i++) {
    float *ss = Ss + (size_t)i * T;
    const float *st = St + (size_t)i * T;
    for (int j = 0; j <= i; j++) {
      const float diff = ss[j] - st[j];
      sum += (double)diff * diff;
      ss[j] = 2.0f * scale * diff;
    }
    for (int j = i + 1; j < T; j++) ss[j] = 0.0f; /* masked entries are zero on both sides */
  }
  if (dq) scores_backward(dq, dk, Ss, q_s, k_s, ld_s, d_s, T);
  return sum;
}

void kd_pairs_text(char *buf, size_t n, const kd_inter_cfg *c) {
  buf[0] = '\0';
  for (int p = 0; p < c->n_pairs && strlen(buf) + 16 < n; p++)
    snprintf(buf + strlen(buf), n - strlen(buf), "%s%d:%d", p ? "," : "", c->pairs[p].s, c->pairs[p].t);
}

/* ---- the terms ---- */

typedef struct attn_impl {
  kd_inter_cfg cfg;
  float *dqkv[KD_MAX_PAIRS];    /* [max_batch * ctx, ld] the gradient injected at each pair's student layer */
  float *scratch;               /* [3 ctx^2 + 2 ctx] */
} attn_impl;

/* The teacher's queries (x = 0), keys (1) or values (2) of layer l, and their width. */
static const float *teacher_qkv(const kd_targets *tg, const kd_inter_cfg *c, int x, int l, int *width) {
  *width = (x == 0 ? c->t_heads : c->t_kv_heads) * c->t_head_dim;
  if (!tg->inter) return NULL;
  const float **a = x == 0 ? tg->inter->q : x == 1 ? tg->inter->k : tg->inter->v;
  return a ? a[l] : NULL;
}

static int missing(const char *what, const kd_layer_pair *p, kd_err *e) {
  return kd_fail(e, KD_ERR_RUNTIME, "%s: no tensors for the layer pair %d:%d in this step (student or teacher)", what,
                 p->s, p->t);
}

/* The student's queries, keys or values of layer l (its tap), their width and their column in the gradient. */
static const float *student_qkv(const kd_model *m, int x, int l, kd_tap_shape *sh, int *width) {
  const float *a = m->ops->tap(m, KD_TAP_Q + x, l, sh);
  *width = (x == 0 ? sh->heads : sh->kv_heads) * sh->head_dim;
  return a;
}

static int relation_step(kd_term *t, const kd_term_step *s, double *loss, kd_err *e) {
  attn_impl *im = t->impl;
  const kd_inter_cfg *c = &im->cfg;
  const int R = c->relation_heads, ldt = s->tg->inter ? s->tg->inter->ld : 0;
  double total = 0.0;
  float scale = 0.0f;
  for (int p = 0; p < c->n_pairs; p++) {
    kd_tap_shape sh;
    float *dq = im->dqkv[p];
    s->model->ops->tap(s->model, KD_TAP_Q, c->pairs[p].s, &sh);
    memset(dq, 0, sizeof(float) * (size_t)sh.B * sh.T * sh.ld);
    for (int x = 0; x < 3; x++) {
      if (!(c->relations & (1u << x))) continue;
      int ws, wt;
      const float *as = student_qkv(s->model, x, c->pairs[p].s, &sh, &ws);
      const float *at = teacher_qkv(s->tg, c, x, c->pairs[p].t, &wt);
      if (!as || !at) return missing("relation", &c->pairs[p], e);
      const int T = sh.T, ld = sh.ld;
      scale = c->weight / ((float)s->global_rows * (float)R * (float)T);
      for (int b = 0; b < sh.B; b++)
        for (int r = 0; r < R; r++) {
          const size_t os = (size_t)b * T * ld + (size_t)r * (ws / R), ot = (size_t)b * T * ldt + (size_t)r * (wt / R);
          total += kd_relation_kl(dq + sh.col + os, as + os, ld, ws / R, at + ot, ldt, wt / R, T, scale, im->scratch);
        }
    }
    t->inject[p] = (kd_inject){c->pairs[p].s, dq, KD_INJ_QKV};
  }
  t->n_inject = c->n_pairs;
  *loss = total * scale;
  return KD_OK;
}

static int attn_step(kd_term *t, const kd_term_step *s, double *loss, kd_err *e) {
  attn_impl *im = t->impl;
  const kd_inter_cfg *c = &im->cfg;
  double total = 0.0;
  float scale = 0.0f;
  for (int p = 0; p < c->n_pairs; p++) {
    kd_tap_shape sq, sk;
    const int ls = c->pairs[p].s, lt = c->pairs[p].t;
    int wq, wk, wqt, wkt;
    const float *qs = student_qkv(s->model, 0, ls, &sq, &wq), *ks = student_qkv(s->model, 1, ls, &sk, &wk);
    const float *Ps = s->model->ops->tap(s->model, KD_TAP_ATTN, ls, NULL);
    const float *Pt = s->tg->inter && s->tg->inter->attn ? s->tg->inter->attn[lt] : NULL;
    const float *qt = teacher_qkv(s->tg, c, 0, lt, &wqt), *kt = teacher_qkv(s->tg, c, 1, lt, &wkt);
    if (!qs || !ks || !Ps || (c->attn == KD_ATTN_PROBS ? !Pt : !qt || !kt)) return missing("attn", &c->pairs[p], e);
    const int T = sq.T, H = sq.heads, ld = sq.ld, hs = sq.head_dim, gs = H / sq.kv_heads;
    const int ldt = s->tg->inter->ld, ht = c->t_head_dim, gt = c->t_kv_heads ? c->t_heads / c->t_kv_heads : 1;
    float *dq = im->dqkv[p];
    memset(dq, 0, sizeof(float) * (size_t)sq.B * T * ld);
    scale = c->weight / ((float)s->global_rows * (float)H * (float)T * (float)T);
    for (int b = 0; b < sq.B; b++)
      for (int h = 0; h < H; h++) {
        const size_t oq = (size_t)b * T * ld + (size_t)h * hs, ok = (size_t)b * T * ld + (size_t)(h / gs) * hs;
        const size_t oa = ((size_t)b * H + h) * T * T;
        if (c->attn == KD_ATTN_PROBS) {
          total += kd_attn_probs_mse(dq + sq.col + oq, dq + sk.col + ok, Ps + oa, Pt + oa, qs + oq, ks + ok, ld, hs, T,
                                     scale, im->scratch);
        } else {
          const size_t tq = (size_t)b * T * ldt + (size_t)h * ht, tk = (size_t)b * T * ldt + (size_t)(h / gt) * ht;
          total += kd_attn_scores_mse(dq + sq.col + oq, dq + sk.col + ok, qs + oq, ks + ok, ld, hs, qt + tq, kt + tk,
                                      ldt, ht, T, scale, im->scratch);
        }
      }
    t->inject[p] = (kd_inject){ls, dq, KD_INJ_QKV};
  }
  t->n_inject = c->n_pairs;
  *loss = total * scale;
  return KD_OK;
}

static void attn_init(kd_term *t, float *params, uint64_t seed) {
  (void)t, (void)params, (void)seed; /* no parameters */
}

static void attn_destroy(kd_term *t) {
  attn_impl *im = t->impl;
  if (!im) return;
  for (int p = 0; p < KD_MAX_PAIRS; p++) free(im->dqkv[p]);
  free(im->scratch);
  free(im);
}

static const kd_term_ops relation_ops = {relation_step, attn_init, attn_destroy};
static const kd_term_ops attn_ops = {attn_step, attn_init, attn_destroy};

/* The student's attention shape, and the pairs within both models. */
static int check_pairs(const kd_model *m, const kd_inter_cfg *c, const char *what, int lo, kd_tap_shape *sh,
                       kd_err *e) {
  if (!m->ops->tap || !m->ops->tap(m, KD_TAP_Q, 1, sh))
    return kd_fail(e, KD_ERR_USAGE, "%s: needs a Transformer student (gpt, llama), not %s %s", what, m->family, m->spec);
  const int Ls = m->ops->n_hidden(m);
  if (c->n_pairs < 1) return kd_fail(e, KD_ERR_USAGE, "%s: no layer pair", what);
  for (int p = 0; p < c->n_pairs; p++) {
    const kd_layer_pair *q = &c->pairs[p];
    if (q->s < lo || q->s > Ls)
      return kd_fail(e, KD_ERR_USAGE, "%s: student layer %d of the pair %d:%d is out of range: the student has %s %d..%d",
                     what, q->s, q->s, q->t, lo ? "attention layers" : "hidden states", lo, Ls);
    if (q->t < lo || q->t > c->t_layers)
      return kd_fail(e, KD_ERR_USAGE, "%s: teacher layer %d of the pair %d:%d is out of range: the teacher has %s %d..%d",
                     what, q->t, q->s, q->t, lo ? "attention layers" : "hidden states", lo, c->t_layers);
    for (int k = 0; k < p; k++)
      if (c->pairs[k].s == q->s)
        return kd_fail(e, KD_ERR_USAGE, "%s: student layer %d is mapped twice", what, q->s);
  }
  return KD_OK;
}

/* MiniLM's relation heads split each relation's queries, keys or values across its own width (H hd for
 * queries, G hd for keys and values): R must divide every width used, of both models. */
static int check_relation_heads(const kd_inter_cfg *c, const kd_tap_shape *sh, kd_err *e) {
  const int R = c->relation_heads;
  static const char *const names[3] = {"q-q", "k-k", "v-v"};
  for (int x = 0; x < 3; x++) {
    if (!(c->relations & (1u << x))) continue;
    const int ws = (x == 0 ? sh->heads : sh->kv_heads) * sh->head_dim;
    const int wt = (x == 0 ? c->t_heads : c->t_kv_heads) * c->t_head_dim;
    if (R < 1 || ws % R || wt % R)
      return kd_fail(e, KD_ERR_USAGE,
                     "--relation-heads %d must divide the widths of the %s relation: the student's %d and the "
                     "teacher's %d (each relation head takes width / R columns; keys and values of grouped-query "
                     "attention are G * head width wide)", R, names[x], ws, wt);
  }
  return KD_OK;
}

static int create(kd_term **out, const kd_model *m, const kd_inter_cfg *c, int rel, kd_err *e) {
  *out = NULL;
  const char *what = rel ? "--attn-relations" : "--attn-loss";
  kd_tap_shape sh;
  if (check_pairs(m, c, what, 1, &sh, e)) return e->code;
  if (rel && check_relation_heads(c, &sh, e)) return e->code;
  if (!rel && sh.heads != c->t_heads)
    return kd_fail(e, KD_ERR_USAGE,
                   "--attn-loss %s matches attention maps head by head: the student has %d heads, the teacher %d (use "
                   "--attn-relations, whose relation heads need not match)", c->attn == KD_ATTN_PROBS ? "mse" : "mse-scores",
                   sh.heads, c->t_heads);
  kd_term *t = kd_calloc(1, sizeof *t, "attention term", e);
  attn_impl *im = t ? kd_calloc(1, sizeof *im, "attention term", e) : NULL;
  if (t) {
    t->impl = im;
    t->ops = rel ? &relation_ops : &attn_ops; /* kd_term_free destroys what was made, also on failure */
  }
  if (im) {
    im->cfg = *c;
    const size_t n = (size_t)m->max_batch * m->ctx * sh.ld;
    for (int p = 0; p < c->n_pairs && !e->code; p++)
      im->dqkv[p] = kd_malloc(sizeof(float) * n, "attention term gradient", e);
    const size_t T = (size_t)m->ctx;
    im->scratch = kd_malloc(sizeof(float) * (3 * T * T + 2 * T), "attention term scratch", e);
  }
  if (e->code) {
    kd_term_free(t);
    return e->code;
  }
  snprintf(t->name, sizeof t->name, rel ? "relation" : "attn");
  char pairs[64];
  kd_pairs_text(pairs, sizeof pairs, c);
  if (rel)
    snprintf(t->summary, sizeof t->summary, "%g * relation (MiniLM: KL of %s%s%s relations, %d relation heads, layers %s)",
             c->weight, c->relations & KD_REL_Q ? "q-q " : "", c->relations & KD_REL_K ? "k-k " : "",
             c->relations & KD_REL_V ? "v-v" : "", c->relation_heads, pairs);
  else
    snprintf(t->summary, sizeof t->summary, "%g * attn (TinyBERT: mean squared error of attention %s, layers %s)",
             c->weight, c->attn == KD_ATTN_PROBS ? "probabilities" : "scores", pairs);
  t->alone_note = "intermediate losses alone";
  t->alone_epochs = c->alone_epochs;
  t->alone_only = c->alone_only;
  t->loss_is_mean = 1;
  for (int p = 0; p < c->n_pairs; p++)
    if (c->pairs[p].s > t->layer) t->layer = c->pairs[p].s;
  *out = t;
  return KD_OK;
}

int kd_relation_term_create(kd_term **t, const kd_model *m, const kd_inter_cfg *cfg, kd_err *e) {
  return create(t, m, cfg, 1, e);
}

int kd_attn_term_create(kd_term **t, const kd_model *m, const kd_inter_cfg *cfg, kd_err *e) {
  return create(t, m, cfg, 0, e);
}
