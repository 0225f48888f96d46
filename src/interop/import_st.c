#include "interop/import_st.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt/weights.h"
#include "data/hftok.h"
#include "kd/ckpt.h"
#include "kd/infer.h"
#include "interop/hfmodel.h"
#include "interop/safetensors.h"

typedef struct job {
  const kd_import_weights_cfg *cfg;
  kd_import_weights_report *r;
  kd_model *m;
  float *params;
  kd_st_model *st;
  float *buf;        /* one tensor as read */
  size_t buf_n;
} job;

/* "the LlamaForCausalLM of config.json (llama:vocab=...)": what the tensors are checked against. */
static const char *model_of(const job *j, char *s, size_t n) {
  snprintf(s, n, "the %s of %.300s (%.280s)", j->r->arch, j->cfg->config, j->r->student);
  return s;
}

/* The tensor of an HF name: as it is, or without the base model's prefix (a file saved from GPT2Model or
 * LlamaModel, as GPT-2's own model.safetensors). */
static kd_st_tensor *lookup(const job *j, const char *name) {
  kd_st_tensor *t = kd_st_find(j->st, name);
  const char *prefix = kd_hf_base_prefix(j->m);
  const size_t k = strlen(prefix);
  if (!t && strncmp(name, prefix, k) == 0) t = kd_st_find(j->st, name + k);
  return t;
}

/* t as float32 into j->buf, its shape checked against want. */
static int read_tensor(job *j, kd_st_tensor *t, const kd_hf_param *want, kd_err *e) {
  char got[160], need[160], who[700];
  const int same = t->ndim == want->ndim && t->shape[0] == want->shape[0] && (want->ndim == 1 || t->shape[1] == want->shape[1]);
  if (!same) {
    kd_st_shape_text(got, sizeof got, t->ndim, t->shape);
    kd_st_shape_text(need, sizeof need, want->ndim, want->shape);
    return kd_fail(e, KD_ERR_RUNTIME, "%s: tensor %s is %s %s, but %s needs %s", kd_st_path(j->st, t), t->name,
                   t->dtype, got, model_of(j, who, sizeof who), need);
  }
  const size_t n = (size_t)kd_st_numel(t);
  if (n > j->buf_n) {
    free(j->buf);
    j->buf_n = 0;
    if (!(j->buf = kd_malloc(sizeof(float) * n, t->name, e))) return e->code;
    j->buf_n = n;
  }
  if (kd_st_read(j->st, t, j->buf, e)) return e->code;
  for (size_t i = 0; i < n; i++)
    if (!isfinite(j->buf[i]))
      return kd_fail(e, KD_ERR_RUNTIME, "%s: tensor %s element %zu is %s: the weights are not finite",
                     kd_st_path(j->st, t), t->name, i, isnan(j->buf[i]) ? "NaN" : "infinite");
  t->used = 1;
  if (t->type <= KD_ST_BF16) j->r->by_type[t->type]++;
  return KD_OK;
}

static int take_view(job *j, const kd_param_view *v, kd_err *e) {
  kd_hf_param p;
  kd_hf_param_of(&p, j->m, v);
  kd_st_tensor *t = lookup(j, p.name);
  char who[700];
  if (!t)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: tensor %s is missing: %s needs it", j->cfg->in, p.name,
                   model_of(j, who, sizeof who));
  if (read_tensor(j, t, &p, e)) return e->code;
  float *dst = j->params + v->offset;
  if (!p.transpose) {
    memcpy(dst, j->buf, sizeof(float) * (size_t)v->rows * v->cols);
  } else { /* GPT-2's Conv1D [in, out] to kd's [out, in] */
    for (int a = 0; a < v->cols; a++)
      for (int b = 0; b < v->rows; b++) dst[(size_t)b * v->cols + a] = j->buf[(size_t)a * v->rows + b];
  }
  j->r->tensors++;
  return KD_OK;
}

