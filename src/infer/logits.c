#include "infer/logits.h"

#include <errno.h>
#include <hdf5.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/atomic.h"
#include "core/dist.h"
#include "core/h5io.h"
#include "core/half.h"
#include "core/provenance.h"
#include "kd/ckpt.h"
#include "kd/data.h"
#include "kd/infer.h"

#define CHUNK_BYTES ((size_t)16 << 20) /* per message and per hyperslab write */

/* Rank 0: write rows [row0, row0 + n) (along the first dimension, all of
 * the others) of dataset ds from float32 values (converted here when the
 * dataset is float16). */
static int write_rows(hid_t f, const char *path, const char *ds, int64_t row0, int64_t n, const float *v, kd_err *e) {
  if (n == 0) return KD_OK;
  hid_t d = H5Dopen2(f, ds, H5P_DEFAULT);
  hid_t fs = d >= 0 ? H5Dget_space(d) : -1, ft = d >= 0 ? H5Dget_type(d) : -1;
  const int half = ft >= 0 && H5Tget_size(ft) == 2;
  if (ft >= 0) H5Tclose(ft);
  hsize_t dims[KD_H5_MAX_DIMS], start[KD_H5_MAX_DIMS] = {0}, count[KD_H5_MAX_DIMS];
  const int nd = fs >= 0 ? H5Sget_simple_extent_dims(fs, dims, NULL) : -1;
  for (int i = 0; i < nd; i++) count[i] = dims[i];
  start[0] = (hsize_t)row0;
  count[0] = (hsize_t)n;
  hid_t ms = nd > 0 ? H5Screate_simple(nd, count, NULL) : -1;
  int rc = KD_OK;
  uint16_t *h = NULL;
  hid_t mt = half ? kd_h5_f16_type() : H5Tcopy(H5T_NATIVE_FLOAT);
  if (half && ms >= 0) {
    const size_t cnt = (size_t)H5Sget_simple_extent_npoints(ms);
    h = kd_malloc(sizeof(uint16_t) * cnt, "float16 logits", e);
    for (size_t i = 0; h && i < cnt; i++) h[i] = kd_float_to_half(v[i]);
  }
  if (d < 0 || fs < 0 || ms < 0 || (half && !h) || H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
      H5Dwrite(d, mt, ms, fs, H5P_DEFAULT, half ? (const void *)h : (const void *)v) < 0)
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: writing rows [%lld, %lld) of %s failed (disk full?)", path, (long long)row0,
                 (long long)(row0 + n), ds);
  free(h);
  H5Tclose(mt);
  if (ms >= 0) H5Sclose(ms);
  if (fs >= 0) H5Sclose(fs);
  if (d >= 0) H5Dclose(d);
  return rc;
}

int kd_logits_create(hid_t f, const char *path, const char *ds, int64_t n, int P, int C, int f16, kd_err *e) {
  const hsize_t d2[2] = {(hsize_t)n, (hsize_t)C}, d3[3] = {(hsize_t)n, (hsize_t)P, (hsize_t)C};
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  hid_t s = P ? H5Screate_simple(3, d3, NULL) : H5Screate_simple(2, d2, NULL);
  hid_t ty = f16 ? kd_h5_f16_type() : H5Tcopy(H5T_IEEE_F32LE);
  hid_t d = H5Dcreate2(f, ds, ty, s, lcpl, H5P_DEFAULT, H5P_DEFAULT);
  H5Tclose(ty);
  H5Sclose(s);
  H5Pclose(lcpl);
  if (d < 0) return kd_fail(e, KD_ERR_RUNTIME, "%s: cannot create dataset %s", path, ds);
  H5Dclose(d);
  return KD_OK;
}

/* Rank r's slice of a round: rows [lo_r + first, min(hi_r, lo_r + first + chunk)). */
static void slice(int64_t n, int size, int r, int64_t first, int64_t chunk, int64_t *a, int64_t *b) {
  int64_t lo, hi;
  kd_shard_range(n, size, r, &lo, &hi);
  *a = lo + first < hi ? lo + first : hi;
  *b = *a + chunk < hi ? *a + chunk : hi;
}

