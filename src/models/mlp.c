#include "models/mlp.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/gemm.h"
#include "core/rng.h"

typedef struct mlp_impl {
  kd_mlp_cfg cfg;
  int n_layers;
  float *h[KD_MLP_MAX_LAYERS];       /* hidden outputs [max_batch, out_l] */
  float *pre[KD_MLP_MAX_LAYERS];     /* GELU pre-activations, or NULL */
  uint8_t *mask[KD_MLP_MAX_LAYERS];  /* dropout masks, or NULL */
  float *dbuf[2];                    /* backward scratch [max_batch, max width] */
  const float *x;                    /* input of the last forward (the batch's rows) */
  int last_B, last_train;
} mlp_impl;

int kd_mlp_parse_spec(kd_mlp_cfg *cfg, const char *spec, kd_err *e) {
  const char *p = spec;
  cfg->n_sizes = 0;
  while (*p) {
    if (cfg->n_sizes > KD_MLP_MAX_LAYERS)
      return kd_fail(e, KD_ERR_USAGE, "--student '%s': more than %d layers", spec, KD_MLP_MAX_LAYERS);
    char *end;
    errno = 0;
    long v = strtol(p, &end, 10);
    if (end == p || errno || v < 1 || v > 1000000 || (*end && *end != '-') || *p == '-' || *p == '+')
      return kd_fail(e, KD_ERR_USAGE,
                     "--student '%s': expected positive sizes joined by '-', like 784-800-800-10 "
                     "(input-hidden...-classes)", spec);
    cfg->sizes[cfg->n_sizes++] = (int)v;
    p = end;
    if (*p == '-') {
      p++;
      if (!*p) return kd_fail(e, KD_ERR_USAGE, "--student '%s': ends with '-'", spec);
    }
  }
  if (cfg->n_sizes < 2)
    return kd_fail(e, KD_ERR_USAGE,
                   "--student '%s': need at least an input and a class count, like 784-800-800-10", spec);
  if (cfg->sizes[cfg->n_sizes - 1] < 2)
    return kd_fail(e, KD_ERR_USAGE, "--student '%s': need at least 2 classes", spec);
  return KD_OK;
}

static const float *layer_w(const kd_model *m, int l) { return m->params + m->views[2 * l].offset; }
static const float *layer_b(const kd_model *m, int l) { return m->params + m->views[2 * l + 1].offset; }

static int mlp_forward(kd_model *m, float *logits, const kd_batch *batch, const kd_fwd *f, kd_err *e) {
  mlp_impl *im = m->impl;
  const int B = batch->rows;
  if (B > m->max_batch || B < 0)
    return kd_fail(e, KD_ERR_RUNTIME, "mlp forward: batch %d exceeds the %d rows allocated", B, m->max_batch);
  if (batch->kind != KD_INPUT_FEATURES || batch->width != m->in_dim)
    return kd_fail(e, KD_ERR_RUNTIME, "mlp forward: a batch of %d-wide %s rows for a student taking %d features",
                   batch->width, batch->kind == KD_INPUT_FEATURES ? "feature" : "token", m->in_dim);
  const int L = im->n_layers;
  const int train = f && f->train;
  const float *in = batch->x;
  for (int l = 0; l < L; l++) {
    const int n_in = im->cfg.sizes[l], n_out = im->cfg.sizes[l + 1];
    const int last = (l == L - 1);
    float *out = last ? logits : im->h[l];
    /* out[B, n_out] = in[B, n_in] * W[n_out, n_in]^T */
    kd_gemm(out, n_out, in, n_in, 0, layer_w(m, l), n_in, 1, B, n_out, n_in, 1.0f, 0.0f);
    if (last) {
      kd_bias_act_forward(out, NULL, layer_b(m, l), KD_ACT_NONE, B, n_out);
    } else {
      kd_bias_act_forward(out, im->pre[l], layer_b(m, l), im->cfg.act, B, n_out);
      if (train && im->cfg.dropout > 0.0f)
        kd_dropout_forward(out, im->mask[l], batch->row_ids, kd_mix64(f->dropout_key ^ (uint64_t)l),
                           im->cfg.dropout, B, n_out);
    }
    in = out;
  }
  im->x = batch->x;
  im->last_B = B;
  im->last_train = train;
  return KD_OK;
}

