/* Cross-tokenizer distillation losses (--cross-tokenizer, issue 33), at one aligned pair of positions
 * (data/align.h: a student position and a teacher position whose tokens end at the same byte). With
 * p_s = softmax(z_s / T) over the student's Vs ids, p_t = softmax(z_t / T) over the teacher's Vt ids and S the
 * shared ids (pairs (s_k, t_k) spelling the same bytes):
 *   uld     sum_k |sort(p_s)_k - sort(p_t)_k|, both sorted in descending order, the shorter padded with zeros:
 *           the L1 distance between the sorted vectors, Universal Logit Distillation (Boizard et al. 2024);
 *           needs no shared ids
 *   exact   D(P_t, P_s) of --divergence between the two distributions restricted to S and renormalised there,
 *           P_t(k) = p_t(t_k) / sum_j p_t(t_j), P_s(k) = p_s(s_k) / sum_j p_s(s_j) (= the softmax of the
 *           restricted logits); with one tokenizer on both sides it is the ordinary soft term
 *   hybrid  m_t exact + uld(p_s off S, p_t off S): exact on S weighted by the teacher's mass on it,
 *           m_t = sum_k p_t(t_k) (a constant to the student), plus ULD between the probabilities the two put
 *           on their ids outside S (unnormalised, sorted); S empty: uld; S everything: exact
 * None is scaled by T^2 here (the caller scales, as for the other soft terms). Computed in double. */
#ifndef KD_LOSS_XTOK_H
#define KD_LOSS_XTOK_H

#include <stddef.h>

#include "data/align.h"
#include "kd/loss.h"

typedef enum { KD_XTOK_OFF = 0, KD_XTOK_ULD, KD_XTOK_EXACT, KD_XTOK_HYBRID } kd_xtok_kind;

/* "uld", "exact", "hybrid". */
int kd_xtok_parse(kd_xtok_kind *k, const char *text, kd_err *e);
const char *kd_xtok_name(kd_xtok_kind k);

/* Scratch of one caller (a rank's loss pass), for a map: allocated once, reused for every pair. */
typedef struct kd_xtok_work {
  const kd_vocab_map *map;
  double *ps, *pt, *a;          /* [Vs], [Vt], [Vs]: probabilities; dD/dp_s */
  int32_t *order_s, *order_t;   /* [Vs], [Vt]: ids being sorted */
  int32_t *tmp;                 /* [max(Vs, Vt)] */
  uint64_t *keys;               /* [2 max(Vs, Vt)]: the sort's keys */
  int32_t *off_s, *off_t;       /* ids outside S, n_off_s and n_off_t of them */
  int n_off_s, n_off_t;
  float *zs_S, *zt_S;           /* [n]: the logits of S */
  double *g_S;                  /* [n] */
} kd_xtok_work;

int kd_xtok_work_init(kd_xtok_work *w, const kd_vocab_map *map, kd_err *e);
void kd_xtok_work_free(kd_xtok_work *w);

/* D of kind at one pair: student logits zs [map->Vs], teacher logits zt [map->Vt], temperature T; div is
 * exact's divergence (forward, reverse, jsd, skew). g (nullable, [Vs]) receives dD/dzs. */
double kd_xtok_pair(kd_xtok_kind kind, const kd_divergence *div, const float *zs, const float *zt, double T, double *g,
                    kd_xtok_work *w);

#endif
