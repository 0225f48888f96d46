#define _POSIX_C_SOURCE 200809L /* fseeko, ftello */
#include "interop/safetensors.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "core/atomic.h"
#include "core/half.h"
#include "core/json.h"

/* safetensors is little-endian, and so are the machines kd builds for (x86-64, arm64): bytes go as they are. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the safetensors reader and writer use the machine's bytes, and safetensors is little-endian"
#endif

/* The reference implementation's limit: a larger header is not a safetensors file. */
#define MAX_HEADER ((uint64_t)100000000)

static const char *const dtype_names[] = {"F32", "F16", "BF16"};

const char *kd_st_dtype_name(kd_st_dtype t) { return t <= KD_ST_BF16 ? dtype_names[t] : "?"; }

static char *dup_str(const char *s, kd_err *e) {
  const size_t n = strlen(s) + 1;
  char *d = kd_malloc(n, "safetensors name", e);
  if (d) memcpy(d, s, n);
  return d;
}

static uint16_t float_to_bf16(float f) {
  uint32_t x;
  memcpy(&x, &f, sizeof x);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u); /* NaN stays a (quiet) NaN */
  return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);              /* round to nearest even, as torch */
}

static float bf16_to_float(uint16_t h) {
  const uint32_t x = (uint32_t)h << 16;
  float f;
  memcpy(&f, &x, sizeof f);
  return f;
}

/* ---- writing ---- */

typedef struct st_entry {
  char *name;
  const float *data;
  int ndim;
  int64_t shape[KD_ST_MAX_DIMS];
  kd_st_dtype dtype;
  uint64_t begin, end;
} st_entry;

struct kd_st_writer {
  st_entry *t;
  size_t n, cap;
};

int kd_st_writer_new(kd_st_writer **w, kd_err *e) {
  *w = kd_calloc(1, sizeof **w, "safetensors writer", e);
  return *w ? KD_OK : e->code;
}

void kd_st_writer_free(kd_st_writer *w) {
  if (!w) return;
  for (size_t i = 0; i < w->n; i++) free(w->t[i].name);
  free(w->t);
  free(w);
}

static size_t elem_size(kd_st_dtype t) { return t == KD_ST_F32 ? 4 : 2; }

int kd_st_add(kd_st_writer *w, const char *name, const float *data, int ndim, const int64_t *shape, kd_st_dtype dtype,
              kd_err *e) {
  if (ndim < 0 || ndim > KD_ST_MAX_DIMS || dtype > KD_ST_BF16)
    return kd_fail(e, KD_ERR_RUNTIME, "safetensors: tensor %s: %d dimensions of dtype %d", name, ndim, (int)dtype);
  if (w->n == w->cap) {
    const size_t cap = w->cap ? 2 * w->cap : 64;
    st_entry *t = realloc(w->t, cap * sizeof *t);
    if (!t) return kd_fail(e, KD_ERR_RUNTIME, "safetensors: out of memory for the tensor list");
    w->t = t, w->cap = cap;
  }
  st_entry *t = &w->t[w->n];
  memset(t, 0, sizeof *t);
  if (!(t->name = dup_str(name, e))) return e->code;
  uint64_t numel = 1;
  for (int i = 0; i < ndim; i++) numel *= (uint64_t)(t->shape[i] = shape[i]);
  t->data = data, t->ndim = ndim, t->dtype = dtype;
  t->begin = w->n ? w->t[w->n - 1].end : 0;
  t->end = t->begin + numel * elem_size(dtype);
  w->n++;
  return KD_OK;
}

/* A growing text buffer for the header. */
typedef struct text {
  char *s;
  size_t len, cap;
  int failed;
} text;

static void add(text *b, const char *s, size_t n) {
  if (b->failed) return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n + 1) cap *= 2;
    char *p = realloc(b->s, cap);
    if (!p) {
      b->failed = 1;
      return;
    }
    b->s = p, b->cap = cap;
  }
  memcpy(b->s + b->len, s, n);
  b->len += n;
  b->s[b->len] = 0;
}

static void addf(text *b, const char *fmt, unsigned long long x) {
  char tmp[32];
  const int n = snprintf(tmp, sizeof tmp, fmt, x);
  add(b, tmp, (size_t)n);
}