/* The injection at hidden layer `layer`, or NULL. */
static const float *injected(const kd_inject *inj, int n_inj, int layer) {
  for (int i = 0; i < n_inj; i++)
    if (inj[i].layer == layer) return inj[i].dh;
  return NULL;
}

static int check_backward(const mlp_impl *im, const float *dlogits, int B, const kd_inject *inj, int n_inj,
                          int *top, kd_err *e) {
  if (!im->last_train || B != im->last_B)
    return kd_fail(e, KD_ERR_RUNTIME, "mlp backward: needs the training forward of the same %d rows", B);
  const int L = im->n_layers;
  *top = 0;
  for (int i = 0; i < n_inj; i++) {
    if (inj[i].kind != KD_INJ_HIDDEN)
      return kd_fail(e, KD_ERR_RUNTIME, "mlp backward: an mlp has no attention layers to inject into");
    if (inj[i].layer < 1 || inj[i].layer > L - 1)
      return kd_fail(e, KD_ERR_RUNTIME, "mlp backward: no hidden layer %d (the student has %d)", inj[i].layer, L - 1);
    if (injected(inj, i, inj[i].layer))
      return kd_fail(e, KD_ERR_RUNTIME, "mlp backward: hidden layer %d injected twice", inj[i].layer);
    if (inj[i].layer > *top) *top = inj[i].layer;
  }
  if (!dlogits && !n_inj) return kd_fail(e, KD_ERR_RUNTIME, "mlp backward: no gradient to propagate");
  return KD_OK;
}

static int mlp_backward(kd_model *m, const float *dlogits, const kd_batch *batch, const kd_inject *inj, int n_inj,
                        kd_err *e) {
  mlp_impl *im = m->impl;
  const int B = batch->rows, L = im->n_layers;
  int top = 0;
  if (check_backward(im, dlogits, B, inj, n_inj, &top, e)) return e->code;
  /* Without dlogits (hints alone) the pass starts at the highest injected layer. */
  const int start = dlogits ? L - 1 : top - 1;
  const float *d = dlogits ? dlogits : injected(inj, n_inj, top);
  for (int l = start; l >= 0; l--) {
    const float *dh = l < start ? injected(inj, n_inj, l + 1) : NULL;
    if (dh) {
      /* d (= dbuf[1], written by the layer above) += the injected gradient */
      const int w = im->cfg.sizes[l + 1];
      float *acc = im->dbuf[1];
      for (size_t i = 0; i < (size_t)B * w; i++) acc[i] += dh[i];
    }
    const int n_in = im->cfg.sizes[l], n_out = im->cfg.sizes[l + 1];
    const float *in = l == 0 ? im->x : im->h[l - 1];
    float *dW = m->grads + m->views[2 * l].offset;
    float *db = m->grads + m->views[2 * l + 1].offset;
    const float *dz;
    if (l == L - 1) {
      kd_bias_backward(db, d, B, n_out);
      dz = d;
    } else {
      const uint8_t *mask = im->cfg.dropout > 0.0f ? im->mask[l] : NULL;
      kd_act_backward(im->dbuf[0], db, d, im->h[l], im->pre[l], mask, im->cfg.dropout, im->cfg.act, B, n_out);
      dz = im->dbuf[0];
    }
    /* dW[n_out, n_in] += dz[B, n_out]^T in[B, n_in] */
    kd_gemm(dW, n_in, dz, n_out, 1, in, n_in, 0, n_out, n_in, B, 1.0f, 1.0f);
    kd_model_grads_ready(m, m->views[2 * l].offset); /* layers l.. are done */
    if (l > 0) {
      /* d_in[B, n_in] = dz[B, n_out] W[n_out, n_in] */
      kd_gemm(im->dbuf[1], n_in, dz, n_out, 0, layer_w(m, l), n_in, 0, B, n_in, n_out, 1.0f, 0.0f);
      kd_model_grads_ready(m, m->views[2 * l].offset); /* progress the started buckets */
      d = im->dbuf[1];
    }
  }
  return KD_OK;
}

