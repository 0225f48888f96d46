/* The streamed order of an epoch, defined on global row numbers only, so
 * it depends on neither the rank count, nor the memory budget, nor how the
 * rows are split into files:
 *   - the rows [0, N) form blocks of `block` consecutive rows; the full
 *     blocks are shuffled (the short last block, if any, stays last);
 *   - consecutive runs of window/block blocks of that sequence form
 *     windows of `window` positions (the last one may be shorter);
 *   - the rows of each window are shuffled together.
 * Position p of the epoch's sequence is a row; a global batch of B is
 * positions [s*B, (s+1)*B). Keys: (seed, KD_RNG_STREAM, epoch, 0) for the
 * blocks, (seed, KD_RNG_STREAM, epoch, 1 + w) for window w. */
#ifndef KD_DATA_ORDER_H
#define KD_DATA_ORDER_H

#include <stdint.h>

#include "kd/error.h"

typedef struct kd_order {
  int64_t rows, block, window;   /* N, and the block and window in rows (window a multiple of block) */
  int64_t n_blocks, n_windows;
  uint64_t seed;
  int64_t epoch;                 /* whose blocks bperm holds (-1: none yet) */
  int64_t *bperm;                /* [n_blocks] the epoch's sequence of blocks */
  int64_t *work;                 /* [min(window, N)] */
  int in_order;                  /* no shuffle: position p is row p (evaluation, inference) */
} kd_order;

/* window is rounded up to a whole number of blocks. */
int kd_order_init(kd_order *o, int64_t rows, int64_t block, int64_t window, uint64_t seed, kd_err *e);
void kd_order_free(kd_order *o);
/* Positions of window w: [w * window, min((w + 1) * window, N)). */
int64_t kd_order_window_rows(const kd_order *o, int64_t w);
/* The rows at the positions of window w of epoch `epoch`, in order, into
 * rows [kd_order_window_rows]. */
void kd_order_window(kd_order *o, int64_t epoch, int64_t w, int64_t *rows);
/* The block and window a run uses when none is asked for: blocks of about
 * 4 MiB of buffered rows (a power of two, so they align with chunks of a
 * power of two rows), windows of 16 blocks. */
void kd_order_defaults(double row_bytes, int64_t rows, int64_t *block, int64_t *window);

#endif
