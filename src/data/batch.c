#include "kd/data.h"

#include <stdlib.h>
#include <string.h>

#include "core/rng.h"

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
  b->capacity = capacity;
  const size_t cells = (size_t)capacity * (size_t)width;
  if (kind == KD_INPUT_FEATURES) {
    b->x = kd_malloc(cells * sizeof(float), "batch inputs", e);
    b->y = kd_malloc((size_t)capacity * sizeof(int32_t), "batch labels", e);
  } else {
    b->tokens = kd_malloc(cells * sizeof(int32_t), "batch tokens", e);
    b->mask = kd_malloc(cells, "batch loss mask", e);
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

void kd_batch_unlabel(kd_batch *b, uint64_t key, double fraction) {
  if (!b->y) return;
  for (int i = 0; i < b->rows; i++)
    if (kd_uniform(key, (uint64_t)b->row_ids[i]) >= fraction) b->y[i] = -1;
}
