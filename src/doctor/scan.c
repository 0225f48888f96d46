/* The doctor's pass over the teacher's outputs: rows of a split, this
 * rank's share of them, in a few blocks spread over its shard (a sample of
 * --rows rows that is not just the first files of a corpus), each block's
 * teacher logits from the teacher file (dense or top-k) or from the teacher
 * checkpoint's forward pass, into kd_doctor_sums. */
#include "doctor/scan.h"

#include <stdlib.h>
#include <string.h>

#include "core/dist.h"
#include "core/rng.h"
#include "kd/teacher.h"
#include "models/fit.h"

#define BLOCKS 8 /* blocks per rank */

int dr_chunk_rows(int P, int C) {
  /* a gather's logits within DR_LOGITS_BYTES (a long row of a large vocabulary is megabytes) */
  const size_t row = (size_t)P * (size_t)C * sizeof(float);
  const size_t n = row ? DR_LOGITS_BYTES / row : DR_CHUNK;
  return n < 1 ? 1 : n > DR_CHUNK ? DR_CHUNK : (int)n;
}

int dr_open_dense(kd_teacher **ts, const dr_teacher *tch, const dr_split *sp, int64_t lo, int64_t hi, int P, kd_err *e) {
  if (kd_teacher_open(ts, tch->file, sp->name, lo, hi, sp->total, KD_TEACH_LOGITS, e)) return e->code;
  if (kd_teacher_classes(*ts) != tch->classes || kd_teacher_positions(*ts) != P)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: /%s/logits has %d values at %d positions per row; /train/logits has %d at %d",
                   tch->file, sp->name, kd_teacher_classes(*ts), kd_teacher_positions(*ts), tch->classes, P);
  return kd_teacher_validate(*ts, e);
}

/* The teacher's logits of `count` rows of a block into z [count * P, C]. */
static int block_logits(dr_teacher *tch, kd_teacher *ts, kd_batch *b, int64_t r0, int count, float *z, kd_err *e) {
  if (ts) return kd_teacher_gather_range(ts, r0, count, z, e);
  const kd_fwd inference = {0, 0};
  return kd_model_forward(tch->model, z, b, &inference, e);
}

/* One block's stores (rows [lo, hi): block-local) and buffers for gathers of `chunk` rows of P positions. */
typedef struct scan_bufs {
  kd_source *src;
  kd_teacher *ts;       /* a dense file */
  kd_sparse_store *ss;  /* a top-k file */
  kd_batch b;
  kd_sparse_batch sb;
  float *z;             /* dense teacher logits [chunk * P, C] */
  int32_t *y;           /* targets [chunk * P] */
  int64_t *idx;         /* block-local rows of a sparse gather */
  int P, chunk;
} scan_bufs;

static void scan_free(scan_bufs *q) {
  free(q->idx);
  free(q->y);
  free(q->z);
  kd_sparse_batch_free(&q->sb);
  kd_batch_free(&q->b);
  kd_sparse_free(q->ss);
  kd_teacher_free(q->ts);
  kd_source_free(q->src);
}

static int scan_open(scan_bufs *q, dr_teacher *tch, const dr_split *sp, int64_t lo, int64_t hi, kd_err *e) {
  int rc = kd_source_open(&q->src, tch->data, sp->name, lo, hi, e);
  if (!rc && tch->mode == DR_MODEL) rc = kd_source_set_preprocess(q->src, &tch->pre, e);
  /* the rows fit the teacher (labels and ids in its range, finite features), as kd train checks them */
  if (!rc) rc = tch->mode == DR_MODEL ? kd_fit_rows(tch->model, "--teacher-model", q->src, 1, e)
                                       : kd_source_validate(q->src, tch->classes, 1, e);
  if (rc) return rc;
  const int P = q->P = kd_source_kind(q->src) == KD_INPUT_TOKENS ? kd_source_width(q->src) : 1;
  q->chunk = dr_chunk_rows(P, tch->classes);
  if (tch->model && q->chunk > tch->model->max_batch) q->chunk = tch->model->max_batch;
  const size_t rows = (size_t)q->chunk;
  if (tch->mode == DR_DENSE) rc = dr_open_dense(&q->ts, tch, sp, lo, hi, P, e);
  if (!rc && tch->mode == DR_TOPK) /* the lse when the file has it: for the mass the ids hold, whatever the mode */
    rc = kd_sparse_open(&q->ss, tch->file, sp->name, lo, hi, sp->total,
                        tch->has_lse ? KD_SPARSE_TAIL : tch->sparse_mode, tch->classes, e);
  if (!rc) rc = kd_batch_init(&q->b, kd_source_kind(q->src), q->chunk, kd_source_width(q->src), e);
  if (!rc && q->ss) rc = kd_sparse_batch_init(&q->sb, q->ss, q->chunk * P, e);
  if (!rc && ((!q->ss && !(q->z = malloc(sizeof *q->z * rows * P * tch->classes))) ||
              !(q->y = malloc(sizeof *q->y * rows * P)) || !(q->idx = malloc(sizeof *q->idx * rows))))
    rc = kd_fail(e, KD_ERR_RUNTIME, "out of memory (%d rows of teacher logits)", q->chunk);
  return rc;
}

