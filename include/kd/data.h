/* Training data: one rank's contiguous shard of one split ("train", "test").
 * Layout (docs/format.md): data file /SPLIT/x [N, D], /SPLIT/y [N];
 * teacher file /SPLIT/logits [N, C]. Any HDF5 int/float type is converted on
 * read to float32 / int32. The trainer only touches the shard through
 * kd_split_gather, so an out-of-core shard can replace it later. */
#ifndef KD_DATA_H
#define KD_DATA_H

#include <stdint.h>
#include "kd/error.h"

typedef struct kd_split {
  char name[16];       /* "train" or "test" */
  int64_t n_total;     /* rows in the file */
  int64_t row0;        /* first global row of this shard */
  int64_t n;           /* rows in this shard */
  int dim;             /* D */
  int classes;         /* C of the teacher logits, 0 without teacher */
  float *x;            /* [n, dim] */
  int32_t *y;          /* [n] */
  float *logits;       /* [n, classes] or NULL */
  int feat_dim;        /* H_t of the teacher features, 0 without */
  float *features;     /* [n, feat_dim] teacher hidden states, or NULL */
} kd_split;

/* Rows of rank r of P over N rows: [floor(r*N/P), floor((r+1)*N/P)). */
void kd_shard_range(int64_t N, int P, int r, int64_t *lo, int64_t *hi);
/* Rows rank r of P contributes to a global batch of B. */
int kd_local_batch(int B, int P, int r);

/* Shapes of a split without reading rows: N, D and, if teacher_path, the
 * teacher logits' C (checked to have N rows). *present = 0 when the split's
 * x is absent from the data file (then nothing else is checked). */
int kd_split_probe(const char *data_path, const char *teacher_path,
                   const char *split, int *present, int64_t *n, int *dim,
                   int *classes, kd_err *e);

/* Read rows [lo, hi) of a split: x, y and (if teacher_path) logits. */
int kd_split_load(kd_split *s, const char *data_path, const char *teacher_path,
                  const char *split, int64_t lo, int64_t hi, kd_err *e);

/* Local checks: labels in [0, C) (or -1 when allow_unlabelled), finite x and
 * logits. The message names the file, dataset and global row. */
int kd_split_validate(const kd_split *s, int n_classes, int allow_unlabelled,
                      const char *data_path, const char *teacher_path,
                      kd_err *e);

/* Read the shard's rows of /SPLIT/features [N, H_t] from the teacher file
 * (checked: 2-D, N rows, finite). */
int kd_split_load_features(kd_split *s, const char *teacher_path, kd_err *e);

/* Copy rows idx[0..count) of the shard into contiguous batch buffers.
 * x_out [count, dim], y_out [count], t_out [count, classes] (nullable),
 * f_out [count, feat_dim] (nullable), row_ids [count] (nullable) global
 * row indices. */
void kd_split_gather(const kd_split *s, const int64_t *idx, int count,
                     float *x_out, int32_t *y_out, float *t_out, float *f_out,
                     int64_t *row_ids);
/* Ask the CPU to start loading the rows a later kd_split_gather will copy
 * (inputs and teacher logits): issued a step ahead (after the backward pass),
 * it takes the random-row cache misses off the next step's gather. */
void kd_split_prefetch(const kd_split *s, const int64_t *idx, int count);

/* Fingerprints of the shard's rows (x as float32 and y as int32; logits as
 * float32), each row hashed with its global row index and the rows summed
 * mod 2^64: summing the parts of all ranks gives the same value for any rank
 * count, dtype or chunking. */
void kd_split_fingerprint(const kd_split *s, uint64_t *data_fp, uint64_t *teacher_fp);

void kd_split_free(kd_split *s);

#endif
