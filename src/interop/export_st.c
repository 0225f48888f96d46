/* kd export --format safetensors: a gpt or llama student as DIR/model.safetensors and DIR/config.json, the
 * files transformers' GPT2LMHeadModel.from_pretrained(DIR) and LlamaForCausalLM.from_pretrained(DIR) load
 * (docs/format.md, "safetensors (Hugging Face)"). */
#define _POSIX_C_SOURCE 200809L /* mkdir */
#include "interop/export.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/hftok.h"
#include "interop/hfmodel.h"
#include "interop/safetensors.h"
#include "kd/ckpt.h"
#include "kd/infer.h"

/* --out: a directory, made when absent (its parent must exist). */
static int out_dir(const char *dir, kd_err *e) {
  struct stat st;
  if (stat(dir, &st) == 0)
    return S_ISDIR(st.st_mode) ? KD_OK
                               : kd_fail(e, KD_ERR_USAGE, "kd export --format safetensors: --out %s is a file; it "
                                         "names the directory of model.safetensors and config.json", dir);
  if (mkdir(dir, 0777) != 0)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: cannot create the directory (%s)", dir, strerror(errno));
  return KD_OK;
}

static kd_st_dtype st_dtype(const char *d) {
  return strcmp(d, "f16") == 0 ? KD_ST_F16 : strcmp(d, "bf16") == 0 ? KD_ST_BF16 : KD_ST_F32;
}

static const char *torch_dtype(kd_st_dtype t) {
  return t == KD_ST_F16 ? "float16" : t == KD_ST_BF16 ? "bfloat16" : "float32";
}

/* Every view under its Hugging Face name; GPT-2's Conv1D weights as transposed copies (kept in owned until
 * the file is written). */
static int add_tensors(kd_st_writer *w, float **owned, const kd_model *m, const float *params, kd_st_dtype dt,
                       kd_export_report *r, kd_err *e) {
  for (int i = 0; i < m->n_views; i++) {
    const kd_param_view *v = &m->views[i];
    kd_hf_param p;
    kd_hf_param_of(&p, m, v);
    const float *src = params + v->offset;
    if (p.transpose) {
      float *t = owned[i] = kd_malloc(sizeof(float) * (size_t)v->rows * v->cols, "transposed weights", e);
      if (!t) return e->code;
      for (int a = 0; a < v->rows; a++)
        for (int b = 0; b < v->cols; b++) t[(size_t)b * v->rows + a] = src[(size_t)a * v->cols + b];
      src = t;
    }
    if (kd_st_add(w, p.name, src, p.ndim, p.shape, dt, e)) return e->code;
    r->tensors++;
  }
  return KD_OK;
}

/* DIR/tokenizer.json from the checkpoint's /tokenizer record, where Hugging Face's format can express it
 * (data/hftok.h); r->tokenizer says which, or why not. */
static int write_tokenizer(const char *dir, kd_export_report *r, kd_err *e) {
  kd_tokenizer t;
  int have = 0;
  char path[KD_PATH_MAX], why[256];
  if (snprintf(path, sizeof path, "%s/tokenizer.json", dir) >= (int)sizeof path)
    return kd_fail(e, KD_ERR_USAGE, "kd export: --out %s: the path is too long", dir);
  if (kd_tokenizer_read(&t, r->ckpt, &have, e)) return e->code;
  if (!have || t.vocab == 0) {
    snprintf(r->tokenizer, sizeof r->tokenizer, "no tokenizer.json (the checkpoint has no /tokenizer record)");
    kd_tokenizer_free(&t);
    return KD_OK;
  }
  const int rc = kd_hftok_write_json(&t, path, why, sizeof why, e);
  if (!rc && why[0]) snprintf(r->tokenizer, sizeof r->tokenizer, "no tokenizer.json: %.200s", why);
  else if (!rc) snprintf(r->tokenizer, sizeof r->tokenizer, "tokenizer.json (%s, %d ids)", t.kind, t.vocab);
  kd_tokenizer_free(&t);
  return rc;
}

int kd_export_safetensors(const kd_export_cfg *cfg, kd_export_report *r, kd_err *e) {
  kd_model *m = NULL;
  float *params = NULL, **owned = NULL;
  kd_st_writer *w = NULL;
  const kd_st_dtype dt = st_dtype(cfg->dtype);
  char st_path[KD_PATH_MAX], cfg_path[KD_PATH_MAX];
  int rc = KD_OK;
  if (snprintf(st_path, sizeof st_path, "%s/model.safetensors", cfg->out) >= (int)sizeof st_path ||
      snprintf(cfg_path, sizeof cfg_path, "%s/config.json", cfg->out) >= (int)sizeof cfg_path)
    return kd_fail(e, KD_ERR_USAGE, "kd export: --out %s: the path is too long", cfg->out);
  rc = kd_ckpt_resolve(cfg->ckpt, 0, r->ckpt, sizeof r->ckpt, NULL, 0, e);
  if (!rc) rc = kd_model_load(&m, &params, r->ckpt, 1, e);
  const char *arch = rc ? NULL : kd_hf_arch(m);
  if (!rc && !arch)
    rc = kd_fail(e, KD_ERR_USAGE, "kd export --format safetensors: %s is a %s student; kd exports gpt students "
                 "(GPT2LMHeadModel) and llama students (LlamaForCausalLM)", r->ckpt, m->family);
  if (!rc) rc = out_dir(cfg->out, e);
  if (!rc && !(owned = kd_calloc((size_t)m->n_views, sizeof *owned, "transposed weights", e))) rc = e->code;
  if (!rc) rc = kd_st_writer_new(&w, e);
  if (!rc) rc = add_tensors(w, owned, m, params, dt, r, e);
  if (!rc) rc = kd_st_write(w, st_path, &r->bytes, e);
  if (!rc) rc = kd_hf_config_write(cfg_path, m, torch_dtype(dt), e);
  if (!rc) rc = write_tokenizer(cfg->out, r, e);
  if (!rc) {
    snprintf(r->arch, sizeof r->arch, "%s", arch);
    snprintf(r->files, sizeof r->files, "%s and %s", st_path, cfg_path);
  }
  for (int i = 0; owned && i < m->n_views; i++) free(owned[i]);
  free(owned);
  kd_st_writer_free(w);
  kd_model_free(m);
  free(params);
  return rc ? e->code : KD_OK;
}
