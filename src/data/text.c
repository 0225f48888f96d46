#include "data/text.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/atomic.h"
#include "core/files.h"
#include "core/h5io.h"
#include "core/provenance.h"
#include "core/rng.h"
#include "data/align.h"
#include "data/bpe.h"
#include "data/hftok.h"
#include "data/tokenizer.h"

static const char *const split_names[3] = {"train", "valid", "test"};


/* A growing byte buffer. */
typedef struct bytes {
  uint8_t *p;
  size_t n, cap;
} bytes;

static int append(bytes *b, const void *src, size_t n, kd_err *e) {
  if (b->n + n > b->cap) {
    size_t cap = b->cap ? b->cap : 1 << 16;
    while (cap < b->n + n) cap *= 2;
    uint8_t *g = realloc(b->p, cap);
    if (!g) return kd_fail(e, KD_ERR_RUNTIME, "out of memory (%zu bytes of text)", cap);
    b->p = g;
    b->cap = cap;
  }
  memcpy(b->p + b->n, src, n);
  b->n += n;
  return KD_OK;
}

static int read_file(const char *path, bytes *out, kd_err *e) {
  FILE *f = fopen(path, "rb");
  if (!f) return kd_fail(e, KD_ERR_RUNTIME, "%s: cannot read (%s)", path, strerror(errno));
  char buf[1 << 16];
  size_t n;
  int rc = KD_OK;
  while (!rc && (n = fread(buf, 1, sizeof buf, f)) > 0) rc = append(out, buf, n, e);
  if (!rc && ferror(f)) rc = kd_fail(e, KD_ERR_RUNTIME, "%s: read failed (%s)", path, strerror(errno));
  fclose(f);
  return rc;
}

/* The split of a document, from a hash of its bytes. */
static int split_of(const uint8_t *d, size_t n, const kd_text_cfg *c) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < n; i++) h = (h ^ d[i]) * 0x100000001b3ULL;
  const double u = (double)(kd_mix64(h) >> 11) * (1.0 / 9007199254740992.0);
  return u < c->valid_frac ? 1 : u < c->valid_frac + c->test_frac ? 2 : 0;
}

/* Add document d to its split's stream (with the separator after it). */
static int add_doc(bytes streams[3], const uint8_t *d, size_t n, const kd_text_cfg *c, kd_text_stats *st, kd_err *e) {
  if (n == 0) return KD_OK;
  const int s = split_of(d, n, c);
  st->docs[s]++;
  if (append(&streams[s], d, n, e)) return e->code;
  if (c->doc_sep[0] && (append(&streams[s], c->doc_sep, strlen(c->doc_sep), e) || append(&streams[s], "\n", 1, e)))
    return e->code;
  return KD_OK;
}

/* Split a file's bytes at lines that are exactly the separator. */
static int add_file(bytes streams[3], const bytes *f, const kd_text_cfg *c, kd_text_stats *st, kd_err *e) {
  if (!c->doc_sep[0]) return add_doc(streams, f->p, f->n, c, st, e);
  const size_t sl = strlen(c->doc_sep);
  size_t start = 0, line = 0;
  while (line < f->n) {
    const uint8_t *nl = memchr(f->p + line, '\n', f->n - line);
    const size_t end = nl ? (size_t)(nl - f->p) : f->n;
    if (end - line == sl && memcmp(f->p + line, c->doc_sep, sl) == 0) {
      if (add_doc(streams, f->p + start, line - start, c, st, e)) return e->code;
      start = end + 1 < f->n ? end + 1 : f->n;
    }
    line = end + 1;
  }
  return add_doc(streams, f->p + start, (start < f->n ? f->n : start) - start, c, st, e);
}

