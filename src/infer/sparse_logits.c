#include "infer/sparse_logits.h"

#include <math.h>
#include <stdlib.h>

#include "core/rng.h"

/* z[a] ranks below z[b]: smaller, or equal with a higher id. */
static int below(const float *z, int32_t a, int32_t b) { return z[a] < z[b] || (z[a] == z[b] && a > b); }

/* Min-heap (by `below`) of the K best so far: the root is the weakest kept. */
static void sift_down(int32_t *h, int n, int i, const float *z) {
  for (;;) {
    int m = i;
    const int l = 2 * i + 1, r = l + 1;
    if (l < n && below(z, h[l], h[m])) m = l;
    if (r < n && below(z, h[r], h[m])) m = r;
    if (m == i) return;
    const int32_t t = h[i];
    h[i] = h[m];
    h[m] = t;
    i = m;
  }
}

void kd_topk_position(float *ids, float *vals, float *lse, const float *z, int V, int K, int32_t *heap) {
  float mx = z[0];
  for (int v = 1; v < V; v++)
    if (z[v] > mx) mx = z[v];
  double s = 0.0;
  for (int v = 0; v < V; v++) s += exp((double)z[v] - mx);
  *lse = (float)(mx + log(s));
  for (int k = 0; k < K; k++) heap[k] = k;
  for (int i = K / 2 - 1; i >= 0; i--) sift_down(heap, K, i, z);
  for (int v = K; v < V; v++)
    if (below(z, heap[0], v)) {
      heap[0] = v;
      sift_down(heap, K, 0, z);
    }
  /* pop the weakest into the last slot, and so on: largest first */
  for (int n = K; n > 0; n--) {
    const int32_t w = heap[0];
    ids[n - 1] = (float)w;
    vals[n - 1] = z[w];
    heap[0] = heap[n - 1];
    sift_down(heap, n - 1, 0, z);
  }
}

static int by_id(const void *a, const void *b) {
  const int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

void kd_sample_position(float *ids, float *counts, const float *z, int V, int S, double temperature, uint64_t key,
                        double *cdf, int32_t *drawn) {
  const double inv = 1.0 / temperature;
  double mx = -INFINITY, acc = 0.0;
  for (int v = 0; v < V; v++)
    if ((double)z[v] * inv > mx) mx = (double)z[v] * inv;
  for (int v = 0; v < V; v++) cdf[v] = (acc += exp((double)z[v] * inv - mx));
  for (int i = 0; i < S; i++) {
    const double u = (double)kd_uniform(key, (uint64_t)i) * acc;
    int lo = 0, hi = V - 1; /* the first v with cdf[v] > u */
    while (lo < hi) {
      const int mid = lo + (hi - lo) / 2;
      if (cdf[mid] > u)
        hi = mid;
      else
        lo = mid + 1;
    }
    drawn[i] = lo;
  }
  qsort(drawn, (size_t)S, sizeof *drawn, by_id);
  int n = 0;
  for (int i = 0; i < S; i++) {
    if (n && (int32_t)ids[n - 1] == drawn[i]) {
      counts[n - 1] += 1.0f;
      continue;
    }
    ids[n] = (float)drawn[i];
    counts[n++] = 1.0f;
  }
  /* by count, then id (insertion sort: S is small) */
  for (int i = 1; i < n; i++) {
    const float ci = counts[i], ii = ids[i];
    int j = i - 1;
    while (j >= 0 && (counts[j] < ci || (counts[j] == ci && ids[j] > ii))) {
      counts[j + 1] = counts[j];
      ids[j + 1] = ids[j];
      j--;
    }
    counts[j + 1] = ci;
    ids[j + 1] = ii;
  }
  for (int i = n; i < S; i++) ids[i] = counts[i] = 0.0f;
}