static void add_json_str(text *b, const char *s) {
  add(b, "\"", 1);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') {
      const char esc[2] = {'\\', (char)*p};
      add(b, esc, 2);
    } else if (*p < 0x20) {
      addf(b, "\\u%04llx", *p);
    } else {
      add(b, (const char *)p, 1);
    }
  }
  add(b, "\"", 1);
}

/* The JSON header, padded with spaces to a multiple of 8 (so the data start 8-byte aligned). */
static int header(text *b, const kd_st_writer *w, kd_err *e) {
  add(b, "{\"__metadata__\":{\"format\":\"pt\"}", 31);
  for (size_t i = 0; i < w->n; i++) {
    const st_entry *t = &w->t[i];
    add(b, ",", 1);
    add_json_str(b, t->name);
    add(b, ":{\"dtype\":\"", 11);
    add(b, dtype_names[t->dtype], strlen(dtype_names[t->dtype]));
    add(b, "\",\"shape\":[", 11);
    for (int d = 0; d < t->ndim; d++) addf(b, d ? ",%llu" : "%llu", (unsigned long long)t->shape[d]);
    addf(b, "],\"data_offsets\":[%llu", (unsigned long long)t->begin);
    addf(b, ",%llu]}", (unsigned long long)t->end);
  }
  add(b, "}", 1);
  while (b->len % 8) add(b, " ", 1);
  return b->failed ? kd_fail(e, KD_ERR_RUNTIME, "safetensors: out of memory for the header") : KD_OK;
}

static int put(FILE *f, const void *p, size_t n) { return n == 0 || fwrite(p, 1, n, f) == n ? 0 : -1; }

static int put_tensor(FILE *f, const st_entry *t) {
  const size_t n = (size_t)((t->end - t->begin) / elem_size(t->dtype));
  if (t->dtype == KD_ST_F32) return put(f, t->data, 4 * n);
  uint16_t buf[4096];
  for (size_t i = 0; i < n; i += 4096) {
    const size_t m = n - i < 4096 ? n - i : 4096;
    for (size_t k = 0; k < m; k++)
      buf[k] = t->dtype == KD_ST_F16 ? kd_float_to_half(t->data[i + k]) : float_to_bf16(t->data[i + k]);
    if (put(f, buf, 2 * m)) return -1;
  }
  return 0;
}

int kd_st_write(const kd_st_writer *w, const char *path, double *bytes, kd_err *e) {
  text h = {0};
  if (header(&h, w, e)) {
    free(h.s);
    return e->code;
  }
  kd_atomic a;
  if (kd_atomic_begin(&a, path, e)) {
    free(h.s);
    return e->code;
  }
  FILE *f = fopen(a.tmp, "wb");
  if (!f) {
    free(h.s);
    return kd_fail(e, KD_ERR_RUNTIME, "%s: cannot create (%s, writing %s)", path, strerror(errno), a.tmp);
  }
  const uint64_t n = h.len;
  errno = 0;
  int bad = put(f, &n, 8) || put(f, h.s, h.len);
  for (size_t i = 0; i < w->n && !bad; i++) bad = put_tensor(f, &w->t[i]);
  const int err = errno;
  free(h.s);
  if (fclose(f) != 0 && !bad) bad = 1;
  if (bad) {
    kd_atomic_abort(&a);
    return kd_fail(e, KD_ERR_RUNTIME, "%s: writing failed (%s)", path, strerror(err ? err : errno ? errno : EIO));
  }
  if (bytes) *bytes = w->n ? (double)w->t[w->n - 1].end : 0;
  return kd_atomic_commit(&a, e);
}

/* ---- reading ---- */

typedef struct st_file {
  char *path;
  FILE *f;
  uint64_t data_start, data_len;
  kd_json_doc *doc;         /* the header (names point into it) */
} st_file;

struct kd_st_model {
  st_file *files;
  int n_files;
  kd_st_tensor *t;
  int n, cap;
};

void kd_st_close(kd_st_model *m) {
  if (!m) return;
  for (int i = 0; i < m->n_files; i++) {
    if (m->files[i].f) fclose(m->files[i].f);
    kd_json_free(m->files[i].doc);
    free(m->files[i].path);
  }
  free(m->files);
  free(m->t);
  free(m);
}

