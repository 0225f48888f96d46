/* The in-memory data source: a rank's shard of a split read once with
 * hyperslab selections (serial HDF5, each rank its own rows) and held as
 * float32 inputs and int32 labels. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/h5io.h"
#include "core/rng.h"
#include "kd/data.h"

struct kd_source {
  char path[KD_PATH_MAX];
  char split[16];
  kd_split_info info;  /* of the whole split */
  int64_t row0, n;     /* this shard: rows [row0, row0 + n) */
  float *x;            /* feature rows: [n, width] */
  int32_t *y;          /* [n] */
  int32_t *tokens;     /* token rows: [n, width] */
  uint8_t *mask;       /* [n, width] 1: a target (from /SPLIT/mask, or every position after the first) */
  int has_mask;        /* the file has /SPLIT/mask */
  int32_t *token_bytes; /* [vocab] byte length of each id, from /tokenizer (or NULL) */
  int tok_vocab;       /* ids of the /tokenizer record (0: none) */
  const kd_preprocess *pre; /* applied on gather, or NULL */
};

static int read_token_bytes(kd_source *s, kd_err *e);

/* /SPLIT/y: 1-D, or 2-D with one column (as written from an [N, 1] array). */
static int probe_labels(hid_t f, const char *path, const char *ys, int64_t rows, const char *xs, kd_err *e) {
  int nd;
  int64_t yd[KD_H5_MAX_DIMS];
  if (kd_h5_shape(f, path, ys, &nd, yd, e)) return e->code;
  if (nd > 2 || (nd == 2 && yd[1] != 1))
    return kd_fail(e, KD_ERR_RUNTIME, "%s: dataset %s must be 1-D [rows], it is [%lld, %lld]", path, ys,
                   (long long)yd[0], (long long)yd[1]);
  if (yd[0] != rows)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: %s has %lld rows but %s has %lld", path, xs, (long long)rows, ys,
                   (long long)yd[0]);
  return KD_OK;
}

static int probe_features(hid_t f, const char *path, const char *split, kd_split_info *info, kd_err *e) {
  char xs[64], ys[64];
  snprintf(xs, sizeof xs, "/%s/x", split);
  snprintf(ys, sizeof ys, "/%s/y", split);
  int nd;
  int64_t xd[KD_H5_MAX_DIMS];
  if (kd_h5_shape(f, path, xs, &nd, xd, e)) return e->code;
  if (nd == 1) return kd_fail(e, KD_ERR_RUNTIME, "%s: dataset %s must be 2-D [rows, features], it is 1-D", path, xs);
  if (nd != 2)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: dataset %s has %d dimensions; feature rows are 2-D [rows, features]", path,
                   xs, nd);
  if (probe_labels(f, path, ys, xd[0], xs, e)) return e->code;
  if (xd[0] < 1) return kd_fail(e, KD_ERR_RUNTIME, "%s: split /%s is empty (0 rows)", path, split);
  if (xd[1] < 1 || xd[1] > 1 << 24)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: %s has %lld features per row", path, xs, (long long)xd[1]);
  info->present = 1;
  info->kind = KD_INPUT_FEATURES;
  info->rows = xd[0];
  info->width = (int)xd[1];
  return KD_OK;
}

/* /SPLIT/tokens [N, T] of integers, and /SPLIT/mask [N, T] when present. */
static int probe_tokens(hid_t f, const char *path, const char *split, kd_split_info *info, kd_err *e) {
  char ts[64], ms[64];
  snprintf(ts, sizeof ts, "/%s/tokens", split);
  snprintf(ms, sizeof ms, "/%s/mask", split);
  int nd;
  int64_t td[KD_H5_MAX_DIMS], md[KD_H5_MAX_DIMS];
  if (kd_h5_shape(f, path, ts, &nd, td, e)) return e->code;
  if (nd != 2) return kd_fail(e, KD_ERR_RUNTIME, "%s: dataset %s must be 2-D [rows, positions], it is %d-D", path, ts, nd);
  if (kd_h5_is_float(f, ts)) return kd_fail(e, KD_ERR_RUNTIME, "%s: dataset %s must hold integer token ids", path, ts);
  if (td[0] < 1) return kd_fail(e, KD_ERR_RUNTIME, "%s: split /%s is empty (0 rows)", path, split);
  if (td[1] < 2 || td[1] > 1 << 20)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: %s rows have %lld positions (at least 2: a token and its target)", path, ts,
                   (long long)td[1]);
  if (kd_h5_exists(f, ms)) {
    if (kd_h5_shape(f, path, ms, &nd, md, e)) return e->code;
    if (nd != 2 || md[0] != td[0] || md[1] != td[1])
      return kd_fail(e, KD_ERR_RUNTIME, "%s: %s is [%lld, %lld] but %s is [%lld, %lld]", path, ms, (long long)md[0],
                     (long long)md[1], ts, (long long)td[0], (long long)td[1]);
  }
  info->present = 1;
  info->kind = KD_INPUT_TOKENS;
  info->rows = td[0];
  info->width = (int)td[1];
  return KD_OK;
}

