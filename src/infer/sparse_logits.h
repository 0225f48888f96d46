/* Sparse teacher logits from dense ones, one position at a time (kd logits
 * --topk, --sample): the K largest logits with the full log-sum-exp, and S
 * draws from the softmax at a temperature, aggregated into distinct ids with
 * counts. Values come out as float (ids and counts are exact in float up to
 * 2^24) because they travel to rank 0 as float rows. */
#ifndef KD_INFER_SPARSE_LOGITS_H
#define KD_INFER_SPARSE_LOGITS_H

#include <stdint.h>

/* ids [K] and vals [K]: the K largest of z [V], largest first (ties: the
 * lower id first); *lse: log(sum_v exp(z_v)). K <= V. heap [K] is scratch. */
void kd_topk_position(float *ids, float *vals, float *lse, const float *z, int V, int K, int32_t *heap);

/* S draws from softmax(z / temperature), draw i uniform from (key, i):
 * ids [S] and counts [S], distinct ids by count (then id), unused slots id 0
 * count 0. cdf [V] and drawn [S] are scratch. */
void kd_sample_position(float *ids, float *counts, const float *z, int V, int S, double temperature, uint64_t key,
                        double *cdf, int32_t *drawn);

#endif
