/* kd export --format gguf: a gpt or llama student and its tokenizer record as a GGUF v3 file that
 * llama.cpp loads as its "gpt2" or "llama" architecture (docs/format.md, "GGUF export"). */
#include "interop/export.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/bpe.h"
#include "data/hftok.h"
#include "interop/gguf.h"
#include "kd/ckpt.h"
#include "kd/data.h"
#include "kd/infer.h"
#include "models/gpt.h"
#include "models/llama.h"

/* The view of parameter `name`, or NULL. */
static const kd_param_view *view(const kd_model *m, const char *name) {
  for (int i = 0; i < m->n_views; i++)
    if (strcmp(m->views[i].name, name) == 0) return &m->views[i];
  return NULL;
}

typedef struct job {
  const kd_export_cfg *cfg;
  kd_model *m;
  float *params;
  kd_gguf *g;
  kd_export_report *r;
  float **owned;           /* permuted copies (llama q and k), freed at the end */
  int n_owned;
  /* the tokenizer as GGUF strings */
  char **tok;
  size_t *tok_len;
  int n_tok;
  char **merge;
  size_t *merge_len;
  int n_merge;
  int32_t *tok_type;
} job;

/* Norms and biases are vectors (by their GGUF names: kd's views give [n, 1] for a vector and for a matrix of
 * one column alike); they stay float32, as llama.cpp's converter keeps them. */
static int is_vector(const char *gguf_name) {
  const size_t n = strlen(gguf_name);
  return strstr(gguf_name, "norm.") != NULL || (n > 5 && strcmp(gguf_name + n - 5, ".bias") == 0);
}

/* One tensor by kd's name under GGUF's name. */
static int put(job *j, const char *gguf_name, const char *kd_name, const float *data, kd_err *e) {
  const kd_param_view *v = view(j->m, kd_name);
  if (!v) return kd_fail(e, KD_ERR_RUNTIME, "%s: the student has no parameter %s", j->r->ckpt, kd_name);
  const int vec = is_vector(gguf_name), f16 = strcmp(j->cfg->dtype, "f16") == 0 && !vec;
  j->r->tensors++;
  j->r->bytes += (double)v->rows * v->cols * (f16 ? 2 : 4);
  return kd_gguf_tensor(j->g, gguf_name, data ? data : j->params + v->offset, vec ? 1 : 2, v->rows, v->cols,
                        f16 ? KD_GGUF_F16 : KD_GGUF_F32, e);
}

/* Hugging Face's q and k rows turn dimension i with i + hd/2 (rotate_half); llama.cpp's "llama" turns
 * adjacent pairs (2i, 2i + 1). Its converter reorders the rows of each head so, and so does this: row
 * 2i + s of a head is row s * hd/2 + i. */
static int put_rotary(job *j, const char *gguf_name, const char *kd_name, int heads, kd_err *e) {
  const kd_param_view *v = view(j->m, kd_name);
  if (!v) return kd_fail(e, KD_ERR_RUNTIME, "%s: the student has no parameter %s", j->r->ckpt, kd_name);
  float *w = kd_malloc(sizeof(float) * (size_t)v->rows * v->cols, "rotary rows", e);
  if (!w) return e->code;
  j->owned[j->n_owned++] = w;
  const int hd = v->rows / heads, half = hd / 2, D = v->cols;
  const float *src = j->params + v->offset;
  for (int h = 0; h < heads; h++)
    for (int i = 0; i < half; i++)
      for (int s = 0; s < 2; s++)
        memcpy(w + ((size_t)h * hd + 2 * i + s) * D, src + ((size_t)h * hd + s * half + i) * D, sizeof(float) * D);
  return put(j, gguf_name, kd_name, w, e);
}

