#include "interop/hfmodel.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomic.h"
#include "core/fmt.h"
#include "core/json.h"
#include "models/gpt.h"
#include "models/llama.h"

static int is_gpt(const kd_model *m) { return strcmp(m->family, "gpt") == 0; }
static int is_llama(const kd_model *m) { return strcmp(m->family, "llama") == 0; }

const char *kd_hf_arch(const kd_model *m) {
  return is_gpt(m) ? "GPT2LMHeadModel" : is_llama(m) ? "LlamaForCausalLM" : NULL;
}

const char *kd_hf_base_prefix(const kd_model *m) { return is_gpt(m) ? "transformer." : "model."; }

static int ends_with(const char *s, const char *suffix) {
  const size_t n = strlen(s), k = strlen(suffix);
  return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Norms and biases, by name: kd's views give [n, 1] for a vector and for a matrix of one column alike. */
static int is_vector(const kd_param_view *v) {
  if (v->cols != 1) return 0;
  if (ends_with(v->name, "/bias")) return 1;
  const char *leaf = strrchr(v->name, '/');
  const size_t n = leaf ? (size_t)(leaf - v->name) : strlen(v->name);
  char owner[64];
  snprintf(owner, sizeof owner, "%.*s", (int)n, v->name);
  const char *last = strrchr(owner, '/');
  last = last ? last + 1 : owner;
  return strstr(last, "norm") != NULL || strncmp(last, "ln_", 3) == 0;
}

void kd_hf_param_of(kd_hf_param *p, const kd_model *m, const kd_param_view *v) {
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "%s", v->name);
  for (char *c = p->name; *c; c++)
    if (*c == '/') *c = '.';
  if (is_vector(v)) {
    p->ndim = 1;
    p->shape[0] = v->rows;
    return;
  }
  p->ndim = 2;
  /* GPT-2's Conv1D: every matrix inside the blocks (the embeddings wte and wpe are [rows, D] as kd's) */
  p->transpose = is_gpt(m) && strncmp(v->name, "transformer/h/", 14) == 0;
  p->shape[0] = p->transpose ? v->cols : v->rows;
  p->shape[1] = p->transpose ? v->rows : v->cols;
}

/* ---- config.json, written ---- */

static int write_gpt(FILE *f, const kd_model *m, const char *dtype, kd_err *e) {
  kd_gpt_cfg c;
  if (kd_gpt_parse_spec(&c, m->spec, e)) return e->code;
  fprintf(f,
          "{\n  \"architectures\": [\"GPT2LMHeadModel\"],\n  \"model_type\": \"gpt2\",\n  \"vocab_size\": %d,\n"
          "  \"n_positions\": %d,\n  \"n_ctx\": %d,\n  \"n_embd\": %d,\n  \"n_layer\": %d,\n  \"n_head\": %d,\n"
          "  \"n_inner\": null,\n  \"activation_function\": \"gelu_new\",\n  \"layer_norm_epsilon\": 1e-05,\n"
          "  \"tie_word_embeddings\": true,\n  \"torch_dtype\": \"%s\"\n}\n",
          c.vocab, c.ctx, c.ctx, c.dim, c.layers, c.heads, dtype);
  return KD_OK;
}

/* A JSON number as Python's json writes a float: 10000.0, 1e-05 (the shortest text that reads back). */
static char *json_num(char *buf, size_t n, double v) {
  if (v == floor(v) && fabs(v) < 1e15) snprintf(buf, n, "%.1f", v);
  else kd_fmt_num(buf, n, v);
  return buf;
}

static int write_llama(FILE *f, const kd_model *m, const char *dtype, kd_err *e) {
  kd_llama_cfg c;
  if (kd_llama_parse_spec(&c, m->spec, e)) return e->code;
  char theta[32], eps[32];
  json_num(theta, sizeof theta, c.rope_theta);
  json_num(eps, sizeof eps, c.norm_eps);
  fprintf(f,
          "{\n  \"architectures\": [\"LlamaForCausalLM\"],\n  \"model_type\": \"llama\",\n  \"vocab_size\": %d,\n"
          "  \"max_position_embeddings\": %d,\n  \"num_hidden_layers\": %d,\n  \"hidden_size\": %d,\n"
          "  \"num_attention_heads\": %d,\n  \"num_key_value_heads\": %d,\n  \"head_dim\": %d,\n"
          "  \"intermediate_size\": %d,\n  \"rope_theta\": %s,\n  \"rope_scaling\": null,\n  \"rms_norm_eps\": %s,\n"
          "  \"tie_word_embeddings\": %s,\n  \"hidden_act\": \"silu\",\n  \"attention_bias\": false,\n"
          "  \"mlp_bias\": false,\n  \"torch_dtype\": \"%s\"\n}\n",
          c.vocab, c.ctx, c.layers, c.dim, c.heads, c.kv_heads, c.dim / c.heads, c.ffn, theta, eps,
          c.tie ? "true" : "false", dtype);
  return KD_OK;
}

