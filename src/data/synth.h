/* kd synth: a learnable Gaussian-mixture classification set and a fixed
 * teacher's logits for it, so tests and the demo need no download. */
#ifndef KD_SYNTH_H
#define KD_SYNTH_H

#include <stdint.h>

#include "kd/error.h"

typedef struct kd_synth_cfg {
  char out[KD_PATH_MAX];
  char teacher_out[KD_PATH_MAX];
  int64_t train, test, dim, classes, clusters, seed;
  double noise;
  double separation;
  double teacher_temperature;
  int force;                   /* replace existing output files */
} kd_synth_cfg;

typedef struct kd_synth_stats {
  double teacher_acc[2]; /* teacher top-1 accuracy on train and test (-1: none) */
} kd_synth_stats;

/* Serial: call on one rank. stats may be NULL. */
int kd_synth_write(const kd_synth_cfg *cfg, kd_synth_stats *stats, kd_err *e);

#endif
