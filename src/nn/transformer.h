/* Kernels of the Transformer (GPT) student, as forward/backward pairs.
 * Outputs first, then inputs, then sizes; backward kernels accumulate into
 * parameter gradients (and, where noted, into the input's gradient, which
 * is how residual streams sum). Rows are positions: n = B * T rows of width
 * D. Every clever kernel has a plain reference beside it for the tests. */
#ifndef KD_NN_TRANSFORMER_H
#define KD_NN_TRANSFORMER_H

#include <stddef.h>
#include <stdint.h>

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
/* In double, for the tests. */
void kd_layernorm_forward_ref(float *y, float *mean, float *rstd, const float *x, const float *w, const float *b,
                              int n, int D);

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

/* x [B*T, D] = wte[tokens[b, t]] + wpe[t]. */
void kd_embed_forward(float *x, const int32_t *tokens, const float *wte, const float *wpe, int B, int T, int D);
/* dwte[tokens] += dx, dwpe[t] += dx. */
void kd_embed_backward(float *dwte, float *dwpe, const float *dx, const int32_t *tokens, int B, int T, int D);

/* Causal multi-head self-attention over qkv [B*T, 3D] (q | k | v, head h in
 * columns h*D/H of each), scores scaled by 1/sqrt(D/H). att [B, H, T, T]
 * receives the softmax probabilities (zero above the diagonal); with
 * dropout p > 0 the probabilities that multiply v are att_drop, masked by
 * mask [B, H, T, T] keyed on (key, ids[b], head, i, j). out [B*T, D].
 * Computed in tiles of query and key positions; tiles wholly above the
 * diagonal are never computed. */
void kd_attention_forward(float *out, float *att, float *att_drop, uint8_t *mask, const float *qkv,
                          const int64_t *ids, uint64_t key, float p, int B, int T, int D, int H);
/* dqkv [B*T, 3D] (overwritten) from dout [B*T, D]; scratch [T*T]. */
void kd_attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv, const float *att,
                           const float *att_drop, const uint8_t *mask, float p, int B, int T, int D, int H);
/* Query-key pairs per sequence and head that the tiles compute (for FLOP counts). */
double kd_attention_pairs(int T);
/* Plain loops with the same contracts (no dropout), for the tests. */
void kd_attention_forward_ref(float *out, float *att, const float *qkv, int B, int T, int D, int H);
void kd_attention_backward_ref(float *dqkv, const float *dout, const float *qkv, const float *att, int B, int T, int D,
                               int H);

#endif