/* Rows of T tokens at stride T - 1, the padding masked out; ids stored as file_type. */
static int write_split(hid_t f, const char *path, int s, const int32_t *ids, int64_t S, int T, hid_t file_type,
                       kd_text_stats *st, kd_err *e) {
  const int64_t rows = S > 1 ? (S - 2) / (T - 1) + 1 : 0;
  st->tokens[s] = S;
  st->rows[s] = rows;
  if (rows == 0) return KD_OK;
  int32_t *tok = kd_calloc((size_t)rows * T, sizeof(int32_t), "token rows", e);
  uint8_t *mask = kd_calloc((size_t)rows * T, 1, "token mask", e);
  int rc = e->code;
  for (int64_t r = 0; !rc && r < rows; r++)
    for (int p = 0; p < T; p++) {
      const int64_t k = r * (T - 1) + p;
      if (k >= S) break;
      tok[r * T + p] = ids[k];
      mask[r * T + p] = p > 0;
    }
  char ds[64];
  const int64_t dims[2] = {rows, T};
  snprintf(ds, sizeof ds, "/%s/tokens", split_names[s]);
  if (!rc) rc = kd_h5_write(f, path, ds, 2, dims, file_type, H5T_NATIVE_INT32, tok, e);
  snprintf(ds, sizeof ds, "/%s/mask", split_names[s]);
  if (!rc) rc = kd_h5_write(f, path, ds, 2, dims, H5T_STD_U8LE, H5T_NATIVE_UINT8, mask, e);
  free(tok);
  free(mask);
  return rc;
}

/* A split's stream as ids: its bytes, or their BPE encoding (enc). */
static int encode_stream(const bytes *stream, kd_bpe_encoder *enc, int32_t **ids, int64_t *n, kd_err *e) {
  *n = 0;
  size_t got = stream->n;
  if (enc) {
    if (kd_bpe_encoder_encode_alloc(enc, stream->p, stream->n, ids, &got, e)) return e->code;
  } else if (!(*ids = kd_malloc(sizeof(int32_t) * (stream->n + 1), "token ids", e))) {
    return e->code;
  }
  for (size_t i = 0; !enc && i < stream->n; i++) (*ids)[i] = stream->p[i];
  *n = (int64_t)got;
  return KD_OK;
}

/* The narrowest integer type that holds every id. */
static hid_t token_type(int vocab) {
  return vocab <= 256 ? H5T_STD_U8LE : vocab <= 65536 ? H5T_STD_U16LE : H5T_STD_I32LE;
}

/* One tokenization of the three streams: ids, and (with a teacher beside it) the byte where each token ends. */
typedef struct tokenized {
  int32_t *ids[3];
  int64_t n[3];
  int64_t *ends[3];
} tokenized;

static void tokenized_free(tokenized *t) {
  for (int s = 0; s < 3; s++) free(t->ids[s]), free(t->ends[s]);
  memset(t, 0, sizeof *t);
}

/* ends[k]: the byte offset in the stream where token k ends; the tokens must spell the stream's bytes exactly
 * (a normalizer that rewrites text, or an unknown-token fallback, would put the offsets off the text). */
static int token_ends(const kd_tokenizer *tk, const char *who, const char *split, const int32_t *ids, int64_t n,
                      const bytes *stream, int64_t **ends, kd_err *e) {
  *ends = kd_malloc(sizeof(int64_t) * (size_t)(n ? n : 1), "token offsets", e);
  if (!*ends) return e->code;
  int64_t at = 0;
  for (int64_t k = 0; k < n; k++) {
    const int32_t id = ids[k];
    const int64_t len = id >= 0 && id < tk->vocab ? tk->offsets[id + 1] - tk->offsets[id] : -1;
    if (len < 0 || at + len > (int64_t)stream->n || memcmp(tk->bytes + tk->offsets[id], stream->p + at, (size_t)len))
      return kd_fail(e, KD_ERR_RUNTIME, "kd import text: the %s tokenizer's token %lld (id %d) of /%s does not spell "
                     "the text's bytes at byte %lld: aligning two tokenizations needs tokenizers that give the text "
                     "back byte for byte", who, (long long)k, id, split, (long long)at);
    at += len;
    (*ends)[k] = at;
  }
  if (at != (int64_t)stream->n)
    return kd_fail(e, KD_ERR_RUNTIME, "kd import text: the %s tokenizer's tokens of /%s spell %lld of its %zu bytes",
                   who, split, (long long)at, stream->n);
  return KD_OK;
}