int kd_logits_gather_round(MPI_Comm comm, hid_t f, const char *path, const char *ds, int64_t n, int C, int64_t first,
                           int64_t chunk, const float *local, kd_err *e) {
  int rank, size;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  int64_t rows_per_msg = (int64_t)(CHUNK_BYTES / (sizeof(float) * (size_t)C)) + 1;
  const char *hook = getenv("KD_LOGITS_CHUNK_ROWS"); /* tests: force many small messages */
  if (hook && atoll(hook) > 0) rows_per_msg = atoll(hook);
  int64_t lo, hi;
  slice(n, size, rank, first, chunk, &lo, &hi);
  if (rank != 0) {
    for (int64_t a = lo; a < hi; a += rows_per_msg) {
      int64_t cnt = hi - a < rows_per_msg ? hi - a : rows_per_msg;
      if (kd_mpi_fatal(MPI_Send(local + (size_t)(a - lo) * C, (int)(cnt * C), MPI_FLOAT, 0, 77, comm), "MPI_Send",
                       rank, e))
        return e->code;
    }
    return KD_OK;
  }
  int rc = write_rows(f, path, ds, lo, hi - lo, local, e);
  float *buf = kd_malloc(sizeof(float) * (size_t)rows_per_msg * C, "receive buffer", e);
  if (!buf) return kd_fatal(e, 0, "receive buffer"); /* cannot receive: the senders would block */
  for (int r = 1; r < size; r++) {
    int64_t rlo, rhi;
    slice(n, size, r, first, chunk, &rlo, &rhi);
    for (int64_t a = rlo; a < rhi; a += rows_per_msg) {
      int64_t cnt = rhi - a < rows_per_msg ? rhi - a : rows_per_msg;
      /* Always receive, even after a write error: a sender must never block. */
      if (kd_mpi_fatal(MPI_Recv(buf, (int)(cnt * C), MPI_FLOAT, r, 77, comm, MPI_STATUS_IGNORE), "MPI_Recv", 0, e)) {
        free(buf);
        return e->code;
      }
      if (!rc) rc = write_rows(f, path, ds, a, cnt, buf, e);
    }
  }
  free(buf);
  return rc;
}

int kd_logits_gather(MPI_Comm comm, hid_t f, const char *path, const char *ds, int64_t n, int C,
                     const float *local, kd_err *e) {
  return kd_logits_gather_round(comm, f, path, ds, n, C, 0, n, local, e);
}

/* ---- kd logits ---- */

static const char *const splits[3] = {"train", "valid", "test"};

typedef struct logits_job {
  const kd_eval_cfg *cfg;
  MPI_Comm comm;
  int rank, size;
  char ckpt[KD_PATH_MAX];
  kd_model *m;
  float *params;
  kd_preprocess pre;       /* the teacher's input normalisation */
  kd_split_info info[3];
  int H;                   /* width of the hidden layer written as features (0: none) */
  kd_atomic out;           /* rank 0: the teacher file, under its temporary name */
  hid_t f;
  int f16;                 /* --dtype f16 */
  uint64_t fp;             /* this rank's part of the /train fingerprint */
} logits_job;

/* Logits positions per row of split s (0: feature rows, 2-D logits). */
static int positions(const logits_job *j, int s) {
  return j->info[s].kind == KD_INPUT_TOKENS ? j->info[s].width : 0;
}

/* Rank 0 chooses the checkpoint; every rank builds the model from it and
 * checks the splits. */
