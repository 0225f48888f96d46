/* Shard ranges, per-rank batch sizes and shuffles. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kd/data.h"
#include "core/rng.h"

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
  return check_summary("test_shard");
}