int kd_source_probe(const char *path, const char *split, kd_split_info *info, kd_err *e) {
  memset(info, 0, sizeof *info);
  char xs[64], ts[64];
  snprintf(xs, sizeof xs, "/%s/x", split);
  snprintf(ts, sizeof ts, "/%s/tokens", split);
  hid_t f;
  if (kd_h5_open_ro(&f, path, e)) return e->code;
  int rc = kd_h5_exists(f, xs)   ? probe_features(f, path, split, info, e)
           : kd_h5_exists(f, ts) ? probe_tokens(f, path, split, info, e)
                                 : KD_OK;
  if (rc) memset(info, 0, sizeof *info);
  H5Fclose(f);
  return rc;
}

/* Labels stored as floats must hold whole numbers: HDF5's conversion to int
 * would silently truncate 2.7 to 2 and turn NaN into INT_MIN. */
static int check_float_labels(hid_t f, const kd_source *s, const char *ys, kd_err *e) {
  if (!kd_h5_is_float(f, ys)) return KD_OK;
  double *yd = kd_malloc((size_t)s->n * sizeof(double), ys, e);
  int rc = yd ? kd_h5_read_rows(f, s->path, ys, s->row0, s->n, H5T_NATIVE_DOUBLE, yd, e) : e->code;
  for (int64_t i = 0; i < s->n && !rc; i++)
    if (!(yd[i] == floor(yd[i])) || yd[i] < -2147483648.0 || yd[i] > 2147483647.0)
      rc = kd_fail(e, KD_ERR_RUNTIME, "%s: %s row %lld holds %g, not a whole-number class label", s->path, ys,
                   (long long)(s->row0 + i), yd[i]);
  free(yd);
  return rc;
}

/* Token ids as int32; the mask as 0/1 (any integer, non-zero: a target). */
static int read_token_rows(kd_source *s, kd_err *e) {
  char ts[64], ms[64];
  snprintf(ts, sizeof ts, "/%s/tokens", s->split);
  snprintf(ms, sizeof ms, "/%s/mask", s->split);
  const size_t cells = (size_t)s->n * s->info.width;
  s->tokens = kd_malloc(cells * sizeof(int32_t), ts, e);
  s->mask = kd_malloc(cells ? cells : 1, ms, e);
  if (e->code) return e->code;
  hid_t f;
  if (kd_h5_open_ro(&f, s->path, e)) return e->code;
  int rc = kd_h5_read_rows(f, s->path, ts, s->row0, s->n, H5T_NATIVE_INT32, s->tokens, e);
  s->has_mask = kd_h5_exists(f, ms);
  if (!rc && s->has_mask) {
    int32_t *m = kd_malloc(cells * sizeof(int32_t), ms, e);
    rc = m ? kd_h5_read_rows(f, s->path, ms, s->row0, s->n, H5T_NATIVE_INT32, m, e) : e->code;
    for (size_t i = 0; !rc && i < cells; i++) s->mask[i] = m[i] != 0;
    free(m);
  } else if (!rc) {
    for (size_t i = 0; i < cells; i++) s->mask[i] = i % (size_t)s->info.width != 0;
  }
  H5Fclose(f);
  return rc;
}

static int read_rows(kd_source *s, kd_err *e) {
  if (s->info.kind == KD_INPUT_TOKENS) return read_token_rows(s, e);
  char xs[64], ys[64];
  snprintf(xs, sizeof xs, "/%s/x", s->split);
  snprintf(ys, sizeof ys, "/%s/y", s->split);
  s->x = kd_malloc((size_t)s->n * s->info.width * sizeof(float), xs, e);
  s->y = kd_malloc((size_t)s->n * sizeof(int32_t), ys, e);
  if (e->code) return e->code;
  hid_t f;
  if (kd_h5_open_ro(&f, s->path, e)) return e->code;
  int rc = kd_h5_read_rows(f, s->path, xs, s->row0, s->n, H5T_NATIVE_FLOAT, s->x, e);
  if (!rc) rc = kd_h5_read_rows(f, s->path, ys, s->row0, s->n, H5T_NATIVE_INT32, s->y, e);
  if (!rc) rc = check_float_labels(f, s, ys, e);
  H5Fclose(f);
  return rc;
}