int kd_hf_config_write(const char *path, const kd_model *m, const char *torch_dtype, kd_err *e) {
  kd_atomic a;
  if (kd_atomic_begin(&a, path, e)) return e->code;
  FILE *f = fopen(a.tmp, "w");
  if (!f) return kd_fail(e, KD_ERR_RUNTIME, "%s: cannot create (%s, writing %s)", path, strerror(errno), a.tmp);
  errno = 0;
  int rc = is_gpt(m) ? write_gpt(f, m, torch_dtype, e) : write_llama(f, m, torch_dtype, e);
  const int bad = ferror(f), err = errno;
  if (fclose(f) != 0 || bad) {
    kd_atomic_abort(&a);
    return rc ? rc : kd_fail(e, KD_ERR_RUNTIME, "%s: writing failed (%s)", path, strerror(err ? err : errno ? errno : EIO));
  }
  if (rc) {
    kd_atomic_abort(&a);
    return rc;
  }
  return kd_atomic_commit(&a, e);
}

/* ---- config.json, read ---- */

typedef struct conf {
  const kd_json *o;
  const char *path;
  const char *arch;
  kd_err *e;
} conf;

/* An integer key in [lo, hi]; absent: def (def < lo: the key is required). */
static int get_int(const conf *c, const char *key, int64_t lo, int64_t hi, int64_t def, int64_t *out) {
  const kd_json *v = kd_json_get(c->o, key);
  if (!v || v->type == KD_JSON_NULL) {
    if (def < lo)
      return kd_fail(c->e, KD_ERR_RUNTIME, "%s: %s is missing (an integer that a %s needs)", c->path, key, c->arch);
    *out = def;
    return KD_OK;
  }
  const int integral = v->type == KD_JSON_NUMBER && (v->is_int || (v->number == floor(v->number) && fabs(v->number) < 1e18));
  if (!integral)
    return kd_fail(c->e, KD_ERR_RUNTIME, "%s: %s is not an integer", c->path, key);
  const int64_t x = v->is_int ? v->integer : (int64_t)v->number;
  if (x < lo || x > hi)
    return kd_fail(c->e, KD_ERR_RUNTIME, "%s: %s is %lld; kd reads a %s with %s from %lld to %lld", c->path, key,
                   (long long)x, c->arch, key, (long long)lo, (long long)hi);
  *out = x;
  return KD_OK;
}

static int get_num(const conf *c, const char *key, double def, double *out) {
  const kd_json *v = kd_json_get(c->o, key);
  if (!v || v->type == KD_JSON_NULL) {
    *out = def;
    return KD_OK;
  }
  if (v->type != KD_JSON_NUMBER || !isfinite(v->number) || v->number <= 0)
    return kd_fail(c->e, KD_ERR_RUNTIME, "%s: %s is not a positive number", c->path, key);
  *out = v->number;
  return KD_OK;
}

/* A boolean key; absent or null: def. */
static int get_bool(const conf *c, const char *key, int def, int *out) {
  const kd_json *v = kd_json_get(c->o, key);
  if (!v || v->type == KD_JSON_NULL) *out = def;
  else if (v->type == KD_JSON_TRUE || v->type == KD_JSON_FALSE) *out = v->type == KD_JSON_TRUE;
  else return kd_fail(c->e, KD_ERR_RUNTIME, "%s: %s is not true or false", c->path, key);
  return KD_OK;
}

/* A string key that must be one of `ok` ("a|b") when present. */
static int check_str(const conf *c, const char *key, const char *ok, const char *why) {
  const kd_json *v = kd_json_get(c->o, key);
  if (!v || v->type == KD_JSON_NULL) return KD_OK;
  if (v->type == KD_JSON_STRING)
    for (const char *k = ok; *k;) {
      const char *bar = strchr(k, '|');
      const size_t l = bar ? (size_t)(bar - k) : strlen(k);
      if (v->len == l && strncmp(v->str, k, l) == 0) return KD_OK;
      k += l + (bar ? 1 : 0);
    }
  return kd_fail(c->e, KD_ERR_RUNTIME, "%s: %s is %s%.64s%s: %s", c->path, key, v->type == KD_JSON_STRING ? "\"" : "",
                 v->type == KD_JSON_STRING ? v->str : "not a string", v->type == KD_JSON_STRING ? "\"" : "", why);
}

