#include "data/tokenize.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/files.h"
#include "data/bpe.h"
#include "data/hftok.h"


int kd_tokenizer_from_spec(kd_tokenizer *t, const char *spec, kd_err *e) {
  memset(t, 0, sizeof *t);
  if (strcmp(spec, "bytes") == 0) return kd_tokenizer_bytes(t, e);
  if (strncmp(spec, "hf:", 3) == 0) return kd_hftok_load(t, spec + 3, e);
  int present = 0;
  if (kd_tokenizer_read(t, spec, &present, e)) return e->code;
  if (!present || t->vocab == 0) {
    kd_tokenizer_free(t);
    return kd_fail(e, KD_ERR_RUNTIME, "%s has no /tokenizer record (--tokenizer takes bytes, hf:tokenizer.json or a kd "
                   "data file or checkpoint with one)", spec);
  }
  return KD_OK;
}

typedef struct job {
  const kd_tokenize_cfg *cfg;
  const kd_tokenizer *t;
  kd_bpe_encoder *enc;
  int32_t *ids;
  size_t cap;
  FILE *out;
  kd_tokenize_stats *st;
} job;

static int write_failed(const job *j, kd_err *e) {
  return kd_fail(e, KD_ERR_RUNTIME, "cannot write %s: %s", strcmp(j->cfg->out, "-") ? j->cfg->out : "standard output",
                 strerror(errno));
}

/* One document's ids as a line. */
static int one_doc(job *j, const uint8_t *p, size_t n, kd_err *e) {
  const size_t need = 3 * n + 16; /* NFC may lengthen the text; a token holds a byte at least */
  if (need > j->cap) {
    free(j->ids);
    j->cap = 2 * need;
    if (!(j->ids = kd_malloc(sizeof(int32_t) * j->cap, "token ids", e))) return e->code;
  }
  size_t got = 0;
  const double t0 = kd_seconds();
  if (j->enc) {
    if (kd_bpe_encoder_encode(j->enc, p, n, j->ids, j->cap, &got, e)) return e->code;
  } else {
    int m = 0;
    if (j->cap > INT32_MAX) return kd_fail(e, KD_ERR_RUNTIME, "%s: a document of %zu bytes is too long", j->cfg->in, n);
    if (kd_tokenizer_encode(j->t, p, n, j->ids, (int)j->cap, &m, e)) return e->code;
    got = (size_t)m;
  }
  j->st->encode_seconds += kd_seconds() - t0;
  j->st->docs++;
  j->st->tokens += (int64_t)got;
  j->st->bytes += (int64_t)n;
  errno = 0;
  for (size_t i = 0; i < got; i++)
    if (fprintf(j->out, i ? " %d" : "%d", (int)j->ids[i]) < 0) return write_failed(j, e);
  if (fputc('\n', j->out) == EOF) return write_failed(j, e);
  return KD_OK;
}

static int each_doc(job *j, const uint8_t *p, size_t n, kd_err *e) {
  const char *sep = j->cfg->doc_sep;
  const size_t sl = strlen(sep);
  if (!j->cfg->lines && !sl) return n ? one_doc(j, p, n, e) : KD_OK;
  size_t start = 0, line = 0;
  while (line < n) {
    const uint8_t *nl = memchr(p + line, '\n', n - line);
    const size_t end = nl ? (size_t)(nl - p) : n;
    if (j->cfg->lines) {
      if (one_doc(j, p + line, end - line, e)) return e->code;
    } else if (end - line == sl && memcmp(p + line, sep, sl) == 0) {
      if (line > start && one_doc(j, p + start, line - start, e)) return e->code;
      start = end + 1 < n ? end + 1 : n;
    }
    line = end + 1;
  }
  return !j->cfg->lines && n > start ? one_doc(j, p + start, n - start, e) : KD_OK;
}

int kd_tokenize_run(const kd_tokenize_cfg *cfg, kd_tokenize_stats *st, kd_err *e) {
  memset(st, 0, sizeof *st);
  kd_tokenizer t;
  const double t0 = kd_seconds();
  if (kd_tokenizer_from_spec(&t, cfg->tokenizer, e)) return e->code;
  job j = {cfg, &t, NULL, NULL, 0, NULL, st};
  if (strcmp(t.kind, "bpe") == 0) kd_bpe_encoder_new(&j.enc, &t, e);
  st->load_seconds = kd_seconds() - t0;
  uint8_t *text = NULL;
  size_t n = 0;
  if (!e->code) kd_read_all(cfg->in, &text, &n, e);
  const int to_stdout = strcmp(cfg->out, "-") == 0;
  if (!e->code) {
    j.out = to_stdout ? stdout : fopen(cfg->out, "w");
    if (!j.out) kd_fail(e, KD_ERR_RUNTIME, "cannot create %s: %s", cfg->out, strerror(errno));
  }
  if (!e->code) each_doc(&j, text, n, e);
  if (j.out && !to_stdout && fclose(j.out) != 0 && !e->code)
    kd_fail(e, KD_ERR_RUNTIME, "cannot write %s: %s", cfg->out, strerror(errno));
  if (j.out && to_stdout && fflush(stdout) != 0 && !e->code)
    kd_fail(e, KD_ERR_RUNTIME, "cannot write standard output: %s", strerror(errno));
  free(text);
  free(j.ids);
  kd_bpe_encoder_free(j.enc);
  kd_tokenizer_free(&t);
  return e->code;
}
