#define _GNU_SOURCE /* mkstemp */
#include "infer/logits.h"

#include <errno.h>
#include <hdf5.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/atomic.h"
#include "core/dist.h"
#include "core/h5io.h"
#include "core/half.h"
#include "core/progress.h"
#include "core/provenance.h"
#include "core/rng.h"
#include "data/align.h"
#include "data/rows.h"
#include "infer/sparse_logits.h"
#include "kd/ckpt.h"
#include "kd/data.h"
#include "kd/infer.h"
#include "models/fit.h"

#define CHUNK_BYTES ((size_t)16 << 20) /* per message and per hyperslab write */

int kd_logits_create_nd(hid_t f, const char *path, const char *ds, int ndims, const int64_t *dims, int f16, kd_err *e) {
  hid_t ty = f16 ? kd_h5_f16_type() : H5Tcopy(H5T_IEEE_F32LE);
  const int rc = kd_logits_create_typed(f, path, ds, ndims, dims, ty, e);
  if (ty >= 0) H5Tclose(ty);
  return rc;
}

int kd_logits_create_typed(hid_t f, const char *path, const char *ds, int ndims, const int64_t *dims, hid_t ty,
                           kd_err *e) {
  return kd_h5_create_dataset(f, path, ds, ndims, dims, ty, e);
}

int kd_logits_create(hid_t f, const char *path, const char *ds, int64_t n, int P, int C, int f16, kd_err *e) {
  const int64_t d2[2] = {n, C}, d3[3] = {n, P, C};
  return kd_logits_create_nd(f, path, ds, P ? 3 : 2, P ? d3 : d2, f16, e);
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
  int rc = kd_h5_write_rows(f, path, ds, lo, hi - lo, local, e);
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
      if (!rc) rc = kd_h5_write_rows(f, path, ds, a, cnt, buf, e);
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

#define MAX_TAPS 64 /* layers per --hidden or --attn list */

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
  /* A Transformer teacher's intermediate tensors (--hidden, --attn): taps 0 ..
   * n_hidden - 1 are hidden states, the n_attn after them attention maps. */
  int n_hidden, n_attn;
  int hidden[MAX_TAPS], attn[MAX_TAPS];
  int L, D, heads;         /* the teacher's blocks, width and attention heads */
  int K, S;                /* --topk K, --sample S (sparse logits instead of dense; 0: not written) */
  kd_progress prog;        /* rank 0: over its own rows of each split (every rank has as many, give or take one) */
  const char *data;        /* the data file as named (--rows teacher: cfg->data is the view of its teacher rows) */
} logits_job;

/* Logits positions per row of split s (0: feature rows, 2-D logits). */
static int positions(const logits_job *j, int s) {
  return j->info[s].kind == KD_INPUT_TOKENS ? j->info[s].width : 0;
}

static int n_taps(const logits_job *j) { return j->n_hidden + j->n_attn; }
static int tap_is_attn(const logits_job *j, int k) { return k >= j->n_hidden; }
static int tap_layer(const logits_job *j, int k) { return tap_is_attn(j, k) ? j->attn[k - j->n_hidden] : j->hidden[k]; }

/* Dataset of tap k in split s: /SPLIT/hidden/{l} or /SPLIT/attn/{l}. */
static void tap_name(char *buf, size_t n, const logits_job *j, int s, int k) {
  snprintf(buf, n, "/%s/%s/%d", splits[s], tap_is_attn(j, k) ? "attn" : "hidden", tap_layer(j, k));
}

/* Values per row of tap k in split s: T * D (hidden) or H * T * T (attention). */
static int64_t tap_values(const logits_job *j, int s, int k) {
  const int64_t T = positions(j, s);
  return tap_is_attn(j, k) ? (int64_t)j->heads * T * T : T * j->D;
}

