/* The divergence of the soft term (--divergence), between p_t = softmax(z_t / T) and p_s = softmax(z_s / T),
 * scaled by T^2 as the KD loss is:
 *   forward   KL(p_t || p_s)                                  (Hinton et al.; the default)
 *   reverse   KL(p_s || p_t)                                  (MiniLLM; on-policy distillation)
 *   jsd:B     B KL(p_t || M) + (1 - B) KL(p_s || M),  M = B p_t + (1 - B) p_s   (GKD's generalized JSD, as
 *             TRL's generalized_jsd_loss; B = 0 is forward and B = 1 reverse, taken as those)
 *   skew:A    KL(p_t || A p_t + (1 - A) p_s)                   (DistiLLM's skew KL; A = 0 is forward)
 *   reverse-sampled  the reverse KL estimated from the class a the student sampled (on-policy rows, T = 1):
 *             loss log q_a - log p_a, gradient (log q_a - log p_a)(onehot(a) - q) (a policy gradient with the
 *             per-token advantage log p_a - log q_a), whose expectation over a ~ q is the reverse KL's; a row
 *             with no sample takes the exact reverse KL
 * The forward divergence keeps the loss paths of loss.c, sparse.c and chunked.c; the others are computed here
 * per row in double (two passes over the classes, the second reusing the first's values when the caller gives
 * a workspace): with
 * u = z_s / T and q = p_s, every one of them has dD/du_c = q_c a_c - q_c sum_j q_j a_j for a_c = dD/dq_c. */
#ifndef KD_LOSS_DIVERGENCE_H
#define KD_LOSS_DIVERGENCE_H

#include <stddef.h>

#include "kd/loss.h"

/* "forward", "reverse", "jsd:B" (0 <= B <= 1), "skew:A" (0 <= A < 1), "reverse-sampled". */
int kd_divergence_parse(kd_divergence *d, const char *text, kd_err *e);
/* Its name as parsed ("jsd:0.5"). */
const char *kd_divergence_name(const kd_divergence *d, char *buf, size_t n);

/* D(p_t, p_s) of one row's student and teacher logits [C] at temperature T, in double; g (nullable, [C])
 * receives dD/dz_s (= dD/du / T). The reference every divergence is tested against (forward too;
 * reverse-sampled: its expectation, the reverse KL). */
double kd_divergence_row(const kd_divergence *d, const float *zs, const float *zt, int C, double T, double *g);

/* One row of the loss (hard-label CE as kd_loss_forward_backward, weights and counts alike) with the soft term
 * of d: the path of every divergence but forward, dense and chunked. a: the class the student sampled at this
 * row (reverse-sampled; -1: none). work (nullable, [2 C] doubles) keeps the first pass's per-class values for
 * the gradient's pass; without it they are computed again. */
void kd_divergence_loss_row(float *dl, kd_loss_sums *sums, const float *zs, const float *zt, int y, int a, int C,
                            const kd_loss_cfg *cfg, float grad_scale, double *work);

#endif