int kd_st_count(const kd_st_model *m) { return m->n; }
int kd_st_file_count(const kd_st_model *m) { return m->n_files; }
kd_st_tensor *kd_st_at(kd_st_model *m, int i) { return &m->t[i]; }
const char *kd_st_path(const kd_st_model *m, const kd_st_tensor *t) { return m->files[t->file].path; }

kd_st_tensor *kd_st_find(kd_st_model *m, const char *name) {
  for (int i = 0; i < m->n; i++)
    if (strcmp(m->t[i].name, name) == 0) return &m->t[i];
  return NULL;
}

void kd_st_shape_text(char *s, size_t n, int ndim, const int64_t *shape) {
  size_t k = (size_t)snprintf(s, n, "[");
  for (int d = 0; d < ndim && k < n; d++) k += (size_t)snprintf(s + k, n - k, d ? ", %lld" : "%lld", (long long)shape[d]);
  if (k < n) snprintf(s + k, n - k, "]");
}

int64_t kd_st_numel(const kd_st_tensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
  return n;
}

/* safetensors' dtypes and their bytes per element (0: unknown). */
static size_t dtype_bytes(const char *d, kd_st_dtype *type) {
  static const struct { const char *name; size_t bytes; } known[] = {
    {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"F64", 8}, {"I64", 8}, {"U64", 8}, {"I32", 4}, {"U32", 4},
    {"I16", 2}, {"U16", 2}, {"I8", 1}, {"U8", 1}, {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1}};
  *type = KD_ST_OTHER;
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
    if (strcmp(d, known[i].name) == 0) {
      if (i < 3) *type = (kd_st_dtype)i;
      return known[i].bytes;
    }
  return 0;
}

static kd_st_tensor *new_tensor(kd_st_model *m, kd_err *e) {
  if (m->n == m->cap) {
    const int cap = m->cap ? 2 * m->cap : 256;
    kd_st_tensor *t = realloc(m->t, (size_t)cap * sizeof *t);
    if (!t) {
      kd_fail(e, KD_ERR_RUNTIME, "safetensors: out of memory for the tensor list");
      return NULL;
    }
    m->t = t, m->cap = cap;
  }
  kd_st_tensor *t = &m->t[m->n++];
  memset(t, 0, sizeof *t);
  return t;
}

static int non_negative_int(const kd_json *v, uint64_t *out) {
  if (!v || v->type != KD_JSON_NUMBER || !v->is_int || v->integer < 0) return 0;
  *out = (uint64_t)v->integer;
  return 1;
}

/* One header member: dtype, shape and data_offsets, the bytes they need. */
static int parse_entry(kd_st_tensor *t, const kd_json *v, const char *path, kd_err *e) {
  t->name = v->key;
  if (v->type != KD_JSON_OBJECT)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: tensor %s: its header entry is not an object", path, t->name);
  const char *dt = kd_json_get_str(v, "dtype");
  const kd_json *shape = kd_json_get(v, "shape"), *off = kd_json_get(v, "data_offsets");
  if (!dt || !shape || shape->type != KD_JSON_ARRAY || !off || off->type != KD_JSON_ARRAY)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: tensor %s: its header entry needs \"dtype\" (a string), \"shape\" and "
                   "\"data_offsets\" (arrays)", path, t->name);
  snprintf(t->dtype, sizeof t->dtype, "%s", dt);
  const size_t es = dtype_bytes(dt, &t->type);
  if (!es)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: tensor %s: unknown dtype \"%.32s\" (safetensors has F64, F32, F16, BF16, "
                   "I64, I32, I16, I8, U64, U32, U16, U8, BOOL, F8_E4M3, F8_E5M2)", path, t->name, dt);
  if (shape->len > KD_ST_MAX_DIMS)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: tensor %s: %zu dimensions (at most %d)", path, t->name, shape->len,
                   KD_ST_MAX_DIMS);
  uint64_t bytes = es;
  for (const kd_json *d = shape->child; d; d = d->next) {
    uint64_t x;
    if (!non_negative_int(d, &x) || (x && bytes > UINT64_MAX / x))
      return kd_fail(e, KD_ERR_RUNTIME, "%s: tensor %s: its shape holds something that is not a size", path, t->name);
    t->shape[t->ndim++] = (int64_t)x;
    bytes *= x;
  }
  if (off->len != 2 || !non_negative_int(off->child, &t->begin) || !non_negative_int(off->child->next, &t->end) ||
      t->end < t->begin)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: tensor %s: data_offsets must be [begin, end], integers with begin <= end",
                   path, t->name);
  if (t->end - t->begin != bytes) {
    char sh[160];
    kd_st_shape_text(sh, sizeof sh, t->ndim, t->shape);
    return kd_fail(e, KD_ERR_RUNTIME, "%s: tensor %s: data_offsets [%llu, %llu) hold %llu bytes, but %s %s takes %llu",
                   path, t->name, (unsigned long long)t->begin, (unsigned long long)t->end,
                   (unsigned long long)(t->end - t->begin), dt, sh, (unsigned long long)bytes);
  }
  return KD_OK;
}