/* --hidden / --attn "l,l,...": distinct integers >= 0 (the range is checked against the model). */
static int parse_layers(const char *opt, const char *text, int *out, int *n, kd_err *e) {
  *n = 0;
  for (const char *p = text; *p;) {
    if (*p < '0' || *p > '9')
      return kd_fail(e, KD_ERR_USAGE, "--%s %s: not a list of layer numbers (l,l,... with each l an integer >= 0)", opt,
                     text);
    char *end;
    errno = 0;
    const long v = strtol(p, &end, 10);
    if (errno == ERANGE || v > INT_MAX) return kd_fail(e, KD_ERR_USAGE, "--%s %s: a layer number is too large", opt, text);
    if (*end && (*end != ',' || !end[1]))
      return kd_fail(e, KD_ERR_USAGE, "--%s %s: not a list of layer numbers (l,l,... with each l an integer >= 0)", opt,
                     text);
    for (int i = 0; i < *n; i++)
      if (out[i] == (int)v) return kd_fail(e, KD_ERR_USAGE, "--%s %s: layer %ld is listed twice", opt, text, v);
    if (*n == MAX_TAPS) return kd_fail(e, KD_ERR_USAGE, "--%s %s: more than %d layers", opt, text, MAX_TAPS);
    out[(*n)++] = (int)v;
    p = *end ? end + 1 : end;
  }
  return KD_OK;
}

/* --hidden / --attn against the model: a Transformer teacher (token rows, with
 * taps), hidden states 0..L, attention layers 1..L. */
static int check_taps(logits_job *j, kd_err *e) {
  const kd_eval_cfg *cfg = j->cfg;
  kd_model *m = j->m;
  const char *opt = j->n_hidden ? "hidden" : "attn";
  if (m->input != KD_INPUT_TOKENS || !m->ops->tap)
    return kd_fail(e, KD_ERR_USAGE, "--%s is for Transformer teachers (gpt, llama: token rows); the teacher %s is %s %s", opt, j->ckpt,
                   m->family, m->spec);
  kd_tap_shape sh;
  j->L = m->ops->n_hidden(m);
  if (!m->ops->tap(m, KD_TAP_HIDDEN, 0, &sh))
    return kd_fail(e, KD_ERR_RUNTIME, "--%s: the teacher %s (%s %s) gives no hidden states", opt, j->ckpt, m->family,
                   m->spec);
  j->D = sh.dim;
  j->heads = sh.heads;
  for (int k = 0; k < n_taps(j); k++) {
    const int l = tap_layer(j, k), attn = tap_is_attn(j, k);
    if (l < attn || l > j->L || !m->ops->tap(m, attn ? KD_TAP_ATTN : KD_TAP_HIDDEN, l, NULL))
      return attn ? kd_fail(e, KD_ERR_USAGE,
                            "--attn %s: layer %d is out of range: the teacher %s (%s %s) has attention layers 1..%d",
                            cfg->attn, l, j->ckpt, m->family, m->spec, j->L)
                  : kd_fail(e, KD_ERR_USAGE,
                            "--hidden %s: layer %d is out of range: the teacher %s (%s %s) has hidden states 0..%d "
                            "(0: the embedding output, l: the output of block l)",
                            cfg->hidden, l, j->ckpt, m->family, m->spec, j->L);
  }
  return KD_OK;
}

/* ---- sparse teacher logits (--topk, --sample) ---- */

enum { SP_TOPK_IDS, SP_TOPK_LOGITS, SP_TOPK_LSE, SP_SAMPLED_IDS, SP_SAMPLED_COUNTS, SP_N };
static const char *const sp_names[SP_N] = {"topk/ids", "topk/logits", "topk/lse", "sampled/ids", "sampled/counts"};

static int sparse_on(const logits_job *j) { return j->K > 0 || j->S > 0; }
static int sp_present(const logits_job *j, int d) { return d <= SP_TOPK_LSE ? j->K > 0 : j->S > 0; }
/* Values per position of dataset d. */
static int sp_width(const logits_job *j, int d) {
  return d == SP_TOPK_LSE ? 1 : d <= SP_TOPK_LOGITS ? j->K : j->S;
}
/* Values per row of dataset d in split s. */
static int sp_row_values(const logits_job *j, int s, int d) {
  return sp_width(j, d) * (positions(j, s) ? positions(j, s) : 1);
}

/* The file type of dataset d: ids 16-bit when the vocabulary allows (17-bit ids would not fit), counts 16-bit,
 * top-k logits float16 or float32 (--dtype), lse float32. */
