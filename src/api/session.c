/* libkd's sessions (include/kd/libkd.h): a student, its tokenizer and normalisation behind one handle. */
#define _POSIX_C_SOURCE 200809L
#include "api/session.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ckpt/weights.h"
#include "data/tokenizer.h"
#include "infer/generate.h"
#include "infer/seqdecode.h"
#include "nn/gemm.h"
#include "interop/import_st.h"
#include "kd/ckpt.h"
#include "kd/infer.h"
#include "models/fit.h"

_Static_assert(KD_OK == 0 && KD_ERR_RUNTIME == 1 && KD_ERR_USAGE == 2, "libkd.h's codes are kd's");

struct kd_session {
  kd_model *m;
  float *params;
  kd_tokenizer tok;
  int has_tok;
  kd_preprocess pre;
  int emit_ids;            /* ids a decoder may emit (kd_fit_emit_ids) */
  kd_session_info info;
  kd_batch batch;          /* one max_batch of rows, made on the first logits call */
  int batch_kind;          /* -1: none yet */
};

/* Debian's parallel HDF5 is not thread-safe: every HDF5 read of libkd's calls happens under this lock. */
static pthread_mutex_t h5_lock = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local char last_error[1024];

static int failed(const kd_err *e) {
  snprintf(last_error, sizeof last_error, "%s", e->msg);
  return e->code;
}

static int usage(const char *fmt, const char *what) {
  snprintf(last_error, sizeof last_error, fmt, what);
  return KD_ERR_USAGE;
}

const char *kd_version(void) { return KD_VERSION; }
const char *kd_last_error(void) { return last_error; }

kd_session_params kd_session_default_params(void) { return (kd_session_params){0, 0}; }

kd_gen_params kd_gen_default_params(void) { return (kd_gen_params){KD_GEN_SAMPLE, 200, 1.0, 0, 1, 4, 1.0}; }

/* ---- opening ---- */

static int is_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int ends_with(const char *s, const char *tail) {
  const size_t n = strlen(s), k = strlen(tail);
  return n >= k && strcmp(s + n - k, tail) == 0;
}

/* A Hugging Face export: DIR with config.json and model.safetensors (or its shard index), or the weights file
 * itself beside config.json. *hf 0 for anything else. */
static int hf_paths(const char *path, char *in, char *config, size_t n, int *hf) {
  *hf = 0;
  char dir[KD_PATH_MAX];
  if (is_dir(path)) {
    snprintf(dir, sizeof dir, "%s", path);
    if (snprintf(in, n, "%s/model.safetensors", dir) >= (int)n) return -1;
    if (!is_file(in) && snprintf(in, n, "%s/model.safetensors.index.json", dir) >= (int)n) return -1;
  } else if (ends_with(path, ".safetensors") || ends_with(path, ".safetensors.index.json")) {
    const char *slash = strrchr(path, '/');
    if (slash == path) snprintf(dir, sizeof dir, "/");
    else snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
    if (snprintf(in, n, "%s", path) >= (int)n) return -1;
  } else {
    return 0;
  }
  if (snprintf(config, n, "%s/config.json", dir) >= (int)n) return -1;
  *hf = is_file(in) && is_file(config);
  return 0;
}

/* A kd checkpoint or weights file: the student, its tokenizer record and normalisation. */
static int open_kd(kd_session *s, const char *path, int max_batch, kd_err *e) {
  char file[KD_PATH_MAX + 64];
  int present = 0;
  if (kd_ckpt_resolve(path, 0, file, sizeof file, NULL, 0, e) || kd_model_load(&s->m, &s->params, file, max_batch, e) ||
      kd_tokenizer_read(&s->tok, file, &present, e) || kd_ckpt_read_preprocess(file, &s->pre, e))
    return e->code;
  s->has_tok = present && s->tok.vocab > 0;
  snprintf(s->info.path, sizeof s->info.path, "%s", file);
  return KD_OK;
}

static int open_hf(kd_session *s, const char *in, const char *config, int max_batch, kd_err *e) {
  if (kd_hf_model_load(&s->m, &s->params, &s->tok, &s->has_tok, in, config, max_batch, e)) return e->code;
  snprintf(s->info.path, sizeof s->info.path, "%s", in);
  return KD_OK;
}

