/* Sparse teacher logits held in memory: K slots per position, ids as int32,
 * values (top-k logits, or draw counts) as float16 when the file has them
 * so, else float32; the top-k lse as float32. Layouts in docs/format.md. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/h5io.h"
#include "core/half.h"
#include "core/rng.h"
#include "kd/teacher.h"

struct kd_sparse_store {
  char path[KD_PATH_MAX];
  char split[16];
  kd_sparse_mode mode;
  int64_t row0, n;
  int P, K;             /* positions per row (1 for feature rows), slots per position */
  int32_t *ids;         /* [n, P, K] */
  int f16;              /* vals held as IEEE float16 */
  void *vals;           /* [n, P, K] float or uint16_t */
  float *lse;           /* [n, P] (tail) or NULL */
  double file_bytes;    /* per position, as stored */
};

static const char *group_of(kd_sparse_mode m) { return m == KD_SPARSE_SAMPLED ? "sampled" : "topk"; }
static const char *vals_of(kd_sparse_mode m) { return m == KD_SPARSE_SAMPLED ? "counts" : "logits"; }

const char *kd_sparse_mode_name(kd_sparse_mode m) {
  switch (m) {
    case KD_SPARSE_TOPK: return "topk";
    case KD_SPARSE_TAIL: return "tail";
    case KD_SPARSE_SAMPLED: return "sampled";
    default: return "dense";
  }
}

/* Shape [rows, positions, K] ([rows, K] for feature rows) of dataset ds; *K out. */
static int slot_shape(hid_t f, const char *path, const char *ds, int64_t rows, int positions, int *K, kd_err *e) {
  int nd;
  int64_t d[KD_H5_MAX_DIMS];
  if (kd_h5_shape(f, path, ds, &nd, d, e)) return e->code;
  const int want = positions ? 3 : 2;
  if (nd != want)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: dataset %s must be %d-D [rows, %sK], it is %d-D", path, ds, want,
                   positions ? "positions, " : "", nd);
  if (d[0] != rows)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: %s has %lld rows but the data split has %lld: made for other data", path, ds,
                   (long long)d[0], (long long)rows);
  if (positions && d[1] != positions)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: %s has %lld positions per row but the data's rows have %d", path, ds,
                   (long long)d[1], positions);
  *K = (int)d[nd - 1];
  if (*K < 1) return kd_fail(e, KD_ERR_RUNTIME, "%s: %s has no slots (K = 0)", path, ds);
  return KD_OK;
}

/* /SPLIT/G/ids and /SPLIT/G/<vals> both there, the same shape, ids of an integer type: K, else 0. */
static int probe_group(hid_t f, const char *path, const char *split, const char *g, const char *vals, int64_t rows,
                       int positions, int *K, kd_err *e) {
  char ids[64], vs[64];
  snprintf(ids, sizeof ids, "/%s/%s/ids", split, g);
  snprintf(vs, sizeof vs, "/%s/%s/%s", split, g, vals);
  *K = 0;
  const int hi = kd_h5_exists(f, ids), hv = kd_h5_exists(f, vs);
  if (!hi && !hv) return KD_OK;
  if (!hi || !hv)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: %s is there but %s is missing (sparse teacher logits need both)", path,
                   hi ? ids : vs, hi ? vs : ids);
  if (kd_h5_is_float(f, ids))
    return kd_fail(e, KD_ERR_RUNTIME, "%s: %s must hold integers (vocabulary ids), it holds floating-point numbers", path,
                   ids);
  int ki, kv;
  if (slot_shape(f, path, ids, rows, positions, &ki, e) || slot_shape(f, path, vs, rows, positions, &kv, e))
    return e->code;
  if (ki != kv) return kd_fail(e, KD_ERR_RUNTIME, "%s: %s has %d slots but %s has %d", path, ids, ki, vs, kv);
  *K = ki;
  return KD_OK;
}