static int gpt_tensors(job *j, const kd_gpt_cfg *c, kd_err *e) {
  char g[64], k[96];
  static const char *const map[][2] = {{"attn_norm", "ln_1"},          {"attn_qkv", "attn/c_attn"},
                                       {"attn_output", "attn/c_proj"}, {"ffn_norm", "ln_2"},
                                       {"ffn_up", "mlp/c_fc"},         {"ffn_down", "mlp/c_proj"}};
  if (put(j, "token_embd.weight", "transformer/wte/weight", NULL, e) ||
      put(j, "position_embd.weight", "transformer/wpe/weight", NULL, e))
    return e->code;
  for (int l = 0; l < c->layers; l++)
    for (size_t t = 0; t < sizeof map / sizeof map[0]; t++)
      for (int b = 0; b < 2; b++) {
        snprintf(g, sizeof g, "blk.%d.%s.%s", l, map[t][0], b ? "bias" : "weight");
        snprintf(k, sizeof k, "transformer/h/%d/%s/%s", l, map[t][1], b ? "bias" : "weight");
        if (put(j, g, k, NULL, e)) return e->code;
      }
  /* the head is tied to token_embd: llama.cpp's gpt2 takes token_embd when "output" is absent */
  if (put(j, "output_norm.weight", "transformer/ln_f/weight", NULL, e)) return e->code;
  return put(j, "output_norm.bias", "transformer/ln_f/bias", NULL, e);
}

static int llama_tensors(job *j, const kd_llama_cfg *c, kd_err *e) {
  char g[64], k[96];
  static const char *const map[][2] = {{"attn_norm", "input_layernorm"}, {"attn_v", "self_attn/v_proj"},
                                       {"attn_output", "self_attn/o_proj"}, {"ffn_norm", "post_attention_layernorm"},
                                       {"ffn_gate", "mlp/gate_proj"},      {"ffn_up", "mlp/up_proj"},
                                       {"ffn_down", "mlp/down_proj"}};
  if (!(j->owned = kd_calloc(2 * (size_t)c->layers, sizeof *j->owned, "rotary rows", e))) return e->code;
  if (put(j, "token_embd.weight", "model/embed_tokens/weight", NULL, e)) return e->code;
  for (int l = 0; l < c->layers; l++) {
    char q[96], kk[96];
    snprintf(q, sizeof q, "model/layers/%d/self_attn/q_proj/weight", l);
    snprintf(kk, sizeof kk, "model/layers/%d/self_attn/k_proj/weight", l);
    const int swap = j->cfg->swap_qk && c->heads == c->kv_heads; /* a wrong file, for the tests' negative control */
    snprintf(g, sizeof g, "blk.%d.attn_q.weight", l);
    if (put_rotary(j, g, swap ? kk : q, c->heads, e)) return e->code;
    snprintf(g, sizeof g, "blk.%d.attn_k.weight", l);
    if (put_rotary(j, g, swap ? q : kk, c->kv_heads, e)) return e->code;
    for (size_t t = 0; t < sizeof map / sizeof map[0]; t++) {
      snprintf(g, sizeof g, "blk.%d.%s.weight", l, map[t][0]);
      snprintf(k, sizeof k, "model/layers/%d/%s/weight", l, map[t][1]);
      if (put(j, g, k, NULL, e)) return e->code;
    }
  }
  if (put(j, "output_norm.weight", "model/norm/weight", NULL, e)) return e->code;
  /* tied: llama.cpp's llama takes token_embd when "output" is absent */
  return c->tie ? KD_OK : put(j, "output.weight", "lm_head/weight", NULL, e);
}

/* ---- the tokenizer ---- */

static char *mapped(const uint8_t *p, size_t n, char bc[256][3], const int *bl, size_t *len, kd_err *e) {
  char *s = kd_malloc(2 * n + 1, "token string", e);
  if (!s) return NULL;
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    memcpy(s + k, bc[p[i]], (size_t)bl[p[i]]);
    k += (size_t)bl[p[i]];
  }
  s[k] = 0;
  *len = k;
  return s;
}

/* A prompt-completion vocabulary's target ids: their symbols may spell a source symbol ("a" as a letter and as a
 * phone), and llama.cpp needs one id per string, so a target symbol is written between slashes, "/a/". Source
 * symbols are single characters and the specials "<...>", so no two strings meet. */
static int symbol_target(const kd_tokenizer *t, int id) {
  return strcmp(t->kind, "symbols") == 0 && t->target_id0 >= 0 && id >= t->target_id0;
}

static char *target_string(const kd_tokenizer *t, int id, char bc[256][3], const int *bl, size_t *len, kd_err *e) {
  const size_t n = (size_t)(t->offsets[id + 1] - t->offsets[id]);
  uint8_t *p = kd_malloc(n + 2, "token string", e);
  if (!p) return NULL;
  p[0] = '/';
  memcpy(p + 1, t->bytes + t->offsets[id], n);
  p[n + 1] = '/';
  char *s = mapped(p, n + 2, bc, bl, len, e);
  free(p);
  return s;
}