static int by_offset(const void *x, const void *y) {
  const kd_st_tensor *a = *(kd_st_tensor *const *)x, *b = *(kd_st_tensor *const *)y;
  if (a->begin != b->begin) return a->begin < b->begin ? -1 : 1;
  return (a->end > b->end) - (a->end < b->end);
}

/* The tensors of one file [from, m->n) lie within its data, one after another with no gap or overlap, and
 * nothing follows the last. */
static int check_layout(kd_st_model *m, int from, const st_file *sf, kd_err *e) {
  const int n = m->n - from;
  for (int i = from; i < m->n; i++)
    if (m->t[i].end > sf->data_len)
      return kd_fail(e, KD_ERR_RUNTIME, "%s: tensor %s: data_offsets [%llu, %llu) run past the end of the data "
                     "(%llu bytes after the header): the file is truncated or the offsets are wrong", sf->path,
                     m->t[i].name, (unsigned long long)m->t[i].begin, (unsigned long long)m->t[i].end,
                     (unsigned long long)sf->data_len);
  kd_st_tensor **s = kd_malloc(sizeof *s * (size_t)(n ? n : 1), "safetensors layout", e);
  if (!s) return e->code;
  for (int i = 0; i < n; i++) s[i] = &m->t[from + i];
  qsort(s, (size_t)n, sizeof *s, by_offset);
  uint64_t at = 0;
  const char *prev = NULL;
  for (int i = 0; i < n && !e->code; i++) {
    if (s[i]->begin < at)
      kd_fail(e, KD_ERR_RUNTIME, "%s: tensor %s: data_offsets [%llu, %llu) overlap those of tensor %s (which end at "
              "%llu)", sf->path, s[i]->name, (unsigned long long)s[i]->begin, (unsigned long long)s[i]->end, prev,
              (unsigned long long)at);
    else if (s[i]->begin > at)
      kd_fail(e, KD_ERR_RUNTIME, "%s: tensor %s: data_offsets [%llu, %llu) leave a gap of %llu bytes after %s%s",
              sf->path, s[i]->name, (unsigned long long)s[i]->begin, (unsigned long long)s[i]->end,
              (unsigned long long)(s[i]->begin - at), prev ? "tensor " : "the header", prev ? prev : "");
    at = s[i]->end;
    prev = s[i]->name;
  }
  free(s);
  if (!e->code && at != sf->data_len)
    kd_fail(e, KD_ERR_RUNTIME, "%s: %llu bytes after the end of the last tensor%s%s (data_offsets end at %llu of "
            "%llu)", sf->path, (unsigned long long)(sf->data_len - at), prev ? ", " : "", prev ? prev : "",
            (unsigned long long)at, (unsigned long long)sf->data_len);
  return e->code;
}

/* Two members of one name: JSON allows them, safetensors does not (which would a reader take?). */
static int check_unique(const kd_st_model *m, int from, const char *path, kd_err *e) {
  for (int i = from; i < m->n; i++)
    for (int j = 0; j < i; j++)
      if (strcmp(m->t[i].name, m->t[j].name) == 0)
        return kd_fail(e, KD_ERR_RUNTIME, "%s: tensor %s is in the header twice%s%s", path, m->t[i].name,
                       j < from ? " (also in " : "", j < from ? "another file of the model)" : "");
  return KD_OK;
}