/* Rows [lo, hi) of the split into s. */
static int scan_block(dr_teacher *tch, const dr_split *sp, int64_t lo, int64_t hi, kd_doctor_sums *s, kd_err *e) {
  scan_bufs q;
  memset(&q, 0, sizeof q);
  int rc = scan_open(&q, tch, sp, lo, hi, e);
  const int P = q.P, C = tch->classes;
  for (int64_t r0 = 0; !rc && r0 < hi - lo; r0 += q.chunk) {
    const int count = (int)(hi - lo - r0 < q.chunk ? hi - lo - r0 : q.chunk);
    if ((rc = kd_source_gather_range(q.src, r0, count, &q.b, e))) break;
    if (sp->labelled_fraction < 1) kd_batch_unlabel(&q.b, sp->label_key, sp->labelled_fraction);
    kd_batch_targets(&q.b, q.y);
    if (q.ss) {
      for (int i = 0; i < count; i++) q.idx[i] = r0 + i;
      if ((rc = kd_sparse_gather(q.ss, q.idx, count, &q.sb, e))) break;
      const int K = q.sb.t.K;
      for (int i = 0; i < count; i++)
        kd_doctor_add_topk(s, q.sb.t.ids + (size_t)i * P * K, q.sb.t.vals + (size_t)i * P * K,
                           q.sb.t.lse ? q.sb.t.lse + (size_t)i * P : NULL, q.y + (size_t)i * P, P, K);
    } else {
      if ((rc = block_logits(tch, q.ts, &q.b, r0, count, q.z, e))) break;
      for (int i = 0; i < count; i++) kd_doctor_add_dense(s, q.z + (size_t)i * P * C, q.y + (size_t)i * P, P, C);
    }
  }
  scan_free(&q);
  return rc;
}

void dr_shard(const dr_split *sp, int64_t want, MPI_Comm comm, int64_t *a, int64_t *b, int64_t *take) {
  int rank, size;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  kd_shard_range(sp->hi - sp->lo, size, rank, a, b);
  *a += sp->lo, *b += sp->lo;
  *take = want > 0 ? (want + size - 1) / size : *b - *a;
  if (*take > *b - *a) *take = *b - *a;
}

int dr_agree_sum(MPI_Comm comm, int rc, double *v, int n, kd_err *e) {
  if ((rc = kd_agree(comm, rc, e))) return rc;
  int rank;
  MPI_Comm_rank(comm, &rank);
  if (kd_mpi_check(MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, comm), "MPI_Allreduce", e))
    return kd_fatal(e, rank, "kd doctor's sums");
  return KD_OK;
}

int dr_scan(dr_teacher *tch, const dr_split *sp, int64_t want, MPI_Comm comm, kd_doctor_sums *s, kd_err *e) {
  memset(s, 0, sizeof *s);
  int64_t a, b, take;
  dr_shard(sp, want, comm, &a, &b, &take);
  const int64_t mine = b - a;
  int rc = KD_OK;
  if (take >= mine) {
    if (mine > 0) rc = scan_block(tch, sp, a, b, s, e);
  } else { /* BLOCKS pieces spread over the shard */
    const int64_t per = (take + BLOCKS - 1) / BLOCKS;
    for (int k = 0; k < BLOCKS && !rc; k++) {
      const int64_t lo = a + mine * k / BLOCKS, end = a + mine * (k + 1) / BLOCKS;
      const int64_t hi = lo + per < end ? lo + per : end;
      if (hi > lo) rc = scan_block(tch, sp, lo, hi, s, e);
    }
  }
  return dr_agree_sum(comm, rc, (double *)s, (int)(sizeof *s / sizeof(double)), e);
}