static int source_open(kd_source **out, const char *path, const char *split, int64_t lo, int64_t hi, int tokenizer,
                       kd_err *e) {
  *out = NULL;
  kd_source *s = kd_calloc(1, sizeof *s, "data source", e);
  if (!s) return e->code;
  snprintf(s->path, sizeof s->path, "%s", path);
  snprintf(s->split, sizeof s->split, "%s", split);
  int rc = kd_source_probe(path, split, &s->info, e);
  if (!rc && !s->info.present)
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: dataset /%s/x (or /%s/tokens) is missing", path, split, split);
  if (!rc && (lo < 0 || hi > s->info.rows || lo > hi))
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: shard rows [%lld, %lld) outside /%s of %lld rows", path, (long long)lo,
                 (long long)hi, split, (long long)s->info.rows);
  s->row0 = lo;
  s->n = hi - lo;
  if (!rc) rc = read_rows(s, e);
  if (!rc && tokenizer && s->info.kind == KD_INPUT_TOKENS) rc = read_token_bytes(s, e);
  if (rc) {
    kd_source_free(s);
    return rc;
  }
  *out = s;
  return KD_OK;
}

int kd_source_open(kd_source **out, const char *path, const char *split, int64_t lo, int64_t hi, kd_err *e) {
  return source_open(out, path, split, lo, hi, 1, e);
}

int kd_source_open_rows(kd_source **out, const char *path, const char *split, int64_t lo, int64_t hi, kd_err *e) {
  return source_open(out, path, split, lo, hi, 0, e);
}

void kd_source_free(kd_source *s) {
  if (!s) return;
  free(s->x);
  free(s->y);
  free(s->tokens);
  free(s->mask);
  free(s->token_bytes);
  free(s);
}

const char *kd_source_path(const kd_source *s) { return s->path; }
const char *kd_source_split(const kd_source *s) { return s->split; }
kd_input kd_source_kind(const kd_source *s) { return s->info.kind; }
int64_t kd_source_rows(const kd_source *s) { return s->n; }
int64_t kd_source_row0(const kd_source *s) { return s->row0; }
int64_t kd_source_total(const kd_source *s) { return s->info.rows; }
int kd_source_width(const kd_source *s) { return s->info.width; }

size_t kd_source_bytes(const kd_source *s) {
  if (!s) return 0;
  const size_t cells = (size_t)s->n * (size_t)s->info.width;
  return (s->x ? cells * sizeof(float) : 0) + (s->tokens ? cells * sizeof(int32_t) : 0) + (s->mask ? cells : 0) +
         (s->y ? (size_t)s->n * sizeof(int32_t) : 0);
}
const int32_t *kd_source_token_bytes(const kd_source *s) { return s->token_bytes; }
int kd_source_vocab(const kd_source *s) { return s->tok_vocab; }

int64_t kd_source_targets(const kd_source *s) {
  if (s->info.kind == KD_INPUT_FEATURES) {
    int64_t n = 0;
    for (int64_t i = 0; i < s->n; i++) n += s->y[i] >= 0;
    return n;
  }
  const size_t W = (size_t)s->info.width;
  int64_t n = 0;
  for (size_t i = 0; i < (size_t)s->n * W; i++) n += i % W != 0 && s->mask[i];
  return n;
}

/* The byte length of each id, from the tokenizer record (bytes: 1 each). */
static int read_token_bytes(kd_source *s, kd_err *e) {
  kd_tokenizer t;
  int present;
  if (kd_tokenizer_read(&t, s->path, &present, e)) return e->code;
  if (present) s->tok_vocab = t.vocab;
  if (present && t.vocab > 0) {
    s->token_bytes = kd_malloc(sizeof(int32_t) * (size_t)t.vocab, "token lengths", e);
    for (int i = 0; s->token_bytes && i < t.vocab; i++) s->token_bytes[i] = (int32_t)(t.offsets[i + 1] - t.offsets[i]);
  }
  kd_tokenizer_free(&t);
  return e->code;
}