static int job_model(logits_job *j, kd_err *e) {
  const kd_eval_cfg *cfg = j->cfg;
  int rc = j->rank == 0 ? kd_ckpt_resolve(cfg->ckpt, 0, j->ckpt, sizeof j->ckpt, NULL, 0, e) : KD_OK;
  if ((rc = kd_agree(j->comm, rc, e))) return rc;
  if (kd_mpi_check(MPI_Bcast(j->ckpt, sizeof j->ckpt, MPI_CHAR, 0, j->comm), "MPI_Bcast", e)) return e->code;
  rc = kd_model_load(&j->m, &j->params, j->ckpt, (int)cfg->batch, e);
  if (!rc) rc = kd_ckpt_read_preprocess(j->ckpt, &j->pre, e);
  for (int s = 0; s < 3 && !rc; s++) {
    rc = kd_source_probe(cfg->data, splits[s], &j->info[s], e);
    if (!rc && j->info[s].present) rc = kd_infer_check_fit(j->m, j->ckpt, cfg->data, splits[s], &j->info[s], e);
  }
  if (!rc && !j->info[0].present)
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: dataset /train/%s is missing", cfg->data,
                 j->m && j->m->input == KD_INPUT_TOKENS ? "tokens" : "x");
  if (!rc && cfg->features > 0 && j->m->input == KD_INPUT_TOKENS)
    rc = kd_fail(e, KD_ERR_USAGE, "--features (FitNets) is for mlp teachers");
  if (!rc && cfg->features > 0 && !j->m->ops->hidden(j->m, (int)cfg->features, &j->H))
    rc = kd_fail(e, KD_ERR_RUNTIME, "--features %lld: the model of %s has %d hidden layers", (long long)cfg->features,
                 j->ckpt, j->m->ops->n_hidden(j->m));
  return kd_agree(j->comm, rc, e);
}

/* Rank 0 creates the output, with its datasets, under a temporary name. */
static int job_create(logits_job *j, kd_err *e) {
  int rc = KD_OK;
  if (j->rank == 0) {
    rc = kd_atomic_begin(&j->out, j->cfg->out, e);
    if (!rc) rc = kd_h5_create(&j->f, j->out.tmp, e);
    for (int s = 0; s < 3 && !rc; s++) {
      char ds[64];
      snprintf(ds, sizeof ds, "/%s/logits", splits[s]);
      if (j->info[s].present)
        rc = kd_logits_create(j->f, j->out.tmp, ds, j->info[s].rows, positions(j, s), j->m->out_dim, j->f16, e);
      snprintf(ds, sizeof ds, "/%s/features", splits[s]);
      if (!rc && j->info[s].present && j->H) rc = kd_logits_create(j->f, j->out.tmp, ds, j->info[s].rows, 0, j->H, 0, e);
    }
  }
  return kd_agree(j->comm, rc, e);
}

/* Rows [a, b) of this rank's shard of split s: logits (and features),
 * gathered to rank 0 in round k. */
static int job_round(logits_job *j, int s, int64_t first, int64_t chunk, kd_err *e) {
  const int C = j->m->out_dim * (positions(j, s) ? positions(j, s) : 1); /* values per row */
  int64_t a, b;
  slice(j->info[s].rows, j->size, j->rank, first, chunk, &a, &b);
  kd_source *part = NULL;
  float *logits = NULL, *feats = NULL;
  int rc = b > a ? kd_source_open(&part, j->cfg->data, splits[s], a, b, e) : KD_OK;
  if (!rc && part) rc = kd_source_set_preprocess(part, &j->pre, e);
  if (!rc && part && s == 0) j->fp += kd_source_fingerprint(part);
  if (!rc) {
    logits = kd_malloc(sizeof(float) * (size_t)(b - a) * C, "logits", e);
    if (j->H) feats = kd_malloc(sizeof(float) * (size_t)(b - a) * j->H, "features", e);
    rc = e->code;
  }
  if (!rc && part) rc = kd_infer_rows(logits, feats, (int)j->cfg->features, j->m, part, e);
  kd_source_free(part);
  if (!(rc = kd_agree(j->comm, rc, e))) {
    char ds[64];
    snprintf(ds, sizeof ds, "/%s/logits", splits[s]);
    rc = kd_logits_gather_round(j->comm, j->f, j->out.tmp, ds, j->info[s].rows, C, first, chunk, logits, e);
    if (j->H && rc != KD_ERR_FATAL) {
      snprintf(ds, sizeof ds, "/%s/features", splits[s]);
      int rc2 = kd_logits_gather_round(j->comm, j->f, j->out.tmp, ds, j->info[s].rows, j->H, first, chunk, feats, e);
      if (!rc || rc2 == KD_ERR_FATAL) rc = rc2;
    }
    rc = kd_agree(j->comm, rc, e);
  }
  free(feats);
  free(logits);
  return rc;
}

