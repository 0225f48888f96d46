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

static int write_splits(hid_t f, const char *path, const kd_text_cfg *c, bytes streams[3], const kd_tokenizer *tk,
                        kd_bpe_encoder *enc, kd_text_stats *st, kd_err *e) {
  for (int s = 0; s < 3; s++) {
    int32_t *ids = NULL;
    int64_t S = 0;
    const double t0 = kd_seconds();
    if (!encode_stream(&streams[s], enc, &ids, &S, e))
      write_split(f, path, s, ids, S, (int)c->ctx, token_type(tk->vocab), st, e);
    st->encode_seconds += kd_seconds() - t0;
    st->encode_bytes += (int64_t)streams[s].n;
    free(ids);
    if (e->code) return e->code;
  }
  return KD_OK;
}

static int write_file(const kd_text_cfg *c, bytes streams[3], const kd_tokenizer *tk, kd_bpe_encoder *enc,
                      kd_text_stats *st, kd_err *e) {
  kd_atomic a;
  hid_t f = H5I_INVALID_HID;
  if (kd_atomic_begin(&a, c->out, e) || kd_h5_create(&f, a.tmp, e)) return e->code;
  int rc = write_splits(f, a.tmp, c, streams, tk, enc, st, e);
  if (!rc) rc = kd_tokenizer_write(f, a.tmp, tk, e);
  kd_provenance p = kd_provenance_of("data");
  char gen[KD_PATH_MAX + 512];
  if (enc && tk->merge_ids)
    snprintf(gen, sizeof gen, "kd import text (tokenizer %.160s: Hugging Face byte-level BPE, %d ids, %d merges; "
             "rows of %lld at stride %lld)", c->tokenizer, tk->vocab, tk->n_merges, (long long)c->ctx,
             (long long)c->ctx - 1);
  else if (enc)
    snprintf(gen, sizeof gen, "kd import text (tokenizer %s: byte-level BPE, %d ids, %d merges learnt from the "
             "training split; rows of %lld at stride %lld)", c->tokenizer, tk->vocab, tk->n_merges,
             (long long)c->ctx, (long long)c->ctx - 1);
  else
    snprintf(gen, sizeof gen, "kd import text (byte tokens, rows of %lld at stride %lld)", (long long)c->ctx,
             (long long)c->ctx - 1);
  p.generator = gen;
  for (int s = 0; s < 3; s++) p.rows[s] = st->rows[s];
  if (!rc) rc = kd_provenance_write(f, a.tmp, &p, e);
  rc = kd_h5_close(f, a.tmp, rc, e);
  if (!rc) rc = kd_atomic_commit(&a, e);
  if (rc) kd_atomic_abort(&a);
  return rc;
}

int kd_text_tokenizer_parse(const char *spec, int *V, kd_err *e) {
  *V = 0;
  if (strcmp(spec, "bytes") == 0) return KD_OK;
  if (strncmp(spec, "hf:", 3) == 0) {
    *V = KD_TEXT_HF;
    if (spec[3]) return KD_OK;
    return kd_fail(e, KD_ERR_USAGE, "kd import text: --tokenizer hf: needs the path of a tokenizer.json (hf:PATH)");
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
                 "kd import text: --tokenizer '%s' is neither 'bytes', 'bpe:V' with V from 256 to %d (the 256 "
                 "bytes and V - 256 merges) nor 'hf:PATH' (a Hugging Face tokenizer.json)", spec, KD_BPE_MAX_VOCAB);
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
  if (kd_text_tokenizer_parse(c->tokenizer, &V, e)) return e->code;
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
  if (!rc) rc = write_file(c, streams, &tk, enc, st, e);
  kd_bpe_encoder_free(enc);
  kd_tokenizer_free(&tk);
  for (int s = 0; s < 3; s++) free(streams[s].p);
  return rc;
}
