/* kd doctor: will distillation pay for this run, and with which settings?
 *
 * Before any training, the doctor reads what a `kd train` run would read
 * (the same options: data, teacher file or teacher checkpoint, student,
 * --val-rows, --train-rows, --labelled-fraction, --sparse-kd) and measures
 * the known ways distillation fails:
 *   capacity     the student's size against the teacher's;
 *   margin       the teacher against a short run of the student trained
 *                from scratch on the labels (the baseline), on the run's
 *                evaluation split, with its standard error;
 *   fit          whether that baseline fits its labelled rows (cannot: too
 *                small) or overfits them (soft targets regularise);
 *   dark knowledge  the teacher's probability off its argmax and its
 *                entropy at T = 1, 2, 4, 8 on the transfer rows;
 *   shift        the teacher on the transfer rows against the evaluation
 *                split: confidence, entropy, agreement with the labels;
 *   all-correct  transfer rows that are all ones the teacher gets right;
 *   sparse       top-k files: the mass the stored ids hold, a tail or not;
 * per target token for token rows. Each finding carries its number, the
 * threshold it is judged by and what to do; the report ends with a verdict
 * (KD or not), a temperature and an alpha. Collective over comm: every rank
 * scans its shard of the rows, the baseline is a data-parallel run. */
#ifndef KD_DOCTOR_H
#define KD_DOCTOR_H

#include <mpi.h>
#include <stdint.h>
#include <stdio.h>

#include "kd/error.h"
#include "kd/train.h"

#define KD_DOCTOR_NT 4 /* temperatures 1, 2, 4, 8 */
extern const double kd_doctor_temps[KD_DOCTOR_NT];

typedef struct kd_doctor_cfg {
  kd_train_cfg train;        /* the run to examine: kd train's options */
  int64_t baseline_steps;    /* about this many steps of the baseline, whole epochs (0: no baseline) */
  int64_t rows;              /* rows of each split scanned, spread over it (0: all) */
  int64_t teacher_params;    /* the teacher's size when no checkpoint tells it (0: unknown) */
  char work[KD_PATH_MAX];    /* the baseline's run folder ("": a fresh one under TMPDIR, removed after) */
  int json;
} kd_doctor_cfg;

/* Sums over the positions (rows, or target tokens) of one split, from the
 * teacher's logits and the labels. */
typedef struct kd_doctor_sums {
  double n;                          /* positions scanned */
  double rows;                       /* rows scanned */
  double labelled;                   /* positions with a label */
  double correct;                    /* teacher argmax == label */
  double rows_all_correct;           /* token rows: rows whose every labelled position the teacher gets right */
  double conf;                       /* max probability at T = 1 */
  double nll;                        /* -log p(label) at T = 1, labelled positions (dense teachers) */
  double off[KD_DOCTOR_NT];          /* probability off the teacher's argmax at each T */
  double nontarget[KD_DOCTOR_NT];    /* probability off the label (unlabelled: the argmax) at each T */
  double ent[KD_DOCTOR_NT];          /* entropy (nats) at each T */
  double sparse_n, captured;         /* top-k positions with an lse, and the mass of their K ids at T = 1 */
} kd_doctor_sums;

typedef enum { KD_FIND_OK = 0, KD_FIND_NOTE = 1, KD_FIND_WARN = 2 } kd_find_level;

typedef struct kd_finding {
  char key[24];          /* capacity, margin, fit, dark-knowledge, shift, all-correct, sparse */
  kd_find_level level;   /* WARN: distillation is likely to hurt or be wasted here */
  double value, threshold;
  char what[400];        /* the measurement, in words */
  char todo[400];        /* what to do */
} kd_finding;

#define KD_DOCTOR_MAX_FINDINGS 12

typedef struct kd_doctor_report {
  /* what was read */
  int tokens;                        /* token rows: positions are target tokens */
  int classes;
  char teacher_kind[24];             /* dense file, top-k file, top-k + tail, sampled file, checkpoint */
  char eval_name[40];                /* the evaluation split, as the trainer names it */
  int64_t transfer_rows, eval_rows;
  double labelled_fraction;
  kd_doctor_sums transfer, eval;     /* the teacher on each (eval.n 0: no teacher logits there) */
  int sparse_k;                      /* sparse files: K ids (top-k) or S draws (sampled) per position */
  int sparse_has_lse;                /* top-k: the file holds each position's log-sum-exp (the tail) */
  double sample_temperature;         /* sampled files: the temperature of the draws */
  size_t student_params, teacher_params; /* 0: unknown */
  /* the baseline (NAN when not run) */
  int64_t baseline_steps;
  double base_metric, teacher_metric, margin, margin_se; /* accuracy (rows) or nll per token; margin: teacher better > 0 */
  double base_train_metric;          /* the baseline on the rows it learnt from (same metric) */
  /* findings and verdict */
  kd_finding f[KD_DOCTOR_MAX_FINDINGS];
  int n_findings;
  int use_kd;                        /* 1: distil; 0: train from scratch (or alpha near 1) */
  double temperature, alpha;
  char why[400];                     /* the verdict's reason and expected effect */
} kd_doctor_report;

/* Statistics (stats.c): add P positions of teacher logits [P, C] with
 * their labels y [P] (-1: unlabelled, KD_Y_IGNORE: skipped). */
void kd_doctor_add_dense(kd_doctor_sums *s, const float *z, const int32_t *y, int P, int C);
/* The same from K stored ids and logits per position (renormalised over
 * them) and, when lse is not NULL, the mass they hold. */
void kd_doctor_add_topk(kd_doctor_sums *s, const int32_t *ids, const float *z, const float *lse, const int32_t *y,
                        int P, int K);

/* The findings and the verdict from the numbers in r (findings.c). */
void kd_doctor_judge(kd_doctor_report *r);

int kd_doctor_run(const kd_doctor_cfg *cfg, MPI_Comm comm, kd_doctor_report *r, kd_err *e);
void kd_doctor_print(FILE *f, const kd_doctor_report *r);
void kd_doctor_json(FILE *f, const kd_doctor_report *r);

#endif
