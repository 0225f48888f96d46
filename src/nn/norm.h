/* Normalisations of the Transformer families, forward/backward pairs:
 * LayerNorm (GPT-2) and RMSNorm (Llama), each fused with the residual add
 * that feeds it. Rows are positions: n rows of width D. Backward kernels
 * accumulate into the input's gradient (residual streams sum) and the
 * parameter gradients. Plain references in double beside them. */
#ifndef KD_NN_NORM_H
#define KD_NN_NORM_H

#define KD_LN_EPS 1e-5f

/* y [n, D] = (x - mean) * rstd * w + b per row (biased variance, eps 1e-5, as nn.LayerNorm);
 * mean, rstd [n] are kept for the backward pass. */
void kd_layernorm_forward(float *y, float *mean, float *rstd, const float *x, const float *w, const float *b, int n,
                          int D);
/* dx += d/dx, dw += d/dw, db += d/db of sum(dy * y). */
void kd_layernorm_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                           const float *mean, const float *rstd, int n, int D);
/* The residual add fused with the LayerNorm that reads its result:
 * out = x + br (+ bias[j] when bias is not NULL), then y = LayerNorm(out)
 * as kd_layernorm_forward (skipped when y is NULL). */
void kd_residual_layernorm_forward(float *out, float *y, float *mean, float *rstd, const float *x, const float *br,
                                   const float *bias, const float *w, const float *b, int n, int D);
void kd_layernorm_forward_ref(float *y, float *mean, float *rstd, const float *x, const float *w, const float *b,
                              int n, int D);

/* y [n, D] = x * rstd * w per row, rstd = 1 / sqrt(mean(x^2) + eps), as
 * Hugging Face's LlamaRMSNorm (the mean of squares in float, no bias);
 * rstd [n] kept for the backward pass. */
void kd_rmsnorm_forward(float *y, float *rstd, const float *x, const float *w, float eps, int n, int D);
/* dx += d/dx, dw += d/dw of sum(dy * y). */
void kd_rmsnorm_backward(float *dx, float *dw, const float *dy, const float *x, const float *w, const float *rstd,
                         int n, int D);
/* out = x + br, then y = RMSNorm(out) (skipped when y is NULL). */
void kd_residual_rmsnorm_forward(float *out, float *y, float *rstd, const float *x, const float *br, const float *w,
                                 float eps, int n, int D);
void kd_rmsnorm_forward_ref(float *y, float *rstd, const float *x, const float *w, float eps, int n, int D);

#endif
