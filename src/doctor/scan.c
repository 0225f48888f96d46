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

/* Rows [lo, hi) of the split (block-local source and teacher stores). */
static int scan_block(dr_teacher *tch, const dr_split *sp, int64_t lo, int64_t hi, kd_doctor_sums *s, kd_err *e) {
  kd_source *src = NULL;
  kd_teacher *ts = NULL;
  kd_sparse_store *ss = NULL;
  kd_batch b;
  kd_sparse_batch sb;
  memset(&b, 0, sizeof b);
  memset(&sb, 0, sizeof sb);
  float *z = NULL;
  int32_t *y = NULL;
  int64_t *idx = NULL;
  int rc = kd_source_open(&src, tch->data, sp->name, lo, hi, e);
  if (!rc && tch->mode == DR_MODEL) rc = kd_source_set_preprocess(src, &tch->pre, e);
  /* the rows fit the teacher (labels and ids in its range, finite features), as kd train checks them */
  if (!rc) rc = tch->mode == DR_MODEL ? kd_fit_rows(tch->model, "--teacher-model", src, 1, e)
                                       : kd_source_validate(src, tch->classes, 1, e);
  const int P = !rc && kd_source_kind(src) == KD_INPUT_TOKENS ? kd_source_width(src) : 1;
  if (!rc && tch->mode == DR_DENSE)
    rc = dr_open_dense(&ts, tch, sp, lo, hi, P, e);
  if (!rc && tch->mode == DR_TOPK)
    rc = kd_sparse_open(&ss, tch->file, sp->name, lo, hi, sp->total, tch->has_lse ? KD_SPARSE_TAIL : tch->sparse_mode,
                        tch->classes, e);
  int chunk = dr_chunk_rows(P, tch->classes);
  if (tch->model && chunk > tch->model->max_batch) chunk = tch->model->max_batch;
  if (!rc) rc = kd_batch_init(&b, kd_source_kind(src), chunk, kd_source_width(src), e);
  if (!rc && ss) rc = kd_sparse_batch_init(&sb, ss, chunk * P, e);
  if (!rc && !ss) {
    z = malloc(sizeof *z * (size_t)chunk * P * tch->classes);
    if (!z) rc = kd_fail(e, KD_ERR_RUNTIME, "out of memory (%d rows of teacher logits)", chunk);
  }
  if (!rc && !(y = malloc(sizeof *y * (size_t)chunk * P))) rc = kd_fail(e, KD_ERR_RUNTIME, "out of memory (targets)");
  if (!rc && !(idx = malloc(sizeof *idx * (size_t)chunk))) rc = kd_fail(e, KD_ERR_RUNTIME, "out of memory (row ids)");
  for (int64_t r0 = 0; !rc && r0 < hi - lo; r0 += chunk) {
    const int count = (int)(hi - lo - r0 < chunk ? hi - lo - r0 : chunk);
    rc = kd_source_gather_range(src, r0, count, &b, e);
    if (rc) break;
    if (sp->labelled_fraction < 1) kd_batch_unlabel(&b, sp->label_key, sp->labelled_fraction);
    kd_batch_targets(&b, y);
    if (ss) {
      for (int i = 0; i < count; i++) idx[i] = r0 + i;
      if ((rc = kd_sparse_gather(ss, idx, count, &sb, e))) break;
      for (int i = 0; i < count; i++)
        kd_doctor_add_topk(s, sb.t.ids + (size_t)i * P * sb.t.K, sb.t.vals + (size_t)i * P * sb.t.K,
                           sb.t.lse ? sb.t.lse + (size_t)i * P : NULL, y + (size_t)i * P, P, sb.t.K);
    } else {
      if ((rc = block_logits(tch, ts, &b, r0, count, z, e))) break;
      for (int i = 0; i < count; i++)
        kd_doctor_add_dense(s, z + (size_t)i * P * tch->classes, y + (size_t)i * P, P, tch->classes);
    }
  }
  free(idx);
  free(y);
  free(z);
  kd_sparse_batch_free(&sb);
  kd_batch_free(&b);
  kd_sparse_free(ss);
  kd_teacher_free(ts);
  kd_source_free(src);
  return rc;
}

int dr_scan(dr_teacher *tch, const dr_split *sp, int64_t want, MPI_Comm comm, kd_doctor_sums *s, kd_err *e) {
  int rank, size;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  memset(s, 0, sizeof *s);
  int64_t a, b;
  kd_shard_range(sp->hi - sp->lo, size, rank, &a, &b);
  a += sp->lo, b += sp->lo;
  const int64_t mine = b - a, take = want > 0 ? (want + size - 1) / size : mine;
  int rc = KD_OK;
  if (take >= mine) {
    if (mine > 0) rc = scan_block(tch, sp, a, b, s, e);
  } else {
    const int64_t per = (take + BLOCKS - 1) / BLOCKS;
    for (int k = 0; k < BLOCKS && !rc; k++) {
      const int64_t lo = a + mine * k / BLOCKS, end = a + mine * (k + 1) / BLOCKS;
      const int64_t hi = lo + per < end ? lo + per : end;
      if (hi > lo) rc = scan_block(tch, sp, lo, hi, s, e);
    }
  }
  if ((rc = kd_agree(comm, rc, e))) return rc;
  kd_doctor_sums total;
  if (kd_mpi_check(MPI_Allreduce(s, &total, (int)(sizeof *s / sizeof(double)), MPI_DOUBLE, MPI_SUM, comm),
                   "MPI_Allreduce", e))
    return kd_fatal(e, rank, "doctor sums");
  *s = total;
  return KD_OK;
}
