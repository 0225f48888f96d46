/* A row's share of the batch's loss sums, as every dense loss path adds it (loss.c, chunked.c, divergence.c). */
#ifndef KD_LOSS_SUMS_H
#define KD_LOSS_SUMS_H

#include "kd/loss.h"

/* hit: the student's top-1 is the label (counted only on a labelled row). */
static inline void kd_loss_sums_row(kd_loss_sums *s, int labelled, int hit, double w_hard, double w_soft, double ce,
                                    double kd) {
  s->loss += w_hard * ce + w_soft * kd;
  s->ce += ce;
  s->kd += kd;
  s->rows += 1.0;
  if (labelled) {
    s->labelled += 1.0;
    s->correct += hit;
  }
}

#endif