/* Split s in rounds of at most 256 MiB of logits per rank, so that no rank
 * ever holds the whole [rows, T, V] of a language model's split. */
static int job_split(logits_job *j, int s, kd_err *e) {
  const size_t row_bytes = sizeof(float) * (size_t)j->m->out_dim * (positions(j, s) ? positions(j, s) : 1);
  int64_t chunk = (int64_t)(((size_t)256 << 20) / row_bytes);
  if (chunk < 1) chunk = 1;
  const char *hook = getenv("KD_LOGITS_ROUND_ROWS"); /* tests: many rounds */
  if (hook && atoll(hook) > 0) chunk = atoll(hook);
  const int64_t longest = (j->info[s].rows + j->size - 1) / j->size; /* every rank runs as many rounds */
  int rc = KD_OK;
  for (int64_t first = 0; first < longest && !rc; first += chunk) rc = job_round(j, s, first, chunk, e);
  return rc;
}

/* Provenance, then commit by rename. */
static int job_commit(logits_job *j, kd_err *e) {
  uint64_t fp = j->fp;
  if (kd_mpi_check(MPI_Allreduce(MPI_IN_PLACE, &fp, 1, MPI_UINT64_T, MPI_SUM, j->comm), "MPI_Allreduce", e))
    return kd_fatal(e, j->rank, "MPI_Allreduce");
  int rc = KD_OK;
  if (j->rank == 0) {
    kd_provenance p = kd_provenance_of("teacher");
    p.source_checkpoint = j->ckpt;
    p.source_student = j->m->spec;
    p.source_data = j->cfg->data;
    p.has_fingerprint = 1;
    p.data_fingerprint = fp;
    for (int s = 0; s < 3; s++) p.rows[s] = j->info[s].rows;
    p.features_layer = j->cfg->features;
    rc = kd_provenance_write(j->f, j->out.tmp, &p, e);
    rc = kd_h5_close(j->f, j->out.tmp, rc, e);
    j->f = H5I_INVALID_HID;
    if (!rc) rc = kd_atomic_commit(&j->out, e);
  }
  return kd_agree(j->comm, rc, e);
}

int kd_logits_run(const kd_eval_cfg *cfg, MPI_Comm comm, int64_t rows_out[3], kd_err *e) {
  logits_job j;
  memset(&j, 0, sizeof j);
  j.cfg = cfg;
  j.comm = comm;
  j.f16 = strcmp(cfg->dtype, "f16") == 0;
  j.f = H5I_INVALID_HID;
  MPI_Comm_rank(comm, &j.rank);
  MPI_Comm_size(comm, &j.size);
  kd_h5_quiet();
  int rc = job_model(&j, e);
  if (!rc) rc = job_create(&j, e);
  for (int s = 0; s < 3 && !rc; s++)
    if (j.info[s].present && !(rc = job_split(&j, s, e))) rows_out[s] = j.info[s].rows;
  if (!rc) rc = job_commit(&j, e);
  if (j.rank == 0 && j.f >= 0) H5Fclose(j.f);
  if (j.rank == 0 && rc && j.out.tmp[0]) kd_atomic_abort(&j.out);
  kd_model_free(j.m);
  free(j.params);
  kd_preprocess_free(&j.pre);
  return rc;
}
