#include "interop/gguf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomic.h"
#include "core/half.h"

/* GGUF's value types (gguf.h of ggml). */
enum { T_U32 = 4, T_F32 = 6, T_BOOL = 7, T_STR = 8, T_ARR = 9, T_I32 = 5 };
#define GGUF_ALIGN 32

typedef struct gguf_kv {
  char *key;
  int type;        /* T_*; T_ARR with arr_type */
  int arr_type;
  uint64_t u;      /* scalar bits (u32, f32 as bits, bool) */
  char *blob;      /* string bytes, or array elements (strings: uint64 length + bytes each, as written) */
  size_t blob_len;
  uint64_t n;      /* array elements */
} gguf_kv;

typedef struct gguf_tensor {
  char *name;
  const float *data;
  int64_t rows, cols;
  int ndim;        /* 1: a vector [rows] */
  kd_gguf_dtype dtype;
  uint64_t offset; /* in the data section */
} gguf_tensor;

struct kd_gguf {
  gguf_kv *kv;
  size_t n_kv, cap_kv;
  gguf_tensor *t;
  size_t n_t, cap_t;
};

int kd_gguf_new(kd_gguf **g, kd_err *e) {
  *g = kd_calloc(1, sizeof **g, "gguf writer", e);
  return *g ? KD_OK : e->code;
}

void kd_gguf_free(kd_gguf *g) {
  if (!g) return;
  for (size_t i = 0; i < g->n_kv; i++) free(g->kv[i].key), free(g->kv[i].blob);
  for (size_t i = 0; i < g->n_t; i++) free(g->t[i].name);
  free(g->kv);
  free(g->t);
  free(g);
}

static char *dup(const char *s, kd_err *e) {
  char *d = kd_malloc(strlen(s) + 1, "gguf key", e);
  if (d) memcpy(d, s, strlen(s) + 1);
  return d;
}

static gguf_kv *add_kv(kd_gguf *g, const char *key, int type, kd_err *e) {
  if (g->n_kv == g->cap_kv) {
    const size_t cap = g->cap_kv ? 2 * g->cap_kv : 32;
    gguf_kv *kv = realloc(g->kv, cap * sizeof *kv);
    if (!kv) {
      kd_fail(e, KD_ERR_RUNTIME, "gguf: out of memory for the metadata");
      return NULL;
    }
    g->kv = kv, g->cap_kv = cap;
  }
  gguf_kv *kv = &g->kv[g->n_kv];
  memset(kv, 0, sizeof *kv);
  if (!(kv->key = dup(key, e))) return NULL;
  kv->type = type;
  g->n_kv++;
  return kv;
}

int kd_gguf_u32(kd_gguf *g, const char *key, uint32_t v, kd_err *e) {
  gguf_kv *kv = add_kv(g, key, T_U32, e);
  if (kv) kv->u = v;
  return e->code;
}

int kd_gguf_f32(kd_gguf *g, const char *key, float v, kd_err *e) {
  gguf_kv *kv = add_kv(g, key, T_F32, e);
  uint32_t bits;
  memcpy(&bits, &v, 4);
  if (kv) kv->u = bits;
  return e->code;
}

int kd_gguf_bool(kd_gguf *g, const char *key, int v, kd_err *e) {
  gguf_kv *kv = add_kv(g, key, T_BOOL, e);
  if (kv) kv->u = v != 0;
  return e->code;
}

int kd_gguf_str(kd_gguf *g, const char *key, const char *v, kd_err *e) {
  gguf_kv *kv = add_kv(g, key, T_STR, e);
  if (!kv || !(kv->blob = dup(v, e))) return e->code;
  kv->blob_len = strlen(v);
  return KD_OK;
}

int kd_gguf_str_array(kd_gguf *g, const char *key, const char *const *v, const size_t *len, size_t n, kd_err *e) {
  gguf_kv *kv = add_kv(g, key, T_ARR, e);
  if (!kv) return e->code;
  kv->arr_type = T_STR;
  kv->n = n;
  size_t total = 0;
  for (size_t i = 0; i < n; i++) total += 8 + len[i];
  if (!(kv->blob = kd_malloc(total ? total : 1, "gguf string array", e))) return e->code;
  char *p = kv->blob;
  for (size_t i = 0; i < n; i++) {
    const uint64_t l = len[i];
    memcpy(p, &l, 8);
    memcpy(p + 8, v[i], len[i]);
    p += 8 + len[i];
  }
  kv->blob_len = total;
  return KD_OK;
}

int kd_gguf_i32_array(kd_gguf *g, const char *key, const int32_t *v, size_t n, kd_err *e) {
  gguf_kv *kv = add_kv(g, key, T_ARR, e);
  if (!kv) return e->code;
  kv->arr_type = T_I32;
  kv->n = n;
  if (!(kv->blob = kd_malloc(n ? 4 * n : 1, "gguf array", e))) return e->code;
  memcpy(kv->blob, v, 4 * n);
  kv->blob_len = 4 * n;
  return KD_OK;
}

static uint64_t tensor_bytes(const gguf_tensor *t) {
  return (uint64_t)t->rows * (uint64_t)t->cols * (t->dtype == KD_GGUF_F16 ? 2 : 4);
}

static uint64_t align_up(uint64_t x) { return (x + GGUF_ALIGN - 1) / GGUF_ALIGN * GGUF_ALIGN; }