static hid_t sp_type(const logits_job *j, int d) {
  switch (d) {
    case SP_TOPK_LOGITS: return j->f16 ? kd_h5_f16_type() : H5Tcopy(H5T_IEEE_F32LE);
    case SP_TOPK_LSE: return H5Tcopy(H5T_IEEE_F32LE);
    case SP_SAMPLED_COUNTS: return H5Tcopy(H5T_STD_U16LE);
    default: return H5Tcopy(j->m->out_dim <= 65536 ? H5T_STD_U16LE : H5T_STD_I32LE);
  }
}

/* Rank 0: the sparse datasets of split s, and /SPLIT/sampled's attributes sample_temperature and seed. */
static int create_sparse(logits_job *j, int s, kd_err *e) {
  const int64_t n = j->info[s].rows, P = positions(j, s);
  int rc = KD_OK;
  for (int d = 0; d < SP_N && !rc; d++) {
    if (!sp_present(j, d)) continue;
    char ds[64];
    snprintf(ds, sizeof ds, "/%s/%s", splits[s], sp_names[d]);
    int64_t dims[3];
    int nd = 0;
    dims[nd++] = n;
    if (P) dims[nd++] = P;
    if (d != SP_TOPK_LSE) dims[nd++] = sp_width(j, d);
    const hid_t ty = sp_type(j, d);
    rc = kd_logits_create_typed(j->f, j->out.tmp, ds, nd, dims, ty, e);
    if (ty >= 0) H5Tclose(ty);
  }
  if (rc || !j->S) return rc;
  char g[64];
  snprintf(g, sizeof g, "/%s/sampled", splits[s]);
  rc = kd_h5_attr_f64(j->f, g, "sample_temperature", j->cfg->sample_temperature, e);
  if (!rc) rc = kd_h5_attr_i64(j->f, g, "seed", j->cfg->seed, e);
  return rc;
}

/* Rows [a, a + n) of split s from their dense logits: out[d] for each dataset d written. The draws of a
 * position depend on (seed, split, global row, position) only: any rank count writes the same file. */
static int sparse_rows(const logits_job *j, int s, int64_t a, int64_t n, const float *logits, float **out, kd_err *e) {
  const int V = j->m->out_dim, P = positions(j, s) ? positions(j, s) : 1;
  int32_t *heap = kd_malloc(sizeof(int32_t) * (size_t)(j->K + j->S + 1), "top-k scratch", e);
  double *cdf = j->S ? kd_malloc(sizeof(double) * (size_t)V, "sampling scratch", e) : NULL;
  if (e->code) {
    free(heap);
    free(cdf);
    return e->code;
  }
  for (int64_t r = 0; r < n; r++)
    for (int p = 0; p < P; p++) {
      const size_t q = (size_t)r * P + p;
      const float *z = logits + q * V;
      if (j->K)
        kd_topk_position(out[SP_TOPK_IDS] + q * j->K, out[SP_TOPK_LOGITS] + q * j->K, out[SP_TOPK_LSE] + q, z, V, j->K,
                         heap);
      if (j->S) {
        const uint64_t key = kd_key((uint64_t)j->cfg->seed, KD_RNG_SAMPLE, (uint64_t)(a + r) | ((uint64_t)s << 48),
                                    (uint64_t)p);
        kd_sample_position(out[SP_SAMPLED_IDS] + q * j->S, out[SP_SAMPLED_COUNTS] + q * j->S, z, V, j->S,
                           j->cfg->sample_temperature, key, cdf, heap);
      }
    }
  free(heap);
  free(cdf);
  return KD_OK;
}

/* --topk and --sample against the teacher's vocabulary (or classes). */
static int check_sparse(logits_job *j, kd_err *e) {
  const int V = j->m->out_dim;
  j->K = (int)j->cfg->topk;
  j->S = (int)j->cfg->sample;
  if (j->K > V)
    return kd_fail(e, KD_ERR_USAGE, "--topk %d: the teacher %s has only %d %s", j->K, j->ckpt, V,
                   j->m->input == KD_INPUT_TOKENS ? "tokens in its vocabulary" : "classes");
  if (j->cfg->features > 0 && sparse_on(j))
    return kd_fail(e, KD_ERR_USAGE, "--features goes with dense logits, not with --topk or --sample");
  return KD_OK;
}

