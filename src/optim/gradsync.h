/* Gradient synchronisation across data-parallel ranks: the step's one
 * gradient buffer [model parameters | tail] is summed over the ranks in
 * buckets.
 *
 * - Buckets are fixed at set-up from the model's view offsets (the points
 *   where the backward pass finishes a layer), so every rank posts the same
 *   collectives in the same order, whatever happens during its step.
 * - Overlap: the model reports during its backward pass which suffix of the
 *   gradient is final (kd_gsync_ready); buckets inside it start at once as
 *   non-blocking collectives and are progressed ("poked" with MPI_Testall) at
 *   every later report, since Open MPI only advances them inside MPI calls.
 *   Without overlap every bucket starts in kd_gsync_finish.
 * - Sharded optimizer: the model part is reduce-scattered instead of
 *   allreduced; each rank updates only its slice of each bucket (kd_gsync_owned)
 *   and kd_gsync_gather allgathers the parameters: the same bytes as an
 *   allreduce, 1/p of the optimizer work per rank, and every replica ends
 *   with the very same bits because each slice has exactly one writer.
 * - The tail (step statistics, control flags, the FitNets regressor's
 *   gradient) is always allreduced, and posted last, after the backward pass:
 *   a rank whose backward failed still posts every bucket, in the same
 *   order, with its error flag in the tail, so no peer is left waiting. */
#ifndef KD_GRADSYNC_H
#define KD_GRADSYNC_H

#include <mpi.h>
#include <stddef.h>
#include "kd/error.h"
#include "optim/optim.h"

typedef struct kd_gsync_bucket {
  size_t lo, hi;  /* [lo, hi) of the gradient buffer, in floats */
  int sharded;    /* reduce-scatter (+ allgather of parameters) or allreduce */
  int *counts;    /* sharded: each rank's slice length ... */
  int *displs;    /* ... and its start, relative to lo */
} kd_gsync_bucket;

typedef struct kd_gsync {
  MPI_Comm comm;
  int rank, size;
  int overlap, shard;
  float *grads;
  size_t n_model, n_tail;
  size_t max_bucket;       /* floats */
  int n_buckets;           /* model buckets from the top of the buffer down, then the tail's */
  kd_gsync_bucket *bk;
  MPI_Request *req;
  int started;             /* buckets started in this step */
  kd_range *own;           /* ranges of [0, n_model) this rank updates */
  int n_own;
  int failed;              /* an MPI call inside a hook failed: err says which */
  kd_err err;
} kd_gsync;

/* Default largest bucket (floats): one 80 MB MPI_Allreduce through Open
 * MPI's shared-memory path ran at a fifth of the speed of 4 MiB pieces. */
#define KD_GSYNC_DEFAULT_BUCKET ((size_t)1 << 20)

/* Set up for grads[n_model + n_tail]. cuts[n_cuts]: ascending offsets in
 * [0, n_model) where a bucket may begin (the model's view offsets). Buckets
 * hold at most max_bucket floats; a layer boundary closes one once it holds
 * a quarter of that (smaller ones pay the per-collective latency for little
 * earlier start). On one rank there is nothing to synchronise and every
 * call below is a no-op. */
int kd_gsync_init(kd_gsync *s, MPI_Comm comm, float *grads, size_t n_model, size_t n_tail, const size_t *cuts,
                  int n_cuts, size_t max_bucket, int overlap, int shard, kd_err *e);
void kd_gsync_free(kd_gsync *s);

/* A new step: nothing started yet. */
void kd_gsync_begin(kd_gsync *s);
/* grads[from, n_model) are final: with overlap, start the buckets inside
 * that range and progress the started ones. Cheap; safe to call often. */
void kd_gsync_ready(kd_gsync *s, size_t from);
/* Start whatever has not started (the tail last) and wait for all. After
 * it the tail and, unsharded, the whole buffer hold the sums; sharded, only
 * this rank's slices of the model part do. */
int kd_gsync_finish(kd_gsync *s, kd_err *e);
/* The ranges of [0, n_model) this rank updates (everything unless sharded). */
const kd_range *kd_gsync_owned(const kd_gsync *s, int *n);
/* Sum of squares of the reduced model gradient over all ranks: each rank
 * adds its slices, one small allreduce adds the ranks (sharded), or this
 * rank sums all of it (unsharded). */
int kd_gsync_sumsq(kd_gsync *s, double *out, kd_err *e);
/* Sharded: every rank's slices of buf[0, n_model) to every rank (after the
 * update for the parameters; before a checkpoint for the optimizer moments).
 * Unsharded: nothing to do. */
int kd_gsync_gather(kd_gsync *s, float *buf, kd_err *e);

#endif
