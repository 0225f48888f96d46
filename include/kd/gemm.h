/* The one entry point to BLAS. Row-major C = alpha * op(A) op(B) + beta * C,
 * op(A) is [M, K], op(B) is [K, N]. Outputs first, then inputs, then sizes. */
#ifndef KD_GEMM_H
#define KD_GEMM_H

void kd_gemm(float *C, int ldc, const float *A, int lda, int trans_a,
             const float *B, int ldb, int trans_b, int M, int N, int K,
             float alpha, float beta);

/* Naive triple loop with the same contract, for tests. */
void kd_gemm_ref(float *C, int ldc, const float *A, int lda, int trans_a,
                 const float *B, int ldb, int trans_b, int M, int N, int K,
                 float alpha, float beta);

/* OpenBLAS threads for this process (>= 1). */
void kd_blas_set_threads(int n);
int kd_blas_get_threads(void);

#endif
