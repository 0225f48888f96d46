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
#include "core/provenance.h"
#include "kd/ckpt.h"
#include "kd/data.h"
#include "kd/infer.h"

#define CHUNK_BYTES ((size_t)16 << 20) /* per message and per hyperslab write */

/* Rank 0: write rows [row0, row0 + n) of /SPLIT/logits. */
static int write_rows(hid_t f, const char *path, const char *ds, int64_t row0, int64_t n, int C, const float *v,
                      kd_err *e) {
  if (n == 0) return KD_OK;
  hid_t d = H5Dopen2(f, ds, H5P_DEFAULT);
  hid_t fs = d >= 0 ? H5Dget_space(d) : -1;
  hsize_t start[2] = {(hsize_t)row0, 0}, count[2] = {(hsize_t)n, (hsize_t)C};
  hid_t ms = H5Screate_simple(2, count, NULL);
  int rc = KD_OK;
  if (d < 0 || fs < 0 || ms < 0 || H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
      H5Dwrite(d, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, v) < 0)
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: writing rows [%lld, %lld) of %s failed (disk full?)", path, (long long)row0,
                 (long long)(row0 + n), ds);
  if (ms >= 0) H5Sclose(ms);
  if (fs >= 0) H5Sclose(fs);
  if (d >= 0) H5Dclose(d);
  return rc;
}

int kd_logits_create(hid_t f, const char *path, const char *ds, int64_t n, int C, kd_err *e) {
  hsize_t dims[2] = {(hsize_t)n, (hsize_t)C};
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  hid_t s = H5Screate_simple(2, dims, NULL);
  hid_t d = H5Dcreate2(f, ds, H5T_IEEE_F32LE, s, lcpl, H5P_DEFAULT, H5P_DEFAULT);
  H5Sclose(s);
  H5Pclose(lcpl);
  if (d < 0) return kd_fail(e, KD_ERR_RUNTIME, "%s: cannot create dataset %s", path, ds);
  H5Dclose(d);
  return KD_OK;
}

int kd_logits_gather(MPI_Comm comm, hid_t f, const char *path, const char *ds, int64_t n, int C,
                     const float *local, kd_err *e) {
  int rank, size;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  int64_t lo, hi;
  kd_shard_range(n, size, rank, &lo, &hi);
  int64_t rows_per_msg = (int64_t)(CHUNK_BYTES / (sizeof(float) * (size_t)C)) + 1;
  const char *hook = getenv("KD_LOGITS_CHUNK_ROWS"); /* tests: force many small messages */
  if (hook && atoll(hook) > 0) rows_per_msg = atoll(hook);
  int rc = KD_OK;
  if (rank != 0) {
    for (int64_t a = lo; a < hi; a += rows_per_msg) {
      int64_t cnt = hi - a < rows_per_msg ? hi - a : rows_per_msg;
      if (kd_mpi_fatal(MPI_Send(local + (size_t)(a - lo) * C, (int)(cnt * C), MPI_FLOAT, 0, 77, comm), "MPI_Send",
                       rank, e))
        return e->code;
    }
    return KD_OK;
  }
  rc = write_rows(f, path, ds, lo, hi - lo, C, local, e);
  float *buf = kd_malloc(sizeof(float) * (size_t)rows_per_msg * C, "receive buffer", e);
  if (!buf) return kd_fatal(e, 0, "receive buffer"); /* cannot receive: the senders would block */
  for (int r = 1; r < size; r++) {
    int64_t rlo, rhi;
    kd_shard_range(n, size, r, &rlo, &rhi);
    for (int64_t a = rlo; a < rhi; a += rows_per_msg) {
      int64_t cnt = rhi - a < rows_per_msg ? rhi - a : rows_per_msg;
      /* Always receive, even after a write error: a sender must never block. */
      if (kd_mpi_fatal(MPI_Recv(buf, (int)(cnt * C), MPI_FLOAT, r, 77, comm, MPI_STATUS_IGNORE), "MPI_Recv", 0, e)) {
        free(buf);
        return e->code;
      }
      if (!rc) rc = write_rows(f, path, ds, a, cnt, C, buf, e);
    }
  }
  free(buf);
  return rc;
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
  uint64_t fp;             /* this rank's part of the /train fingerprint */
} logits_job;

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
    if (!rc && j->info[s].present && j->info[s].width != j->m->in_dim)
      rc = kd_fail(e, KD_ERR_RUNTIME, "%s: /%s/x has %d features per row but the model of %s takes %d", cfg->data,
                   splits[s], j->info[s].width, j->ckpt, j->m->in_dim);
  }
  if (!rc && !j->info[0].present) rc = kd_fail(e, KD_ERR_RUNTIME, "%s: dataset /train/x is missing", cfg->data);
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
      if (j->info[s].present) rc = kd_logits_create(j->f, j->out.tmp, ds, j->info[s].rows, j->m->out_dim, e);
      snprintf(ds, sizeof ds, "/%s/features", splits[s]);
      if (!rc && j->info[s].present && j->H) rc = kd_logits_create(j->f, j->out.tmp, ds, j->info[s].rows, j->H, e);
    }
  }
  return kd_agree(j->comm, rc, e);
}

/* This rank's rows of split s: logits (and features), then gathered to rank 0. */
static int job_split(logits_job *j, int s, kd_err *e) {
  const int C = j->m->out_dim;
  int64_t lo, hi;
  kd_shard_range(j->info[s].rows, j->size, j->rank, &lo, &hi);
  kd_source *part = NULL;
  float *logits = NULL, *feats = NULL;
  int rc = kd_source_open(&part, j->cfg->data, splits[s], lo, hi, e);
  if (!rc) rc = kd_source_set_preprocess(part, &j->pre, e);
  if (!rc && s == 0) j->fp = kd_source_fingerprint(part);
  if (!rc) {
    logits = kd_malloc(sizeof(float) * (size_t)(hi - lo) * C, "logits", e);
    if (j->H) feats = kd_malloc(sizeof(float) * (size_t)(hi - lo) * j->H, "features", e);
    rc = e->code;
  }
  if (!rc) rc = kd_infer_rows(logits, feats, (int)j->cfg->features, j->m, part, e);
  kd_source_free(part);
  if (!(rc = kd_agree(j->comm, rc, e))) {
    char ds[64];
    snprintf(ds, sizeof ds, "/%s/logits", splits[s]);
    rc = kd_logits_gather(j->comm, j->f, j->out.tmp, ds, j->info[s].rows, C, logits, e);
    if (j->H && rc != KD_ERR_FATAL) {
      snprintf(ds, sizeof ds, "/%s/features", splits[s]);
      int rc2 = kd_logits_gather(j->comm, j->f, j->out.tmp, ds, j->info[s].rows, j->H, feats, e);
      if (!rc || rc2 == KD_ERR_FATAL) rc = rc2;
    }
    rc = kd_agree(j->comm, rc, e);
  }
  free(feats);
  free(logits);
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
