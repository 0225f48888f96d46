/* kd_gemm (OpenBLAS) against the naive reference, all transposes. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "nn/gemm.h"
#include "core/rng.h"

int main(void) {
  const int M = 37, N = 23, K = 51;
  float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
  float *C = malloc(sizeof(float) * M * N), *R = malloc(sizeof(float) * M * N);
  for (int i = 0; i < M * K; i++) A[i] = (float)kd_normal(1, i);
  for (int i = 0; i < K * N; i++) B[i] = (float)kd_normal(2, i);
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++)
      for (int beta = 0; beta < 2; beta++) {
        for (int i = 0; i < M * N; i++) C[i] = R[i] = (float)kd_normal(3, i);
        int lda = ta ? M : K, ldb = tb ? K : N;
        kd_gemm(C, N, A, lda, ta, B, ldb, tb, M, N, K, 0.5f, (float)beta);
        kd_gemm_ref(R, N, A, lda, ta, B, ldb, tb, M, N, K, 0.5f, (float)beta);
        double worst = 0;
        for (int i = 0; i < M * N; i++) {
          double d = fabs(C[i] - R[i]);
          if (d > worst) worst = d;
        }
        CHECK(worst < 1e-4, "trans_a=%d trans_b=%d beta=%d: max diff %g", ta, tb, beta, worst);
      }
  kd_blas_set_threads(1);
  CHECK(kd_blas_get_threads() == 1, "threads %d", kd_blas_get_threads());
  free(A); free(B); free(C); free(R);
  return check_summary("test_gemm");
}