/* This rank's rows of split s against the teacher, before anything is
 * computed or written: read in bounded pieces (kd_fit_file). */
static int check_rows(const logits_job *j, int s, kd_err *e) {
  char who[KD_PATH_MAX + 320];
  kd_infer_who(who, sizeof who, j->m, j->ckpt);
  int64_t lo, hi;
  kd_shard_range(j->info[s].rows, j->size, j->rank, &lo, &hi);
  if (kd_fit_split(j->m, who, j->cfg->data, splits[s], &j->info[s], e) ||
      kd_fit_file(j->m, who, j->cfg->data, splits[s], lo, hi, 1, NULL, e))
    return e->code;
  return s == 0 ? kd_fit_tokenizers(who, j->ckpt, j->cfg->data, e) : KD_OK;
}

/* Rank 0 chooses the checkpoint; every rank builds the model from it and
 * checks the splits. */
static int job_model(logits_job *j, kd_err *e) {
  const kd_eval_cfg *cfg = j->cfg;
  int rc = parse_layers("hidden", cfg->hidden, j->hidden, &j->n_hidden, e); /* every rank alike */
  if (!rc) rc = parse_layers("attn", cfg->attn, j->attn, &j->n_attn, e);
  if (rc) return kd_agree(j->comm, rc, e);
  rc = j->rank == 0 ? kd_ckpt_resolve(cfg->ckpt, 0, j->ckpt, sizeof j->ckpt, NULL, 0, e) : KD_OK;
  if ((rc = kd_agree(j->comm, rc, e))) return rc;
  if (kd_mpi_check(MPI_Bcast(j->ckpt, sizeof j->ckpt, MPI_CHAR, 0, j->comm), "MPI_Bcast", e)) return e->code;
  rc = kd_model_load(&j->m, &j->params, j->ckpt, (int)cfg->batch, e);
  if (!rc) rc = kd_ckpt_read_preprocess(j->ckpt, &j->pre, e);
  for (int s = 0; s < 3 && !rc; s++) {
    rc = kd_source_probe(cfg->data, splits[s], &j->info[s], e);
    if (!rc && j->info[s].present) rc = check_rows(j, s, e);
  }
  if (!rc && !j->info[0].present)
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: dataset /train/%s is missing", cfg->data,
                 j->m && j->m->input == KD_INPUT_TOKENS ? "tokens" : "x");
  if (!rc && cfg->features > 0 && j->m->input == KD_INPUT_TOKENS)
    rc = kd_fail(e, KD_ERR_USAGE, "--features (FitNets) is for mlp teachers");
  if (!rc && cfg->features > 0 && !j->m->ops->hidden(j->m, (int)cfg->features, &j->H))
    rc = kd_fail(e, KD_ERR_RUNTIME, "--features %lld: the model of %s has %d hidden layers", (long long)cfg->features,
                 j->ckpt, j->m->ops->n_hidden(j->m));
  if (!rc && n_taps(j)) rc = check_taps(j, e);
  if (!rc) rc = check_sparse(j, e);
  return kd_agree(j->comm, rc, e);
}