int kd_gguf_tensor(kd_gguf *g, const char *name, const float *data, int ndim, int64_t rows, int64_t cols,
                   kd_gguf_dtype dtype, kd_err *e) {
  if (ndim != 1 && ndim != 2) return kd_fail(e, KD_ERR_RUNTIME, "gguf: %s has %d dimensions (1 or 2)", name, ndim);
  if (ndim == 1 && cols != 1) return kd_fail(e, KD_ERR_RUNTIME, "gguf: %s: a vector of %lld columns", name, (long long)cols);
  if (g->n_t == g->cap_t) {
    const size_t cap = g->cap_t ? 2 * g->cap_t : 64;
    gguf_tensor *t = realloc(g->t, cap * sizeof *t);
    if (!t) return kd_fail(e, KD_ERR_RUNTIME, "gguf: out of memory for the tensor list");
    g->t = t, g->cap_t = cap;
  }
  gguf_tensor *t = &g->t[g->n_t];
  memset(t, 0, sizeof *t);
  if (!(t->name = dup(name, e))) return e->code;
  t->data = data, t->rows = rows, t->cols = cols, t->ndim = ndim, t->dtype = dtype;
  t->offset = g->n_t ? align_up(g->t[g->n_t - 1].offset + tensor_bytes(&g->t[g->n_t - 1])) : 0;
  g->n_t++;
  return KD_OK;
}

/* ---- writing ---- */

typedef struct out {
  FILE *f;
  const char *path;
  uint64_t pos;
  int failed;
} out;

static void put(out *o, const void *p, size_t n) {
  if (o->failed || !n) return;
  errno = 0;
  if (fwrite(p, 1, n, o->f) != n) o->failed = errno ? errno : EIO;
  o->pos += n;
}
static void put_u32(out *o, uint32_t v) { put(o, &v, 4); }
static void put_u64(out *o, uint64_t v) { put(o, &v, 8); }
static void put_str(out *o, const char *s, size_t n) {
  put_u64(o, n);
  put(o, s, n);
}
static void pad(out *o) {
  static const char zeros[GGUF_ALIGN] = {0};
  put(o, zeros, (size_t)(align_up(o->pos) - o->pos));
}

static void put_kv(out *o, const gguf_kv *kv) {
  put_str(o, kv->key, strlen(kv->key));
  put_u32(o, (uint32_t)kv->type);
  switch (kv->type) {
    case T_U32: case T_F32: put_u32(o, (uint32_t)kv->u); break;
    case T_BOOL: { const uint8_t b = (uint8_t)kv->u; put(o, &b, 1); break; }
    case T_STR: put_str(o, kv->blob, kv->blob_len); break;
    default: /* an array */
      put_u32(o, (uint32_t)kv->arr_type);
      put_u64(o, kv->n);
      put(o, kv->blob, kv->blob_len);
  }
}

/* GGUF is little-endian, and so are the machines kd builds for (x86-64, arm64): the bytes go as they are. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the GGUF writer stores the machine's bytes, and GGUF is little-endian"
#endif
static void put_tensor_data(out *o, const gguf_tensor *t) {
  const size_t n = (size_t)(t->rows * t->cols);
  if (t->dtype == KD_GGUF_F32) {
    put(o, t->data, 4 * n);
    return;
  }
  uint16_t buf[4096];
  for (size_t i = 0; i < n; i += 4096) {
    const size_t m = n - i < 4096 ? n - i : 4096;
    for (size_t k = 0; k < m; k++) buf[k] = kd_float_to_half(t->data[i + k]);
    put(o, buf, 2 * m);
  }
}

int kd_gguf_write(const kd_gguf *g, const char *path, kd_err *e) {
  kd_atomic a;
  if (kd_atomic_begin(&a, path, e)) return e->code;
  out o = {fopen(a.tmp, "wb"), a.tmp, 0, 0};
  if (!o.f) return kd_fail(e, KD_ERR_RUNTIME, "%s: cannot create (%s, writing %s)", path, strerror(errno), a.tmp);
  put(&o, "GGUF", 4);
  put_u32(&o, 3);
  put_u64(&o, g->n_t);
  put_u64(&o, g->n_kv);
  for (size_t i = 0; i < g->n_kv; i++) put_kv(&o, &g->kv[i]);
  for (size_t i = 0; i < g->n_t; i++) {
    const gguf_tensor *t = &g->t[i];
    put_str(&o, t->name, strlen(t->name));
    const int vec = t->ndim == 1;
    put_u32(&o, vec ? 1 : 2);
    put_u64(&o, (uint64_t)(vec ? t->rows : t->cols)); /* ne[0]: the innermost (contiguous) dimension */
    if (!vec) put_u64(&o, (uint64_t)t->rows);
    put_u32(&o, t->dtype == KD_GGUF_F16 ? 1 : 0);
    put_u64(&o, t->offset);
  }
  pad(&o);
  const uint64_t base = o.pos;
  for (size_t i = 0; i < g->n_t; i++) { /* each tensor padded, the last too: ggml's reader sums padded sizes */
    put_tensor_data(&o, &g->t[i]);
    if (!o.failed && o.pos - base != g->t[i].offset + tensor_bytes(&g->t[i])) o.failed = EINVAL;
    pad(&o);
  }
  const int closed = fclose(o.f);
  if (o.failed || closed) {
    kd_atomic_abort(&a);
    return kd_fail(e, KD_ERR_RUNTIME, "%s: writing failed (%s)", path, strerror(o.failed ? o.failed : errno));
  }
  return kd_atomic_commit(&a, e);
}
