/* The row provider: the one place that knows in which order a run reads
 * its training rows and where they come from. kd_rows_next fills one
 * step's batch with this rank's rows and every teacher target that goes
 * with them (dense logits, sparse logits, FitNets features, stored
 * intermediate tensors), so the trainer never indexes a store itself.
 *
 * Two backends:
 *   memory   this rank's shard held in memory (kd_source and the teacher
 *            stores); each epoch a permutation of the shard keyed on
 *            (seed, epoch, rank), as kd has always trained;
 *   stream   rows and teacher outputs read from the files while the steps
 *            run, by a reader thread, two windows at a time; the order is
 *            global (data/order.h), so it depends on neither the rank
 *            count nor the memory budget. */
#ifndef KD_DATA_ROWS_H
#define KD_DATA_ROWS_H

#include <stddef.h>
#include <stdint.h>

#include "data/fileset.h"
#include "kd/data.h"
#include "kd/teacher.h"

typedef struct kd_rows kd_rows;

/* One step's buffers, the trainer's. tb->logits NULL: no dense logits
 * this step (a self-distillation teacher not yet there); sb NULL: none. */
typedef struct kd_rows_out {
  kd_batch *in;
  kd_teacher_batch *tb;
  kd_sparse_batch *sb;
} kd_rows_out;

/* What reading the rows cost so far (streamed; zeros in memory). */
typedef struct kd_rows_stats {
  double wait_s;        /* the steps waited for the reader */
  double read_s;        /* the reader's time reading and placing rows */
  int64_t windows;      /* windows read */
  double bytes_read;    /* bytes the reader asked HDF5 for */
  size_t buffer_bytes;  /* the two window buffers and the read scratch at their largest */
} kd_rows_stats;

/* In memory: borrowed stores of this rank's shard (teacher, sparse, inter
 * may be NULL). The stores stay the caller's and may be refilled between
 * epochs (a self-distillation snapshot). */
int kd_rows_memory(kd_rows **r, const kd_source *src, const kd_teacher *teacher, const kd_sparse_store *sparse,
                   kd_inter_store *inter, int b_local, uint64_t seed, int rank, kd_err *e);

/* In memory, in order: every row of src (and the teacher's logits of them) in batches of `chunk` rows, the
 * last one shorter, for evaluation and inference (borrowed stores, teacher may be NULL). */
int kd_rows_memory_in_order(kd_rows **r, const kd_source *src, const kd_teacher *teacher, int chunk, kd_err *e);

/* Streamed: where the rows are and how a step takes them. */
typedef struct kd_stream_cfg {
  const kd_fileset *data;      /* the data files (rows concatenated), the caller's */
  const kd_fileset *teacher;   /* one teacher file per data file, or NULL: none */
  const char *split;           /* "train" */
  int64_t first, rows;         /* the rows [first, first + rows) of the split (training: first 0) */
  kd_input kind;
  int width;
  int classes;                 /* the student's classes C (a vocabulary V) */
  int dense;                   /* dense teacher logits /SPLIT/logits [rows, (T,) C] to read */
  kd_sparse_mode sparse;       /* sparse ones instead (KD_SPARSE_DENSE: none) */
  int sparse_k, sparse_lse;    /* their slots per position, and whether /SPLIT/topk/lse is read */
  int B, ranks, rank;          /* the global batch and this rank's part of it */
  uint64_t seed;
  int64_t block, window;       /* the order's block and window, rows (data/order.h) */
  int64_t epochs;              /* the reader reads ahead no further than the end of this epoch */
  int in_order;                /* every row in file order, the last batch shorter; one rank, one epoch
                                  (evaluation, inference: blocks, no shuffle) */
  int check_teacher;           /* the reader checks the dense teacher logits it reads are finite (training checks
                                  them in its pass before step 1) */
} kd_stream_cfg;

/* Bytes a row takes in a window buffer (its data and teacher targets,
 * float32 as the steps read them). */
double kd_rows_row_bytes(const kd_stream_cfg *c);
/* Bytes the streamed backend will hold: two windows' share of rows and the
 * scratch one block's read needs. */
double kd_rows_stream_bytes(const kd_stream_cfg *c);
int kd_rows_stream(kd_rows **r, const kd_stream_cfg *c, kd_err *e);

/* Streamed, in order, from one data file (and one teacher file, or NULL): rows [first, first + rows) of split,
 * with the teacher's dense logits of them (checked finite as they are read), in batches of B rows, the last one
 * shorter; blocks of about 4 MiB of rows, two buffered; feature rows normalised by pre (nullable). Evaluation
 * and inference (kd eval, kd predict, kd logits, kd generate --data): the reader starts at the first seek. */
typedef struct kd_range_cfg {
  const char *data, *teacher, *split;
  int64_t first, rows;
  int classes, B;
  const kd_preprocess *pre;
} kd_range_cfg;
int kd_rows_file_in_order(kd_rows **r, const kd_range_cfg *c, kd_err *e);

/* Steps of an epoch this rank can fill (the trainer runs the fewest). */
int64_t kd_rows_steps(const kd_rows *r);
/* The next kd_rows_next is step `step` of `epoch` (a new epoch's order,
 * or a resumed run's position). */
int kd_rows_seek(kd_rows *r, int64_t epoch, int64_t step, kd_err *e);
/* This step's rows and targets into o (o->in->rows: how many; fewer than the batch only at the end of an
 * in-order provider); then the provider moves on. */
int kd_rows_next(kd_rows *r, const kd_rows_out *o, kd_err *e);
/* Memory: start loading the next step's rows into the CPU caches (after
 * the backward pass). Streamed: nothing (the reader is ahead). */
void kd_rows_prefetch(const kd_rows *r, int teacher_logits);
/* Normalisation applied to feature rows from now on (NULL: none). */
void kd_rows_set_preprocess(kd_rows *r, const kd_preprocess *p);
int kd_rows_streamed(const kd_rows *r);
void kd_rows_get_stats(const kd_rows *r, kd_rows_stats *s);
/* Stop the reader (a streamed provider): no HDF5 call of its after this. */
void kd_rows_stop(kd_rows *r);
void kd_rows_free(kd_rows *r);

#endif