/* st (nullable): the encoding's time and bytes added to it. */
static int tokenize_all(tokenized *t, bytes streams[3], const kd_tokenizer *tk, kd_bpe_encoder *enc, const char *who,
                        int with_ends, kd_text_stats *st, kd_err *e) {
  for (int s = 0; s < 3; s++) {
    const double t0 = kd_seconds();
    if (encode_stream(&streams[s], enc, &t->ids[s], &t->n[s], e)) return e->code;
    if (st) st->encode_seconds += kd_seconds() - t0, st->encode_bytes += (int64_t)streams[s].n;
    if (with_ends && token_ends(tk, who, split_names[s], t->ids[s], t->n[s], &streams[s], &t->ends[s], e))
      return e->code;
  }
  return KD_OK;
}

/* Row r of a split's student rows (T tokens at stride T - 1): its tokens [k0, k1), its bytes [b0, b1). */
static void row_span(const tokenized *su, int s, int64_t r, int T, int64_t *k0, int64_t *k1, int64_t *b0, int64_t *b1) {
  *k0 = r * (T - 1);
  *k1 = *k0 + T < su->n[s] ? *k0 + T : su->n[s];
  *b0 = *k0 > 0 ? su->ends[s][*k0 - 1] : 0;
  *b1 = su->ends[s][*k1 - 1];
}

/* The teacher tokens within bytes [b0, b1): from *a (advanced to the first that starts at or after b0) up to
 * the returned count. */
static int64_t teacher_within(const tokenized *te, int s, int64_t b0, int64_t b1, int64_t *a) {
  const int64_t *end = te->ends[s], n = te->n[s];
  while (*a < n && (*a > 0 ? end[*a - 1] : 0) < b0) (*a)++;
  int64_t q = 0;
  while (*a + q < n && end[*a + q] <= b1) q++;
  return q;
}

/* Tt: the most teacher tokens a row of any split needs. */
static int teacher_width(const tokenized *su, const tokenized *te, int T) {
  int64_t most = 1;
  for (int s = 0; s < 3; s++) {
    const int64_t rows = su->n[s] > 1 ? (su->n[s] - 2) / (T - 1) + 1 : 0;
    int64_t a = 0, k0, k1, b0, b1;
    for (int64_t r = 0; r < rows; r++) {
      row_span(su, s, r, T, &k0, &k1, &b0, &b1);
      const int64_t q = teacher_within(te, s, b0, b1, &a);
      if (q > most) most = q;
    }
  }
  return (int)most;
}

/* A split's alignment datasets: /SPLIT/offsets [rows, T], /SPLIT/teacher_tokens, teacher_mask and
 * teacher_offsets [rows, Tt]. */
static int write_teacher_split(hid_t f, const char *path, int s, const tokenized *su, const tokenized *te, int T,
                               int Tt, hid_t file_type, kd_text_stats *st, kd_err *e) {
  const int64_t rows = su->n[s] > 1 ? (su->n[s] - 2) / (T - 1) + 1 : 0;
  st->teacher_tokens[s] = te->n[s];
  if (rows == 0) return KD_OK;
  int32_t *off = kd_calloc((size_t)rows * T, sizeof(int32_t), "token offsets", e);
  int32_t *ttok = kd_calloc((size_t)rows * Tt, sizeof(int32_t), "teacher rows", e);
  int32_t *toff = kd_calloc((size_t)rows * Tt, sizeof(int32_t), "teacher offsets", e);
  uint8_t *tmask = kd_calloc((size_t)rows * Tt, 1, "teacher mask", e);
  int32_t *pi = kd_malloc(sizeof(int32_t) * 2 * (size_t)T, "alignment", e), *pa = pi ? pi + T : NULL;
  int rc = e->code;
  int64_t a = 0, k0, k1, b0, b1;
  for (int64_t r = 0; !rc && r < rows; r++) {
    row_span(su, s, r, T, &k0, &k1, &b0, &b1);
    if (b1 - b0 > INT32_MAX) {
      rc = kd_fail(e, KD_ERR_RUNTIME, "kd import text: /%s row %lld spans %lld bytes: offsets are int32", split_names[s],
                   (long long)r, (long long)(b1 - b0));
      break;
    }
    int32_t *o = off + (size_t)r * T, *tt = ttok + (size_t)r * Tt, *to = toff + (size_t)r * Tt;
    for (int64_t k = k0; k < k1; k++) o[k - k0] = (int32_t)(su->ends[s][k] - b0);
    const int64_t q = teacher_within(te, s, b0, b1, &a), nq = q < Tt ? q : Tt;
    st->teacher_cut += q - nq;
    for (int64_t j = 0; j < nq; j++) {
      tt[j] = te->ids[s][a + j];
      to[j] = (int32_t)(te->ends[s][a + j] - b0);
      tmask[(size_t)r * Tt + j] = j > 0;
    }
    /* student targets k with a teacher position ending where position k - 1 ends */
    const int n = kd_align_positions(pi, pa, o, (int)(k1 - k0), to, (int)nq);
    for (int k = 0; k < n; k++) st->aligned[s] += pi[k] + 1 < k1 - k0;
  }
  const char *names[4] = {"offsets", "teacher_tokens", "teacher_mask", "teacher_offsets"};
  const void *data[4] = {off, ttok, tmask, toff};
  for (int d = 0; d < 4 && !rc; d++) {
    char ds[64];
    const int64_t dims[2] = {rows, d == 0 ? T : Tt};
    snprintf(ds, sizeof ds, "/%s/%s", split_names[s], names[d]);
    rc = kd_h5_write(f, path, ds, 2, dims, d == 1 ? file_type : d == 2 ? H5T_STD_U8LE : H5T_STD_I32LE,
                     d == 2 ? H5T_NATIVE_UINT8 : H5T_NATIVE_INT32, data[d], e);
  }
  free(off), free(ttok), free(toff), free(tmask), free(pi);
  return rc;
}

