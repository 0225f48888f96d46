#include "kd/logits.h"

#include <errno.h>
#include <hdf5.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kd/ckpt.h"
#include "kd/data.h"
#include "kd/dist.h"
#include "kd/eval.h"
#include "kd/h5io.h"
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
      if (kd_mpi_check(MPI_Send(local + (size_t)(a - lo) * C, (int)(cnt * C), MPI_FLOAT, 0, 77, comm), "MPI_Send", e)) {
        fprintf(stderr, "kd: rank %d: %s\n", rank, e->msg);
        MPI_Abort(comm, 1);
      }
    }
    return KD_OK;
  }
  rc = write_rows(f, path, ds, lo, hi - lo, C, local, e);
  float *buf = kd_malloc(sizeof(float) * (size_t)rows_per_msg * C, "receive buffer", e);
  if (!buf) { /* cannot receive: the senders would block, so end the job */
    fprintf(stderr, "kd: rank 0: %s\n", e->msg);
    MPI_Abort(comm, 1);
  }
  for (int r = 1; r < size; r++) {
    int64_t rlo, rhi;
    kd_shard_range(n, size, r, &rlo, &rhi);
    for (int64_t a = rlo; a < rhi; a += rows_per_msg) {
      int64_t cnt = rhi - a < rows_per_msg ? rhi - a : rows_per_msg;
      /* Always receive, even after a write error: a sender must never block. */
      if (kd_mpi_check(MPI_Recv(buf, (int)(cnt * C), MPI_FLOAT, r, 77, comm, MPI_STATUS_IGNORE), "MPI_Recv", e)) {
        fprintf(stderr, "kd: rank 0: %s\n", e->msg);
        MPI_Abort(comm, 1);
      }
      if (!rc) rc = write_rows(f, path, ds, a, cnt, C, buf, e);
    }
  }
  free(buf);
  return rc;
}

