/* Shard ranges, per-rank batch sizes and shuffles. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kd/data.h"
#include "core/rng.h"
#include "data/order.h"

/* The streamed order (data/order.h): each epoch a permutation of the rows;
 * window w holds exactly the rows of its blocks; reproducible; epochs differ. */
static void check_order(int64_t N, int64_t block, int64_t window) {
  kd_order o, o2;
  kd_err e;
  kd_err_clear(&e);
  CHECK(kd_order_init(&o, N, block, window, 9, &e) == KD_OK && kd_order_init(&o2, N, block, window, 9, &e) == KD_OK,
        "init: %s", e.msg);
  int64_t *seq = malloc(sizeof(int64_t) * (size_t)N * 3), *seq2 = seq + N, *other = seq + 2 * N;
  char *seen = calloc((size_t)N, 1), *blocks = calloc((size_t)o.n_blocks, 1);
  CHECK(o.window % o.block == 0 || o.window == N, "window %lld not whole blocks of %lld", (long long)o.window,
        (long long)o.block);
  int64_t p = 0;
  int ok = 1;
  for (int64_t w = 0; w < o.n_windows; w++) {
    const int64_t n = kd_order_window_rows(&o, w);
    kd_order_window(&o, 0, w, seq + p);
    kd_order_window(&o2, 0, w, seq2 + p);
    memset(blocks, 0, (size_t)o.n_blocks);
    int64_t rows_of_blocks = 0;
    for (int64_t i = p; i < p + n; i++) {
      if (seq[i] < 0 || seq[i] >= N || seen[seq[i]]) ok = 0;
      else seen[seq[i]] = 1;
      if (ok && !blocks[seq[i] / o.block]) {
        blocks[seq[i] / o.block] = 1;
        const int64_t b0 = seq[i] / o.block * o.block;
        rows_of_blocks += (b0 + o.block < N ? b0 + o.block : N) - b0;
      }
    }
    CHECK(rows_of_blocks == n, "N=%lld block=%lld window=%lld: window %lld holds parts of blocks", (long long)N,
          (long long)block, (long long)window, (long long)w);
    p += n;
  }
  CHECK(ok && p == N, "N=%lld block=%lld window=%lld: not a permutation", (long long)N, (long long)block,
        (long long)window);
  CHECK(memcmp(seq, seq2, sizeof(int64_t) * (size_t)N) == 0, "not reproducible");
  p = 0;
  for (int64_t w = 0; w < o.n_windows; w++) {
    kd_order_window(&o, 1, w, other + p);
    p += kd_order_window_rows(&o, w);
  }
  if (N >= 100) CHECK(memcmp(seq, other, sizeof(int64_t) * (size_t)N) != 0, "epochs 0 and 1 share an order");
  free(seq);
  free(seen);
  free(blocks);
  kd_order_free(&o);
  kd_order_free(&o2);
}

static void check_stream_order(void) {
  const int64_t Ns[] = {1, 7, 100, 1000, 4099};
  const int64_t blocks[] = {1, 4, 64, 5000}, windows[] = {1, 10, 256, 100000};
  for (size_t i = 0; i < sizeof Ns / sizeof *Ns; i++)
    for (size_t j = 0; j < sizeof blocks / sizeof *blocks; j++)
      for (size_t k = 0; k < sizeof windows / sizeof *windows; k++) check_order(Ns[i], blocks[j], windows[k]);
}

int main(void) {
  const int64_t Ns[] = {1, 7, 10, 60000, 1000003};
  for (size_t k = 0; k < sizeof Ns / sizeof *Ns; k++)
    for (int P = 1; P <= 9; P++) {
      int64_t prev = 0, minn = Ns[k], maxn = 0;
      for (int r = 0; r < P; r++) {
        int64_t lo, hi;
        kd_shard_range(Ns[k], P, r, &lo, &hi);
        CHECK(lo == prev, "N=%lld P=%d r=%d: gap", (long long)Ns[k], P, r);
        CHECK(lo == (int64_t)r * Ns[k] / P, "formula");
        prev = hi;
        if (hi - lo < minn) minn = hi - lo;
        if (hi - lo > maxn) maxn = hi - lo;
      }
      CHECK(prev == Ns[k], "N=%lld P=%d: rows not covered", (long long)Ns[k], P);
      CHECK(maxn - minn <= 1, "N=%lld P=%d: unbalanced", (long long)Ns[k], P);
    }
  for (int B = 1; B < 300; B += 7)
    for (int P = 1; P <= 8 && P <= B; P++) {
      int sum = 0;
      for (int r = 0; r < P; r++) {
        int b = kd_local_batch(B, P, r);
        CHECK(b >= 1, "B=%d P=%d r=%d: empty", B, P, r);
        sum += b;
      }
      CHECK(sum == B, "B=%d P=%d: local batches sum to %d", B, P, sum);
    }
  /* Shuffles: a permutation, reproducible, different across epochs. */
  enum { n = 1000 };
  int64_t a[n], b[n], c[n];
  char seen[n];
  kd_permutation(a, n, kd_key(1, KD_RNG_SHUFFLE, 0, 0));
  kd_permutation(b, n, kd_key(1, KD_RNG_SHUFFLE, 0, 0));
  kd_permutation(c, n, kd_key(1, KD_RNG_SHUFFLE, 1, 0));
  memset(seen, 0, sizeof seen);
  int ok = 1;
  for (int i = 0; i < n; i++) {
    if (a[i] < 0 || a[i] >= n || seen[a[i]]) ok = 0;
    else seen[a[i]] = 1;
  }
  CHECK(ok, "not a permutation");
  CHECK(memcmp(a, b, sizeof a) == 0, "not reproducible");
  CHECK(memcmp(a, c, sizeof a) != 0, "epochs share a shuffle");
  int fixed = 0;
  for (int i = 0; i < n; i++) fixed += a[i] == i;
  CHECK(fixed < 20, "%d fixed points: barely shuffled", fixed);
  check_stream_order();
  return check_summary("test_shard");
}