/* Integer attribute `layers` (the teacher's block count) on group g. */
static int layers_attr(hid_t f, const char *path, const char *g, int L, kd_err *e) {
  const int64_t v = L;
  hid_t s = H5Screate(H5S_SCALAR);
  hid_t a = s >= 0 ? H5Acreate_by_name(f, g, "layers", H5T_STD_I64LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : -1;
  const int rc = a < 0 || H5Awrite(a, H5T_NATIVE_INT64, &v) < 0
                     ? kd_fail(e, KD_ERR_RUNTIME, "%s: cannot write attribute layers = %d on %s", path, L, g)
                     : KD_OK;
  if (a >= 0) H5Aclose(a);
  if (s >= 0) H5Sclose(s);
  return rc;
}

/* Rank 0: /SPLIT/hidden/{l} [n, T, D] and /SPLIT/attn/{l} [n, H, T, T] of split s, and their groups' `layers`. */
static int create_taps(logits_job *j, int s, kd_err *e) {
  const int64_t n = j->info[s].rows, T = positions(j, s);
  int rc = KD_OK;
  for (int k = 0; k < n_taps(j) && !rc; k++) {
    char ds[64];
    tap_name(ds, sizeof ds, j, s, k);
    const int64_t dh[3] = {n, T, j->D}, da[4] = {n, j->heads, T, T};
    rc = tap_is_attn(j, k) ? kd_logits_create_nd(j->f, j->out.tmp, ds, 4, da, j->f16, e)
                           : kd_logits_create_nd(j->f, j->out.tmp, ds, 3, dh, j->f16, e);
  }
  char g[64];
  snprintf(g, sizeof g, "/%s/hidden", splits[s]);
  if (!rc && j->n_hidden) rc = layers_attr(j->f, j->out.tmp, g, j->L, e);
  snprintf(g, sizeof g, "/%s/attn", splits[s]);
  if (!rc && j->n_attn) rc = layers_attr(j->f, j->out.tmp, g, j->L, e);
  return rc;
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
      if (j->info[s].present && !sparse_on(j))
        rc = kd_logits_create(j->f, j->out.tmp, ds, j->info[s].rows, positions(j, s), j->m->out_dim, j->f16, e);
      if (!rc && j->info[s].present && sparse_on(j)) rc = create_sparse(j, s, e);
      snprintf(ds, sizeof ds, "/%s/features", splits[s]);
      if (!rc && j->info[s].present && j->H) rc = kd_logits_create(j->f, j->out.tmp, ds, j->info[s].rows, 0, j->H, 0, e);
      if (!rc && j->info[s].present && n_taps(j)) rc = create_taps(j, s, e);
    }
  }
  return kd_agree(j->comm, rc, e);
}

/* Copy tap k of the last forward (nb rows, local rows r0..) into dst
 * [rows, ...] of split s, whose rows have T positions (the tap's, the
 * batch width, may be fewer: the rest stays zero). */
static int copy_tap(const logits_job *j, int s, int k, int64_t r0, int nb, float *dst, kd_err *e) {
  const int T = positions(j, s), attn = tap_is_attn(j, k), l = tap_layer(j, k);
  kd_tap_shape sh;
  const float *src = j->m->ops->tap(j->m, attn ? KD_TAP_ATTN : KD_TAP_HIDDEN, l, &sh);
  if (!src || sh.B != nb || sh.T > T)
    return kd_fail(e, KD_ERR_RUNTIME, "the teacher %s gives no %s %d of %d rows of %d positions (rows [%lld, %lld) of /%s)",
                   j->ckpt, attn ? "attention map" : "hidden state", l, nb, T, (long long)r0, (long long)(r0 + nb),
                   splits[s]);
  const size_t per_row = (size_t)tap_values(j, s, k), t = (size_t)sh.T, D = (size_t)j->D;
  float *out = dst + (size_t)r0 * per_row;
  if (sh.T < T) memset(out, 0, sizeof(float) * per_row * (size_t)nb);
  for (size_t b = 0; b < (size_t)nb; b++) {
    if (!attn) {
      for (size_t p = 0; p < t; p++) memcpy(out + (b * T + p) * D, src + (b * t + p) * D, sizeof(float) * D);
      continue;
    }
    for (size_t h = 0; h < (size_t)j->heads; h++)
      for (size_t i = 0; i < t; i++)
        memcpy(out + ((b * j->heads + h) * T + i) * T, src + ((b * j->heads + h) * t + i) * t, sizeof(float) * t);
  }
  return KD_OK;
}

/* The hidden layer --features of the last forward (nb rows) into feats at local row r0. */
static int copy_features(const logits_job *j, int64_t r0, int nb, float *feats, kd_err *e) {
  int H = 0;
  const float *h = j->m->ops->hidden(j->m, (int)j->cfg->features, &H);
  if (!h) return kd_fail(e, KD_ERR_RUNTIME, "the model has no hidden layer %lld", (long long)j->cfg->features);
  memcpy(feats + (size_t)r0 * H, h, sizeof(float) * (size_t)nb * H);
  return KD_OK;
}

/* Rows [a, b) of split s read in order by the row provider (a block at a time, beside the forward passes) and
 * forwarded a batch of the model's max_batch rows at a time: logits [n, (T,) V] into logits, the hidden layer
 * --features into feats, each tap into taps[k]. */