static void mlp_init_params(kd_model *m, uint64_t seed) {
  mlp_impl *im = m->impl;
  for (int l = 0; l < im->n_layers; l++) {
    const int n_in = im->cfg.sizes[l], n_out = im->cfg.sizes[l + 1];
    const int last = (l == im->n_layers - 1);
    /* He (fan-in) keeps ReLU/GELU activations at unit scale; the output
     * layer, and every layer with --init xavier, uses Xavier (fan-avg). */
    double std = (!last && !im->cfg.init_xavier) ? sqrt(2.0 / n_in) : sqrt(2.0 / (n_in + n_out));
    float *W = m->params + m->views[2 * l].offset;
    float *b = m->params + m->views[2 * l + 1].offset;
    uint64_t key = kd_key(seed, KD_RNG_INIT, (uint64_t)l, 0);
    for (size_t i = 0; i < (size_t)n_in * n_out; i++) W[i] = (float)(std * kd_normal(key, i));
    memset(b, 0, sizeof(float) * (size_t)n_out);
  }
}

static const float *mlp_hidden(const kd_model *m, int layer, int *width) {
  const mlp_impl *im = m->impl;
  if (layer < 1 || layer > im->n_layers - 1) return NULL;
  if (width) *width = im->cfg.sizes[layer];
  return im->h[layer - 1];
}

static int mlp_n_hidden(const kd_model *m) { return ((const mlp_impl *)m->impl)->n_layers - 1; }

/* Hidden layer K is computed by layers 0..K-1: their weight and bias views. */
static int mlp_views_through(const kd_model *m, int layer) {
  (void)m;
  return 2 * layer;
}

static void mlp_destroy(kd_model *m) {
  mlp_impl *im = m->impl;
  if (im) {
    for (int l = 0; l < KD_MLP_MAX_LAYERS; l++) {
      free(im->h[l]);
      free(im->pre[l]);
      free(im->mask[l]);
    }
    free(im->dbuf[0]);
    free(im->dbuf[1]);
    free(im);
  }
  free(m->views);
  free(m);
}

static const kd_model_ops mlp_ops = {mlp_forward, mlp_backward, mlp_hidden, NULL, mlp_n_hidden, mlp_views_through,
                                     mlp_init_params, mlp_destroy, NULL, NULL, NULL, NULL, NULL}; /* no decoding, no head op */

