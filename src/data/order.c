#include "data/order.h"

#include <stdlib.h>
#include <string.h>

#include "core/rng.h"

int kd_order_init(kd_order *o, int64_t rows, int64_t block, int64_t window, uint64_t seed, kd_err *e) {
  memset(o, 0, sizeof *o);
  if (rows < 1 || block < 1 || window < 1)
    return kd_fail(e, KD_ERR_RUNTIME, "stream order: %lld rows in blocks of %lld, windows of %lld", (long long)rows,
                   (long long)block, (long long)window);
  if (block > rows) block = rows;
  window = (window + block - 1) / block * block; /* whole blocks; the last window may be shorter */
  o->rows = rows;
  o->block = block;
  o->window = window;
  o->n_blocks = (rows + block - 1) / block;
  o->n_windows = (rows + window - 1) / window;
  o->seed = seed;
  o->epoch = -1;
  o->bperm = kd_malloc(sizeof(int64_t) * (size_t)o->n_blocks, "stream block order", e);
  o->work = kd_malloc(sizeof(int64_t) * (size_t)(window < rows ? window : rows), "stream window order", e);
  if (e->code) kd_order_free(o);
  return e->code;
}

void kd_order_free(kd_order *o) {
  free(o->bperm);
  free(o->work);
  memset(o, 0, sizeof *o);
}

int64_t kd_order_window_rows(const kd_order *o, int64_t w) {
  const int64_t a = w * o->window, b = a + o->window < o->rows ? a + o->window : o->rows;
  return b > a ? b - a : 0;
}

static void epoch_blocks(kd_order *o, int64_t epoch) {
  if (o->epoch == epoch) return;
  const int64_t full = o->rows / o->block; /* the short block, if any, is not shuffled: it stays last */
  kd_permutation(o->bperm, full, kd_key(o->seed, KD_RNG_STREAM, (uint64_t)epoch, 0));
  if (full < o->n_blocks) o->bperm[full] = full;
  o->epoch = epoch;
}

void kd_order_window(kd_order *o, int64_t epoch, int64_t w, int64_t *rows) {
  const int64_t n = kd_order_window_rows(o, w), per = o->window / o->block;
  if (o->in_order) {
    for (int64_t i = 0; i < n; i++) rows[i] = w * o->window + i;
    return;
  }
  epoch_blocks(o, epoch);
  /* the window's blocks, in the epoch's sequence, make the rows at positions 0..n-1 before the shuffle */
  int64_t k = 0;
  for (int64_t j = w * per; j < (w + 1) * per && j < o->n_blocks && k < n; j++) {
    const int64_t b0 = o->bperm[j] * o->block;
    for (int64_t r = b0; r < b0 + o->block && r < o->rows; r++) o->work[k++] = r;
  }
  int64_t *perm = rows; /* the shuffle, then the rows in its order, in place */
  kd_permutation(perm, n, kd_key(o->seed, KD_RNG_STREAM, (uint64_t)epoch, 1 + (uint64_t)w));
  for (int64_t i = 0; i < n; i++) rows[i] = o->work[perm[i]];
}

void kd_order_defaults(double row_bytes, int64_t rows, int64_t *block, int64_t *window) {
  int64_t b = 1;
  while (b < 65536 && (double)(2 * b) * row_bytes <= 4194304.0) b *= 2;
  (void)rows; /* kd_order_init takes a block over N as N */
  *block = b;
  *window = 16 * b;
}
