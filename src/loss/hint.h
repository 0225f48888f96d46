/* FitNets hint loss (Romero et al., 2015): a learned linear regressor maps a
 * student hidden state h_s [B, Hs] to the teacher's hidden state h_t [B, Ht]:
 *   loss = scale * sum_rows 0.5 * ||W h_s + b - h_t||^2,  W [Ht, Hs], b [Ht]
 * As a loss term ("hint") it is weighted by beta and averaged over the rows
 * of the global batch and the Ht feature dimensions. */
#ifndef KD_HINT_H
#define KD_HINT_H

#include "kd/model.h"
#include "loss/term.h"

/* Returns the unscaled sum 0.5 * sum ||.||^2. Writes dh_s [B, Hs] (the
 * gradient w.r.t. h_s, overwritten) and accumulates dW, db; pred [B, Ht] is
 * scratch. Any of dh_s, dW, db may be NULL (loss only needs none). */
double kd_hint_forward_backward(float *dh_s, float *dW, float *db, float *pred,
                                const float *h_s, const float *h_t, const float *W,
                                const float *b, int B, int Hs, int Ht, float scale);

/* The "hint" term on hidden layer `layer` of m (1-based) against teacher
 * features of width teacher_width, weight beta; the first alone_epochs epochs
 * train it alone (stage-wise FitNets). Views hint/weight [Ht, Hs], hint/bias [Ht]. */
int kd_hint_term_create(kd_term **t, const kd_model *m, int layer, int teacher_width, float beta, int alone_epochs,
                        kd_err *e);

#endif