static int validate_tokens(const kd_source *s, int vocab, kd_err *e) {
  const int T = s->info.width;
  for (size_t i = 0; i < (size_t)s->n * T; i++)
    if (s->tokens[i] < 0 || s->tokens[i] >= vocab)
      return kd_fail(e, KD_ERR_RUNTIME, "%s: /%s/tokens row %lld position %d holds %d, outside the vocabulary [0, %d)",
                     s->path, s->split, (long long)(s->row0 + (int64_t)(i / T)), (int)(i % T), (int)s->tokens[i], vocab);
  return KD_OK;
}

int kd_source_validate(const kd_source *s, int n_classes, int allow_unlabelled, kd_err *e) {
  if (s->info.kind == KD_INPUT_TOKENS) return validate_tokens(s, n_classes, e);
  for (int64_t i = 0; i < s->n; i++) {
    int32_t y = s->y[i];
    if (y >= n_classes || y < -1 || (y == -1 && !allow_unlabelled)) {
      if (y == -1)
        return kd_fail(e, KD_ERR_RUNTIME, "%s: /%s/y row %lld is -1 (unlabelled), which needs a teacher (--teacher)",
                       s->path, s->split, (long long)(s->row0 + i));
      return kd_fail(e, KD_ERR_RUNTIME, "%s: /%s/y row %lld holds label %d, outside [0, %d)%s", s->path, s->split,
                     (long long)(s->row0 + i), (int)y, n_classes, allow_unlabelled ? " (or -1 for unlabelled)" : "");
    }
  }
  const size_t D = (size_t)s->info.width, nx = (size_t)s->n * D;
  for (size_t i = 0; i < nx; i++)
    if (!isfinite(s->x[i]))
      return kd_fail(e, KD_ERR_RUNTIME, "%s: /%s/x row %lld column %d is %s", s->path, s->split,
                     (long long)(s->row0 + (int64_t)(i / D)), (int)(i % D), isnan(s->x[i]) ? "NaN" : "infinite");
  return KD_OK;
}

static int check_batch(const kd_source *s, int count, const kd_batch *b, kd_err *e) {
  if (count < 0 || count > b->capacity)
    return kd_fail(e, KD_ERR_RUNTIME, "gather: %d rows into a batch of %d", count, b->capacity);
  const int tok = s->info.kind == KD_INPUT_TOKENS;
  if (b->kind != s->info.kind || b->width != s->info.width || !b->y || (tok ? !b->tokens : !b->x))
    return kd_fail(e, KD_ERR_RUNTIME, "gather: a batch of width %d for /%s of %s (width %d)", b->width, s->split,
                   s->path, s->info.width);
  return KD_OK;
}

void kd_preprocess_apply(const kd_preprocess *p, float *x, int n) {
  if (!p || p->kind == KD_NORM_NONE) return;
  const int D = p->dim;
  for (int i = 0; i < n; i++, x += D)
    for (int j = 0; j < D; j++) x[j] = (x[j] - p->offset[j]) / p->scale[j];
}

/* Rows [0, count) of the batch, normalised (feature rows). */
static void apply_pre(const kd_source *s, kd_batch *b, int count) {
  if (b->x) kd_preprocess_apply(s->pre, b->x, count);
}

int kd_source_set_preprocess(kd_source *s, const kd_preprocess *p, kd_err *e) {
  if (p && p->kind != KD_NORM_NONE && p->dim != s->info.width)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: /%s/x has %d features but the normalisation has %d", s->path, s->split,
                   s->info.width, p->dim);
  s->pre = p;
  return KD_OK;
}

void kd_source_stats(const kd_source *s, double *sum, double *sumsq, double *lo, double *hi, double *absmax) {
  if (s->info.kind != KD_INPUT_FEATURES) return;
  const int D = s->info.width;
  for (int64_t i = 0; i < s->n; i++) {
    const float *x = s->x + (size_t)i * D;
    for (int j = 0; j < D; j++) {
      const double v = x[j];
      sum[j] += v;
      sumsq[j] += v * v;
      if (v < lo[j]) lo[j] = v;
      if (v > hi[j]) hi[j] = v;
      if (fabs(v) > *absmax) *absmax = fabs(v);
    }
  }
}