static int check_session(kd_session *s, kd_err *e) {
  const kd_model *m = s->m;
  if (s->has_tok && s->tok.vocab > m->out_dim)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: /tokenizer has %d ids but the student's vocabulary is %d", s->info.path,
                   s->tok.vocab, m->out_dim);
  if (s->pre.kind != KD_NORM_NONE && s->pre.dim != m->in_dim)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: /preprocess has %d features but the student reads %d", s->info.path,
                   s->pre.dim, m->in_dim);
  kd_session_info *i = &s->info;
  snprintf(i->family, sizeof i->family, "%s", m->family);
  snprintf(i->spec, sizeof i->spec, "%s", m->spec);
  i->tokens = m->input == KD_INPUT_TOKENS;
  i->in_dim = i->tokens ? 0 : m->in_dim;
  i->vocab = m->out_dim;
  i->ctx = m->ctx;
  i->tokenizer = s->has_tok;
  i->end_id = s->has_tok ? s->tok.end_id : -1;
  s->emit_ids = s->has_tok ? kd_fit_emit_ids(m, &s->tok) : 0;
  return KD_OK;
}

void kd_session_close(kd_session *s) {
  if (!s) return;
  kd_batch_free(&s->batch);
  kd_model_free(s->m);
  free(s->params);
  kd_tokenizer_free(&s->tok);
  kd_preprocess_free(&s->pre);
  free(s);
}

int kd_session_open(kd_session **out, const char *path, const kd_session_params *params) {
  kd_err e;
  kd_err_clear(&e);
  if (!out) return usage("kd_session_open: %s", "the session pointer is NULL");
  *out = NULL;
  if (!path || !path[0]) return usage("kd_session_open: %s", "no path given");
  const kd_session_params p = params ? *params : kd_session_default_params();
  if (p.max_batch < 0 || p.threads < 0) return usage("kd_session_open: %s", "max_batch and threads must be >= 0");
  kd_session *s = kd_calloc(1, sizeof *s, "session", &e);
  if (!s) return failed(&e);
  s->batch_kind = -1;
  if (p.threads > 0) kd_blas_set_threads(p.threads);
  char in[KD_PATH_MAX], config[KD_PATH_MAX];
  int hf = 0;
  if (hf_paths(path, in, config, sizeof in, &hf)) kd_fail(&e, KD_ERR_USAGE, "kd_session_open: %s: the path is too long", path);
  pthread_mutex_lock(&h5_lock);
  if (!e.code) hf ? open_hf(s, in, config, p.max_batch, &e) : open_kd(s, path, p.max_batch, &e);
  pthread_mutex_unlock(&h5_lock);
  if (!e.code) check_session(s, &e);
  if (e.code) {
    kd_session_close(s);
    return failed(&e);
  }
  *out = s;
  return KD_OK;
}

int kd_session_info_get(const kd_session *s, kd_session_info *info) {
  if (!s || !info) return usage("kd_session_info_get: %s", "NULL argument");
  *info = s->info;
  return KD_OK;
}

/* ---- logits ---- */

/* The session's batch of max_batch rows for inputs of this kind and width. */
static int batch_for(kd_session *s, kd_input kind, int width, kd_err *e) {
  if (s->batch_kind == (int)kind && s->batch.alloc_width == width) return KD_OK;
  kd_batch_free(&s->batch);
  s->batch_kind = -1;
  if (kd_batch_init(&s->batch, kind, s->m->max_batch, width, e)) return e->code;
  s->batch_kind = (int)kind;
  return KD_OK;
}

