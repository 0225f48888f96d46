#include "optim/gradsync.h"

#include <stdlib.h>
#include <string.h>

#include "core/dist.h"

/* Append [lo, hi) as pieces of at most max_bucket floats, the top
 * piece first (the order the backward pass finishes them). */
static int add_pieces(kd_gsync *s, size_t lo, size_t hi, int sharded, int cap) {
  const size_t len = hi - lo, q = (len + s->max_bucket - 1) / s->max_bucket;
  for (size_t j = q; j-- > 0;) {
    if (s->n_buckets >= cap) return -1;
    kd_gsync_bucket *b = &s->bk[s->n_buckets++];
    b->lo = lo + len * j / q;
    b->hi = lo + len * (j + 1) / q;
    b->sharded = sharded;
  }
  return 0;
}

int kd_gsync_init(kd_gsync *s, MPI_Comm comm, float *grads, size_t n_model, size_t n_tail, const size_t *cuts,
                  int n_cuts, size_t max_bucket, int overlap, int shard, kd_err *e) {
  memset(s, 0, sizeof *s);
  s->max_bucket = max_bucket > 0 ? max_bucket : KD_GSYNC_DEFAULT_BUCKET;
  s->comm = comm;
  s->grads = grads;
  s->n_model = n_model;
  s->n_tail = n_tail;
  if (kd_mpi_check(MPI_Comm_rank(comm, &s->rank), "MPI_Comm_rank", e) ||
      kd_mpi_check(MPI_Comm_size(comm, &s->size), "MPI_Comm_size", e))
    return e->code;
  s->overlap = overlap && s->size > 1;
  s->shard = shard && s->size > 1;
  if (s->size == 1) { /* one replica: it owns everything */
    s->own = kd_calloc(1, sizeof *s->own, "gradient sync ranges", e);
    if (!s->own) return e->code;
    s->own[0].lo = 0;
    s->own[0].hi = n_model;
    s->n_own = 1;
    return KD_OK;
  }
  const size_t min_bucket = (s->max_bucket + 3) / 4;
  const int cap = (int)(n_model / s->max_bucket) + (int)(n_tail / s->max_bucket) + 2 * n_cuts + 4;
  s->bk = kd_calloc((size_t)cap, sizeof *s->bk, "gradient buckets", e);
  s->req = kd_calloc((size_t)cap, sizeof *s->req, "gradient requests", e);
  s->own = kd_calloc((size_t)cap, sizeof *s->own, "gradient sync ranges", e);
  if (!s->bk || !s->req || !s->own) {
    kd_gsync_free(s);
    return e->code;
  }
  /* Model buckets: from the top down, close one at a layer boundary once it
   * holds min_bucket floats (the rest of the buffer closes the last). */
  size_t top = n_model;
  for (int k = n_cuts - 1; k >= 0 && top > 0; k--) {
    const size_t lo = cuts[k];
    if (lo < top && (top - lo >= min_bucket || lo == 0)) {
      if (add_pieces(s, lo, top, s->shard, cap)) return kd_fail(e, KD_ERR_RUNTIME, "gradient buckets overflow");
      top = lo;
    }
  }
  if (top > 0 && add_pieces(s, 0, top, s->shard, cap))
    return kd_fail(e, KD_ERR_RUNTIME, "gradient buckets overflow");
  /* The tail: allreduced in pieces like the rest (a large FitNets regressor
   * is as slow as any other large single collective); posted in finish. */
  if (n_tail > 0 && add_pieces(s, n_model, n_model + n_tail, 0, cap))
    return kd_fail(e, KD_ERR_RUNTIME, "gradient buckets overflow");
  /* Sharded buckets: rank r owns the r-th of p near-equal slices. */
  for (int i = 0; i < s->n_buckets; i++) {
    kd_gsync_bucket *b = &s->bk[i];
    if (!b->sharded) continue;
    b->counts = kd_calloc((size_t)s->size, sizeof(int), "bucket counts", e);
    b->displs = kd_calloc((size_t)s->size, sizeof(int), "bucket offsets", e);
    if (!b->counts || !b->displs) {
      kd_gsync_free(s);
      return e->code;
    }
    const size_t len = b->hi - b->lo;
    for (int r = 0; r < s->size; r++) {
      b->displs[r] = (int)(len * (size_t)r / (size_t)s->size);
      b->counts[r] = (int)(len * (size_t)(r + 1) / (size_t)s->size) - b->displs[r];
    }
  }
  /* What this rank updates: its slices, in ascending order, or everything. */
  if (!s->shard) {
    s->own[0].lo = 0;
    s->own[0].hi = n_model;
    s->n_own = 1;
  } else {
    for (int i = s->n_buckets - 1; i >= 0; i--) {
      const kd_gsync_bucket *b = &s->bk[i];
      if (!b->sharded || b->counts[s->rank] == 0) continue;
      s->own[s->n_own].lo = b->lo + (size_t)b->displs[s->rank];
      s->own[s->n_own].hi = s->own[s->n_own].lo + (size_t)b->counts[s->rank];
      s->n_own++;
    }
  }
  for (int i = 0; i < cap; i++) s->req[i] = MPI_REQUEST_NULL;
  return KD_OK;
}