/* Row r of the shard into slot i of the batch. */
static void copy_row(const kd_source *s, int64_t r, int i, kd_batch *b) {
  const size_t W = (size_t)s->info.width;
  if (s->info.kind == KD_INPUT_TOKENS) {
    memcpy(b->tokens + i * W, s->tokens + (size_t)r * W, W * sizeof(int32_t));
    memcpy(b->mask + i * W, s->mask + (size_t)r * W, W);
    b->y[i] = 0; /* a labelled row (kd_batch_unlabel may drop it) */
  } else {
    memcpy(b->x + i * W, s->x + (size_t)r * W, W * sizeof(float));
    b->y[i] = s->y[r];
  }
  b->row_ids[i] = s->row0 + r;
}

int kd_source_gather(const kd_source *s, const int64_t *idx, int count, kd_batch *b, kd_err *e) {
  if (check_batch(s, count, b, e)) return e->code;
  for (int i = 0; i < count; i++) {
    const int64_t r = idx[i];
    if (r < 0 || r >= s->n)
      return kd_fail(e, KD_ERR_RUNTIME, "gather: row %lld outside the shard of %lld rows of /%s", (long long)r,
                     (long long)s->n, s->split);
    copy_row(s, r, i, b);
  }
  b->rows = count;
  apply_pre(s, b, count);
  return KD_OK;
}

int kd_source_gather_range(const kd_source *s, int64_t r0, int count, kd_batch *b, kd_err *e) {
  if (check_batch(s, count, b, e)) return e->code;
  if (r0 < 0 || r0 + count > s->n)
    return kd_fail(e, KD_ERR_RUNTIME, "gather: rows [%lld, %lld) outside the shard of %lld rows of /%s",
                   (long long)r0, (long long)(r0 + count), (long long)s->n, s->split);
  for (int i = 0; i < count; i++) copy_row(s, r0 + i, i, b);
  b->rows = count;
  apply_pre(s, b, count);
  return KD_OK;
}

void kd_source_prefetch(const kd_source *s, const int64_t *idx, int count) {
#if defined(__GNUC__) || defined(__clang__)
  if (!s->x) return;
  const size_t D = (size_t)s->info.width;
  for (int i = 0; i < count; i++) {
    const char *x = (const char *)(s->x + (size_t)idx[i] * D);
    for (size_t off = 0; off < D * sizeof(float); off += 64) __builtin_prefetch(x + off, 0, 3);
  }
#else
  (void)s, (void)idx, (void)count;
#endif
}

static uint64_t row_hash(uint64_t row, const float *x, int D, int32_t y) {
  uint64_t h = kd_mix64(row ^ 0x78u);
  const uint32_t *w = (const uint32_t *)x;
  for (int j = 0; j < D; j++) h = kd_mix64(h ^ w[j]);
  return kd_mix64(h ^ (uint32_t)y);
}

uint64_t kd_fingerprint_rows(int64_t row0, int64_t n, const float *x, int D, const int32_t *y) {
  uint64_t d = 0;
  for (int64_t i = 0; i < n; i++) d += row_hash((uint64_t)(row0 + i), x + (size_t)i * D, D, y[i]);
  return d;
}

/* Token rows: each row's ids and mask hashed with its global row index. */
static uint64_t token_fingerprint(const kd_source *s) {
  uint64_t d = 0;
  const int T = s->info.width;
  for (int64_t i = 0; i < s->n; i++) {
    uint64_t h = kd_mix64((uint64_t)(s->row0 + i) ^ 0x746bu);
    for (int t = 0; t < T; t++) h = kd_mix64(h ^ ((uint64_t)(uint32_t)s->tokens[(size_t)i * T + t] << 1 | s->mask[(size_t)i * T + t]));
    d += h;
  }
  return d;
}

uint64_t kd_source_fingerprint(const kd_source *s) {
  if (s->info.kind == KD_INPUT_TOKENS) return token_fingerprint(s);
  return kd_fingerprint_rows(s->row0, s->n, s->x, s->info.width, s->y);
}

int kd_source_fingerprint_file(const char *path, const char *split, int64_t lo, int64_t hi, uint64_t *fp,
                               kd_err *e) {
  kd_split_info info;
  if (kd_source_probe(path, split, &info, e)) return e->code;
  /* pieces of about 16 M values: a bounded memory whatever the split's width */
  const int64_t chunk = (int64_t)(((size_t)16 << 20) / (size_t)(info.width > 0 ? info.width : 1)) + 1;
  *fp = 0;
  for (int64_t a = lo; a < hi; a += chunk) {
    kd_source *part;
    if (kd_source_open(&part, path, split, a, a + chunk < hi ? a + chunk : hi, e)) return e->code;
    *fp += kd_source_fingerprint(part);
    kd_source_free(part);
  }
  return KD_OK;
}
