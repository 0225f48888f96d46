/* FitNets hint loss (Romero et al., 2015): a learned linear regressor maps a
 * student hidden state h_s [B, Hs] to the teacher's hidden state h_t [B, Ht]:
 *   loss = scale * sum_rows 0.5 * ||W h_s + b - h_t||^2,  W [Ht, Hs], b [Ht]
 * The trainer passes scale = beta / (global batch * Ht), the mean over rows
 * and feature dimensions. */
#ifndef KD_HINT_H
#define KD_HINT_H

/* Returns the unscaled sum 0.5 * sum ||.||^2. Writes dh_s [B, Hs] (the
 * gradient w.r.t. h_s, overwritten) and accumulates dW, db; pred [B, Ht] is
 * scratch. Any of dh_s, dW, db may be NULL (loss only needs none). */
double kd_hint_forward_backward(float *dh_s, float *dW, float *db, float *pred,
                                const float *h_s, const float *h_t, const float *W,
                                const float *b, int B, int Hs, int Ht, float scale);

#endif