int kd_session_logits_tokens(kd_session *s, float *logits, const int32_t *tokens, int rows, int T) {
  kd_err e;
  kd_err_clear(&e);
  if (!s || !logits || !tokens || rows < 0) return usage("kd_session_logits_tokens: %s", "NULL argument or rows < 0");
  if (!s->info.tokens)
    return usage("kd_session_logits_tokens: the student is %s, which reads feature rows (kd_session_logits_features)",
                 s->info.family);
  if (T < 1 || T > s->m->ctx) {
    kd_fail(&e, KD_ERR_USAGE, "kd_session_logits_tokens: rows of %d positions; the student reads 1 to %d", T, s->m->ctx);
    return failed(&e);
  }
  const int V = s->m->out_dim;
  for (int64_t i = 0; i < (int64_t)rows * T; i++)
    if (tokens[i] < 0 || tokens[i] >= V) {
      kd_fail(&e, KD_ERR_USAGE, "kd_session_logits_tokens: row %lld position %lld holds %d, outside the vocabulary "
              "[0, %d)", (long long)(i / T), (long long)(i % T), (int)tokens[i], V);
      return failed(&e);
    }
  if (batch_for(s, KD_INPUT_TOKENS, T, &e)) return failed(&e);
  kd_batch *b = &s->batch;
  const kd_fwd f = {0, 0};
  for (int r0 = 0; r0 < rows; r0 += s->m->max_batch) {
    const int B = rows - r0 < s->m->max_batch ? rows - r0 : s->m->max_batch;
    b->rows = B;
    b->width = T;
    memcpy(b->tokens, tokens + (size_t)r0 * T, sizeof(int32_t) * (size_t)B * T);
    for (int r = 0; r < B; r++) {
      for (int t = 0; t < T; t++) b->mask[(size_t)r * T + t] = t > 0;
      b->y[r] = 0;
      b->row_ids[r] = r0 + r;
    }
    if (kd_model_forward(s->m, logits + (size_t)r0 * T * V, b, &f, &e)) return failed(&e);
  }
  return KD_OK;
}

int kd_session_logits_features(kd_session *s, float *logits, const float *x, int rows) {
  kd_err e;
  kd_err_clear(&e);
  if (!s || !logits || !x || rows < 0) return usage("kd_session_logits_features: %s", "NULL argument or rows < 0");
  if (s->info.tokens)
    return usage("kd_session_logits_features: the student is %s, which reads token rows (kd_session_logits_tokens)",
                 s->info.family);
  const int D = s->m->in_dim, C = s->m->out_dim;
  if (batch_for(s, KD_INPUT_FEATURES, D, &e)) return failed(&e);
  kd_batch *b = &s->batch;
  const kd_fwd f = {0, 0};
  for (int r0 = 0; r0 < rows; r0 += s->m->max_batch) {
    const int B = rows - r0 < s->m->max_batch ? rows - r0 : s->m->max_batch;
    b->rows = B;
    b->width = D;
    for (int r = 0; r < B; r++) {
      const float *src = x + (size_t)(r0 + r) * D;
      float *dst = b->x + (size_t)r * D;
      for (int d = 0; d < D; d++)
        dst[d] = s->pre.kind == KD_NORM_NONE ? src[d] : (src[d] - s->pre.offset[d]) / s->pre.scale[d];
      b->y[r] = -1;
      b->row_ids[r] = r0 + r;
    }
    if (kd_model_forward(s->m, logits + (size_t)r0 * C, b, &f, &e)) return failed(&e);
  }
  return KD_OK;
}

/* ---- the tokenizer ---- */

static int need_tokenizer(const kd_session *s, const char *call, kd_err *e) {
  if (s->has_tok) return KD_OK;
  return kd_fail(e, KD_ERR_USAGE, "%s: %s has no tokenizer record (kd import text writes one into the data, and "
                 "training copies it into checkpoints)", call, s->info.path);
}

int kd_session_encode_prompt(kd_session *s, int32_t *ids, int cap, int *n, const char *text, size_t len, kd_err *e) {
  *n = 0;
  if (need_tokenizer(s, "kd_session_encode", e)) return e->code;
  const int symbols = strcmp(s->tok.kind, "symbols") == 0 && s->tok.sep_id >= 0;
  if (kd_tokenizer_encode(&s->tok, (const uint8_t *)text, len, ids, symbols ? cap - 1 : cap, n, e)) return e->code;
  /* a prompt-completion student: the prompt is a source, and its separator starts the target */
  if (symbols) ids[(*n)++] = s->tok.sep_id;
  return KD_OK;
}