static int read_at(FILE *f, uint64_t pos, void *buf, size_t n) {
  if (fseeko(f, (off_t)pos, SEEK_SET) != 0) return -1;
  return fread(buf, 1, n, f) == n ? 0 : -1;
}

/* Open one .safetensors file as file `idx` of m, its tensors appended to m->t. */
static int open_file(kd_st_model *m, const char *path, kd_err *e) {
  st_file *sf = &m->files[m->n_files];
  memset(sf, 0, sizeof *sf);
  if (!(sf->path = dup_str(path, e))) return e->code;
  m->n_files++;
  if (!(sf->f = fopen(path, "rb"))) return kd_fail(e, KD_ERR_RUNTIME, "%s: cannot open (%s)", path, strerror(errno));
  off_t size = -1;
  if (fseeko(sf->f, 0, SEEK_END) == 0) size = ftello(sf->f);
  if (size < 0) return kd_fail(e, KD_ERR_RUNTIME, "%s: cannot read (%s)", path, strerror(errno));
  uint64_t hlen = 0;
  if ((uint64_t)size < 8)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: %lld bytes, too short for a safetensors file (it begins with an 8-byte "
                   "header length)", path, (long long)size);
  if (read_at(sf->f, 0, &hlen, 8)) return kd_fail(e, KD_ERR_RUNTIME, "%s: cannot read the header length", path);
  if (hlen > (uint64_t)size - 8)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: the header length %llu runs past the end of the file (%lld bytes): "
                   "truncated, or not a safetensors file", path, (unsigned long long)hlen, (long long)size);
  if (hlen > MAX_HEADER)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: a header of %llu bytes (safetensors allows 100 MB): not a safetensors "
                   "file", path, (unsigned long long)hlen);
  char *h = kd_malloc((size_t)hlen + 1, "safetensors header", e);
  if (!h) return e->code;
  char what[KD_PATH_MAX + 32];
  snprintf(what, sizeof what, "%s (its safetensors header)", path);
  int rc = read_at(sf->f, 8, h, (size_t)hlen) ? kd_fail(e, KD_ERR_RUNTIME, "%s: cannot read the header", path)
                                               : kd_json_parse(&sf->doc, h, (size_t)hlen, what, e);
  free(h);
  if (rc) return rc;
  sf->data_start = 8 + hlen;
  sf->data_len = (uint64_t)size - 8 - hlen;
  const kd_json *root = kd_json_root(sf->doc);
  if (root->type != KD_JSON_OBJECT)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: the header is not a JSON object of tensors", path);
  const int from = m->n;
  for (const kd_json *v = root->child; v; v = v->next) {
    if (strcmp(v->key, "__metadata__") == 0) {
      if (v->type != KD_JSON_OBJECT)
        return kd_fail(e, KD_ERR_RUNTIME, "%s: __metadata__ is not an object of strings", path);
      continue;
    }
    kd_st_tensor *t = new_tensor(m, e);
    if (!t) return e->code;
    t->file = m->n_files - 1;
    if (parse_entry(t, v, path, e)) return e->code;
  }
  return check_unique(m, from, path, e) || check_layout(m, from, sf, e) ? e->code : KD_OK;
}