static int forward_rows(logits_job *j, int s, int64_t a, int64_t b, float *logits, float *feats, float **taps,
                        kd_err *e) {
  kd_model *m = j->m;
  kd_rows *rows = NULL;
  kd_batch bt;
  memset(&bt, 0, sizeof bt);
  const kd_range_cfg r = {j->cfg->data, NULL, splits[s], a, b - a, m->out_dim, m->max_batch, &j->pre};
  const kd_input kind = j->info[s].kind;
  const int width = j->info[s].width;
  int rc = kd_rows_file_in_order(&rows, &r, e) || kd_batch_init(&bt, kind, m->max_batch, width, e) ||
                   kd_rows_seek(rows, 0, 0, e)
               ? e->code
               : KD_OK;
  const kd_fwd f = {0, 0};
  const size_t per_row = (size_t)m->out_dim * (kind == KD_INPUT_TOKENS ? (size_t)width : 1);
  for (int64_t r0 = 0; r0 < b - a && !rc; r0 += bt.rows) {
    const kd_rows_out out = {&bt, NULL, NULL};
    rc = kd_rows_next(rows, &out, e);
    if (!rc) rc = kd_model_forward(m, logits + (size_t)r0 * per_row, &bt, &f, e);
    if (!rc && feats) rc = copy_features(j, r0, bt.rows, feats, e);
    for (int k = 0; k < n_taps(j) && !rc; k++) rc = copy_tap(j, s, k, r0, bt.rows, taps[k], e);
    kd_progress_add(&j->prog, bt.rows, MPI_Wtime());
  }
  kd_batch_free(&bt);
  kd_rows_free(rows);
  return rc;
}

/* Rows [a, b) of this rank's shard of split s: logits (and features, or
 * hidden states and attention maps), gathered to rank 0 in round k. */
static int job_round(logits_job *j, int s, int64_t first, int64_t chunk, kd_err *e) {
  const int C = j->m->out_dim * (positions(j, s) ? positions(j, s) : 1); /* values per row */
  int64_t a, b;
  slice(j->info[s].rows, j->size, j->rank, first, chunk, &a, &b);
  float *logits = NULL, *feats = NULL, *taps[2 * MAX_TAPS] = {NULL};
  int rc = KD_OK;
  if (b > a && s == 0) { /* the fingerprint kd train checks the teacher file against */
    uint64_t fp;
    rc = kd_source_fingerprint_file(j->cfg->data, splits[s], a, b, &fp, e);
    j->fp += fp;
  }
  if (!rc) {
    logits = kd_malloc(sizeof(float) * (size_t)(b - a) * C, "logits", e);
    if (j->H) feats = kd_malloc(sizeof(float) * (size_t)(b - a) * j->H, "features", e);
    for (int k = 0; k < n_taps(j) && !e->code; k++)
      taps[k] = kd_malloc(sizeof(float) * (size_t)(b - a) * (size_t)tap_values(j, s, k),
                          tap_is_attn(j, k) ? "attention maps" : "hidden states", e);
    rc = e->code;
  }
  float *sp[SP_N] = {NULL};
  for (int d = 0; d < SP_N && !rc; d++)
    if (sp_present(j, d) && !(sp[d] = kd_malloc(sizeof(float) * (size_t)((b - a) ? (b - a) : 1) * sp_row_values(j, s, d),
                                                 sp_names[d], e)))
      rc = e->code;
  if (!rc && b > a) rc = forward_rows(j, s, a, b, logits, feats, taps, e);
  if (!rc && b > a && sparse_on(j)) rc = sparse_rows(j, s, a, b - a, logits, sp, e);
  if (!(rc = kd_agree(j->comm, rc, e))) {
    char ds[64];
    snprintf(ds, sizeof ds, "/%s/logits", splits[s]);
    if (!sparse_on(j))
      rc = kd_logits_gather_round(j->comm, j->f, j->out.tmp, ds, j->info[s].rows, C, first, chunk, logits, e);
    for (int d = 0; d < SP_N && rc != KD_ERR_FATAL; d++) { /* rank 0 keeps receiving after a write error */
      if (!sp_present(j, d)) continue;
      snprintf(ds, sizeof ds, "/%s/%s", splits[s], sp_names[d]);
      const int rc2 = kd_logits_gather_round(j->comm, j->f, j->out.tmp, ds, j->info[s].rows, sp_row_values(j, s, d),
                                             first, chunk, sp[d], e);
      if (!rc || rc2 == KD_ERR_FATAL) rc = rc2;
    }
    if (j->H && rc != KD_ERR_FATAL) {
      snprintf(ds, sizeof ds, "/%s/features", splits[s]);
      int rc2 = kd_logits_gather_round(j->comm, j->f, j->out.tmp, ds, j->info[s].rows, j->H, first, chunk, feats, e);
      if (!rc || rc2 == KD_ERR_FATAL) rc = rc2;
    }
    for (int k = 0; k < n_taps(j) && rc != KD_ERR_FATAL; k++) { /* as the features: rank 0 keeps receiving */
      tap_name(ds, sizeof ds, j, s, k);
      int rc2 = kd_logits_gather_round(j->comm, j->f, j->out.tmp, ds, j->info[s].rows, (int)tap_values(j, s, k), first,
                                       chunk, taps[k], e);
      if (!rc || rc2 == KD_ERR_FATAL) rc = rc2;
    }
    rc = kd_agree(j->comm, rc, e);
  }
  for (int k = 0; k < n_taps(j); k++) free(taps[k]);
  for (int d = 0; d < SP_N; d++) free(sp[d]);
  free(feats);
  free(logits);
  return rc;
}