/* Every split the file holds has the same K as split's (a student is trained and evaluated on one format). */
static int check_k_across(hid_t f, const char *path, const char *split, const char *g, int K,
                          kd_err *e) {
  static const char *const all[3] = {"train", "valid", "test"};
  for (int i = 0; i < 3; i++) {
    char ids[64];
    snprintf(ids, sizeof ids, "/%s/%s/ids", all[i], g);
    if (strcmp(all[i], split) == 0 || !kd_h5_exists(f, ids)) continue;
    int nd;
    int64_t d[KD_H5_MAX_DIMS];
    if (kd_h5_shape(f, path, ids, &nd, d, e)) return e->code;
    if (d[nd - 1] != K)
      return kd_fail(e, KD_ERR_RUNTIME, "%s: /%s/%s/ids has K = %d but %s has K = %lld: every split needs the same K",
                     path, split, g, K, ids, (long long)d[nd - 1]);
  }
  return KD_OK;
}

int kd_sparse_probe(const char *path, const char *split, int64_t rows, int positions, kd_sparse_info *info,
                    kd_err *e) {
  memset(info, 0, sizeof *info);
  hid_t f;
  if (kd_h5_open_ro(&f, path, e)) return e->code;
  char ds[64];
  snprintf(ds, sizeof ds, "/%s/logits", split);
  info->dense = kd_h5_exists(f, ds);
  int rc = probe_group(f, path, split, "topk", "logits", rows, positions, &info->topk_k, e);
  if (!rc) rc = probe_group(f, path, split, "sampled", "counts", rows, positions, &info->sampled_s, e);
  if (!rc && info->topk_k) rc = check_k_across(f, path, split, "topk", info->topk_k, e);
  if (!rc && info->sampled_s) rc = check_k_across(f, path, split, "sampled", info->sampled_s, e);
  snprintf(ds, sizeof ds, "/%s/topk/lse", split);
  if (!rc && info->topk_k && kd_h5_exists(f, ds)) {
    int nd;
    int64_t d[KD_H5_MAX_DIMS];
    rc = kd_h5_shape(f, path, ds, &nd, d, e);
    if (!rc && (nd != (positions ? 2 : 1) || d[0] != rows || (positions && d[1] != positions)))
      rc = kd_fail(e, KD_ERR_RUNTIME, "%s: %s must be [%lld%s] (one value per position), it is %d-D", path, ds,
                   (long long)rows, positions ? ", positions" : "", nd);
    info->has_lse = !rc;
  }
  snprintf(ds, sizeof ds, "/%s/sampled", split);
  if (!rc && info->sampled_s) {
    if (H5Aexists_by_name(f, ds, "sample_temperature", H5P_DEFAULT) <= 0)
      rc = kd_fail(e, KD_ERR_RUNTIME,
                   "%s: group %s has no attribute sample_temperature (the temperature the ids were drawn at)", path, ds);
    else
      rc = kd_h5_get_attr_f64(f, path, ds, "sample_temperature", &info->sample_temperature, e);
    H5Eclear2(H5E_DEFAULT);
  }
  H5Fclose(f);
  return rc;
}

