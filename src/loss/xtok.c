#include "loss/xtok.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "loss/divergence.h"

int kd_xtok_parse(kd_xtok_kind *k, const char *text, kd_err *e) {
  if (strcmp(text, "uld") == 0) *k = KD_XTOK_ULD;
  else if (strcmp(text, "exact") == 0) *k = KD_XTOK_EXACT;
  else if (strcmp(text, "hybrid") == 0) *k = KD_XTOK_HYBRID;
  else return kd_fail(e, KD_ERR_USAGE, "--cross-tokenizer %s: not uld, exact or hybrid", text);
  return KD_OK;
}

const char *kd_xtok_name(kd_xtok_kind k) {
  return k == KD_XTOK_ULD ? "uld" : k == KD_XTOK_EXACT ? "exact" : k == KD_XTOK_HYBRID ? "hybrid" : "off";
}

void kd_xtok_work_free(kd_xtok_work *w) {
  free(w->ps);
  free(w->order_s);
  free(w->keys);
  free(w->zs_S);
  memset(w, 0, sizeof *w);
}

int kd_xtok_work_init(kd_xtok_work *w, const kd_vocab_map *map, kd_err *e) {
  memset(w, 0, sizeof *w);
  const size_t Vs = (size_t)map->Vs, Vt = (size_t)map->Vt, n = (size_t)(map->n > 0 ? map->n : 1);
  w->map = map;
  w->ps = kd_malloc(sizeof(double) * (2 * Vs + Vt), "cross-tokenizer loss", e);
  const size_t big = Vs > Vt ? Vs : Vt;
  w->order_s = kd_malloc(sizeof(int32_t) * (2 * (Vs + Vt) + big), "cross-tokenizer loss", e);
  w->keys = kd_malloc(sizeof(uint64_t) * 2 * big, "cross-tokenizer loss", e);
  w->zs_S = kd_malloc((2 * sizeof(float) + sizeof(double)) * n, "cross-tokenizer loss", e);
  if (e->code) {
    kd_xtok_work_free(w);
    return e->code;
  }
  w->pt = w->ps + Vs;
  w->a = w->pt + Vt;
  w->order_t = w->order_s + Vs;
  w->off_s = w->order_t + Vt;
  w->off_t = w->off_s + Vs;
  w->tmp = w->off_t + Vt;
  w->zt_S = w->zs_S + n;
  w->g_S = (double *)(void *)(w->zt_S + n);
  /* the ids outside S, once */
  uint8_t *in = (uint8_t *)w->order_s; /* scratch: order_s is rewritten by every pair */
  memset(in, 0, Vs);
  for (int k = 0; k < map->n; k++) in[map->s_ids[k]] = 1;
  for (int i = 0; i < map->Vs; i++)
    if (!in[i]) w->off_s[w->n_off_s++] = i;
  memset(in, 0, Vt);
  for (int k = 0; k < map->n; k++) in[map->t_ids[k]] = 1;
  for (int j = 0; j < map->Vt; j++)
    if (!in[j]) w->off_t[w->n_off_t++] = j;
  return KD_OK;
}

/* p = softmax(z / T) over n ids, in double. */
static void softmax(double *p, const float *z, int n, double T) {
  double mx = -INFINITY, s = 0.0;
  for (int i = 0; i < n; i++) mx = fmax(mx, (double)z[i] / T);
  for (int i = 0; i < n; i++) s += p[i] = exp((double)z[i] / T - mx);
  for (int i = 0; i < n; i++) p[i] /= s;
}

/* Ids sorted by their probability, descending; ties keep the ids' order (ascending where the caller's is).
 * An LSD radix sort, 8 bits a pass, on the complemented bit patterns of the probabilities (non-negative doubles
 * order as their bit patterns do), stable, skipping the passes where every key has the same byte: the
 * probabilities share their top bytes, so a few passes of n steps instead of qsort's n log n indirect
 * comparisons. The tests check it against a reference that ranks by counting (tests/test_xtok.c). */