/* The teacher's side of the import (NULL: none). */
typedef struct teacher_side {
  const kd_tokenizer *tk;
  kd_bpe_encoder *enc;
} teacher_side;

static int write_splits(hid_t f, const char *path, const kd_text_cfg *c, bytes streams[3], const kd_tokenizer *tk,
                        kd_bpe_encoder *enc, const teacher_side *ts, kd_text_stats *st, kd_err *e) {
  tokenized su, te;
  memset(&su, 0, sizeof su);
  memset(&te, 0, sizeof te);
  const int T = (int)c->ctx;
  int rc = tokenize_all(&su, streams, tk, enc, "student", ts != NULL, st, e);
  if (!rc && ts) rc = tokenize_all(&te, streams, ts->tk, ts->enc, "teacher", 1, NULL, e);
  int Tt = 0;
  if (!rc && ts) {
    Tt = c->teacher_ctx > 0 ? (int)c->teacher_ctx : teacher_width(&su, &te, T);
    st->teacher_ctx = Tt;
    st->teacher_vocab = ts->tk->vocab;
  }
  for (int s = 0; s < 3 && !rc; s++) {
    rc = write_split(f, path, s, su.ids[s], su.n[s], T, token_type(tk->vocab), st, e);
    if (!rc && ts) rc = write_teacher_split(f, path, s, &su, &te, T, Tt, token_type(ts->tk->vocab), st, e);
  }
  tokenized_free(&su);
  tokenized_free(&te);
  return rc;
}

/* The teacher's record at /teacher_tokenizer: written as /tokenizer (the one writer of records), then moved. */
static int write_teacher_record(hid_t f, const char *path, const kd_tokenizer *tk, kd_err *e) {
  if (kd_tokenizer_write(f, path, tk, e)) return e->code;
  if (H5Lmove(f, "/tokenizer", f, "/teacher_tokenizer", H5P_DEFAULT, H5P_DEFAULT) < 0)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: cannot write /teacher_tokenizer", path);
  return KD_OK;
}

