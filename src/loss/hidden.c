/* Hidden-state distillation (TinyBERT): the "hidden" loss term
 * (loss/attn.h). One learned projection W [D_t, D_s] maps every mapped
 * student hidden state to the teacher's width. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "loss/attn.h"
#include "nn/gemm.h"

typedef struct hidden_impl {
  kd_inter_cfg cfg;
  int Ds;
  float *pred;                /* [max_batch * ctx, Dt] scratch */
  float *dh[KD_MAX_PAIRS];    /* [max_batch * ctx, Ds] the gradient injected at each pair's student state */
} hidden_impl;

static int hidden_step(kd_term *t, const kd_term_step *s, double *loss, kd_err *e) {
  hidden_impl *im = t->impl;
  const kd_inter_cfg *c = &im->cfg;
  const int Ds = im->Ds, Dt = c->t_dim;
  const float *W = s->params + t->views[0].offset;
  float *dW = s->grads + t->views[0].offset;
  double total = 0.0;
  float scale = 0.0f;
  for (int p = 0; p < c->n_pairs; p++) {
    kd_tap_shape sh;
    const float *hs = s->model->ops->tap(s->model, KD_TAP_HIDDEN, c->pairs[p].s, &sh);
    const float *ht = s->tg->inter && s->tg->inter->hidden ? s->tg->inter->hidden[c->pairs[p].t] : NULL;
    if (!hs || !ht)
      return kd_fail(e, KD_ERR_RUNTIME, "hidden: no hidden states for the pair %d:%d in this step", c->pairs[p].s,
                     c->pairs[p].t);
    const int n = sh.B * sh.T;
    scale = c->weight / ((float)s->global_rows * (float)sh.T * (float)Dt);
    kd_gemm(im->pred, Dt, hs, Ds, 0, W, Ds, 1, n, Dt, Ds, 1.0f, 0.0f); /* pred = h_s W^T */
    for (size_t i = 0; i < (size_t)n * Dt; i++) {
      const float diff = im->pred[i] - ht[i];
      total += (double)diff * diff;
      im->pred[i] = 2.0f * scale * diff; /* now d loss / d pred */
    }
    kd_gemm(dW, Ds, im->pred, Dt, 1, hs, Ds, 0, Dt, Ds, n, 1.0f, 1.0f);       /* dW += dpred^T h_s */
    kd_gemm(im->dh[p], Ds, im->pred, Dt, 0, W, Ds, 0, n, Ds, Dt, 1.0f, 0.0f); /* dh = dpred W */
    t->inject[p] = (kd_inject){c->pairs[p].s, im->dh[p], KD_INJ_HIDDEN};
  }
  t->n_inject = c->n_pairs;
  *loss = total * scale;
  return KD_OK;
}

/* Xavier-normal projection (as the FitNets regressor). */
static void hidden_init(kd_term *t, float *params, uint64_t seed) {
  hidden_impl *im = t->impl;
  const double sd = sqrt(2.0 / (im->Ds + im->cfg.t_dim));
  const uint64_t key = kd_key(seed, KD_RNG_INIT, 1001, 0);
  float *W = params + t->views[0].offset;
  for (size_t i = 0; i < (size_t)im->cfg.t_dim * im->Ds; i++) W[i] = (float)(sd * kd_normal(key, i));
}

static void hidden_destroy(kd_term *t) {
  hidden_impl *im = t->impl;
  if (!im) return;
  free(im->pred);
  for (int p = 0; p < KD_MAX_PAIRS; p++) free(im->dh[p]);
  free(im);
}

static const kd_term_ops hidden_ops = {hidden_step, hidden_init, hidden_destroy};

int kd_hidden_term_create(kd_term **out, const kd_model *m, const kd_inter_cfg *c, kd_err *e) {
  *out = NULL;
  kd_tap_shape sh;
  if (!m->ops->tap || !m->ops->tap(m, KD_TAP_HIDDEN, 0, &sh))
    return kd_fail(e, KD_ERR_USAGE, "--hidden-map: needs a Transformer student (gpt, llama), not %s %s", m->family, m->spec);
  const int Ls = m->ops->n_hidden(m);
  for (int p = 0; p < c->n_pairs; p++) {
    const kd_layer_pair *q = &c->pairs[p];
    if (q->s < 0 || q->s > Ls || q->t < 0 || q->t > c->t_layers)
      return kd_fail(e, KD_ERR_USAGE,
                     "--hidden-map %d:%d is out of range: the student has hidden states 0..%d, the teacher 0..%d "
                     "(0: the embedding output, l: the output of block l)", q->s, q->t, Ls, c->t_layers);
    for (int k = 0; k < p; k++)
      if (c->pairs[k].s == q->s) return kd_fail(e, KD_ERR_USAGE, "--hidden-map: student state %d is mapped twice", q->s);
  }
  if (c->n_pairs < 1) return kd_fail(e, KD_ERR_USAGE, "--hidden-map: no layer pair");
  kd_term *t = kd_calloc(1, sizeof *t, "hidden term", e);
  hidden_impl *im = t ? kd_calloc(1, sizeof *im, "hidden term", e) : NULL;
  if (t) {
    t->impl = im;
    t->ops = &hidden_ops; /* kd_term_free destroys what was made, also on failure */
  }
  const size_t n = (size_t)m->max_batch * m->ctx;
  if (im) {
    im->cfg = *c;
    im->Ds = sh.dim;
    im->pred = kd_malloc(sizeof(float) * n * c->t_dim, "hidden term scratch", e);
    for (int p = 0; p < c->n_pairs && !e->code; p++) im->dh[p] = kd_malloc(sizeof(float) * n * sh.dim, "hidden term gradient", e);
  }
  if (e->code) {
    kd_term_free(t);
    return e->code;
  }
  snprintf(t->name, sizeof t->name, "hidden");
  char pairs[64];
  kd_pairs_text(pairs, sizeof pairs, c);
  snprintf(t->summary, sizeof t->summary,
           "%g * hidden (TinyBERT: mean squared error of W h_s and h_t, W [%d, %d] learned, states %s)", c->weight,
           c->t_dim, sh.dim, pairs);
  t->alone_note = "intermediate losses alone";
  t->alone_epochs = c->alone_epochs;
  t->alone_only = c->alone_only;
  t->loss_is_mean = 1;
  for (int p = 0; p < c->n_pairs; p++)
    if (c->pairs[p].s > t->layer) t->layer = c->pairs[p].s;
  t->n_views = 1;
  kd_param_view *w = &t->views[0];
  snprintf(w->name, sizeof w->name, "hidden/weight");
  w->rows = c->t_dim;
  w->cols = sh.dim;
  w->decay = 1;
  t->n_params = (size_t)c->t_dim * sh.dim;
  kd_term_place(t, 0);
  *out = t;
  return KD_OK;
}
