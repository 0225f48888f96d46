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

/* The kernel family OpenBLAS chose for this CPU ("Haswell", "SkylakeX", ...). */
const char *kd_blas_core(void);
/* 1 when the CPU has AVX-512 (F, BW, DQ, VL) but OpenBLAS runs AVX2 or older
 * kernels: forced by OPENBLAS_CORETYPE (the project's machine sets Haswell),
 * or a CPU this OpenBLAS does not recognise. Its AVX-512 kernels ran sgemm
 * 1.8x faster on the project's machine (docs/performance.md). */
int kd_blas_avx512_unused(void);

#endif
