/* The distillation loss over a batch:
 *   labelled row (y >= 0):  alpha * CE(y, softmax(z_s)) + (1 - alpha) * T^2 * D(p_t^T, p_s^T)
 *   unlabelled row (y = -1): T^2 * D(p_t^T, p_s^T)
 *   no target (y = KD_Y_IGNORE): nothing (zero gradient, not counted)
 * A "row" is a position of the logits: one per feature row, one per token
 * of a token row.
 * with p^T = softmax(z / T) and D the divergence of cfg->div (KL(p_t^T || p_s^T) unless set; the
 * others in loss/divergence.h; sparse teacher logits take forward only). Without teacher logits every
 * row is CE alone.
 * The gradient written is d(sum of row losses)/dz_s * grad_scale; the trainer
 * passes grad_scale = 1 / global batch so the allreduced sum is the mean. */
#ifndef KD_LOSS_H
#define KD_LOSS_H

#include <stddef.h>
#include <stdint.h>

#include "kd/error.h"
#include "kd/model.h" /* kd_head, kd_profile */
#include "kd/teacher.h" /* kd_targets */

/* The soft term's divergence (loss/divergence.h): zero-initialised, forward KL(p_t || p_s). */
typedef enum { KD_DIV_FORWARD = 0, KD_DIV_REVERSE, KD_DIV_JSD, KD_DIV_SKEW, KD_DIV_REVERSE_SAMPLED } kd_div_kind;
typedef struct kd_divergence {
  kd_div_kind kind;
  double param;       /* jsd: beta (the teacher's weight in the mixture); skew: alpha */
} kd_divergence;

typedef struct kd_loss_cfg {
  float alpha;        /* weight of the hard-label term */
  float temperature;  /* T > 0 */
  kd_divergence div;  /* the soft term's divergence (forward unless set) */
} kd_loss_cfg;

/* Sums over the batch's rows, for logging. */
typedef struct kd_loss_sums {
  double loss;      /* sum of row losses */
  double ce;        /* sum of CE over labelled rows */
  double kd;        /* sum of T^2 * KL over rows (0 without teacher) */
  double correct;   /* labelled rows with argmax z_s == y */
  double labelled;  /* labelled rows */
  double rows;      /* rows */
} kd_loss_sums;

/* dlogits (nullable) [B, C]; sums accumulated (+=). Computed row by row in
 * double with log-sum-exp, so logits of +-1e4 stay finite; each exp is
 * computed once and reused (up to 256 classes). */
void kd_loss_forward_backward(float *dlogits, kd_loss_sums *sums,
                              const float *z_s, const kd_targets *t, int B,
                              int C, const kd_loss_cfg *cfg, float grad_scale);
/* The plain form (every probability from its own exp): the reference the
 * fast path is tested against, and the path for more than 256 classes. */
void kd_loss_forward_backward_ref(float *dlogits, kd_loss_sums *sums, const float *z_s, const kd_targets *t, int B,
                                  int C, const kd_loss_cfg *cfg, float grad_scale);

/* The same loss against sparse teacher logits t->sparse (top-k, top-k with
 * a tail bin, sampled; formulas in src/loss/sparse.c and docs/usage.md):
 * alpha, T^2 and unlabelled positions as for dense logits; a position whose
 * counts are all 0 has no soft term. Allocates a workspace of 2 C doubles. */
int kd_loss_sparse_forward_backward(float *dlogits, kd_loss_sums *sums, const float *z_s, const kd_targets *t, int B,
                                    int C, const kd_loss_cfg *cfg, float grad_scale, kd_err *e);

/* Dense rows of any width with each exp computed once (float, vectorized;
 * sums in double): the chunked loss's pass, exact to float rounding against
 * kd_loss_forward_backward_ref. Allocates 4 C floats. */
int kd_loss_dense_rows(float *dlogits, kd_loss_sums *sums, const float *z_s, const kd_targets *t, int B, int C,
                       const kd_loss_cfg *cfg, float grad_scale, kd_err *e);

/* The loss with the head: logits = h->x W^T computed `chunk` positions at a
 * time, the loss of each chunk (dense t->t_logits, sparse t->sparse, or hard
 * labels), and with grad its gradient taken through the head at once
 * (h->dx written, h->dw accumulated), so neither the logits [n, V] nor
 * their gradient ever exist whole. work: kd_loss_chunk_floats(chunk, V)
 * floats (sparse targets also allocate V bytes and K + 1 doubles). prof
 * (nullable) gets the head GEMMs' and the pass's times. */
size_t kd_loss_chunk_floats(int chunk, int V);
int kd_loss_chunked(kd_loss_sums *sums, const kd_head *h, const kd_targets *t, const kd_loss_cfg *cfg, float grad_scale,
                    int grad, float *work, int chunk, kd_profile *prof, kd_err *e);

#endif