static int ends_with(const char *s, const char *suffix) {
  const size_t n = strlen(s), k = strlen(suffix);
  return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* A tied head stored anyway (transformers writes lm_head.weight when it does not know the two are one) must
 * hold the embedding's values. */
static int tied_head(job *j, kd_st_tensor *t, kd_err *e) {
  const kd_param_view *emb = &j->m->views[0]; /* wte or embed_tokens: the first view of both families */
  kd_hf_param p, pe;
  kd_hf_param_of(&pe, j->m, emb);
  kd_hf_param_of(&p, j->m, emb);
  snprintf(p.name, sizeof p.name, "lm_head.weight");
  if (read_tensor(j, t, &p, e)) return e->code;
  if (memcmp(j->buf, j->params + emb->offset, sizeof(float) * (size_t)emb->rows * emb->cols) != 0)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: tensor %s differs from %s, but %s ties the head to the embedding "
                   "(tie_word_embeddings): they must be equal", kd_st_path(j->st, t), t->name, pe.name, j->cfg->config);
  j->r->by_type[t->type]--;
  return KD_OK;
}

/* Every tensor of the files is a parameter of the student or one of HF's extras kd knows. */
static int rest(job *j, kd_err *e) {
  static const char *const buffers[] = {".attn.bias", ".attn.masked_bias", "rotary_emb.inv_freq"};
  char who[700];
  for (int i = 0; i < kd_st_count(j->st); i++) {
    kd_st_tensor *t = kd_st_at(j->st, i);
    if (t->used) continue;
    int buffer = 0;
    for (size_t b = 0; b < sizeof buffers / sizeof buffers[0]; b++) buffer |= ends_with(t->name, buffers[b]);
    if (!buffer && j->m->tied[0] && strcmp(t->name, "lm_head.weight") == 0) {
      if (tied_head(j, t, e)) return e->code;
      buffer = 1;
    }
    if (!buffer)
      return kd_fail(e, KD_ERR_RUNTIME, "%s: tensor %s is not a parameter of %s", kd_st_path(j->st, t), t->name,
                     model_of(j, who, sizeof who));
    t->used = 1;
    j->r->ignored++;
  }
  return KD_OK;
}

/* The tokenizer record: --tokenizer FILE, or tokenizer.json beside config.json (a kind kd cannot read is then
 * a note in the report, not an error), or none. Its ids must fit the model's vocabulary. */
static int read_tokenizer(job *j, kd_tokenizer *t, int *have, kd_err *e) {
  const kd_import_weights_cfg *c = j->cfg;
  char path[KD_PATH_MAX];
  *have = 0;
  if (strcmp(c->tokenizer, "none") == 0) {
    snprintf(j->r->tokenizer, sizeof j->r->tokenizer, "no /tokenizer record (--tokenizer none)");
    return KD_OK;
  }
  const int beside = c->tokenizer[0] == 0;
  if (beside) {
    const char *slash = strrchr(c->config, '/');
    const int dir = slash ? (int)(slash - c->config) + 1 : 0;
    if (snprintf(path, sizeof path, "%.*stokenizer.json", dir, c->config) >= (int)sizeof path || access(path, R_OK) != 0) {
      snprintf(j->r->tokenizer, sizeof j->r->tokenizer, "no /tokenizer record (no tokenizer.json beside %s)", c->config);
      return KD_OK;
    }
  } else {
    snprintf(path, sizeof path, "%s", c->tokenizer);
  }
  kd_err te = {0};
  if (kd_hftok_load(t, path, &te)) {
    if (!beside) return kd_fail(e, te.code, "%s", te.msg);
    snprintf(j->r->tokenizer, sizeof j->r->tokenizer, "no /tokenizer record: %s", te.msg);
    return KD_OK;
  }
  const int V = j->m->out_dim;
  if (t->vocab > V) {
    kd_tokenizer_free(t);
    return kd_fail(e, KD_ERR_RUNTIME, "%s has %d ids but the model's vocabulary (%s) is %d", path, t->vocab, c->config, V);
  }
  *have = 1;
  snprintf(j->r->tokenizer, sizeof j->r->tokenizer, "/tokenizer from %s (byte-level BPE, %d ids, %d merges)", path,
           t->vocab, t->n_merges);
  return KD_OK;
}

