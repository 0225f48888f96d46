#include "nn/kvcache.h"

#include <stdlib.h>
#include <string.h>

#include "nn/attention.h"

static size_t plan(kd_kv_cache *c, char *base) {
  const size_t kv = (size_t)c->n * c->ctx * c->width;
  size_t used = 0;
#define TAKE(p, count)                                                       \
  do {                                                                       \
    used = (used + 63) & ~(size_t)63;                                        \
    if (base) (p) = (float *)(void *)(base + used);                          \
    used += sizeof(float) * (size_t)(count);                                 \
  } while (0)
  for (int l = 0; l < c->layers; l++) {
    TAKE(c->k[l], kv);
    TAKE(c->v[l], kv);
  }
  TAKE(c->spare, kv);
  TAKE(c->scores, c->ctx);
#undef TAKE
  return used;
}

int kd_kv_cache_init(kd_kv_cache *c, int n, int layers, int ctx, int width, kd_err *e) {
  memset(c, 0, sizeof *c);
  c->n = n, c->layers = layers, c->ctx = ctx, c->width = width;
  c->k = kd_calloc((size_t)layers, sizeof *c->k, "decode cache", e);
  c->v = kd_calloc((size_t)layers, sizeof *c->v, "decode cache", e);
  c->mem = e->code ? NULL : kd_malloc(plan(c, NULL), "decode cache", e);
  if (e->code) {
    kd_kv_cache_free(c);
    return e->code;
  }
  plan(c, c->mem);
  return KD_OK;
}

void kd_kv_cache_free(kd_kv_cache *c) {
  free(c->mem);
  free(c->k);
  free(c->v);
  memset(c, 0, sizeof *c);
}

void kd_kv_cache_put(kd_kv_cache *c, int l, const float *qkv, int ld, int k_col, int v_col, const int *pos, int n) {
  const size_t w = (size_t)c->width;
  for (int i = 0; i < n; i++) {
    const size_t at = ((size_t)i * c->ctx + pos[i]) * w;
    memcpy(c->k[l] + at, qkv + (size_t)i * ld + k_col, sizeof(float) * w);
    memcpy(c->v[l] + at, qkv + (size_t)i * ld + v_col, sizeof(float) * w);
  }
}

void kd_kv_cache_attend(float *y, kd_kv_cache *c, int l, const float *qkv, int ld, int q_col, const int *pos, int n,
                        int H, int hd) {
  kd_attention_cached(y, c->scores, qkv + q_col, ld, c->k[l], c->v[l], (size_t)c->ctx * c->width, pos, n, H,
                      c->width / hd, hd);
}

int kd_kv_cache_reorder(kd_kv_cache *c, const int *src, int n, int len, kd_err *e) {
  if (n > c->n || len < 0 || len > c->ctx)
    return kd_fail(e, KD_ERR_RUNTIME, "decode: reorder of %d sequences over %d positions", n, len);
  for (int i = 0; i < n; i++)
    if (src[i] < 0 || src[i] >= c->n) return kd_fail(e, KD_ERR_RUNTIME, "decode: reorder from sequence %d", src[i]);
  int identity = 1;
  for (int i = 0; i < n && identity; i++) identity = src[i] == i;
  if (identity) return KD_OK;
  /* Each layer's keys (values) are gathered into the spare buffer, which then takes the layer's place, the
   * layer's old buffer becoming the spare: one copy per sequence, not two. Only the first len positions of a
   * sequence hold keys and values, so the copy is [n, len, width], not the context. */
  const size_t row = (size_t)c->ctx * c->width, used = (size_t)len * c->width;
  for (int l = 0; l < c->layers; l++)
    for (int kv = 0; kv < 2; kv++) {
      float **buf = kv ? &c->v[l] : &c->k[l], *old = *buf;
      for (int i = 0; i < n; i++) memcpy(c->spare + i * row, old + (size_t)src[i] * row, sizeof(float) * used);
      *buf = c->spare;
      c->spare = old;
    }
  return KD_OK;
}