int kd_sparse_resolve(const char *opt, const kd_sparse_info *in, const char *path, double temperature,
                      kd_sparse_mode *mode, kd_err *e) {
  if (strcmp(opt, "auto") == 0) {
    *mode = in->dense ? KD_SPARSE_DENSE
            : in->sampled_s ? KD_SPARSE_SAMPLED
            : in->topk_k && in->has_lse ? KD_SPARSE_TAIL
            : in->topk_k ? KD_SPARSE_TOPK
                         : KD_SPARSE_DENSE;
    if (*mode == KD_SPARSE_DENSE && !in->dense)
      return kd_fail(e, KD_ERR_RUNTIME,
                     "%s: no teacher logits for /train: neither /train/logits nor /train/topk/{ids,logits} nor "
                     "/train/sampled/{ids,counts}",
                     path);
  } else if (strcmp(opt, "topk") == 0 || strcmp(opt, "tail") == 0) {
    *mode = opt[1] == 'o' ? KD_SPARSE_TOPK : KD_SPARSE_TAIL;
    if (!in->topk_k)
      return kd_fail(e, KD_ERR_RUNTIME, "--sparse-kd %s: %s has no /train/topk/{ids,logits}", opt, path);
    if (*mode == KD_SPARSE_TAIL && !in->has_lse)
      return kd_fail(e, KD_ERR_RUNTIME,
                     "--sparse-kd tail: %s has no /train/topk/lse (the log-sum-exp of the full logits, which gives the "
                     "tail's mass); use --sparse-kd topk, or write it (kd logits --topk does)",
                     path);
  } else if (strcmp(opt, "sampled") == 0) {
    *mode = KD_SPARSE_SAMPLED;
    if (!in->sampled_s)
      return kd_fail(e, KD_ERR_RUNTIME, "--sparse-kd sampled: %s has no /train/sampled/{ids,counts}", path);
  } else {
    return kd_fail(e, KD_ERR_USAGE, "--sparse-kd %s: not one of auto|topk|tail|sampled", opt);
  }
  if (*mode == KD_SPARSE_SAMPLED && fabs(in->sample_temperature - temperature) > 1e-6 * fabs(temperature))
    return kd_fail(e, KD_ERR_RUNTIME,
                   "%s: /train/sampled was drawn at sample_temperature %g but --temperature is %g: the estimate is "
                   "unbiased only at the temperature it was drawn at (train with --temperature %g, or draw again)",
                   path, in->sample_temperature, temperature, in->sample_temperature);
  return KD_OK;
}

/* The ids of rows [row0, row0 + n) as int64, checked and narrowed to int32 in s->ids. */
static int read_ids(kd_sparse_store *s, hid_t f, const char *ds, int V, kd_err *e) {
  const size_t cnt = (size_t)s->n * s->P * s->K;
  int64_t *wide = kd_malloc((cnt ? cnt : 1) * sizeof *wide, ds, e);
  s->ids = kd_malloc((cnt ? cnt : 1) * sizeof *s->ids, ds, e);
  int rc = e->code ? e->code : kd_h5_read_rows(f, s->path, ds, s->row0, s->n, H5T_NATIVE_INT64, wide, e);
  for (size_t i = 0; !rc && i < cnt; i++) {
    if (wide[i] < 0 || wide[i] >= V) {
      const size_t pk = (size_t)s->P * s->K;
      rc = kd_fail(e, KD_ERR_RUNTIME, "%s: %s row %lld position %d slot %d is id %lld, outside the vocabulary [0, %d)",
                   s->path, ds, (long long)(s->row0 + (int64_t)(i / pk)), (int)(i % pk / s->K), (int)(i % s->K),
                   (long long)wide[i], V);
      break;
    }
    s->ids[i] = (int32_t)wide[i];
  }
  free(wide);
  return rc;
}

static float val(const kd_sparse_store *s, size_t i) {
  return s->f16 ? kd_half_to_float(((const uint16_t *)s->vals)[i]) : ((const float *)s->vals)[i];
}

static int read_vals(kd_sparse_store *s, hid_t f, const char *ds, kd_err *e) {
  const size_t cnt = (size_t)s->n * s->P * s->K;
  const hid_t ht = kd_h5_half_mem_type(f, ds);
  s->f16 = ht >= 0;
  s->vals = kd_malloc((cnt ? cnt : 1) * (s->f16 ? 2 : sizeof(float)), ds, e);
  int rc = s->vals ? kd_h5_read_rows(f, s->path, ds, s->row0, s->n, s->f16 ? ht : H5T_NATIVE_FLOAT, s->vals, e) : e->code;
  if (ht >= 0) H5Tclose(ht);
  return rc;
}

static int read_lse(kd_sparse_store *s, hid_t f, const char *ds, kd_err *e) {
  const size_t cnt = (size_t)s->n * s->P;
  s->lse = kd_malloc((cnt ? cnt : 1) * sizeof(float), ds, e);
  if (!s->lse || kd_h5_read_rows(f, s->path, ds, s->row0, s->n, H5T_NATIVE_FLOAT, s->lse, e)) return e->code;
  for (size_t i = 0; i < cnt; i++)
    if (!isfinite(s->lse[i]))
      return kd_fail(e, KD_ERR_RUNTIME, "%s: %s row %lld position %d is not finite", s->path, ds,
                     (long long)(s->row0 + (int64_t)(i / s->P)), (int)(i % s->P));
  return KD_OK;
}