/* One string per row of token_embd (V of the model): the tokenizer's, then "[PAD<id>]" for a vocabulary padded
 * beyond it (as llama.cpp's converter pads Hugging Face's), of type unused. */
static int tokenizer_strings(job *j, const kd_tokenizer *t, kd_err *e) {
  char bc[256][3];
  int bl[256];
  kd_hftok_byte_chars(bc, bl);
  const int V = j->m->out_dim;
  j->n_tok = V;
  j->tok = kd_calloc((size_t)V, sizeof *j->tok, "tokens", e);
  j->tok_len = kd_calloc((size_t)V, sizeof *j->tok_len, "tokens", e);
  j->tok_type = kd_calloc((size_t)V, sizeof *j->tok_type, "tokens", e);
  for (int i = 0; !e->code && i < V; i++) {
    if (i >= t->vocab) {
      char pad[32];
      j->tok_len[i] = (size_t)snprintf(pad, sizeof pad, "[PAD%d]", i);
      j->tok_type[i] = 5; /* unused */
      if ((j->tok[i] = kd_malloc(j->tok_len[i] + 1, "token string", e))) memcpy(j->tok[i], pad, j->tok_len[i] + 1);
      continue;
    }
    const int kind = t->token_kind ? t->token_kind[i] : KD_TOKEN_TEXT;
    const uint8_t *p = t->bytes + t->offsets[i];
    const size_t n = (size_t)(t->offsets[i + 1] - t->offsets[i]);
    if (kind == KD_TOKEN_UNUSED) { /* an id no token of a Hugging Face vocabulary spells */
      char pad[32];
      j->tok_len[i] = (size_t)snprintf(pad, sizeof pad, "[PAD%d]", i);
      j->tok_type[i] = 5;
      if ((j->tok[i] = kd_malloc(j->tok_len[i] + 1, "token string", e))) memcpy(j->tok[i], pad, j->tok_len[i] + 1);
      continue;
    }
    if (kind != KD_TOKEN_TEXT) { /* added tokens keep their text, as llama.cpp's converter writes them */
      j->tok_len[i] = n;
      if ((j->tok[i] = kd_malloc(n + 1, "token string", e))) {
        memcpy(j->tok[i], p, n);
        j->tok[i][n] = 0;
      }
      j->tok_type[i] = kind == KD_TOKEN_SPECIAL ? 3 : 4; /* control, user-defined */
      continue;
    }
    j->tok[i] = symbol_target(t, i) ? target_string(t, i, bc, bl, &j->tok_len[i], e) : mapped(p, n, bc, bl, &j->tok_len[i], e);
    /* 1 normal, 3 control: the special symbols of prompt-completion rows */
    j->tok_type[i] = i == t->pad_id || i == t->sep_id || i == t->end_id || i == t->unk_id ? 3 : 1;
  }
  j->n_merge = t->n_merges;
  j->merge = kd_calloc((size_t)(t->n_merges ? t->n_merges : 1), sizeof *j->merge, "merges", e);
  j->merge_len = kd_calloc((size_t)(t->n_merges ? t->n_merges : 1), sizeof *j->merge_len, "merges", e);
  for (int i = 0; !e->code && i < t->n_merges; i++) { /* "LEFT RIGHT", each as its token string */
    const int a = t->merges[2 * i], b = t->merges[2 * i + 1];
    j->merge_len[i] = j->tok_len[a] + 1 + j->tok_len[b];
    if (!(j->merge[i] = kd_malloc(j->merge_len[i] + 1, "merge", e))) break;
    memcpy(j->merge[i], j->tok[a], j->tok_len[a]); /* lengths, not C strings: a token's text may hold a NUL */
    j->merge[i][j->tok_len[a]] = ' ';
    memcpy(j->merge[i] + j->tok_len[a] + 1, j->tok[b], j->tok_len[b]);
    j->merge[i][j->merge_len[i]] = 0;
  }
  return e->code;
}

/* llama.cpp keeps one id per string (it aborts on a vocabulary with two equal strings), so the export
 * refuses such a vocabulary with the two ids; kd's own vocabularies have none (tested), a record written
 * elsewhere might. Sorted by (length, bytes), equal strings are neighbours. */
typedef struct tok_ref {
  const char *s;
  size_t len;
  int id;
} tok_ref;