/* Split s in rounds of at most 256 MiB of logits (and hidden states and
 * attention maps) per rank, so that no rank ever holds the whole
 * [rows, T, V] of a language model's split. */
static int job_split(logits_job *j, int s, kd_err *e) {
  size_t row_bytes = sizeof(float) * (size_t)j->m->out_dim * (positions(j, s) ? positions(j, s) : 1);
  for (int k = 0; k < n_taps(j); k++) row_bytes += sizeof(float) * (size_t)tap_values(j, s, k);
  int64_t chunk = (int64_t)(((size_t)256 << 20) / row_bytes);
  if (chunk < 1) chunk = 1;
  const char *hook = getenv("KD_LOGITS_ROUND_ROWS"); /* tests: many rounds */
  if (hook && atoll(hook) > 0) chunk = atoll(hook);
  const int64_t longest = (j->info[s].rows + j->size - 1) / j->size; /* every rank runs as many rounds */
  int64_t lo, hi;
  kd_shard_range(j->info[s].rows, j->size, j->rank, &lo, &hi);
  char what[96];
  snprintf(what, sizeof what, "kd logits /%s%s", splits[s], j->size > 1 ? " (rank 0's rows)" : "");
  kd_progress_begin(&j->prog, what, "rows", hi - lo, positions(j, s), MPI_Wtime());
  int rc = KD_OK;
  for (int64_t first = 0; first < longest && !rc; first += chunk) rc = job_round(j, s, first, chunk, e);
  kd_progress_end(&j->prog);
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
    p.source_data = j->data;
    p.has_fingerprint = 1;
    p.data_fingerprint = fp;
    for (int s = 0; s < 3; s++) p.rows[s] = j->info[s].rows;
    p.features_layer = j->cfg->features;
    rc = kd_provenance_write(j->f, j->out.tmp, &p, e);
    /* which rows of the data file the logits are of (kd train reads the student's) */
    if (!rc) rc = kd_h5_attr_str(j->f, "/", "source_rows", j->data == j->cfg->data ? "student" : "teacher", e);
    rc = kd_h5_close(j->f, j->out.tmp, rc, e);
    j->f = H5I_INVALID_HID;
    if (!rc) rc = kd_atomic_commit(&j->out, e);
  }
  return kd_agree(j->comm, rc, e);
}

/* --rows teacher: every rank writes its own view of the data file's teacher rows (data/align.h), a temporary
 * file, and the job reads it as its data file (collective). */
