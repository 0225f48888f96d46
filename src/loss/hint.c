#include "loss/hint.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"

#include "nn/gemm.h"

double kd_hint_forward_backward(float *dh_s, float *dW, float *db, float *pred,
                                const float *h_s, const float *h_t, const float *W,
                                const float *b, int B, int Hs, int Ht, float scale) {
  /* pred[B, Ht] = h_s[B, Hs] W[Ht, Hs]^T */
  kd_gemm(pred, Ht, h_s, Hs, 0, W, Hs, 1, B, Ht, Hs, 1.0f, 0.0f);
  double sum = 0.0;
  for (int r = 0; r < B; r++) {
    float *p = pred + (size_t)r * Ht;
    const float *t = h_t + (size_t)r * Ht;
    for (int j = 0; j < Ht; j++) {
      const float diff = p[j] + b[j] - t[j];
      sum += 0.5 * (double)diff * diff;
      p[j] = diff * scale; /* now d loss / d pred */
      if (db) db[j] += p[j];
    }
  }
  if (dW) kd_gemm(dW, Hs, pred, Ht, 1, h_s, Hs, 0, Ht, Hs, B, 1.0f, 1.0f); /* dW += dpred^T h_s */
  if (dh_s) kd_gemm(dh_s, Hs, pred, Ht, 0, W, Hs, 0, B, Hs, Ht, 1.0f, 0.0f); /* dh = dpred W */
  return sum;
}

/* ---- the "hint" loss term ---- */

typedef struct hint_impl {
  int Hs, Ht;
  float beta;
  float *pred;  /* [max_batch, Ht] scratch */
  float *dh;    /* [max_batch, Hs] the gradient injected at the hinted layer */
} hint_impl;

static int hint_step(kd_term *t, const kd_term_step *s, double *loss, kd_err *e) {
  hint_impl *im = t->impl;
  const float *hs = s->model->ops->hidden(s->model, t->layer, NULL);
  if (!hs || !s->tg->features) return kd_fail(e, KD_ERR_RUNTIME, "hint: no hidden layer %d or no teacher features", t->layer);
  const float beta = im->beta;
  const kd_param_view *w = &t->views[0], *b = &t->views[1];
  /* sum over rows of BETA * 0.5 * ||W h_s + b - h_t||^2 / Ht, as a mean over the global batch */
  *loss = beta / (float)im->Ht *
          kd_hint_forward_backward(im->dh, s->grads + w->offset, s->grads + b->offset, im->pred, hs, s->tg->features,
                                   s->params + w->offset, s->params + b->offset, s->batch->rows, im->Hs, im->Ht,
                                   beta / ((float)s->global_rows * (float)im->Ht));
  t->inject[0] = (kd_inject){t->layer, im->dh, KD_INJ_HIDDEN};
  t->n_inject = 1;
  return KD_OK;
}

/* Xavier-normal regressor, zero bias. */
static void hint_init(kd_term *t, float *params, uint64_t seed) {
  hint_impl *im = t->impl;
  const double sd = sqrt(2.0 / (im->Hs + im->Ht));
  const uint64_t key = kd_key(seed, KD_RNG_INIT, 1000, 0);
  float *W = params + t->views[0].offset;
  for (size_t i = 0; i < (size_t)im->Ht * im->Hs; i++) W[i] = (float)(sd * kd_normal(key, i));
  memset(params + t->views[1].offset, 0, sizeof(float) * (size_t)im->Ht);
}

static void hint_destroy(kd_term *t) {
  hint_impl *im = t->impl;
  if (im) {
    free(im->pred);
    free(im->dh);
    free(im);
  }
}

static const kd_term_ops hint_ops = {hint_step, hint_init, hint_destroy};

int kd_hint_term_create(kd_term **out, const kd_model *m, int layer, int teacher_width, float beta, int alone_epochs,
                        kd_err *e) {
  *out = NULL;
  int Hs = 0;
  if (!m->ops->hidden(m, layer, &Hs))
    return kd_fail(e, KD_ERR_USAGE, "hint: the student %s has no hidden layer %d", m->spec, layer);
  kd_term *t = kd_calloc(1, sizeof *t, "hint term", e);
  hint_impl *im = t ? kd_calloc(1, sizeof *im, "hint term", e) : NULL;
  if (im) {
    im->Hs = Hs;
    im->Ht = teacher_width;
    im->beta = beta;
    im->pred = kd_malloc((size_t)m->max_batch * teacher_width * sizeof(float), "hint scratch", e);
    im->dh = kd_malloc((size_t)m->max_batch * Hs * sizeof(float), "hint gradient", e);
  }
  if (t) {
    t->ops = &hint_ops;
    t->impl = im;
  }
  if (e->code) {
    kd_term_free(t);
    return e->code;
  }
  snprintf(t->name, sizeof t->name, "hint");
  snprintf(t->summary, sizeof t->summary,
           "%g * hint (FitNets: 0.5 * mean ||W h + b - h_t||^2, student hidden layer %d of width %d to teacher "
           "features of width %d)",
           beta, layer, Hs, teacher_width);
  t->alone_note = "hints alone";
  t->alone_epochs = alone_epochs;
  t->layer = layer;
  t->n_views = 2;
  kd_param_view *w = &t->views[0], *b = &t->views[1];
  snprintf(w->name, sizeof w->name, "hint/weight");
  w->rows = teacher_width;
  w->cols = Hs;
  w->decay = 1;
  snprintf(b->name, sizeof b->name, "hint/bias");
  b->rows = teacher_width;
  b->cols = 1;
  b->decay = 0;
  t->n_params = (size_t)teacher_width * Hs + (size_t)teacher_width;
  kd_term_place(t, 0);
  *out = t;
  return KD_OK;
}
