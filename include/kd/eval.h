/* Evaluation metrics of a model's logits on labelled rows: accuracy, NLL,
 * expected calibration error (15 equal-width confidence bins), and, with
 * teacher logits, top-1 agreement and KL(teacher || student) at T. */
#ifndef KD_EVAL_H
#define KD_EVAL_H

#include <stdint.h>
#include <stdio.h>

#include "kd/data.h"
#include "kd/error.h"
#include "kd/model.h"

#define KD_ECE_BINS 15

typedef struct kd_eval_sums {
  double n;          /* rows */
  double labelled;   /* rows with y >= 0 */
  double correct;
  double nll;        /* sum of -log p(y) over labelled rows */
  double bin_n[KD_ECE_BINS], bin_conf[KD_ECE_BINS], bin_correct[KD_ECE_BINS];
  double teacher_rows;
  double agree;      /* argmax student == argmax teacher */
  double kl;         /* sum of KL(p_t^T || p_s^T) */
} kd_eval_sums;

typedef struct kd_eval_result {
  double accuracy, nll, ece;  /* NAN when no labelled row */
  double agreement, kl;       /* NAN without teacher logits */
  int64_t n;
} kd_eval_result;

/* Accumulate B rows of logits [B, C] (teacher logits nullable). */
void kd_eval_accumulate(kd_eval_sums *s, const float *logits, const int32_t *y,
                        const float *t_logits, int B, int C, double T);
void kd_eval_finish(kd_eval_result *r, const kd_eval_sums *s);

/* Forward every row of split through the model in chunks of max_batch and
 * evaluate (inference mode: no dropout). logits_out (nullable) receives the
 * [n, C] logits. */
int kd_eval_model(kd_eval_result *r, float *logits_out, kd_model *m,
                  const kd_split *split, double T, kd_err *e);

void kd_eval_print(FILE *f, const char *label, const kd_eval_result *r);
void kd_eval_json(FILE *f, const kd_eval_result *r);

#endif