void kd_gsync_free(kd_gsync *s) {
  if (s->bk)
    for (int i = 0; i < s->n_buckets; i++) {
      free(s->bk[i].counts);
      free(s->bk[i].displs);
    }
  free(s->bk);
  free(s->req);
  free(s->own);
  memset(s, 0, sizeof *s);
}

void kd_gsync_begin(kd_gsync *s) {
  s->started = 0;
  s->failed = 0;
}

static int fail_mpi(kd_gsync *s, int rc, const char *what) {
  if (rc == MPI_SUCCESS || s->failed) return rc != MPI_SUCCESS;
  s->failed = 1;
  kd_err_clear(&s->err);
  kd_mpi_check(rc, what, &s->err);
  return 1;
}

/* Start bucket i: non-blocking with overlap, else blocking (and done). */
static void start_bucket(kd_gsync *s, int i) {
  kd_gsync_bucket *b = &s->bk[i];
  float *buf = s->grads + b->lo;
  const int n = (int)(b->hi - b->lo);
  int rc;
  if (!b->sharded) {
    rc = s->overlap ? MPI_Iallreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, s->comm, &s->req[i])
                    : MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, s->comm);
    fail_mpi(s, rc, s->overlap ? "MPI_Iallreduce" : "MPI_Allreduce");
  } else {
    /* MPI forbids aliased send and receive buffers, and with MPI_IN_PLACE
     * the result goes to the start of the buffer; so reduce into the start
     * (in place) and move the slice to its position in finish. */
    rc = s->overlap ? MPI_Ireduce_scatter(MPI_IN_PLACE, buf, b->counts, MPI_FLOAT, MPI_SUM, s->comm, &s->req[i])
                    : MPI_Reduce_scatter(MPI_IN_PLACE, buf, b->counts, MPI_FLOAT, MPI_SUM, s->comm);
    fail_mpi(s, rc, s->overlap ? "MPI_Ireduce_scatter" : "MPI_Reduce_scatter");
  }
}

void kd_gsync_ready(kd_gsync *s, size_t from) {
  if (!s->overlap || s->failed) return;
  /* Model buckets come first in posting order; the tail waits for finish. */
  while (s->started < s->n_buckets && s->bk[s->started].hi <= s->n_model && s->bk[s->started].lo >= from)
    start_bucket(s, s->started++);
  if (s->started > 0) {
    int done;
    fail_mpi(s, MPI_Testall(s->started, s->req, &done, MPI_STATUSES_IGNORE), "MPI_Testall");
  }
}

int kd_gsync_finish(kd_gsync *s, kd_err *e) {
  if (s->size == 1) return KD_OK;
  while (s->started < s->n_buckets) start_bucket(s, s->started++);
  if (s->overlap) fail_mpi(s, MPI_Waitall(s->n_buckets, s->req, MPI_STATUSES_IGNORE), "MPI_Waitall");
  if (s->failed) {
    *e = s->err;
    return e->code;
  }
  for (int i = 0; i < s->n_buckets; i++) {
    const kd_gsync_bucket *b = &s->bk[i];
    if (b->sharded && b->displs[s->rank] > 0)
      memmove(s->grads + b->lo + b->displs[s->rank], s->grads + b->lo, sizeof(float) * (size_t)b->counts[s->rank]);
  }
  return KD_OK;
}

const kd_range *kd_gsync_owned(const kd_gsync *s, int *n) {
  *n = s->n_own;
  return s->own;
}

int kd_gsync_sumsq(kd_gsync *s, double *out, kd_err *e) {
  double local = 0.0;
  for (int i = 0; i < s->n_own; i++) local += kd_sumsq(s->grads + s->own[i].lo, s->own[i].hi - s->own[i].lo);
  if (!s->shard) {
    *out = local;
    return KD_OK;
  }
  return kd_mpi_check(MPI_Allreduce(&local, out, 1, MPI_DOUBLE, MPI_SUM, s->comm), "MPI_Allreduce", e);
}

int kd_gsync_gather(kd_gsync *s, float *buf, kd_err *e) {
  if (!s->shard) return KD_OK;
  int k = 0;
  for (int i = 0; i < s->n_buckets; i++) {
    const kd_gsync_bucket *b = &s->bk[i];
    if (!b->sharded) continue;
    int rc = MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf + b->lo, b->counts, b->displs, MPI_FLOAT,
                             s->comm, &s->req[k++]);
    if (kd_mpi_check(rc, "MPI_Iallgatherv", e)) return e->code;
  }
  return kd_mpi_check(MPI_Waitall(k, s->req, MPI_STATUSES_IGNORE), "MPI_Waitall", e);
}