int kd_mlp_create(kd_model **out, const kd_mlp_cfg *cfg, int max_batch, kd_err *e) {
  *out = NULL;
  if (cfg->n_sizes < 2) return kd_fail(e, KD_ERR_USAGE, "mlp: need at least input and output sizes");
  if (max_batch < 1) return kd_fail(e, KD_ERR_USAGE, "mlp: max batch %d < 1", max_batch);
  kd_model *m = kd_calloc(1, sizeof *m, "model", e);
  if (!m) return e->code;
  mlp_impl *im = kd_calloc(1, sizeof *im, "model state", e);
  if (!im) { free(m); return e->code; }
  m->impl = im;
  m->ops = &mlp_ops;
  m->family = kd_mlp_family.name;
  m->input = KD_INPUT_FEATURES;
  m->n_attrs = 1;
  snprintf(m->attrs[0].name, sizeof m->attrs[0].name, "activation");
  snprintf(m->attrs[0].value, sizeof m->attrs[0].value, "%s", cfg->act == KD_ACT_GELU ? "gelu" : "relu");
  im->cfg = *cfg;
  im->n_layers = cfg->n_sizes - 1;
  m->in_dim = cfg->sizes[0];
  m->out_dim = cfg->sizes[cfg->n_sizes - 1];
  m->max_batch = max_batch;
  size_t pos = 0;
  for (int i = 0; i < cfg->n_sizes; i++) {
    char tmp[16];
    snprintf(tmp, sizeof tmp, "%s%d", i ? "-" : "", cfg->sizes[i]);
    strncat(m->spec, tmp, sizeof m->spec - strlen(m->spec) - 1);
  }
  m->n_views = 2 * im->n_layers;
  m->views = kd_calloc((size_t)m->n_views, sizeof *m->views, "parameter views", e);
  if (!m->views) { mlp_destroy(m); return e->code; }
  int max_w = 0;
  for (int l = 0; l < im->n_layers; l++) {
    const int n_in = cfg->sizes[l], n_out = cfg->sizes[l + 1];
    kd_param_view *w = &m->views[2 * l], *b = &m->views[2 * l + 1];
    snprintf(w->name, sizeof w->name, "layer%d/weight", l);
    w->offset = pos; w->rows = n_out; w->cols = n_in; w->decay = 1;
    pos += (size_t)n_in * n_out;
    snprintf(b->name, sizeof b->name, "layer%d/bias", l);
    b->offset = pos; b->rows = n_out; b->cols = 1; b->decay = 0;
    pos += (size_t)n_out;
    if (n_in > max_w) max_w = n_in;
    if (n_out > max_w) max_w = n_out;
    if (l < im->n_layers - 1) {
      size_t cells = (size_t)max_batch * n_out;
      im->h[l] = kd_malloc(cells * sizeof(float), "hidden activations", e);
      if (cfg->act == KD_ACT_GELU) im->pre[l] = kd_malloc(cells * sizeof(float), "pre-activations", e);
      if (cfg->dropout > 0.0f) im->mask[l] = kd_malloc(cells, "dropout masks", e);
      if (e->code) { mlp_destroy(m); return e->code; }
      m->act_bytes += cells * ((cfg->act == KD_ACT_GELU ? 2 : 1) * sizeof(float) + (cfg->dropout > 0.0f));
    }
  }
  m->n_params = pos;
  for (int i = 0; i < 2; i++) {
    im->dbuf[i] = kd_malloc((size_t)max_batch * max_w * sizeof(float), "backward scratch", e);
    if (!im->dbuf[i]) { mlp_destroy(m); return e->code; }
    m->act_bytes += (size_t)max_batch * max_w * sizeof(float);
  }
  *out = m;
  return KD_OK;
}

/* ---- the registry entry ---- */

static int spec_cfg(kd_mlp_cfg *cfg, const kd_model_spec *spec, kd_err *e) {
  memset(cfg, 0, sizeof *cfg);
  if (kd_spec_check_keys(spec, "activation|init", e)) return e->code;
  if (kd_mlp_parse_spec(cfg, spec->text, e)) return e->code;
  char v[32];
  cfg->act = KD_ACT_RELU;
  if (kd_spec_option(spec, "activation", v, sizeof v)) {
    if (strcmp(v, "gelu") == 0) cfg->act = KD_ACT_GELU;
    else if (strcmp(v, "relu") != 0) return kd_fail(e, KD_ERR_USAGE, "mlp: activation '%s' (relu or gelu)", v);
  }
  if (kd_spec_option(spec, "init", v, sizeof v)) {
    if (strcmp(v, "xavier") == 0) cfg->init_xavier = 1;
    else if (strcmp(v, "he") != 0) return kd_fail(e, KD_ERR_USAGE, "mlp: init '%s' (he or xavier)", v);
  }
  cfg->dropout = spec->dropout;
  return KD_OK;
}

static int family_parse(const kd_model_spec *spec, char *canonical, size_t n, kd_err *e) {
  kd_mlp_cfg cfg;
  if (spec_cfg(&cfg, spec, e)) return e->code;
  canonical[0] = '\0';
  for (int i = 0; i < cfg.n_sizes; i++) snprintf(canonical + strlen(canonical), n - strlen(canonical), "%s%d", i ? "-" : "", cfg.sizes[i]);
  return KD_OK;
}

static int family_create(kd_model **m, const kd_model_spec *spec, int max_batch, kd_err *e) {
  kd_mlp_cfg cfg;
  if (spec_cfg(&cfg, spec, e) || kd_mlp_create(m, &cfg, max_batch, e)) return e->code;
  (*m)->frozen = spec->frozen; /* its buffers are small: the same as a trainable one's */
  return KD_OK;
}

static const char *const mlp_file_attrs[] = {"activation", NULL};

const kd_family kd_mlp_family = {"mlp", "input-hidden...-classes, like 784-800-800-10", mlp_file_attrs,
                                 family_parse, family_create, 256, "activation|init"};