static int ends_with(const char *s, const char *suffix) {
  const size_t n = strlen(s), k = strlen(suffix);
  return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* The shard named in an index: a plain file name in the index's directory. */
static int shard_path(char *out, size_t n, const char *index, const char *tensor, const char *name, kd_err *e) {
  if (!*name || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: weight_map puts tensor %s in \"%.200s\": expected a file name in the "
                   "index's directory", index, tensor, name);
  const char *slash = strrchr(index, '/');
  if (snprintf(out, n, "%.*s%s", slash ? (int)(slash - index + 1) : 0, index, name) >= (int)n)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: the path of shard %s is too long", index, name);
  return KD_OK;
}

static int find_file(const kd_st_model *m, const char *path) {
  for (int i = 0; i < m->n_files; i++)
    if (strcmp(m->files[i].path, path) == 0) return i;
  return -1;
}

/* Every tensor the weight_map lists is in the file it names, and every tensor of a shard is listed there. */
static int check_weight_map(kd_st_model *m, const kd_json *map, const char *index, kd_err *e) {
  char p[KD_PATH_MAX];
  for (const kd_json *v = map->child; v; v = v->next) {
    if (shard_path(p, sizeof p, index, v->key, v->str, e)) return e->code;
    const kd_st_tensor *t = kd_st_find(m, v->key);
    if (!t || t->file != find_file(m, p))
      return kd_fail(e, KD_ERR_RUNTIME, "%s: weight_map puts tensor %s in %s, which has no such tensor", index,
                     v->key, p);
  }
  for (int i = 0; i < m->n; i++) {
    const kd_json *v = kd_json_get(map, m->t[i].name);
    if (!v)
      return kd_fail(e, KD_ERR_RUNTIME, "%s: tensor %s is not in the weight_map of %s", m->files[m->t[i].file].path,
                     m->t[i].name, index);
  }
  return KD_OK;
}

static int open_index(kd_st_model *m, const char *index, kd_err *e) {
  kd_json_doc *doc = NULL;
  if (kd_json_parse_file(&doc, index, e)) return e->code;
  const kd_json *map = kd_json_get(kd_json_root(doc), "weight_map");
  int rc = KD_OK;
  if (!map || map->type != KD_JSON_OBJECT || map->len == 0)
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: no \"weight_map\" object (tensor name -> file): not a safetensors index",
                 index);
  for (const kd_json *v = rc ? NULL : map->child; v && !rc; v = v->next)
    if (v->type != KD_JSON_STRING)
      rc = kd_fail(e, KD_ERR_RUNTIME, "%s: weight_map entry of tensor %s is not a file name", index, v->key);
  if (!rc && !(m->files = kd_calloc(map->len, sizeof *m->files, "safetensors files", e))) rc = e->code;
  char p[KD_PATH_MAX];
  for (const kd_json *v = rc ? NULL : map->child; v && !rc; v = v->next) {
    rc = shard_path(p, sizeof p, index, v->key, v->str, e);
    if (!rc && find_file(m, p) < 0) rc = open_file(m, p, e);
  }
  if (!rc) rc = check_weight_map(m, map, index, e);
  kd_json_free(doc);
  return rc;
}

int kd_st_open(kd_st_model **out, const char *path, kd_err *e) {
  kd_st_model *m = kd_calloc(1, sizeof *m, "safetensors model", e);
  *out = NULL;
  if (!m) return e->code;
  int rc;
  if (ends_with(path, ".json")) {
    rc = open_index(m, path, e);
  } else {
    m->files = kd_calloc(1, sizeof *m->files, "safetensors files", e);
    rc = m->files ? open_file(m, path, e) : e->code;
  }
  if (rc) {
    kd_st_close(m);
    return rc;
  }
  *out = m;
  return KD_OK;
}

int kd_st_read(const kd_st_model *m, const kd_st_tensor *t, float *out, kd_err *e) {
  const st_file *sf = &m->files[t->file];
  if (t->type == KD_ST_OTHER)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: tensor %s is %s; kd reads F32, F16 and BF16 tensors", sf->path, t->name,
                   t->dtype);
  const size_t n = (size_t)kd_st_numel(t);
  if (fseeko(sf->f, (off_t)(sf->data_start + t->begin), SEEK_SET) != 0)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: tensor %s: cannot seek (%s)", sf->path, t->name, strerror(errno));
  if (t->type == KD_ST_F32) {
    if (fread(out, 4, n, sf->f) != n)
      return kd_fail(e, KD_ERR_RUNTIME, "%s: tensor %s: cannot read its data (%s)", sf->path, t->name,
                     ferror(sf->f) ? strerror(errno) : "the file ended early");
    return KD_OK;
  }
  uint16_t buf[4096];
  for (size_t i = 0; i < n; i += 4096) {
    const size_t k = n - i < 4096 ? n - i : 4096;
    if (fread(buf, 2, k, sf->f) != k)
      return kd_fail(e, KD_ERR_RUNTIME, "%s: tensor %s: cannot read its data (%s)", sf->path, t->name,
                     ferror(sf->f) ? strerror(errno) : "the file ended early");
    for (size_t j = 0; j < k; j++) out[i + j] = t->type == KD_ST_F16 ? kd_half_to_float(buf[j]) : bf16_to_float(buf[j]);
  }
  return KD_OK;
}