/* The student of the config with max_batch rows of inference buffers (0: as many as KD_INFER_ACT_BYTES of
 * activations hold, at most 1024), its parameters read from the safetensors files. */
static int load_model(job *j, int max_batch, kd_err *e) {
  kd_model_spec spec;
  int rc = kd_hf_config_read(&spec, j->r->arch, sizeof j->r->arch, j->cfg->config, j->cfg->ctx, e);
  if (rc) return rc;
  snprintf(j->r->student, sizeof j->r->student, "%s:%s", spec.family, spec.text);
  spec.frozen = 1; /* inference only: the least activation memory */
  if (max_batch <= 0) {
    if (kd_model_create(&j->m, &spec, 1, e)) return e->code;
    const size_t per_row = j->m->act_bytes > 0 ? j->m->act_bytes : 1;
    kd_model_free(j->m);
    j->m = NULL;
    max_batch = (int)(KD_INFER_ACT_BYTES / per_row < 1024 ? KD_INFER_ACT_BYTES / per_row : 1024);
    if (max_batch < 1) max_batch = 1;
  }
  if (kd_model_create(&j->m, &spec, max_batch, e)) return e->code;
  if (!(j->params = kd_calloc(j->m->n_params, sizeof(float), "parameters", e))) return e->code;
  kd_model_bind(j->m, j->params, NULL);
  if (kd_st_open(&j->st, j->cfg->in, e)) return e->code;
  for (int i = 0; i < j->m->n_views; i++)
    if (take_view(j, &j->m->views[i], e)) return e->code;
  return rest(j, e);
}

static void job_free(job *j) {
  kd_st_close(j->st);
  free(j->buf);
  kd_model_free(j->m);
  free(j->params);
}

int kd_hf_model_load(kd_model **m, float **params, kd_tokenizer *tok, int *have_tok, const char *in,
                     const char *config, int max_batch, kd_err *e) {
  *m = NULL;
  *params = NULL;
  *have_tok = 0;
  kd_import_weights_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  if (snprintf(cfg.in, sizeof cfg.in, "%s", in) >= (int)sizeof cfg.in ||
      snprintf(cfg.config, sizeof cfg.config, "%s", config) >= (int)sizeof cfg.config)
    return kd_fail(e, KD_ERR_USAGE, "%s: the path is too long", in);
  kd_import_weights_report r;
  memset(&r, 0, sizeof r);
  job j = {&cfg, &r, NULL, NULL, NULL, NULL, 0};
  int rc = load_model(&j, max_batch, e);
  if (!rc) rc = read_tokenizer(&j, tok, have_tok, e);
  if (!rc) {
    *m = j.m;
    *params = j.params;
    j.m = NULL;
    j.params = NULL;
  }
  job_free(&j);
  return rc;
}

int kd_import_weights(const kd_import_weights_cfg *cfg, kd_import_weights_report *r, kd_err *e) {
  memset(r, 0, sizeof *r);
  job j = {cfg, r, NULL, NULL, NULL, NULL, 0};
  int rc = load_model(&j, 1, e);
  kd_tokenizer tok;
  int have_tok = 0;
  if (!rc) rc = read_tokenizer(&j, &tok, &have_tok, e);
  kd_ckpt_meta meta;
  memset(&meta, 0, sizeof meta);
  meta.tok = have_tok ? &tok : NULL;
  if (!rc) rc = kd_weights_write(cfg->out, j.m, have_tok ? &meta : NULL, e);
  if (have_tok) kd_tokenizer_free(&tok);
  if (!rc) r->files = kd_st_file_count(j.st);
  job_free(&j);
  return rc ? e->code : KD_OK;
}