static int refuse_true(const conf *c, const char *key, const char *why) {
  int b = 0;
  if (get_bool(c, key, 0, &b)) return c->e->code;
  return b ? kd_fail(c->e, KD_ERR_RUNTIME, "%s: %s is true: %s", c->path, key, why) : KD_OK;
}

/* A spec kd's own parser refuses (heads not dividing the width, ...): the config's fault, so a data error. */
static int check_spec(const conf *c, kd_model_spec *spec) {
  kd_err me;
  kd_err_clear(&me);
  char canonical[256];
  const kd_family *f = kd_family_find(spec->family);
  if (f->parse(spec, canonical, sizeof canonical, &me))
    return kd_fail(c->e, KD_ERR_RUNTIME, "%s: not a %s that kd builds: %s", c->path, c->arch, me.msg);
  snprintf(spec->text, sizeof spec->text, "%s", canonical);
  return KD_OK;
}

static int read_gpt(kd_model_spec *spec, const conf *c, int ctx) {
  int64_t V, T, L, D, H, inner;
  double eps;
  int tie, scale;
  if (ctx > 0)
    return kd_fail(c->e, KD_ERR_USAGE, "kd import weights: --ctx is for llama models (a GPT-2's context is "
                   "n_positions, the rows of its wpe)");
  if (get_int(c, "vocab_size", 2, 1 << 24, 0, &V) || get_int(c, "n_embd", 1, 1 << 16, 0, &D) ||
      get_int(c, "n_layer", 1, 1024, 0, &L) || get_int(c, "n_head", 1, 1024, 0, &H) ||
      get_int(c, "n_positions", 1, 1 << 16, 1024, &T) ||
      get_int(c, "n_inner", 1, 1 << 22, 4 * D, &inner) || get_num(c, "layer_norm_epsilon", 1e-5, &eps) ||
      get_bool(c, "tie_word_embeddings", 1, &tie) || get_bool(c, "scale_attn_weights", 1, &scale))
    return c->e->code;
  if (inner != 4 * D)
    return kd_fail(c->e, KD_ERR_RUNTIME, "%s: n_inner is %lld; kd's gpt has an MLP of 4 n_embd = %lld (n_inner null)",
                   c->path, (long long)inner, (long long)(4 * D));
  if (eps != 1e-5)
    return kd_fail(c->e, KD_ERR_RUNTIME, "%s: layer_norm_epsilon is %g; kd's gpt normalises with 1e-5", c->path, eps);
  if (!tie)
    return kd_fail(c->e, KD_ERR_RUNTIME, "%s: tie_word_embeddings is false; kd's gpt ties its head to wte", c->path);
  if (!scale)
    return kd_fail(c->e, KD_ERR_RUNTIME, "%s: scale_attn_weights is false; kd's gpt scales attention by "
                   "1/sqrt(head width)", c->path);
  if (check_str(c, "activation_function", "gelu_new|gelu_pytorch_tanh",
                "kd's gpt uses GELU in its tanh form (gelu_new)") ||
      refuse_true(c, "scale_attn_by_inverse_layer_idx", "kd's gpt scales every layer's attention alike") ||
      refuse_true(c, "add_cross_attention", "kd's gpt is a decoder without cross-attention"))
    return c->e->code;
  snprintf(spec->family, sizeof spec->family, "gpt");
  snprintf(spec->text, sizeof spec->text, "vocab=%lld,ctx=%lld,layers=%lld,dim=%lld,heads=%lld", (long long)V,
           (long long)T, (long long)L, (long long)D, (long long)H);
  return check_spec(c, spec);
}

/* rope_theta, or transformers 5's rope_parameters {"rope_type": "default", "rope_theta": X}. */
static int rope(const conf *c, double *theta) {
  const kd_json *rs = kd_json_get(c->o, "rope_scaling");
  if (rs && rs->type != KD_JSON_NULL)
    return kd_fail(c->e, KD_ERR_RUNTIME, "%s: rope_scaling is set; kd's llama has the default rotary embedding "
                   "(no Llama 3.1 \"llama3\", linear, dynamic or YaRN scaling)", c->path);
  const kd_json *rp = kd_json_get(c->o, "rope_parameters");
  if (rp && rp->type == KD_JSON_OBJECT && !kd_json_get(c->o, "rope_theta")) {
    const conf sub = {rp, c->path, c->arch, c->e};
    if (check_str(&sub, "rope_type", "default", "kd's llama has the default rotary embedding (rope_parameters)"))
      return c->e->code;
    return get_num(&sub, "rope_theta", 10000.0, theta);
  }
  return get_num(c, "rope_theta", 10000.0, theta);
}

