/* Element-wise kernels of the Transformer students (the tanh GELU, dropout
 * of residual branches, token embeddings), as forward/backward pairs; the
 * attention is in nn/attention.h, the norms in nn/norm.h, RoPE and SwiGLU
 * in nn/rope.h and nn/swiglu.h.
 * Outputs first, then inputs, then sizes; backward kernels accumulate into
 * parameter gradients (and, where noted, into the input's gradient, which
 * is how residual streams sum). Rows are positions: n = B * T rows of width
 * D. Every clever kernel has a plain reference beside it for the tests. */
#ifndef KD_NN_TRANSFORMER_H
#define KD_NN_TRANSFORMER_H

#include <stddef.h>
#include <stdint.h>

/* y [n, N] <- gelu_tanh(y + bias) in place, pre keeps y + bias; as
 * nn.GELU(approximate="tanh") to within a few float ulps for |z| < 6;
 * beyond, the clamp of the sigmoid's argument to [-30, 30] leaves an
 * absolute error below 1e-13 |z|. */
void kd_bias_gelu_forward(float *y, float *pre, const float *bias, int n, int N);
/* dz = dy * gelu_tanh'(pre) (dz may be dy), dbias += sum over rows of dz. */
void kd_bias_gelu_backward(float *dz, float *dbias, const float *dy, const float *pre, int n, int N);
/* y <- dropout(y + bias) in place, the mask of row r keyed on (key, ids[r], column) as kd_dropout_forward. */
void kd_bias_dropout_forward(float *y, uint8_t *mask, const float *bias, const int64_t *ids, uint64_t key, float p,
                             int n, int N);

/* x [B*T, D] = wte[tokens[b, t]] + wpe[t] (wpe NULL: no learned positions, as Llama). */
void kd_embed_forward(float *x, const int32_t *tokens, const float *wte, const float *wpe, int B, int T, int D);
/* dwte[tokens] += dx, dwpe[t] += dx (dwpe nullable). */
void kd_embed_backward(float *dwte, float *dwpe, const float *dx, const int32_t *tokens, int B, int T, int D);

#endif