static int teacher_rows(const kd_eval_cfg *cfg, kd_eval_cfg *viewed, MPI_Comm comm, kd_err *e) {
  *viewed = *cfg;
  const char *dir = getenv("TMPDIR");
  int rc = KD_OK;
  if ((size_t)snprintf(viewed->data, sizeof viewed->data, "%s/kd-teacher-rows-XXXXXX", dir && dir[0] ? dir : "/tmp") >=
      sizeof viewed->data)
    rc = kd_fail(e, KD_ERR_USAGE, "kd logits --rows teacher: TMPDIR %s is too long", dir);
  int fd = rc ? -1 : mkstemp(viewed->data);
  if (!rc && fd < 0)
    rc = kd_fail(e, KD_ERR_RUNTIME, "kd logits --rows teacher: cannot create a file in %s (%s)",
                 dir && dir[0] ? dir : "/tmp", strerror(errno));
  if (fd >= 0) close(fd);
  if (!rc) rc = kd_teacher_rows_view(viewed->data, cfg->data, e); /* removes the file when it fails */
  return kd_agree(comm, rc, e);
}

/* A message about the view names what it stands for: the data file's teacher rows and record. */
static void name_teacher_rows(kd_err *e, const char *view, const char *data) {
  char rec_from[2][KD_PATH_MAX + 32], rec_to[2][KD_PATH_MAX + 32];
  snprintf(rec_from[0], sizeof rec_from[0], "/tokenizer of %s", view);
  snprintf(rec_to[0], sizeof rec_to[0], "/teacher_tokenizer of %s", data);
  snprintf(rec_from[1], sizeof rec_from[1], "%s: /tokenizer", view);
  snprintf(rec_to[1], sizeof rec_to[1], "%s: /teacher_tokenizer", data);
  const char *const from[5] = {rec_from[0], rec_from[1], view, "/tokens", "/mask"};
  const char *const to[5] = {rec_to[0], rec_to[1], data, "/teacher_tokens", "/teacher_mask"};
  char out[sizeof e->msg];
  size_t n = 0;
  for (const char *p = e->msg; *p && n + 1 < sizeof out;) {
    int k = 0;
    while (k < 5 && strncmp(p, from[k], strlen(from[k])) != 0) k++;
    if (k < 5) {
      n += (size_t)snprintf(out + n, sizeof out - n, "%s", to[k]);
      if (n >= sizeof out) n = sizeof out - 1;
      p += strlen(from[k]);
    } else {
      out[n++] = *p++;
    }
  }
  out[n] = '\0';
  snprintf(e->msg, sizeof e->msg, "%s", out);
}

int kd_logits_run(const kd_eval_cfg *cfg, MPI_Comm comm, int64_t rows_out[3], kd_err *e) {
  logits_job j;
  memset(&j, 0, sizeof j);
  j.cfg = cfg;
  j.data = cfg->data;
  kd_eval_cfg viewed;
  const int of_teacher = strcmp(cfg->rows, "teacher") == 0;
  j.comm = comm;
  j.f16 = strcmp(cfg->dtype, "f16") == 0;
  j.f = H5I_INVALID_HID;
  MPI_Comm_rank(comm, &j.rank);
  MPI_Comm_size(comm, &j.size);
  kd_h5_quiet();
  int rc = kd_progress_init_on(&j.prog, cfg->progress[0] ? cfg->progress : "off",
                               cfg->progress_every > 0 ? cfg->progress_every : 10, j.rank == 0, e);
  if (!rc && of_teacher && !(rc = teacher_rows(cfg, &viewed, comm, e))) j.cfg = &viewed;
  if (!rc) rc = job_model(&j, e);
  if (!rc) rc = job_create(&j, e);
  for (int s = 0; s < 3 && !rc; s++)
    if (j.info[s].present && !(rc = job_split(&j, s, e))) rows_out[s] = j.info[s].rows;
  if (!rc) rc = job_commit(&j, e);
  if (j.rank == 0 && j.f >= 0) H5Fclose(j.f);
  if (j.rank == 0 && rc && j.out.tmp[0]) kd_atomic_abort(&j.out);
  if (j.cfg == &viewed) {
    remove(viewed.data); /* this rank's own view */
    if (rc) name_teacher_rows(e, viewed.data, cfg->data);
  }
  kd_model_free(j.m);
  free(j.params);
  kd_preprocess_free(&j.pre);
  return rc;
}