static int write_file(const kd_text_cfg *c, bytes streams[3], const kd_tokenizer *tk, kd_bpe_encoder *enc,
                      const teacher_side *ts, kd_text_stats *st, kd_err *e) {
  kd_atomic a;
  hid_t f = H5I_INVALID_HID;
  if (kd_atomic_begin(&a, c->out, e) || kd_h5_create(&f, a.tmp, e)) return e->code;
  int rc = write_splits(f, a.tmp, c, streams, tk, enc, ts, st, e);
  if (!rc && ts) rc = write_teacher_record(f, a.tmp, ts->tk, e);
  if (!rc) rc = kd_tokenizer_write(f, a.tmp, tk, e);
  kd_provenance p = kd_provenance_of("data");
  char gen[KD_PATH_MAX + 512];
  if (enc && tk->merge_ids)
    snprintf(gen, sizeof gen, "kd import text (tokenizer %.160s: Hugging Face byte-level BPE, %d ids, %d merges; "
             "rows of %lld at stride %lld)", c->tokenizer, tk->vocab, tk->n_merges, (long long)c->ctx,
             (long long)c->ctx - 1);
  else if (strncmp(c->tokenizer, "kd:", 3) == 0)
    snprintf(gen, sizeof gen, "kd import text (tokenizer %.160s: the %s record of that file, %d ids; rows of %lld at "
             "stride %lld)", c->tokenizer, tk->kind, tk->vocab, (long long)c->ctx, (long long)c->ctx - 1);
  else if (enc)
    snprintf(gen, sizeof gen, "kd import text (tokenizer %s: byte-level BPE, %d ids, %d merges learnt from the "
             "training split; rows of %lld at stride %lld)", c->tokenizer, tk->vocab, tk->n_merges,
             (long long)c->ctx, (long long)c->ctx - 1);
  else
    snprintf(gen, sizeof gen, "kd import text (byte tokens, rows of %lld at stride %lld)", (long long)c->ctx,
             (long long)c->ctx - 1);
  if (ts) {
    const size_t n = strlen(gen);
    snprintf(gen + n, sizeof gen - n, "; the teacher's tokenization (%.160s, %d ids) in rows of %d with byte offsets",
             c->teacher_tokenizer, ts->tk->vocab, st->teacher_ctx);
  }
  p.generator = gen;
  for (int s = 0; s < 3; s++) p.rows[s] = st->rows[s];
  if (!rc) rc = kd_provenance_write(f, a.tmp, &p, e);
  rc = kd_h5_close(f, a.tmp, rc, e);
  if (!rc) rc = kd_atomic_commit(&a, e);
  if (rc) kd_atomic_abort(&a);
  return rc;
}

int kd_text_tokenizer_parse(const char *spec, const char *opt, int *V, kd_err *e) {
  *V = 0;
  if (strcmp(spec, "bytes") == 0) return KD_OK;
  if (strncmp(spec, "kd:", 3) == 0) {
    *V = KD_TEXT_KD;
    if (spec[3]) return KD_OK;
    return kd_fail(e, KD_ERR_USAGE, "kd import text: %s kd: needs the path of a kd data file (kd:FILE)", opt);
  }
  if (strncmp(spec, "hf:", 3) == 0) {
    *V = KD_TEXT_HF;
    if (spec[3]) return KD_OK;
    return kd_fail(e, KD_ERR_USAGE, "kd import text: %s hf: needs the path of a tokenizer.json (hf:PATH)", opt);
  }
  const char *d = strncmp(spec, "bpe:", 4) == 0 ? spec + 4 : NULL;
  long v = 0;
  int ok = d && *d;
  for (const char *q = d; ok && *q; q++) {
    ok = *q >= '0' && *q <= '9';
    v = v * 10 + (*q - '0');
    ok = ok && v <= KD_BPE_MAX_VOCAB; /* stop before it could overflow */
  }
  if (ok && v >= 256) {
    *V = (int)v;
    return KD_OK;
  }
  return kd_fail(e, KD_ERR_USAGE,
                 "kd import text: %s '%s' is neither 'bytes', 'bpe:V' with V from 256 to %d (the 256 "
                 "bytes and V - 256 merges), 'hf:PATH' (a Hugging Face tokenizer.json) nor 'kd:FILE' (the /tokenizer record "
                 "of a kd data file)", opt, spec, KD_BPE_MAX_VOCAB);
}

/* The tokenizer record, and for bpe its encoder: merges learnt from the training stream only, so no
 * held-out text shapes the vocabulary. */
