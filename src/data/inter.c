/* Stored intermediate targets of a Transformer teacher (kd/teacher.h):
 * hidden states and attention maps, read from the teacher file a batch at
 * a time, row by row (a batch's rows are scattered over the shard). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/h5io.h"
#include "kd/teacher.h"

struct kd_inter_store {
  char path[KD_PATH_MAX], split[16];
  hid_t file;
  int64_t row0;
  int T, capacity;
  int n;                     /* datasets read: hidden ones first */
  int n_hidden;
  int layer[2 * 64];         /* the teacher layer of each */
  int64_t row_values[2 * 64];
  hsize_t dims[2 * 64][4];   /* a row's selection: [1, ...] */
  hid_t dset[2 * 64], space[2 * 64], mspace[2 * 64];
  float *buf[2 * 64];        /* [capacity * row_values] */
  kd_inter inter;
  const float **ptrs;
};

static void dset_name(char *buf, size_t n, const char *split, const char *kind, int l) {
  snprintf(buf, n, "/%s/%s/%d", split, kind, l);
}

/* The largest layer index of a group's datasets named 0, 1, ... and the shape of one of them. */
static int first_shape(hid_t f, const char *path, const char *split, const char *kind, int nd_want, int64_t *dims,
                       int *max_layer, kd_err *e) {
  char name[96];
  *max_layer = -1;
  for (int l = 0; l < 1024; l++) {
    dset_name(name, sizeof name, split, kind, l);
    if (!kd_h5_exists(f, name)) continue;
    int nd;
    if (kd_h5_shape(f, path, name, &nd, dims, e)) return e->code;
    if (nd != nd_want || !kd_h5_is_float(f, name))
      return kd_fail(e, KD_ERR_RUNTIME, "%s: dataset %s must be a %d-D float array (%s)", path, name, nd_want,
                     nd_want == 3 ? "[rows, positions, width]" : "[rows, heads, positions, positions]");
    *max_layer = l;
  }
  return KD_OK;
}

static int group_layers(hid_t f, const char *path, const char *group, int *layers, kd_err *e) {
  if (!kd_h5_exists(f, group) || H5Aexists_by_name(f, group, "layers", H5P_DEFAULT) <= 0) return KD_OK;
  int64_t v = 0;
  if (kd_h5_get_attr_i64(f, path, group, "layers", &v, e)) return e->code;
  if (v < 1 || v > 1024) return kd_fail(e, KD_ERR_RUNTIME, "%s: attribute layers of %s is %lld", path, group, (long long)v);
  *layers = (int)v;
  return KD_OK;
}

int kd_inter_store_probe(const char *path, const char *split, int *layers, int *stored, int *dim, int *heads,
                         kd_err *e) {
  *layers = *stored = *dim = *heads = 0;
  hid_t f;
  if (kd_h5_open_ro(&f, path, e)) return e->code;
  int64_t hd[KD_H5_MAX_DIMS], ad[KD_H5_MAX_DIMS];
  int mh, ma;
  char g[64];
  int rc = first_shape(f, path, split, "hidden", 3, hd, &mh, e);
  if (!rc) rc = first_shape(f, path, split, "attn", 4, ad, &ma, e);
  snprintf(g, sizeof g, "/%s/hidden", split);
  if (!rc) rc = group_layers(f, path, g, layers, e);
  snprintf(g, sizeof g, "/%s/attn", split);
  if (!rc) rc = group_layers(f, path, g, layers, e);
  H5Fclose(f);
  if (rc) return rc;
  if (mh < 0 && ma < 0)
    return kd_fail(e, KD_ERR_USAGE, "%s: no stored intermediate targets (/%s/hidden/{l} or /%s/attn/{l}); an online "
                   "teacher (--teacher-model) gives them", path, split, split);
  *stored = mh > ma ? mh : ma;
  if (mh >= 0) *dim = (int)hd[2];
  if (ma >= 0) *heads = (int)ad[1];
  return KD_OK;
}

static int add_dataset(kd_inter_store *s, const char *kind, int l, int64_t total, int want, kd_err *e) {
  char name[96];
  dset_name(name, sizeof name, s->split, kind, l);
  const int is_attn = kind[0] == 'a';
  for (int k = is_attn ? s->n_hidden : 0; k < s->n; k++)
    if (s->layer[k] == l) return KD_OK; /* asked for twice: read once */
  if (!kd_h5_exists(s->file, name))
    return kd_fail(e, KD_ERR_USAGE, "%s: dataset %s is missing (the layer map asks for teacher %s %d)", s->path, name,
                   is_attn ? "attention layer" : "hidden state", l);
  int nd;
  int64_t d[KD_H5_MAX_DIMS];
  if (kd_h5_shape(s->file, s->path, name, &nd, d, e)) return e->code;
  const int ok = d[0] == total && (is_attn ? nd == 4 && d[2] == s->T && d[3] == s->T : nd == 3 && d[1] == s->T);
  if (!ok) {
    char shape[96] = "";
    for (int i = 0; i < nd && i < 4; i++)
      snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%lld", i ? ", " : "", (long long)d[i]);
    return kd_fail(e, KD_ERR_RUNTIME, "%s: dataset %s is [%s] but must be %s for the %lld rows of %d positions of /%s",
                   s->path, name, shape, is_attn ? "[rows, heads, T, T]" : "[rows, T, width]", (long long)total, s->T,
                   s->split);
  }
  if ((is_attn ? d[1] : d[2]) != want)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: dataset %s has %s %lld, the other stored layers %d", s->path, name,
                   is_attn ? "heads" : "width", (long long)(is_attn ? d[1] : d[2]), want);
  const int k = s->n++;
  s->layer[k] = l;
  s->row_values[k] = d[1] * d[2] * d[3];
  s->dims[k][0] = 1;
  for (int i = 1; i < 4; i++) s->dims[k][i] = (hsize_t)d[i];
  s->dset[k] = H5Dopen2(s->file, name, H5P_DEFAULT);
  s->space[k] = s->dset[k] >= 0 ? H5Dget_space(s->dset[k]) : H5I_INVALID_HID;
  s->mspace[k] = H5Screate_simple(nd, s->dims[k], NULL);
  if (s->dset[k] < 0 || s->space[k] < 0 || s->mspace[k] < 0)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: cannot open dataset %s", s->path, name);
  s->buf[k] = kd_malloc(sizeof(float) * (size_t)s->capacity * s->row_values[k], name, e);
  return e->code;
}

