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
  free(w->zs_S);
  memset(w, 0, sizeof *w);
}

int kd_xtok_work_init(kd_xtok_work *w, const kd_vocab_map *map, kd_err *e) {
  memset(w, 0, sizeof *w);
  const size_t Vs = (size_t)map->Vs, Vt = (size_t)map->Vt, n = (size_t)(map->n > 0 ? map->n : 1);
  w->map = map;
  w->ps = kd_malloc(sizeof(double) * (2 * Vs + Vt), "cross-tokenizer loss", e);
  w->order_s = kd_malloc(sizeof(int32_t) * 2 * (Vs + Vt), "cross-tokenizer loss", e);
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

/* Ids sorted by their probability, descending (ties: the lower id first, so the order is deterministic). qsort
 * has no context argument in C11: the probabilities come through a thread-local. */
static _Thread_local const double *t_sort_p;
static int by_p_desc(const void *x, const void *y) {
  const int32_t i = *(const int32_t *)x, j = *(const int32_t *)y;
  const double a = t_sort_p[i], b = t_sort_p[j];
  return a > b ? -1 : a < b ? 1 : (i > j) - (i < j);
}

static void sort_ids(int32_t *ids, int n, const double *p) {
  t_sort_p = p;
  qsort(ids, (size_t)n, sizeof *ids, by_p_desc);
}

/* ULD between p_s on the ids ids_s[0..ns) and p_t on ids_t[0..nt) (NULL: every id): sum_k |x_(k) - y_(k)| of
 * the sorted values, the shorter padded with zeros. a[id] (student ids) += the derivative by p_s[id]: the
 * sign of its difference. */
static double uld(const double *ps, const int32_t *ids_s, int ns, const double *pt, const int32_t *ids_t, int nt,
                  double *a, int32_t *order_s, int32_t *order_t) {
  for (int i = 0; i < ns; i++) order_s[i] = ids_s ? ids_s[i] : i;
  for (int j = 0; j < nt; j++) order_t[j] = ids_t ? ids_t[j] : j;
  sort_ids(order_s, ns, ps);
  sort_ids(order_t, nt, pt);
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
  double D = 0.0, weight = 1.0;
  int uld_part = 0, exact_part = 0;
  if (kind == KD_XTOK_ULD) {
    D = uld(w->ps, NULL, Vs, w->pt, NULL, Vt, w->a, w->order_s, w->order_t);
    uld_part = 1;
  } else {
    exact_part = 1;
    if (kind == KD_XTOK_HYBRID) {
      weight = 0.0;
      for (int k = 0; k < m->n; k++) weight += w->pt[m->t_ids[k]];
      D = uld(w->ps, w->off_s, w->n_off_s, w->pt, w->off_t, w->n_off_t, w->a, w->order_s, w->order_t);
      uld_part = 1;
    }
    D += weight * exact(div, zs, zt, T, g != NULL, w);
  }
  if (!g) return D;
  /* the ULD part through the softmax: dD/du_c = q_c (a_c - sum_j q_j a_j), u = z / T */
  double qa = 0.0;
  for (int i = 0; uld_part && i < Vs; i++) qa += w->ps[i] * w->a[i];
  for (int i = 0; i < Vs; i++) g[i] = uld_part ? w->ps[i] * (w->a[i] - qa) / T : 0.0;
  for (int k = 0; exact_part && k < m->n; k++) g[m->s_ids[k]] += weight * w->g_S[k];
  return D;
}