static int tok_ref_cmp(const void *x, const void *y) {
  const tok_ref *a = x, *b = y;
  if (a->len != b->len) return a->len < b->len ? -1 : 1;
  const int c = memcmp(a->s, b->s, a->len);
  return c ? c : (a->id > b->id) - (a->id < b->id);
}

static int unique_strings(const job *j, kd_err *e) {
  tok_ref *r = kd_malloc(sizeof *r * (size_t)j->n_tok, "token index", e);
  if (!r) return e->code;
  for (int i = 0; i < j->n_tok; i++) r[i] = (tok_ref){j->tok[i], j->tok_len[i], i};
  qsort(r, (size_t)j->n_tok, sizeof *r, tok_ref_cmp);
  for (int i = 1; i < j->n_tok && !e->code; i++)
    if (r[i].len == r[i - 1].len && memcmp(r[i].s, r[i - 1].s, r[i].len) == 0)
      kd_fail(e, KD_ERR_RUNTIME, "%s: ids %d and %d of /tokenizer both spell \"%.*s\" (GGUF's byte-level form); llama.cpp "
              "needs one id per string", j->r->ckpt, r[i - 1].id, r[i].id, (int)(r[i].len < 64 ? r[i].len : 64), r[i].s);
  free(r);
  return e->code;
}

/* bos and eos: kd's byte and BPE vocabularies have no end token, and every id is text. The file declares the
 * byte 0xFF (id 255), which never occurs in UTF-8, and asks llama.cpp to add neither. Prompt-completion
 * vocabularies declare their end token. */
/* The id of the text token of the single byte 0xFF (255 in kd's own vocabularies), or -1. */
static int byte_ff(const kd_tokenizer *t) {
  for (int i = 0; i < t->vocab; i++)
    if (t->offsets[i + 1] - t->offsets[i] == 1 && t->bytes[t->offsets[i]] == 0xff &&
        (!t->token_kind || t->token_kind[i] == KD_TOKEN_TEXT))
      return i;
  return -1;
}

/* llama.cpp's name of the record's pre-tokenizer: GPT-2's pattern, and the two Hugging Face patterns it knows
 * under their models' names (Llama 3's "llama-bpe", Qwen2's "qwen2"; llama.cpp applies ignore_merges with the
 * first as Hugging Face does); NULL for any other. */