int kd_session_encode(kd_session *s, int32_t *ids, int cap, int *n, const char *text, size_t len) {
  kd_err e;
  kd_err_clear(&e);
  if (!s || !ids || !n || (!text && len)) return usage("kd_session_encode: %s", "NULL argument");
  *n = 0;
  if (need_tokenizer(s, "kd_session_encode", &e) ||
      kd_tokenizer_encode(&s->tok, (const uint8_t *)text, len, ids, cap, n, &e))
    return failed(&e);
  return KD_OK;
}

int kd_session_decode(kd_session *s, char *text, size_t cap, size_t *len, const int32_t *ids, int n) {
  kd_err e;
  kd_err_clear(&e);
  if (!s || !len || (!text && cap) || (!ids && n)) return usage("kd_session_decode: %s", "NULL argument");
  *len = 0;
  if (need_tokenizer(s, "kd_session_decode", &e)) return failed(&e);
  *len = kd_tokenizer_decode(&s->tok, ids, n, (uint8_t *)text, cap);
  return KD_OK;
}

/* ---- generation ---- */

int kd_gen_mode_parse(kd_gen_params *p, const char *spec, kd_err *e) {
  if (strcmp(spec, "greedy") == 0) p->mode = KD_GEN_GREEDY;
  else if (strcmp(spec, "sample") == 0) p->mode = KD_GEN_SAMPLE;
  else {
    kd_seq_cfg c;
    memset(&c, 0, sizeof c);
    if (kd_decode_parse(spec, &c, e)) return e->code;
    p->mode = KD_GEN_BEAM;
    p->beam = c.beam;
  }
  return KD_OK;
}

static int check_gen(const kd_session *s, const int32_t *prompt, int n_prompt, const kd_gen_params *p, kd_err *e) {
  if (!s->m->ops->decode_step)
    return kd_fail(e, KD_ERR_USAGE, "kd_session_generate: the student %s:%s cannot generate (it reads feature rows)",
                   s->info.family, s->info.spec);
  if (n_prompt < 1) return kd_fail(e, KD_ERR_USAGE, "kd_session_generate: the prompt needs at least one token");
  if (p->max_new < 0) return kd_fail(e, KD_ERR_USAGE, "kd_session_generate: max_new %d is negative", p->max_new);
  if (p->mode == KD_GEN_SAMPLE && !(p->temperature > 0))
    return kd_fail(e, KD_ERR_USAGE, "kd_session_generate: temperature %g must be > 0", p->temperature);
  if (p->mode == KD_GEN_BEAM && (p->beam < 1 || p->beam > 1024 || !(p->length_penalty >= 0)))
    return kd_fail(e, KD_ERR_USAGE, "kd_session_generate: beam %d (1 to 1024) or length_penalty %g (>= 0)", p->beam,
                   p->length_penalty);
  if (p->mode == KD_GEN_BEAM && n_prompt > s->m->ctx)
    return kd_fail(e, KD_ERR_USAGE, "kd_session_generate: a prompt of %d tokens is longer than the context, %d, which "
                   "beam search keeps to", n_prompt, s->m->ctx);
  for (int i = 0; i < n_prompt; i++)
    if (prompt[i] < 0 || prompt[i] >= s->m->out_dim)
      return kd_fail(e, KD_ERR_USAGE, "kd_session_generate: prompt token %d is %d, outside the vocabulary [0, %d)", i,
                     (int)prompt[i], s->m->out_dim);
  return KD_OK;
}