/* Values finite (counts >= 0), ids distinct within a position (sampled: among slots that were drawn). */
static int check_slots(const kd_sparse_store *s, kd_err *e) {
  const int K = s->K, sampled = s->mode == KD_SPARSE_SAMPLED;
  const size_t npos = (size_t)s->n * s->P;
  char ds[64], dv[64];
  snprintf(ds, sizeof ds, "/%s/%s/ids", s->split, group_of(s->mode));
  snprintf(dv, sizeof dv, "/%s/%s/%s", s->split, group_of(s->mode), vals_of(s->mode));
  for (size_t p = 0; p < npos; p++) {
    const int32_t *id = s->ids + p * K;
    const long long row = (long long)(s->row0 + (int64_t)(p / s->P));
    const int pos = (int)(p % s->P);
    for (int k = 0; k < K; k++) {
      const float v = val(s, p * K + k);
      if (!isfinite(v) || (sampled && v < 0))
        return kd_fail(e, KD_ERR_RUNTIME, "%s: %s row %lld position %d slot %d is %g: %s", s->path, dv, row, pos, k, v,
                       sampled ? "a count must be finite and >= 0" : "not finite");
      if (sampled && v == 0) continue;
      /* K is small (up to a few hundred): a quadratic scan beats sorting a copy */
      for (int j = 0; j < k; j++)
        if (id[j] == id[k] && (!sampled || val(s, p * K + j) != 0))
          return kd_fail(e, KD_ERR_RUNTIME, "%s: %s row %lld position %d: id %d is in slots %d and %d (ids must be "
                         "distinct within a position)", s->path, ds, row, pos, id[k], j, k);
    }
  }
  return KD_OK;
}

int kd_sparse_open(kd_sparse_store **out, const char *path, const char *split, int64_t lo, int64_t hi, int64_t total,
                   kd_sparse_mode mode, int V, kd_err *e) {
  *out = NULL;
  kd_sparse_store *s = kd_calloc(1, sizeof *s, "sparse teacher store", e);
  if (!s) return e->code;
  snprintf(s->path, sizeof s->path, "%s", path);
  snprintf(s->split, sizeof s->split, "%s", split);
  s->mode = mode;
  s->row0 = lo;
  s->n = hi - lo;
  char ids[64], vs[64], ls[64];
  snprintf(ids, sizeof ids, "/%s/%s/ids", split, group_of(mode));
  snprintf(vs, sizeof vs, "/%s/%s/%s", split, group_of(mode), vals_of(mode));
  snprintf(ls, sizeof ls, "/%s/topk/lse", split);
  hid_t f;
  int rc = kd_h5_open_ro(&f, path, e);
  if (!rc) {
    int nd;
    int64_t d[KD_H5_MAX_DIMS];
    rc = kd_h5_shape(f, path, ids, &nd, d, e);
    if (!rc && d[0] != total)
      rc = kd_fail(e, KD_ERR_RUNTIME, "%s: %s has %lld rows, the split %lld", path, ids, (long long)d[0],
                   (long long)total);
    if (!rc) {
      s->P = nd == 3 ? (int)d[1] : 1;
      s->K = (int)d[nd - 1];
      s->file_bytes = (double)s->K * (double)(kd_h5_type_size(f, ids) + kd_h5_type_size(f, vs)) +
                      (mode == KD_SPARSE_TAIL ? (double)kd_h5_type_size(f, ls) : 0.0);
      rc = read_ids(s, f, ids, V, e);
    }
    if (!rc) rc = read_vals(s, f, vs, e);
    if (!rc && mode == KD_SPARSE_TAIL) rc = read_lse(s, f, ls, e);
    H5Fclose(f);
  }
  if (!rc) rc = check_slots(s, e);
  if (rc) {
    kd_sparse_free(s);
    return rc;
  }
  *out = s;
  return KD_OK;
}

void kd_sparse_free(kd_sparse_store *s) {
  if (!s) return;
  free(s->ids);
  free(s->vals);
  free(s->lse);
  free(s);
}

