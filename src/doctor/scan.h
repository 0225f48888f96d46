/* The doctor's reads: where the teacher's outputs come from, which rows
 * form a split, and one pass over them (scan.c). */
#ifndef KD_DOCTOR_SCAN_H
#define KD_DOCTOR_SCAN_H

#include "doctor/doctor.h"
#include "kd/data.h"
#include "kd/model.h"
#include "kd/teacher.h"

typedef enum { DR_DENSE, DR_TOPK, DR_SAMPLED, DR_MODEL } dr_mode;

typedef struct dr_teacher {
  const char *data;            /* the data file */
  const char *file;            /* the teacher file ("" for a checkpoint) */
  dr_mode mode;
  kd_sparse_mode sparse_mode;  /* DR_TOPK: topk or tail */
  int has_lse;                 /* DR_TOPK: the file holds each position's lse (read for the mass the ids hold) */
  int classes;                 /* C, or the vocabulary */
  kd_model *model;             /* DR_MODEL: the teacher, built for inference */
  float *params;
  kd_preprocess pre;           /* DR_MODEL: its input normalisation (the rows it reads are normalised so) */
} dr_teacher;

typedef struct dr_split {
  const char *name;            /* "train", "valid", "test" */
  int64_t lo, hi, total;       /* the rows [lo, hi) of a split of total rows */
  double labelled_fraction;    /* --labelled-fraction on the transfer rows (1 elsewhere) */
  uint64_t label_key;          /* its draw's key, as the trainer's */
} dr_split;

#define DR_CHUNK 32                        /* rows per gather, at most */
#define DR_LOGITS_BYTES ((size_t)256 << 20) /* a gather's logits, at most (one row whatever its size) */
/* Rows per gather for rows of P positions of C logits. */
int dr_chunk_rows(int P, int C);
/* A split's dense teacher logits, rows [lo, hi), checked: the /train shape (C values at P positions), finite. */
int dr_open_dense(kd_teacher **ts, const dr_teacher *tch, const dr_split *sp, int64_t lo, int64_t hi, int P, kd_err *e);

/* This rank's shard [a, b) of the split's rows, and *take: its part of about `want` of them (0: all). */
void dr_shard(const dr_split *sp, int64_t want, MPI_Comm comm, int64_t *a, int64_t *b, int64_t *take);
/* Collective: agree on every rank's rc, then sum the n doubles at v over comm, in place. */
int dr_agree_sum(MPI_Comm comm, int rc, double *v, int n, kd_err *e);

/* Collective: the teacher's sums over about `want` rows of the split (0:
 * all), spread over it, the same on every rank. */
int dr_scan(dr_teacher *tch, const dr_split *sp, int64_t want, MPI_Comm comm, kd_doctor_sums *s, kd_err *e);

#endif