static const char *gguf_pre(const kd_tokenizer *t) {
  static const char *const known[][2] = {
    {"llama-bpe", "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
                  "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
    {"qwen2", "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
              "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}};
  if (strcmp(t->kind, "bpe") != 0 || strcmp(t->pre, KD_BPE_PRE_GPT2) == 0 || strcmp(t->pre, KD_BPE_PRE_KD1) == 0)
    return "gpt-2";
  if (!t->pattern) return NULL;
  if (strcmp(t->pattern, kd_bpe_gpt2_pattern()) == 0 && !t->ignore_merges) return "gpt-2";
  /* llama.cpp applies ignore_merges with llama-bpe only: a record must agree with the name's setting */
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
    if (strcmp(t->pattern, known[i][1]) == 0 && t->ignore_merges == (strcmp(known[i][0], "llama-bpe") == 0))
      return known[i][0];
  return NULL;
}

static int end_token(const job *j, const kd_tokenizer *t, uint32_t *eos, kd_err *e) {
  const int symbols = strcmp(t->kind, "symbols") == 0;
  if (t->end_id >= 0) *eos = (uint32_t)t->end_id;
  else if (!symbols && byte_ff(t) >= 0) *eos = (uint32_t)byte_ff(t);
  else if (t->pad_id >= 0) *eos = (uint32_t)t->pad_id;
  else
    return kd_fail(e, KD_ERR_RUNTIME, "%s: /tokenizer (%s, %d ids) has no end_id, and GGUF declares an end token: "
                   "add end_id to the record", j->r->ckpt, t->kind, t->vocab);
  return KD_OK;
}

static int tokenizer_meta(job *j, const kd_tokenizer *t, kd_err *e) {
  const int symbols = strcmp(t->kind, "symbols") == 0, bpe = strcmp(t->kind, "bpe") == 0;
  uint32_t eos = 0;
  if (end_token(j, t, &eos, e)) return e->code;
  const char *pre = gguf_pre(t);
  if (!pre)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: the tokenizer's split pattern and ignore_merges (%d) are none that llama.cpp "
                   "knows by name (GPT-2's, Llama 3's llama-bpe with ignore_merges, Qwen2's qwen2): llama.cpp would "
                   "tokenize text otherwise than kd", j->r->ckpt, t->ignore_merges);
  if (kd_gguf_str(j->g, "tokenizer.ggml.model", "gpt2", e) || kd_gguf_str(j->g, "tokenizer.ggml.pre", pre, e) ||
      kd_gguf_str_array(j->g, "tokenizer.ggml.tokens", (const char *const *)j->tok, j->tok_len, (size_t)j->n_tok, e) ||
      kd_gguf_i32_array(j->g, "tokenizer.ggml.token_type", j->tok_type, (size_t)j->n_tok, e) ||
      kd_gguf_str_array(j->g, "tokenizer.ggml.merges", (const char *const *)j->merge, j->merge_len, (size_t)j->n_merge,
                        e) ||
      kd_gguf_u32(j->g, "tokenizer.ggml.bos_token_id", eos, e) || kd_gguf_u32(j->g, "tokenizer.ggml.eos_token_id", eos, e) ||
      kd_gguf_bool(j->g, "tokenizer.ggml.add_bos_token", 0, e) || kd_gguf_bool(j->g, "tokenizer.ggml.add_eos_token", 0, e))
    return e->code;
  if (t->pad_id >= 0 && kd_gguf_u32(j->g, "tokenizer.ggml.padding_token_id", (uint32_t)t->pad_id, e))
    return e->code;
  const int kd1 = bpe && strcmp(t->pre, KD_BPE_PRE_KD1) == 0;
  if (bpe && strcmp(t->pre, KD_BPE_PRE_REGEX) == 0)
    snprintf(j->r->tokenizer, sizeof j->r->tokenizer, "Hugging Face byte-level BPE, llama.cpp pre-tokenizer %s%s", pre,
             t->normalizer[0] ? " (its NFC normalizer is not in GGUF: llama.cpp reads text as it is)" : "");
  else
    snprintf(j->r->tokenizer, sizeof j->r->tokenizer, "%s",
             symbols ? "symbols, for id-level use (llama.cpp cannot split text into them)"
             : bpe && !kd1 ? "byte-level BPE, GPT-2 pre-tokenizer"
             : bpe ? "byte-level BPE of kd1 pre-splitting"
                   : "bytes");
  if (kd1)
    snprintf(j->r->warning, sizeof j->r->warning, "%s: its BPE record cuts text into words as kd did before GGUF "
             "export (pre_tokenizer kd1); llama.cpp cuts it by GPT-2's pattern, so text may become other ids than the "
             "student was trained on: re-import the text (kd import text writes gpt2 records) and train again",
             j->r->ckpt);
  return unique_strings(j, e);
}

/* ---- the model's metadata ---- */

static int arch_meta(job *j, kd_err *e) {
  const kd_model *m = j->m;
  char name[320];
  snprintf(name, sizeof name, "kd %s:%s", m->family, m->spec);
  const int f16 = strcmp(j->cfg->dtype, "f16") == 0;
  if (strcmp(m->family, "gpt") == 0) {
    kd_gpt_cfg c;
    if (kd_gpt_parse_spec(&c, m->spec, e)) return e->code;
    snprintf(j->r->arch, sizeof j->r->arch, "gpt2");
    if (kd_gguf_str(j->g, "general.architecture", "gpt2", e) || kd_gguf_str(j->g, "general.name", name, e) ||
        kd_gguf_u32(j->g, "general.file_type", f16 ? 1 : 0, e) || kd_gguf_u32(j->g, "gpt2.context_length", c.ctx, e) ||
        kd_gguf_u32(j->g, "gpt2.embedding_length", c.dim, e) || kd_gguf_u32(j->g, "gpt2.feed_forward_length", 4 * c.dim, e) ||
        kd_gguf_u32(j->g, "gpt2.block_count", c.layers, e) || kd_gguf_u32(j->g, "gpt2.attention.head_count", c.heads, e) ||
        kd_gguf_u32(j->g, "gpt2.attention.head_count_kv", c.heads, e) ||
        kd_gguf_f32(j->g, "gpt2.attention.layer_norm_epsilon", 1e-5f, e))
      return e->code;
    return KD_OK;
  }
  kd_llama_cfg c;
  if (kd_llama_parse_spec(&c, m->spec, e)) return e->code;
  snprintf(j->r->arch, sizeof j->r->arch, "llama");
  if (kd_gguf_str(j->g, "general.architecture", "llama", e) || kd_gguf_str(j->g, "general.name", name, e) ||
      kd_gguf_u32(j->g, "general.file_type", f16 ? 1 : 0, e) || kd_gguf_u32(j->g, "llama.vocab_size", c.vocab, e) ||
      kd_gguf_u32(j->g, "llama.context_length", c.ctx, e) || kd_gguf_u32(j->g, "llama.embedding_length", c.dim, e) ||
      kd_gguf_u32(j->g, "llama.feed_forward_length", c.ffn, e) || kd_gguf_u32(j->g, "llama.block_count", c.layers, e) ||
      kd_gguf_u32(j->g, "llama.attention.head_count", c.heads, e) ||
      kd_gguf_u32(j->g, "llama.attention.head_count_kv", c.kv_heads, e) ||
      kd_gguf_u32(j->g, "llama.rope.dimension_count", c.dim / c.heads, e) ||
      kd_gguf_f32(j->g, "llama.rope.freq_base", (float)c.rope_theta, e) ||
      kd_gguf_f32(j->g, "llama.attention.layer_norm_rms_epsilon", (float)c.norm_eps, e))
    return e->code;
  return KD_OK;
}

static void job_free(job *j) {
  for (int i = 0; i < j->n_owned; i++) free(j->owned[i]);
  for (int i = 0; j->tok && i < j->n_tok; i++) free(j->tok[i]);
  for (int i = 0; j->merge && i < j->n_merge; i++) free(j->merge[i]);
  free(j->owned), free(j->tok), free(j->tok_len), free(j->tok_type), free(j->merge), free(j->merge_len);
  kd_gguf_free(j->g);
  kd_model_free(j->m);
  free(j->params);
}

int kd_export_gguf(const kd_export_cfg *cfg, kd_export_report *r, kd_err *e) {
  if (strcmp(cfg->dtype, "f32") != 0 && strcmp(cfg->dtype, "f16") != 0)
    return kd_fail(e, KD_ERR_USAGE, "kd export --format gguf: --dtype %s: GGUF files are written as f32 or f16",
                   cfg->dtype);
  job j;
  memset(&j, 0, sizeof j);
  j.cfg = cfg;
  j.r = r;
  kd_tokenizer t;
  memset(&t, 0, sizeof t);
  int have = 0;
  int rc = kd_ckpt_resolve(cfg->ckpt, 0, r->ckpt, sizeof r->ckpt, NULL, 0, e);
  if (!rc) rc = kd_model_load(&j.m, &j.params, r->ckpt, 1, e);
  if (!rc && strcmp(j.m->family, "gpt") != 0 && strcmp(j.m->family, "llama") != 0)
    rc = kd_fail(e, KD_ERR_USAGE, "kd export --format gguf: %s is a %s student; GGUF holds language models (gpt, llama)",
                 r->ckpt, j.m->family);
  if (!rc) rc = kd_tokenizer_read(&t, r->ckpt, &have, e);
  if (!rc && (!have || t.vocab == 0))
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: no /tokenizer record: a GGUF file carries its tokenizer (kd import text writes "
                 "the record into the data, and training copies it into checkpoints)", r->ckpt);
  if (!rc && t.vocab > j.m->out_dim)
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: /tokenizer has %d ids but the student's vocabulary is %d", r->ckpt, t.vocab,
                 j.m->out_dim);
  if (!rc) rc = kd_gguf_new(&j.g, e);
  if (!rc) rc = arch_meta(&j, e);
  if (!rc) rc = tokenizer_strings(&j, &t, e) || tokenizer_meta(&j, &t, e);
  if (!rc && strcmp(r->arch, "gpt2") == 0) {
    kd_gpt_cfg c;
    rc = kd_gpt_parse_spec(&c, j.m->spec, e) || gpt_tensors(&j, &c, e);
  } else if (!rc) {
    kd_llama_cfg c;
    rc = kd_llama_parse_spec(&c, j.m->spec, e) || llama_tensors(&j, &c, e);
  }
  if (!rc) rc = kd_gguf_write(j.g, cfg->out, e);
  kd_tokenizer_free(&t);
  job_free(&j);
  return rc ? e->code : KD_OK;
}
