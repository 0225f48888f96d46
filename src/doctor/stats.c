/* The doctor's sums over the teacher's logits: probability off its argmax
 * (the dark knowledge, whether the argmax is right or not) and entropy at
 * T = 1, 2, 4, 8, confidence, agreement with the labels,
 * and for top-k files the mass the stored ids hold. In double: the sums run
 * over millions of positions. */
#include <math.h>

#include "doctor/doctor.h"
#include "kd/teacher.h"

const double kd_doctor_temps[KD_DOCTOR_NT] = {1, 2, 4, 8};

/* One position of n logits z (ids: the class of each, NULL for 0..n-1);
 * target: the label, or -1 (then the argmax stands for it). */
static void add_position(kd_doctor_sums *s, const float *z, const int32_t *ids, int n, int32_t label) {
  int arg = 0;
  for (int i = 1; i < n; i++)
    if (z[i] > z[arg]) arg = i;
  const double m = z[arg];
  const int32_t arg_id = ids ? ids[arg] : arg;
  int tgt = -1; /* index of the label among the n, -1: not stored (a top-k file) */
  if (label >= 0) {
    if (!ids) tgt = label;
    else
      for (int i = 0; i < n && tgt < 0; i++)
        if (ids[i] == label) tgt = i;
  } else {
    tgt = arg;
  }
  for (int t = 0; t < KD_DOCTOR_NT; t++) {
    const double T = kd_doctor_temps[t];
    double sum = 0, wz = 0;
    for (int i = 0; i < n; i++) {
      const double a = (z[i] - m) / T, p = exp(a);
      sum += p;
      wz += p * a;
    }
    s->off[t] += 1 - 1 / sum; /* the argmax's probability is exp(0) / sum */
    s->nontarget[t] += 1 - (tgt >= 0 ? exp((z[tgt] - m) / T) / sum : 0);
    s->ent[t] += log(sum) - wz / sum;
    if (t == 0) {
      s->conf += 1 / sum;
      const double p_tgt = tgt >= 0 ? exp(z[tgt] - m) / sum : 0;
      if (label >= 0) s->nll += tgt >= 0 ? -log(p_tgt > 1e-300 ? p_tgt : 1e-300) : 0;
    }
  }
  s->n += 1;
  if (label >= 0) {
    s->labelled += 1;
    s->correct += arg_id == label;
  }
}

void kd_doctor_add_dense(kd_doctor_sums *s, const float *z, const int32_t *y, int P, int C) {
  int all = 1, any = 0;
  for (int p = 0; p < P; p++) {
    if (y[p] == KD_Y_IGNORE) continue;
    const double before = s->correct;
    add_position(s, z + (size_t)p * C, NULL, C, y[p]);
    if (y[p] >= 0) {
      any = 1;
      all &= s->correct > before;
    }
  }
  s->rows += 1;
  s->rows_all_correct += any && all;
}

void kd_doctor_add_topk(kd_doctor_sums *s, const int32_t *ids, const float *z, const float *lse, const int32_t *y,
                        int P, int K) {
  int all = 1, any = 0;
  for (int p = 0; p < P; p++) {
    if (y[p] == KD_Y_IGNORE) continue;
    const float *zp = z + (size_t)p * K;
    const double before = s->correct;
    add_position(s, zp, ids + (size_t)p * K, K, y[p]);
    if (y[p] >= 0) {
      any = 1;
      all &= s->correct > before;
    }
    if (lse) {
      double held = 0;
      for (int k = 0; k < K; k++) held += exp(zp[k] - lse[p]);
      s->captured += held > 1 ? 1 : held;
      s->sparse_n += 1;
    }
  }
  s->rows += 1;
  s->rows_all_correct += any && all;
}
