#include "nn/gemm.h"

#include <cblas.h>
#include <ctype.h>
#include <string.h>

void kd_gemm(float *C, int ldc, const float *A, int lda, int trans_a,
             const float *B, int ldb, int trans_b, int M, int N, int K,
             float alpha, float beta) {
  if (M <= 0 || N <= 0) return;
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B,
              ldb, beta, C, ldc);
}

void kd_gemm_ref(float *C, int ldc, const float *A, int lda, int trans_a,
                 const float *B, int ldb, int trans_b, int M, int N, int K,
                 float alpha, float beta) {
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      double acc = 0.0;
      for (int k = 0; k < K; k++) {
        float a = trans_a ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
        float b = trans_b ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
        acc += (double)a * b;
      }
      float *c = &C[(size_t)i * ldc + j];
      *c = (float)(alpha * acc + (beta == 0.0f ? 0.0 : (double)beta * *c));
    }
}

void kd_blas_set_threads(int n) { openblas_set_num_threads(n < 1 ? 1 : n); }
int kd_blas_get_threads(void) { return openblas_get_num_threads(); }

const char *kd_blas_core(void) {
  const char *c = openblas_get_corename();
  return c ? c : "unknown";
}

int kd_blas_avx512_unused(void) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  if (!(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl")))
    return 0;
  char core[32] = "";
  const char *c = kd_blas_core();
  for (int i = 0; c[i] && i < 31; i++) core[i] = (char)tolower((unsigned char)c[i]);
  return strcmp(core, "haswell") == 0 || strcmp(core, "zen") == 0 || strcmp(core, "sandybridge") == 0;
#else
  return 0;
#endif
}
