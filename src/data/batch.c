#include "kd/data.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "kd/teacher.h"

void kd_shard_range(int64_t N, int P, int r, int64_t *lo, int64_t *hi) {
  /* 128-bit products: N * P may exceed 2^63 only in theory, but be exact. */
  *lo = (int64_t)(((__int128)r * N) / P);
  *hi = (int64_t)(((__int128)(r + 1) * N) / P);
}

int kd_local_batch(int B, int P, int r) {
  return (int)(((int64_t)(r + 1) * B) / P - ((int64_t)r * B) / P);
}

int kd_batch_init(kd_batch *b, kd_input kind, int capacity, int width, kd_err *e) {
  memset(b, 0, sizeof *b);
  b->kind = kind;
  b->width = width;
  b->alloc_width = width;
  b->capacity = capacity;
  const size_t cells = (size_t)capacity * (size_t)width;
  if (kind == KD_INPUT_FEATURES) {
    b->x = kd_malloc(cells * sizeof(float), "batch inputs", e);
    b->y = kd_malloc((size_t)capacity * sizeof(int32_t), "batch labels", e);
  } else {
    b->tokens = kd_malloc(cells * sizeof(int32_t), "batch tokens", e);
    b->mask = kd_malloc(cells, "batch loss mask", e);
    b->y = kd_malloc((size_t)capacity * sizeof(int32_t), "batch row labels", e);
  }
  b->row_ids = kd_malloc((size_t)capacity * sizeof(int64_t), "batch row ids", e);
  if (e->code) kd_batch_free(b);
  return e->code;
}

void kd_batch_free(kd_batch *b) {
  free(b->x);
  free(b->tokens);
  free(b->mask);
  free(b->y);
  free(b->row_ids);
  b->x = NULL;
  b->tokens = NULL;
  b->mask = NULL;
  b->y = NULL;
  b->row_ids = NULL;
}

int kd_batch_positions(const kd_batch *b) { return b->kind == KD_INPUT_TOKENS ? b->width : 1; }

int64_t kd_batch_targets(const kd_batch *b, int32_t *y) {
  int64_t n = 0;
  if (b->kind == KD_INPUT_FEATURES) {
    memcpy(y, b->y, sizeof(int32_t) * (size_t)b->rows);
    return b->rows;
  }
  const int T = b->width;
  for (int r = 0; r < b->rows; r++)
    for (int p = 0; p < T; p++) {
      const size_t k = (size_t)r * T + p;
      const int target = p + 1 < T && b->mask[k + 1];
      y[k] = !target ? KD_Y_IGNORE : b->y[r] < 0 ? -1 : b->tokens[k + 1];
      n += target;
    }
  return n;
}

void kd_batch_next_tokens(const kd_batch *b, int32_t *next) {
  const int T = b->width;
  for (int r = 0; r < b->rows; r++)
    for (int p = 0; p < T; p++) {
      const size_t k = (size_t)r * T + p;
      next[k] = p + 1 < T && b->mask[k + 1] ? b->tokens[k + 1] : -1;
    }
}

void kd_batch_trim(kd_batch *b, float *t_logits, int C) {
  if (b->kind != KD_INPUT_TOKENS) return;
  const int T = b->width;
  int last = 0; /* the last position holding a target (position 0 never does) */
  for (int r = 0; r < b->rows; r++)
    for (int p = T - 1; p > last; p--)
      if (b->mask[(size_t)r * T + p]) {
        last = p;
        break;
      }
  const int W = last + 1;
  if (W == T) return;
  /* rows move down to stride W < T: row r's new place never overlaps a later row's old one */
  for (int r = 1; r < b->rows; r++) {
    memmove(b->tokens + (size_t)r * W, b->tokens + (size_t)r * T, sizeof(int32_t) * (size_t)W);
    memmove(b->mask + (size_t)r * W, b->mask + (size_t)r * T, (size_t)W);
    if (t_logits)
      memmove(t_logits + (size_t)r * W * C, t_logits + (size_t)r * T * C, sizeof(float) * (size_t)W * C);
  }
  b->width = W;
}

void kd_batch_untrim(kd_batch *b) { b->width = b->alloc_width; }

void kd_batch_unlabel(kd_batch *b, uint64_t key, double fraction) {
  if (!b->y) return;
  for (int i = 0; i < b->rows; i++)
    if (kd_uniform(key, (uint64_t)b->row_ids[i]) >= fraction) b->y[i] = -1;
}

const char *kd_norm_name(kd_norm k) { return k == KD_NORM_STANDARD ? "standard" : k == KD_NORM_MINMAX ? "minmax" : "none"; }

int kd_norm_parse(const char *name, kd_norm *k) {
  if (strcmp(name, "none") == 0) *k = KD_NORM_NONE;
  else if (strcmp(name, "standard") == 0) *k = KD_NORM_STANDARD;
  else if (strcmp(name, "minmax") == 0) *k = KD_NORM_MINMAX;
  else return -1;
  return 0;
}

int kd_preprocess_build(kd_preprocess *p, kd_norm kind, int dim, double n, const double *sum, const double *sumsq,
                        const double *lo, const double *hi, kd_err *e) {
  memset(p, 0, sizeof *p);
  p->kind = kind;
  p->dim = dim;
  if (kind == KD_NORM_NONE) return KD_OK;
  p->offset = kd_malloc(sizeof(float) * (size_t)dim, "normalisation offsets", e);
  p->scale = kd_malloc(sizeof(float) * (size_t)dim, "normalisation scales", e);
  if (e->code) {
    kd_preprocess_free(p);
    return e->code;
  }
  for (int j = 0; j < dim; j++) {
    double off, sc;
    if (kind == KD_NORM_STANDARD) {
      off = sum[j] / n;
      const double var = sumsq[j] / n - off * off;
      sc = var > 0 ? sqrt(var) : 0;
    } else {
      off = lo[j];
      sc = hi[j] - lo[j];
    }
    p->offset[j] = (float)off;
    p->scale[j] = (float)(sc > 1e-6 ? sc : 1e-6); /* a constant feature maps to 0, not to inf */
  }
  return KD_OK;
}

void kd_preprocess_free(kd_preprocess *p) {
  free(p->offset);
  free(p->scale);
  p->offset = p->scale = NULL;
  p->kind = KD_NORM_NONE;
}
