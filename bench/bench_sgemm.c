#define _POSIX_C_SOURCE 199309L
/* bench_sgemm THREADS B SIZES...: GFLOP/s of kd_gemm at the GEMM shapes of
 * one training step of an MLP (forward, weight gradient, input gradient per
 * layer), e.g. bench_sgemm 1 128 784 800 800 10. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "nn/gemm.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: bench_sgemm THREADS BATCH IN HIDDEN... OUT\n");
    return 2;
  }
  kd_blas_set_threads(atoi(argv[1]));
  const int B = atoi(argv[2]), L = argc - 4;
  int sizes[64];
  size_t maxw = 0;
  for (int i = 0; i <= L && i < 64; i++) {
    sizes[i] = atoi(argv[3 + i]);
    if ((size_t)sizes[i] > maxw) maxw = sizes[i];
  }
  const size_t rows = (size_t)B > maxw ? (size_t)B : maxw;
  float *A = calloc(maxw * rows, sizeof(float));
  float *W = calloc(maxw * maxw, sizeof(float));
  float *C = calloc(maxw * rows, sizeof(float));
  if (!A || !W || !C) return 1;
  for (size_t i = 0; i < maxw * maxw; i++) W[i] = 1e-3f * (float)(i % 7);
  double flops = 0, t0 = 0;
  int reps = 0;
  for (int pass = 0; pass < 2; pass++) { /* pass 0 warms up */
    double start = now();
    reps = 0;
    flops = 0;
    do {
      for (int l = 0; l < L; l++) {
        int in = sizes[l], out = sizes[l + 1];
        kd_gemm(C, out, A, in, 0, W, in, 1, B, out, in, 1.0f, 0.0f);  /* forward */
        kd_gemm(W, in, C, out, 1, A, in, 0, out, in, B, 1.0f, 1.0f);  /* weight gradient */
        if (l > 0) kd_gemm(A, in, C, out, 0, W, in, 0, B, in, out, 1.0f, 0.0f); /* input gradient */
        flops += 2.0 * B * in * out * (l > 0 ? 3 : 2);
      }
      reps++;
      t0 = now() - start;
    } while (t0 < (pass ? 1.0 : 0.2));
  }
  printf("sgemm at the step's shapes: %.1f GFLOP/s (%d steps of batch %d, %s threads)\n", flops / t0 / 1e9, reps, B,
         argv[1]);
  free(A);
  free(W);
  free(C);
  return 0;
}
