/* The SwiGLU MLP's gate (Llama): h = silu(g) * u, silu(g) = g * sigmoid(g),
 * where g and u come from the gate and up projections, computed by one GEMM
 * into rows g | u of 2F floats. */
#ifndef KD_NN_SWIGLU_H
#define KD_NN_SWIGLU_H

/* h [n, F] from gu [n, 2F]. */
void kd_swiglu_forward(float *h, const float *gu, int n, int F);
/* dgu [n, 2F] (overwritten) = dL/dg | dL/du from dh [n, F]. */
void kd_swiglu_backward(float *dgu, const float *dh, const float *gu, int n, int F);
/* In double, for the tests. */
void kd_swiglu_forward_ref(float *h, const float *gu, int n, int F);

#endif