int kd_inter_store_open(kd_inter_store **out, const char *path, const char *split, int64_t lo, int64_t hi, int64_t total,
                        int T, int capacity, const int *hidden, int n_hidden, const int *attn, int n_attn, kd_err *e) {
  *out = NULL;
  if (n_hidden + n_attn > 128) return kd_fail(e, KD_ERR_USAGE, "%s: more than 128 stored layers asked for", path);
  kd_inter_store *s = kd_calloc(1, sizeof *s, "intermediate targets", e);
  if (!s) return e->code;
  snprintf(s->path, sizeof s->path, "%s", path);
  snprintf(s->split, sizeof s->split, "%s", split);
  s->row0 = lo;
  s->T = T;
  s->capacity = capacity;
  s->file = H5I_INVALID_HID;
  (void)hi;
  int layers = 0, stored = 0, dim = 0, heads = 0;
  int rc = kd_inter_store_probe(path, split, &layers, &stored, &dim, &heads, e);
  if (!rc) rc = kd_h5_open_ro(&s->file, path, e);
  for (int i = 0; i < n_hidden && !rc; i++) rc = add_dataset(s, "hidden", hidden[i], total, dim, e);
  s->n_hidden = s->n;
  for (int i = 0; i < n_attn && !rc; i++) rc = add_dataset(s, "attn", attn[i], total, heads, e);
  int L = 0;
  for (int k = 0; k < s->n; k++) L = s->layer[k] > L ? s->layer[k] : L;
  if (!rc) s->ptrs = kd_calloc((size_t)KD_INTER_ARRAYS * (L + 1), sizeof *s->ptrs, "intermediate targets", e);
  if (!rc && !s->ptrs) rc = e->code;
  if (rc) {
    kd_inter_store_free(s);
    return rc;
  }
  kd_inter_bind(&s->inter, s->ptrs, L);
  s->inter.dim = dim;
  s->inter.heads = heads;
  for (int k = 0; k < s->n; k++) (k < s->n_hidden ? s->inter.hidden : s->inter.attn)[s->layer[k]] = s->buf[k];
  *out = s;
  return KD_OK;
}

/* Value j of a row of dataset k is not finite: name its place (position and column of a hidden state; head,
 * query and key position of an attention map). */
static int non_finite(const kd_inter_store *s, int k, const char *name, int64_t row, size_t j, float v, kd_err *e) {
  const char *what = isnan(v) ? "NaN" : "infinite";
  if (k < s->n_hidden) {
    const size_t D = (size_t)s->dims[k][2];
    return kd_fail(e, KD_ERR_RUNTIME, "%s: %s row %lld position %zu column %zu is %s", s->path, name, (long long)row,
                   j / D, j % D, what);
  }
  const size_t T = (size_t)s->dims[k][3];
  return kd_fail(e, KD_ERR_RUNTIME, "%s: %s row %lld head %zu query %zu key %zu is %s", s->path, name, (long long)row,
                 j / (T * T), (j / T) % T, j % T, what);
}

int kd_inter_store_gather(kd_inter_store *s, const int64_t *idx, int count, kd_err *e) {
  if (count > s->capacity) return kd_fail(e, KD_ERR_RUNTIME, "%s: batch of %d rows, %d allocated", s->path, count, s->capacity);
  char name[96];
  for (int k = 0; k < s->n; k++) {
    dset_name(name, sizeof name, s->split, k < s->n_hidden ? "hidden" : "attn", s->layer[k]);
    const size_t rv = (size_t)s->row_values[k];
    for (int i = 0; i < count; i++) {
      float *dst = s->buf[k] + (size_t)i * rv;
      const int64_t row = s->row0 + idx[i];
      const hsize_t start[4] = {(hsize_t)row, 0, 0, 0};
      if (H5Sselect_hyperslab(s->space[k], H5S_SELECT_SET, start, NULL, s->dims[k], NULL) < 0 ||
          H5Dread(s->dset[k], H5T_NATIVE_FLOAT, s->mspace[k], s->space[k], H5P_DEFAULT, dst) < 0)
        return kd_fail(e, KD_ERR_RUNTIME, "%s: reading row %lld of %s failed", s->path, (long long)row, name);
      for (size_t j = 0; j < rv; j++)
        if (!isfinite(dst[j])) return non_finite(s, k, name, row, j, dst[j], e);
    }
  }
  return KD_OK;
}

const kd_inter *kd_inter_store_batch(const kd_inter_store *s) { return &s->inter; }

void kd_inter_store_free(kd_inter_store *s) {
  if (!s) return;
  for (int k = 0; k < s->n; k++) {
    if (s->mspace[k] > 0) H5Sclose(s->mspace[k]);
    if (s->space[k] > 0) H5Sclose(s->space[k]);
    if (s->dset[k] > 0) H5Dclose(s->dset[k]);
    free(s->buf[k]);
  }
  if (s->file >= 0) H5Fclose(s->file);
  free(s->ptrs);
  free(s);
}