static void sort_ids(int32_t *ids, int n, const double *p, uint64_t *keys, int32_t *tmp) {
  uint64_t *kt = keys + n;
  for (int i = 0; i < n; i++) {
    uint64_t b;
    memcpy(&b, &p[ids[i]], sizeof b);
    keys[i] = ~b;
  }
  for (int shift = 0; shift < 64; shift += 8) {
    size_t count[257] = {0};
    for (int i = 0; i < n; i++) count[((keys[i] >> shift) & 0xff) + 1]++;
    int same = 0;
    for (int d = 1; d <= 256 && !same; d++) same = count[d] == (size_t)n;
    if (same) continue;
    for (int d = 0; d < 256; d++) count[d + 1] += count[d];
    for (int i = 0; i < n; i++) {
      const size_t at = count[(keys[i] >> shift) & 0xff]++;
      kt[at] = keys[i];
      tmp[at] = ids[i];
    }
    memcpy(keys, kt, sizeof(uint64_t) * (size_t)n);
    memcpy(ids, tmp, sizeof(int32_t) * (size_t)n);
  }
}

/* ULD between p_s on the ids ids_s[0..ns) and p_t on ids_t[0..nt) (NULL: every id): sum_k |x_(k) - y_(k)| of
 * the sorted values, the shorter padded with zeros. a[id] (student ids) += the derivative by p_s[id]: the
 * sign of its difference. */
static double uld(const double *ps, const int32_t *ids_s, int ns, const double *pt, const int32_t *ids_t, int nt,
                  double *a, kd_xtok_work *w) {
  int32_t *order_s = w->order_s, *order_t = w->order_t;
  for (int i = 0; i < ns; i++) order_s[i] = ids_s ? ids_s[i] : i;
  for (int j = 0; j < nt; j++) order_t[j] = ids_t ? ids_t[j] : j;
  sort_ids(order_s, ns, ps, w->keys, w->tmp);
  sort_ids(order_t, nt, pt, w->keys, w->tmp);
  const int n = ns > nt ? ns : nt;
  double L = 0.0;
  for (int k = 0; k < n; k++) {
    const double x = k < ns ? ps[order_s[k]] : 0.0, y = k < nt ? pt[order_t[k]] : 0.0, d = x - y;
    L += fabs(d);
    if (k < ns) a[order_s[k]] += d > 0 ? 1.0 : d < 0 ? -1.0 : 0.0;
  }
  return L;
}

/* exact: the divergence of the restricted logits; g_S [n] its gradient by them. */
static double exact(const kd_divergence *div, const float *zs, const float *zt, double T, int want_g, kd_xtok_work *w) {
  const kd_vocab_map *m = w->map;
  if (m->n == 0) return 0.0;
  for (int k = 0; k < m->n; k++) w->zs_S[k] = zs[m->s_ids[k]], w->zt_S[k] = zt[m->t_ids[k]];
  return kd_divergence_row(div, w->zs_S, w->zt_S, m->n, T, want_g ? w->g_S : NULL);
}

double kd_xtok_pair(kd_xtok_kind kind, const kd_divergence *div, const float *zs, const float *zt, double T, double *g,
                    kd_xtok_work *w) {
  const kd_vocab_map *m = w->map;
  const int Vs = m->Vs, Vt = m->Vt;
  if (kind == KD_XTOK_EXACT) { /* the restricted softmaxes alone */
    const double D = exact(div, zs, zt, T, g != NULL, w);
    if (g) memset(g, 0, sizeof(double) * (size_t)Vs);
    for (int k = 0; g && k < m->n; k++) g[m->s_ids[k]] = w->g_S[k];
    return D;
  }
  softmax(w->ps, zs, Vs, T);
  softmax(w->pt, zt, Vt, T);
  memset(w->a, 0, sizeof(double) * (size_t)Vs);
  const int hybrid = kind == KD_XTOK_HYBRID;
  double weight = 0.0; /* hybrid: the teacher's mass on S */
  for (int k = 0; hybrid && k < m->n; k++) weight += w->pt[m->t_ids[k]];
  double D = hybrid ? uld(w->ps, w->off_s, w->n_off_s, w->pt, w->off_t, w->n_off_t, w->a, w)
                    : uld(w->ps, NULL, Vs, w->pt, NULL, Vt, w->a, w);
  if (hybrid) D += weight * exact(div, zs, zt, T, g != NULL, w);
  if (!g) return D;
  /* the ULD part through the softmax: dD/du_c = q_c (a_c - sum_j q_j a_j), u = z / T */
  double qa = 0.0;
  for (int i = 0; i < Vs; i++) qa += w->ps[i] * w->a[i];
  for (int i = 0; i < Vs; i++) g[i] = w->ps[i] * (w->a[i] - qa) / T;
  for (int k = 0; hybrid && k < m->n; k++) g[m->s_ids[k]] += weight * w->g_S[k];
  return D;
}