static int read_llama(kd_model_spec *spec, const conf *c, int ctx) {
  int64_t V, T, L, D, H, G, F, hd;
  double theta, eps;
  int tie;
  if (get_int(c, "vocab_size", 2, 1 << 24, 0, &V) || get_int(c, "hidden_size", 1, 1 << 16, 0, &D) ||
      get_int(c, "num_hidden_layers", 1, 1024, 0, &L) || get_int(c, "num_attention_heads", 1, 1024, 0, &H) ||
      get_int(c, "num_key_value_heads", 1, 1024, H, &G) || get_int(c, "intermediate_size", 1, 1 << 20, 0, &F) ||
      get_int(c, "head_dim", 1, 1 << 16, D / H, &hd) || rope(c, &theta) || get_num(c, "rms_norm_eps", 1e-6, &eps) ||
      get_bool(c, "tie_word_embeddings", 0, &tie))
    return c->e->code;
  if (ctx > 0) T = ctx;
  else if (get_int(c, "max_position_embeddings", 1, INT32_MAX, 2048, &T)) return c->e->code;
  else if (T > 1 << 16)
    return kd_fail(c->e, KD_ERR_RUNTIME, "%s: max_position_embeddings is %lld; kd's llama runs at most 65536 "
                   "positions (kd import weights --ctx T sets a shorter context: rotary positions have no weights)",
                   c->path, (long long)T);
  if (hd * H != D)
    return kd_fail(c->e, KD_ERR_RUNTIME, "%s: head_dim is %lld, not hidden_size / num_attention_heads = %lld / %lld: "
                   "kd's llama has heads of hidden_size / num_attention_heads", c->path, (long long)hd, (long long)D,
                   (long long)H);
  if (check_str(c, "hidden_act", "silu", "kd's llama has a SwiGLU MLP (silu)") ||
      refuse_true(c, "attention_bias", "kd's llama has no biases in q_proj, k_proj, v_proj and o_proj") ||
      refuse_true(c, "mlp_bias", "kd's llama has no biases in its MLP"))
    return c->e->code;
  char th[32], ep[32];
  snprintf(spec->family, sizeof spec->family, "llama");
  snprintf(spec->text, sizeof spec->text, "vocab=%lld,ctx=%lld,layers=%lld,dim=%lld,heads=%lld,kv_heads=%lld,ffn=%lld,"
           "rope_theta=%s,norm_eps=%s,tie=%d", (long long)V, (long long)T, (long long)L, (long long)D, (long long)H,
           (long long)G, (long long)F, kd_fmt_num(th, sizeof th, theta), kd_fmt_num(ep, sizeof ep, eps), tie);
  return check_spec(c, spec);
}

int kd_hf_config_read(kd_model_spec *spec, char *arch, size_t n, const char *path, int ctx, kd_err *e) {
  memset(spec, 0, sizeof *spec);
  kd_json_doc *doc = NULL;
  if (kd_json_parse_file(&doc, path, e)) return e->code;
  conf c = {kd_json_root(doc), path, "", e};
  const char *type = kd_json_get_str(c.o, "model_type");
  int rc;
  if (c.o->type != KD_JSON_OBJECT)
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: not a config.json (a JSON object)", path);
  else if (!type)
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: model_type is missing; kd imports gpt2 (GPT2LMHeadModel) and llama "
                 "(LlamaForCausalLM)", path);
  else if (strcmp(type, "gpt2") == 0) {
    c.arch = "GPT2LMHeadModel";
    rc = read_gpt(spec, &c, ctx);
  } else if (strcmp(type, "llama") == 0) {
    c.arch = "LlamaForCausalLM";
    rc = read_llama(spec, &c, ctx);
  } else {
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: model_type \"%.64s\"; kd imports gpt2 (GPT2LMHeadModel) and llama "
                 "(LlamaForCausalLM)", path, type);
  }
  snprintf(arch, n, "%s", c.arch);
  kd_json_free(doc);
  return rc;
}