int kd_sparse_k(const kd_sparse_store *s) { return s ? s->K : 0; }
int kd_sparse_positions(const kd_sparse_store *s) { return s ? s->P : 0; }
double kd_sparse_file_bytes(const kd_sparse_store *s) { return s ? s->file_bytes : 0.0; }

size_t kd_sparse_bytes(const kd_sparse_store *s) {
  if (!s) return 0;
  const size_t slots = (size_t)s->n * s->P * s->K;
  return slots * (sizeof(int32_t) + (s->f16 ? 2 : sizeof(float))) + (s->lse ? (size_t)s->n * s->P * sizeof(float) : 0);
}

uint64_t kd_sparse_fingerprint(const kd_sparse_store *s) {
  uint64_t sum = 0;
  if (!s) return 0;
  const size_t W = (size_t)s->P * s->K;
  for (int64_t i = 0; i < s->n; i++) {
    uint64_t g = kd_mix64((uint64_t)(s->row0 + i) ^ (0x5370u + (uint64_t)s->mode));
    for (size_t j = 0; j < W; j++) {
      const float v = val(s, (size_t)i * W + j);
      uint32_t w;
      memcpy(&w, &v, sizeof w);
      g = kd_mix64(g ^ w ^ ((uint64_t)(uint32_t)s->ids[(size_t)i * W + j] << 32));
    }
    for (int p = 0; s->lse && p < s->P; p++) {
      uint32_t w;
      memcpy(&w, &s->lse[(size_t)i * s->P + p], sizeof w);
      g = kd_mix64(g ^ w);
    }
    sum += g;
  }
  return sum;
}

int kd_sparse_batch_init(kd_sparse_batch *b, const kd_sparse_store *s, int cap, kd_err *e) {
  memset(b, 0, sizeof *b);
  b->ids = kd_malloc((size_t)cap * s->K * sizeof(int32_t), "batch sparse ids", e);
  b->vals = kd_malloc((size_t)cap * s->K * sizeof(float), "batch sparse values", e);
  if (s->lse) b->lse = kd_malloc((size_t)cap * sizeof(float), "batch lse", e);
  if (e->code) {
    kd_sparse_batch_free(b);
    return e->code;
  }
  b->t.mode = s->mode;
  b->t.K = s->K;
  b->t.ids = b->ids;
  b->t.vals = b->vals;
  b->t.lse = b->lse;
  return KD_OK;
}

void kd_sparse_batch_free(kd_sparse_batch *b) {
  free(b->ids);
  free(b->vals);
  free(b->lse);
  memset(b, 0, sizeof *b);
}

int kd_sparse_gather(const kd_sparse_store *s, const int64_t *idx, int count, kd_sparse_batch *b, kd_err *e) {
  const size_t W = (size_t)s->P * s->K;
  for (int i = 0; i < count; i++) {
    const int64_t r = idx[i];
    if (r < 0 || r >= s->n)
      return kd_fail(e, KD_ERR_RUNTIME, "sparse teacher gather: row %lld outside the shard of %lld rows of /%s",
                     (long long)r, (long long)s->n, s->split);
    memcpy(b->ids + (size_t)i * W, s->ids + (size_t)r * W, W * sizeof(int32_t));
    for (size_t j = 0; j < W; j++) b->vals[(size_t)i * W + j] = val(s, (size_t)r * W + j);
    if (b->lse) memcpy(b->lse + (size_t)i * s->P, s->lse + (size_t)r * s->P, (size_t)s->P * sizeof(float));
  }
  return KD_OK;
}

void kd_sparse_batch_restride(kd_sparse_batch *b, int rows, int from, int to) {
  const size_t K = (size_t)b->t.K;
  for (int r = 1; r < rows; r++) {
    memmove(b->ids + (size_t)r * to * K, b->ids + (size_t)r * from * K, sizeof(int32_t) * (size_t)to * K);
    memmove(b->vals + (size_t)r * to * K, b->vals + (size_t)r * from * K, sizeof(float) * (size_t)to * K);
    if (b->lse) memmove(b->lse + (size_t)r * to, b->lse + (size_t)r * from, sizeof(float) * (size_t)to);
  }
}
