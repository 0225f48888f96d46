/* Element-wise kernels of the MLP. Outputs first, then inputs, then sizes.
 * Backward kernels accumulate into parameter gradients. */
#ifndef KD_KERNELS_H
#define KD_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* GELU is the exact (erf) form, as nn.GELU(); GELU_TANH the tanh
 * approximation GPT-2 uses, as nn.GELU(approximate="tanh"). */
typedef enum kd_act { KD_ACT_NONE = 0, KD_ACT_RELU = 1, KD_ACT_GELU = 2, KD_ACT_GELU_TANH = 3 } kd_act;

/* y[b, n] <- act(y[b, n] + bias[n]) in place (y holds the GEMM result on entry).
 * pre (nullable, [B, N]) keeps y + bias before the activation (GELU needs it
 * for the backward pass; ReLU's derivative is read from the output). */
void kd_bias_act_forward(float *y, float *pre, const float *bias, kd_act act,
                         int B, int N);

/* Inverted dropout in place: mask[b, n] = keep ? 1 : 0, y *= mask / (1 - p).
 * The mask of unit n of sample row_ids[b] is a function of (key, row id, n),
 * so it does not depend on how rows are split across ranks. */
void kd_dropout_forward(float *y, uint8_t *mask, const int64_t *row_ids,
                        uint64_t key, float p, int B, int N);

/* dz = da * dropout'(mask) * act'(.) and dbias += sum_b dz.
 * y: activation output (ReLU), pre: pre-activation (GELU); mask nullable. */
void kd_act_backward(float *dz, float *dbias, const float *da, const float *y,
                     const float *pre, const uint8_t *mask, float p, kd_act act,
                     int B, int N);

/* dbias[n] += sum_b dy[b, n]. */
void kd_bias_backward(float *dbias, const float *dy, int B, int N);

float kd_gelu(float x);
float kd_gelu_grad(float x);
float kd_gelu_tanh(float x);
float kd_gelu_tanh_grad(float x);

#endif
