/* bench_xtok [VS] [VT] [PAIRS]: nanoseconds per aligned pair of the cross-tokenizer losses and their gradients
 * (src/loss/xtok.c: uld, exact, hybrid), a student of VS ids (default 1024) and a teacher of VT (default 4096)
 * sharing the student's first 90% of ids (scattered over the teacher's), PAIRS pairs of random logits
 * (default 512), the best of 5 passes; beside them the ordinary forward soft term of one row of VS and of VT
 * classes (kd_divergence_row, the same double-precision path) for scale. Prints; asserts nothing. */
#include <stdio.h>
#include <stdlib.h>

#include "core/files.h"
#include "core/rng.h"
#include "data/align.h"
#include "loss/divergence.h"
#include "loss/xtok.h"

int main(int argc, char **argv) {
  const int Vs = argc > 1 ? atoi(argv[1]) : 1024, Vt = argc > 2 ? atoi(argv[2]) : 4096;
  const int P = argc > 3 ? atoi(argv[3]) : 512, n = Vs * 9 / 10;
  if (Vs < 2 || Vt < Vs || P < 1) return 2;
  float *zs = malloc(sizeof(float) * (size_t)P * Vs), *zt = malloc(sizeof(float) * (size_t)P * Vt);
  double *g = malloc(sizeof(double) * (size_t)Vt);
  int32_t *ids = malloc(sizeof(int32_t) * 2 * (size_t)Vt);
  if (!zs || !zt || !g || !ids) return 1;
  for (size_t i = 0; i < (size_t)P * Vs; i++) zs[i] = 2.0f * kd_normal(1, i);
  for (size_t i = 0; i < (size_t)P * Vt; i++) zt[i] = 3.0f * kd_normal(2, i);
  for (int j = 0; j < Vt; j++) ids[j] = j; /* a random permutation of the teacher's ids for the shared ones */
  for (int j = Vt - 1; j > 0; j--) {
    const int k = (int)(kd_uniform(3, (uint64_t)j) * (j + 1)) % (j + 1), x = ids[j];
    ids[j] = ids[k], ids[k] = x;
  }
  kd_vocab_map m = {n, ids + Vt, ids, Vs, Vt};
  for (int k = 0; k < n; k++) m.s_ids[k] = k;
  kd_xtok_work w;
  kd_err e = {0};
  if (kd_xtok_work_init(&w, &m, &e)) return 1;
  const kd_divergence fwd = {KD_DIV_FORWARD, 0};
  printf("cross-tokenizer loss and gradient per aligned pair: student %d ids, teacher %d, %d shared, T = 1, ns per "
         "pair (best of 5 over %d pairs)\n", Vs, Vt, n, P);
  const char *names[5] = {"uld", "exact", "hybrid", "forward KL, VS", "forward KL, VT"};
  for (int k = 0; k < 5; k++) {
    double best = 1e30, sink = 0;
    for (int pass = 0; pass < 5; pass++) {
      const double t0 = kd_seconds();
      for (int p = 0; p < P; p++) {
        const float *a = zs + (size_t)p * Vs, *b = zt + (size_t)p * Vt;
        if (k < 3) sink += kd_xtok_pair((kd_xtok_kind)(k + 1), &fwd, a, b, 1.0, g, &w);
        else if (k == 3) sink += kd_divergence_row(&fwd, a, b, Vs, 1.0, g);
        else sink += kd_divergence_row(&fwd, b, b, Vt, 1.0, g);
      }
      const double dt = kd_seconds() - t0;
      if (dt < best) best = dt;
    }
    printf("%-16s %10.0f   (sum %.3g)\n", names[k], 1e9 * best / P, sink);
  }
  kd_xtok_work_free(&w);
  free(zs), free(zt), free(g), free(ids);
  return 0;
}