/* Beam search over the one prompt row: the best hypothesis, at most max_new tokens and within the context. */
static int generate_beam(kd_session *s, int32_t *out, int cap, int *n_out, const int32_t *prompt, int n_prompt,
                         const kd_gen_params *p, kd_err *e) {
  const int room = s->m->ctx - n_prompt + 1, max_len = p->max_new < room ? p->max_new : room;
  *n_out = 0;
  if (max_len < 1) return KD_OK;
  kd_seq_cfg c;
  memset(&c, 0, sizeof c);
  c.mode = KD_DECODE_BEAM;
  c.beam = p->beam;
  c.nbest = 1;
  c.length_penalty = p->length_penalty;
  c.end_id = s->has_tok ? s->tok.end_id : -1;
  c.n_ids = s->emit_ids;
  kd_hyps h;
  const int64_t row = 0;
  if (kd_hyps_init(&h, 1, 1, max_len, e)) return e->code;
  if (!kd_decode_rows(s->m, prompt, n_prompt, &n_prompt, &max_len, 1, &row, &c, &h, e)) {
    const int n = h.len[0] < cap ? h.len[0] : cap;
    memcpy(out, h.tokens, sizeof(int32_t) * (size_t)n);
    *n_out = n;
  }
  kd_hyps_free(&h);
  return e->code;
}

int kd_session_generate_ex(kd_session *s, int32_t *out, int cap, int *n_out, float *margins, const int32_t *prompt,
                           int n_prompt, const kd_gen_params *params, kd_err *e) {
  *n_out = 0;
  const kd_gen_params p = params ? *params : kd_gen_default_params();
  if (check_gen(s, prompt, n_prompt, &p, e)) return e->code;
  const int max_new = p.max_new < cap ? p.max_new : cap;
  if (p.mode == KD_GEN_BEAM) return generate_beam(s, out, cap, n_out, prompt, n_prompt, &p, e);
  int32_t *ids = kd_malloc(sizeof(int32_t) * ((size_t)n_prompt + (size_t)max_new + 1), "tokens", e);
  if (!ids) return e->code;
  memcpy(ids, prompt, sizeof(int32_t) * (size_t)n_prompt);
  const kd_decode_cfg dc = {p.mode == KD_GEN_GREEDY, p.temperature, p.top_k, p.seed, s->emit_ids};
  int n = n_prompt;
  if (!kd_generate(s->m, ids, n_prompt, max_new, s->has_tok ? s->tok.end_id : -1, &dc, &n, margins, e)) {
    memcpy(out, ids + n_prompt, sizeof(int32_t) * (size_t)(n - n_prompt));
    *n_out = n - n_prompt;
  }
  free(ids);
  return e->code;
}

int kd_session_generate(kd_session *s, int32_t *out, int cap, int *n_out, const int32_t *prompt, int n_prompt,
                        const kd_gen_params *params) {
  kd_err e;
  kd_err_clear(&e);
  if (!s || !out || !n_out || !prompt || cap < 0) return usage("kd_session_generate: %s", "NULL argument or cap < 0");
  return kd_session_generate_ex(s, out, cap, n_out, NULL, prompt, n_prompt, params, &e) ? failed(&e) : KD_OK;
}

int kd_session_generate_text(kd_session *s, char *text, size_t cap, size_t *len, const char *prompt,
                             const kd_gen_params *params) {
  kd_err e;
  kd_err_clear(&e);
  if (!s || !len || !prompt || (!text && cap)) return usage("kd_session_generate_text: %s", "NULL argument");
  *len = 0;
  const kd_gen_params p = params ? *params : kd_gen_default_params();
  const size_t plen = strlen(prompt);
  if (plen > (size_t)1 << 28) return usage("kd_session_generate_text: %s", "a prompt longer than 256 MiB");
  /* a token holds a byte at least of the text as normalised: NFC may lengthen it (3x at most), and a
   * prompt-completion student adds its separator */
  const int cap_ids = 3 * (int)plen + 4, cap_new = p.max_new > 0 ? p.max_new : 1;
  int32_t *ids = kd_malloc(sizeof(int32_t) * (size_t)cap_ids, "prompt ids", &e);
  int32_t *out = ids ? kd_malloc(sizeof(int32_t) * (size_t)cap_new, "new ids", &e) : NULL;
  int n = 0, n_new = 0;
  if (out && !kd_session_encode_prompt(s, ids, cap_ids, &n, prompt, plen, &e) &&
      !kd_session_generate_ex(s, out, cap_new, &n_new, NULL, ids, n, &p, &e))
    *len = kd_tokenizer_decode(&s->tok, out, n_new, (uint8_t *)text, cap);
  free(ids);
  free(out);
  return e.code ? failed(&e) : KD_OK;
}
