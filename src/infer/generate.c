#include "infer/generate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"

static int32_t argmax(const float *z, int V) {
  int32_t a = 0;
  for (int i = 1; i < V; i++)
    if (z[i] > z[a]) a = i;
  return a;
}

/* The k-th largest of z (k >= 1), by selection on a copy. */
static float kth_largest(const float *z, int V, int k, float *tmp) {
  memcpy(tmp, z, sizeof(float) * (size_t)V);
  int lo = 0, hi = V - 1, want = k - 1;
  while (lo < hi) { /* quickselect for descending order */
    const float p = tmp[(lo + hi) / 2];
    int i = lo, j = hi;
    while (i <= j) {
      while (tmp[i] > p) i++;
      while (tmp[j] < p) j--;
      if (i <= j) {
        const float t = tmp[i];
        tmp[i++] = tmp[j];
        tmp[j--] = t;
      }
    }
    if (want <= j) hi = j;
    else if (want >= i) lo = i;
    else break;
  }
  return tmp[want];
}

int32_t kd_pick_token(const float *z, int V, const kd_decode_cfg *cfg, uint64_t step, float *scratch, double *lse) {
  if (lse) *lse = NAN;
  if (cfg->greedy) return argmax(z, V);
  const float cut = cfg->top_k > 0 && cfg->top_k < V ? kth_largest(z, V, cfg->top_k, scratch) : -INFINITY;
  const double mx = z[argmax(z, V)], invT = 1.0 / cfg->temperature;
  double sum = 0;
  for (int i = 0; i < V; i++) sum += z[i] >= cut ? exp((z[i] - mx) * invT) : 0.0;
  if (lse && invT == 1.0 && cut == -INFINITY) *lse = mx + log(sum);
  const double u = kd_uniform(kd_key(cfg->seed, 6, step, 0), 0) * sum;
  double acc = 0;
  int32_t last = 0;
  for (int i = 0; i < V; i++) {
    if (z[i] < cut) continue;
    acc += exp((z[i] - mx) * invT);
    last = i;
    if (acc > u) return i;
  }
  return last;
}

/* Feed ids[from..to) into the cache at positions 0.. (a fresh context). */
static int prefill(kd_model *m, const int32_t *ids, int from, int to, float *z, kd_err *e) {
  for (int p = 0; p < to - from; p++) {
    const int pos = p;
    if (m->ops->decode_step(m, p + 1 == to - from ? z : NULL, &ids[from + p], &pos, 1, e)) return e->code;
  }
  return KD_OK;
}

void kd_mask_padding(float *z, int rows, int V, int n_ids) {
  if (n_ids <= 0 || n_ids >= V) return;
  for (int r = 0; r < rows; r++)
    for (int v = n_ids; v < V; v++) z[(size_t)r * V + v] = -INFINITY;
}

/* The largest of z [V] minus the second largest. */
static float top2_margin(const float *z, int V) {
  float a = -INFINITY, b = -INFINITY;
  for (int v = 0; v < V; v++) {
    if (z[v] > a) {
      b = a;
      a = z[v];
    } else if (z[v] > b) {
      b = z[v];
    }
  }
  return a - b;
}

int kd_generate(kd_model *m, int32_t *ids, int n_prompt, int max_new, int stop_id, const kd_decode_cfg *cfg, int *n_out,
                float *margins, kd_err *e) {
  *n_out = n_prompt;
  if (!m->ops->decode_step)
    return kd_fail(e, KD_ERR_USAGE, "the student %s %s cannot generate (no autoregressive decoding)", m->family, m->spec);
  if (n_prompt < 1) return kd_fail(e, KD_ERR_USAGE, "kd generate: the prompt needs at least one token");
  const int V = m->out_dim, ctx = m->ctx;
  float *z = kd_malloc(sizeof(float) * (size_t)V * 2, "logits", e);
  if (!z || m->ops->decode_begin(m, 1, e)) {
    free(z);
    return e->code;
  }
  int start = n_prompt > ctx ? n_prompt - ctx : 0, rc = prefill(m, ids, start, n_prompt, z, e);
  for (int t = 0; t < max_new && !rc; t++) {
    kd_mask_padding(z, 1, V, cfg->n_ids);
    if (margins) margins[t] = top2_margin(z, V);
    const int32_t next = kd_pick_token(z, V, cfg, (uint64_t)t, z + V, NULL);
    ids[(*n_out)++] = next;
    if (next == stop_id) break;
    int pos = *n_out - 1 - start;
    if (pos >= ctx) { /* the context is full: keep its last three quarters, recomputed */
      start = *n_out - ctx * 3 / 4;
      rc = prefill(m, ids, start, *n_out - 1, z, e);
      pos = *n_out - 1 - start;
    }
    if (!rc) rc = m->ops->decode_step(m, z, &ids[*n_out - 1], &pos, 1, e);
  }
  m->ops->decode_end(m);
  free(z);
  return rc;
}