static int make_tokenizer(int V, const char *tokenizer_path, const bytes *train, kd_tokenizer *tk, kd_bpe_encoder **enc, kd_text_stats *st,
                          kd_err *e) {
  *enc = NULL;
  if (V == 0) {
    if (kd_tokenizer_bytes(tk, e)) return e->code;
    st->vocab = tk->vocab;
    return KD_OK;
  }
  const double t0 = kd_seconds();
  if (V == KD_TEXT_KD) { /* the record of a kd data file: nothing learnt */
    int present = 0;
    if (kd_tokenizer_read(tk, tokenizer_path, &present, e)) return e->code;
    if (!present) return kd_fail(e, KD_ERR_RUNTIME, "kd import text: %s has no /tokenizer record", tokenizer_path);
    st->vocab = tk->vocab;
    if (strcmp(tk->kind, "bytes") == 0) return KD_OK;
    if (strcmp(tk->kind, "bpe") != 0)
      return kd_fail(e, KD_ERR_RUNTIME, "kd import text: %s's /tokenizer is of kind %s: text needs bytes or bpe",
                     tokenizer_path, tk->kind);
    return kd_bpe_encoder_new(enc, tk, e);
  }
  if (V == KD_TEXT_HF) { /* a Hugging Face tokenizer.json: nothing learnt */
    if (kd_hftok_load(tk, tokenizer_path, e)) return e->code;
    st->vocab = tk->vocab;
    st->load_seconds = kd_seconds() - t0;
    return kd_bpe_encoder_new(enc, tk, e);
  }
  if (kd_bpe_train(tk, train->p, train->n, V, KD_BPE_PRE_GPT2, e)) return e->code;
  st->bpe_seconds = kd_seconds() - t0;
  st->bpe_merges = tk->n_merges;
  st->bpe_bytes = (int64_t)train->n;
  st->vocab = tk->vocab;
  return kd_bpe_encoder_new(enc, tk, e);
}

int kd_import_text(const kd_text_cfg *c, kd_text_stats *st, kd_err *e) {
  kd_h5_quiet();
  memset(st, 0, sizeof *st);
  int V;
  if (kd_text_tokenizer_parse(c->tokenizer, "--tokenizer", &V, e)) return e->code;
  if (c->valid_frac + c->test_frac >= 1.0)
    return kd_fail(e, KD_ERR_USAGE, "kd import text: --valid-frac %g and --test-frac %g leave no training text",
                   c->valid_frac, c->test_frac);
  bytes streams[3] = {{0}}, file = {0};
  int rc = KD_OK;
  for (int i = 0; i < c->n_in && !rc; i++) {
    file.n = 0;
    const int64_t before = st->docs[0] + st->docs[1] + st->docs[2];
    rc = read_file(c->in[i], &file, e);
    if (!rc) rc = add_file(streams, &file, c, st, e);
    if (!rc && st->docs[0] + st->docs[1] + st->docs[2] == before)
      rc = kd_fail(e, KD_ERR_RUNTIME, "%s: no text to import (%s)", c->in[i],
                   file.n ? "only document separators" : "the file is empty");
  }
  free(file.p);
  if (!rc && st->docs[0] == 0)
    rc = kd_fail(e, KD_ERR_RUNTIME, "kd import text: no document went to the training split (%d files, %lld documents)",
                 c->n_in, (long long)(st->docs[1] + st->docs[2]));
  kd_tokenizer tk;
  memset(&tk, 0, sizeof tk);
  kd_bpe_encoder *enc = NULL;
  if (!rc) rc = make_tokenizer(V, c->tokenizer + 3, &streams[0], &tk, &enc, st, e);
  kd_tokenizer ttk;
  memset(&ttk, 0, sizeof ttk);
  teacher_side ts = {&ttk, NULL};
  const int teacher = c->teacher_tokenizer[0] != 0;
  if (!rc && teacher) {
    kd_text_stats scratch = *st;
    int Vt = 0;
    rc = kd_text_tokenizer_parse(c->teacher_tokenizer, "--teacher-tokenizer", &Vt, e);
    if (!rc) rc = make_tokenizer(Vt, c->teacher_tokenizer + 3, &streams[0], &ttk, &ts.enc, &scratch, e);
  }
  if (!rc) rc = write_file(c, streams, &tk, enc, teacher ? &ts : NULL, st, e);
  kd_bpe_encoder_free(enc);
  kd_bpe_encoder_free(ts.enc);
  kd_tokenizer_free(&tk);
  kd_tokenizer_free(&ttk);
  for (int s = 0; s < 3; s++) free(streams[s].p);
  return rc;
}