int kd_logits_run(const kd_eval_cfg *cfg, MPI_Comm comm, int64_t rows_out[3], kd_err *e) {
  int rank, size;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  kd_h5_quiet();
  static const char *splits[3] = {"train", "valid", "test"};
  char ckpt[4200] = "", tmp[4300];
  snprintf(tmp, sizeof tmp, "%s.tmp.%d", cfg->out, 0);
  kd_model *m = NULL;
  float *params = NULL, *logits = NULL;
  hid_t f = H5I_INVALID_HID;
  int64_t n[3] = {0, 0, 0};
  int present[3] = {0, 0, 0};
  uint64_t fp[2] = {0, 0};

  /* Rank 0 chooses the checkpoint; every rank builds the model from it. */
  int rc = rank == 0 ? kd_ckpt_resolve(cfg->ckpt, 0, ckpt, sizeof ckpt, NULL, 0, e) : KD_OK;
  if ((rc = kd_agree(comm, rc, e))) return rc;
  MPI_Bcast(ckpt, sizeof ckpt, MPI_CHAR, 0, comm);
  rc = kd_model_load(&m, &params, ckpt, (int)cfg->batch, e);
  for (int s = 0; s < 3 && !rc; s++) {
    int dim, cls;
    rc = kd_split_probe(cfg->data, NULL, splits[s], &present[s], &n[s], &dim, &cls, e);
    if (!rc && present[s] && dim != m->in_dim)
      rc = kd_fail(e, KD_ERR_RUNTIME, "%s: /%s/x has %d features per row but the model of %s takes %d", cfg->data,
                   splits[s], dim, ckpt, m->in_dim);
  }
  if (!rc && !present[0]) rc = kd_fail(e, KD_ERR_RUNTIME, "%s: dataset /train/x is missing", cfg->data);
  int H = 0;
  if (!rc && cfg->features > 0 && !m->ops->hidden(m, (int)cfg->features, &H))
    rc = kd_fail(e, KD_ERR_RUNTIME, "--features %lld: the model of %s has %d hidden layers", (long long)cfg->features,
                 ckpt, m->ops->n_hidden(m));
  if ((rc = kd_agree(comm, rc, e))) goto out;
  const int C = m->out_dim;

  /* Rank 0 creates the output under a temporary name. */
  if (rank == 0) {
    f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) rc = kd_fail(e, KD_ERR_RUNTIME, "%s: cannot create (does the directory exist and is it writable?)", tmp);
    for (int s = 0; s < 3 && !rc; s++) {
      char ds[64];
      snprintf(ds, sizeof ds, "/%s/logits", splits[s]);
      if (present[s]) rc = kd_logits_create(f, tmp, ds, n[s], C, e);
      snprintf(ds, sizeof ds, "/%s/features", splits[s]);
      if (!rc && present[s] && H) rc = kd_logits_create(f, tmp, ds, n[s], H, e);
    }
  }
  if ((rc = kd_agree(comm, rc, e))) goto out;

  for (int s = 0; s < 3; s++) {
    if (!present[s]) continue;
    int64_t lo, hi;
    kd_shard_range(n[s], size, rank, &lo, &hi);
    kd_split part;
    memset(&part, 0, sizeof part);
    rc = kd_split_load(&part, cfg->data, NULL, splits[s], lo, hi, e);
    if (!rc) {
      logits = kd_malloc(sizeof(float) * (size_t)(hi - lo) * C, "logits", e);
      rc = logits ? KD_OK : e->code;
    }
    kd_eval_result r;
    float *feats = NULL;
    if (!rc && H) { /* hidden layer K of every row, for FitNets hints */
      feats = kd_malloc(sizeof(float) * (size_t)(hi - lo) * H, "features", e);
      rc = feats ? KD_OK : e->code;
      kd_fwd fw = {0, 0, NULL};
      for (int64_t r0 = 0; r0 < hi - lo && !rc; r0 += m->max_batch) {
        int nb = (int)(hi - lo - r0 < m->max_batch ? hi - lo - r0 : m->max_batch);
        rc = kd_model_forward(m, logits + (size_t)r0 * C, part.x + (size_t)r0 * part.dim, nb, &fw, e);
        if (!rc) memcpy(feats + (size_t)r0 * H, m->ops->hidden(m, (int)cfg->features, NULL), sizeof(float) * (size_t)nb * H);
      }
    }
    if (!rc) rc = kd_eval_model(&r, logits, m, &part, 1.0, e);
    if (!rc && s == 0) kd_split_fingerprint(&part, &fp[0], &fp[1]);
    kd_split_free(&part);
    if ((rc = kd_agree(comm, rc, e))) {
      free(feats);
      goto out;
    }
    char ds[64];
    snprintf(ds, sizeof ds, "/%s/logits", splits[s]);
    rc = kd_logits_gather(comm, f, tmp, ds, n[s], C, logits, e);
    if (H) {
      snprintf(ds, sizeof ds, "/%s/features", splits[s]);
      int rc2 = kd_logits_gather(comm, f, tmp, ds, n[s], H, feats, e);
      if (!rc) rc = rc2;
    }
    free(feats);
    free(logits);
    logits = NULL;
    if ((rc = kd_agree(comm, rc, e))) goto out;
    rows_out[s] = n[s];
  }
  if (kd_mpi_check(MPI_Allreduce(MPI_IN_PLACE, fp, 2, MPI_UINT64_T, MPI_SUM, comm), "MPI_Allreduce", e)) goto out;

  /* Provenance, then commit by rename. */
  if (rank == 0) {
    char hex[32];
    snprintf(hex, sizeof hex, "%016" PRIx64, fp[0]);
    if (kd_h5_attr_str(f, "/", "kd_format", "teacher", e) || kd_h5_attr_i64(f, "/", "format_version", 1, e) ||
        kd_h5_attr_str(f, "/", "kd_version", KD_VERSION, e) || kd_h5_attr_str(f, "/", "source_checkpoint", ckpt, e) ||
        kd_h5_attr_str(f, "/", "source_student", m->spec, e) || kd_h5_attr_str(f, "/", "source_data", cfg->data, e) ||
        kd_h5_attr_str(f, "/", "data_fingerprint", hex, e) || kd_h5_attr_i64(f, "/", "rows_train", n[0], e) ||
        kd_h5_attr_i64(f, "/", "rows_valid", n[1], e) || kd_h5_attr_i64(f, "/", "rows_test", n[2], e) ||
        kd_h5_attr_i64(f, "/", "features_layer", cfg->features, e))
      rc = e->code;
    if (H5Fclose(f) < 0 && !rc) rc = kd_fail(e, KD_ERR_RUNTIME, "%s: closing failed (disk full?)", tmp);
    f = H5I_INVALID_HID;
    if (!rc && rename(tmp, cfg->out) != 0)
      rc = kd_fail(e, KD_ERR_RUNTIME, "%s: rename to %s failed (%s)", tmp, cfg->out, strerror(errno));
  }
  rc = kd_agree(comm, rc, e);
out:
  if (rank == 0 && f >= 0) H5Fclose(f);
  if (rank == 0 && rc) unlink(tmp);
  free(logits);
  kd_model_free(m);
  free(params);
  return rc;
}
