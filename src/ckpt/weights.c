#include "ckpt/weights.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomic.h"
#include "core/h5io.h"
#include "data/tokenizer.h"

int kd_write_views(hid_t f, const char *path, const char *group, const kd_param_view *views, int n,
                   const float *base, kd_err *e) {
  for (int i = 0; i < n; i++) {
    const kd_param_view *v = &views[i];
    char ds[128];
    snprintf(ds, sizeof ds, "%s/%s", group, v->name);
    int64_t dims[2] = {v->rows, v->cols};
    if (kd_h5_write_f32(f, path, ds, v->cols == 1 ? 1 : 2, dims, base + v->offset, e)) return e->code;
  }
  return KD_OK;
}

int kd_write_model_attrs(hid_t f, const char *path, const kd_model *m, kd_err *e) {
  (void)path;
  if (kd_h5_attr_str(f, "/", "family", m->family, e) || kd_h5_attr_str(f, "/", "student", m->spec, e)) return e->code;
  for (int i = 0; i < m->n_attrs; i++)
    if (kd_h5_attr_str(f, "/", m->attrs[i].name, m->attrs[i].value, e)) return e->code;
  return KD_OK;
}

int kd_weights_spec(const char *path, kd_model_spec *spec, kd_err *e) {
  memset(spec, 0, sizeof *spec);
  hid_t f;
  if (kd_h5_open_ro(&f, path, e)) return e->code;
  int rc = kd_h5_get_attr_str(f, path, "/", "family", spec->family, sizeof spec->family, e);
  if (!rc) rc = kd_h5_get_attr_str(f, path, "/", "student", spec->text, sizeof spec->text, e);
  const kd_family *fam = rc ? NULL : kd_family_find(spec->family);
  if (!rc && !fam) rc = kd_fail(e, KD_ERR_RUNTIME, "%s: student family '%s' is not known to kd %s", path, spec->family, KD_VERSION);
  for (int i = 0; !rc && fam->file_attrs && fam->file_attrs[i]; i++) {
    char v[64];
    rc = kd_h5_get_attr_str(f, path, "/", fam->file_attrs[i], v, sizeof v, e);
    const size_t l = strlen(spec->options);
    if (!rc) snprintf(spec->options + l, sizeof spec->options - l, "%s%s=%s", l ? "," : "", fam->file_attrs[i], v);
  }
  H5Fclose(f);
  return rc;
}

static int write_preprocess(hid_t f, const char *path, const kd_preprocess *p, kd_err *e) {
  if (!p || p->kind == KD_NORM_NONE) return KD_OK;
  int64_t d = p->dim;
  if (kd_h5_write_f32(f, path, "/preprocess/offset", 1, &d, p->offset, e) ||
      kd_h5_write_f32(f, path, "/preprocess/scale", 1, &d, p->scale, e) ||
      kd_h5_attr_str(f, "/preprocess", "kind", kd_norm_name(p->kind), e) ||
      kd_h5_attr_str(f, "/preprocess", "formula", "x' = (x - offset) / scale, per feature", e))
    return e->code;
  return KD_OK;
}

int kd_write_run_meta(hid_t f, const char *path, const kd_ckpt_meta *meta, kd_err *e) {
  if (!meta) return KD_OK;
  hid_t g = H5Gcreate2(f, "/config", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (g < 0) return kd_fail(e, KD_ERR_RUNTIME, "%s: cannot create group /config", path);
  H5Gclose(g);
  for (int i = 0; i < meta->n_cfg; i++)
    if (kd_h5_attr_str(f, "/config", meta->cfg[i].name, meta->cfg[i].value, e)) return e->code;
  if (meta->tok && kd_tokenizer_write(f, path, meta->tok, e)) return e->code;
  return write_preprocess(f, path, meta->pre, e);
}

int kd_ckpt_read_preprocess(const char *path, kd_preprocess *p, kd_err *e) {
  memset(p, 0, sizeof *p);
  hid_t f;
  if (kd_h5_open_ro(&f, path, e)) return e->code;
  int rc = KD_OK;
  if (kd_h5_exists(f, "/preprocess/offset")) {
    char kind[32];
    int nd;
    int64_t d[KD_H5_MAX_DIMS];
    rc = kd_h5_get_attr_str(f, path, "/preprocess", "kind", kind, sizeof kind, e);
    if (!rc && kd_norm_parse(kind, &p->kind))
      rc = kd_fail(e, KD_ERR_RUNTIME, "%s: /preprocess kind '%s' is not standard or minmax", path, kind);
    if (!rc) rc = kd_h5_shape(f, path, "/preprocess/offset", &nd, d, e);
    if (!rc) {
      p->dim = (int)d[0];
      p->offset = kd_malloc(sizeof(float) * (size_t)p->dim, "normalisation offsets", e);
      p->scale = kd_malloc(sizeof(float) * (size_t)p->dim, "normalisation scales", e);
      rc = e->code;
    }
    if (!rc) rc = kd_h5_read_rows(f, path, "/preprocess/offset", 0, p->dim, H5T_NATIVE_FLOAT, p->offset, e);
    if (!rc) rc = kd_h5_read_rows(f, path, "/preprocess/scale", 0, p->dim, H5T_NATIVE_FLOAT, p->scale, e);
    if (rc) kd_preprocess_free(p);
  }
  H5Fclose(f);
  return rc;
}

int kd_weights_write(const char *path, const kd_model *m, const kd_ckpt_meta *meta, kd_err *e) {
  kd_atomic a;
  hid_t f = H5I_INVALID_HID;
  if (kd_atomic_begin(&a, path, e) || kd_h5_create(&f, a.tmp, e)) return e->code;
  int rc = KD_OK;
  if (kd_h5_attr_str(f, "/", "kd_format", "weights", e) ||
      kd_h5_attr_i64(f, "/", "format_version", KD_FORMAT_VERSION, e) ||
      kd_h5_attr_str(f, "/", "kd_version", KD_VERSION, e) || kd_write_model_attrs(f, a.tmp, m, e))
    rc = e->code;
  if (!rc) rc = kd_write_views(f, a.tmp, "/model", m->views, m->n_views, m->params, e);
  if (!rc) rc = kd_write_run_meta(f, a.tmp, meta, e);
  rc = kd_h5_close(f, a.tmp, rc, e);
  if (!rc) rc = kd_atomic_commit(&a, e);
  if (rc) kd_atomic_abort(&a);
  return rc;
}

/* ---- weights written by other tools (h5py) ---- */

typedef struct bare_ctx {
  const kd_model *m;
  const char *path;
  char unknown[160];
} bare_ctx;

static int known_name(const kd_model *m, const char *name) {
  for (int i = 0; i < m->n_views; i++)
    if (strcmp(m->views[i].name, name) == 0) return 1;
  if (m->tied[0] && strcmp(m->tied[0], name) == 0) return 1;
  const size_t n = strlen(name);
  for (int i = 0; m->skip_suffixes && m->skip_suffixes[i]; i++) {
    const size_t k = strlen(m->skip_suffixes[i]);
    if (n >= k && strcmp(name + n - k, m->skip_suffixes[i]) == 0) return 1;
  }
  return 0;
}

static herr_t visit_bare(hid_t g, const char *name, const H5O_info_t *info, void *data) {
  (void)g;
  bare_ctx *c = data;
  if (info->type != H5O_TYPE_DATASET || known_name(c->m, name)) return 0;
  snprintf(c->unknown, sizeof c->unknown, "%s", name);
  return 1;
}

/* A tied dataset present must hold the very values of its view. */
static int check_tied(hid_t f, const char *path, const kd_model *m, kd_err *e) {
  if (!m->tied[0]) return KD_OK;
  char ds[96], to[96];
  snprintf(ds, sizeof ds, "/model/%s", m->tied[0]);
  snprintf(to, sizeof to, "/model/%s", m->tied[1]);
  if (!kd_h5_exists(f, ds)) return KD_OK;
  const kd_param_view *v = NULL;
  for (int i = 0; i < m->n_views; i++)
    if (strcmp(m->views[i].name, m->tied[1]) == 0) v = &m->views[i];
  int nd;
  int64_t d[KD_H5_MAX_DIMS];
  if (!v || kd_h5_shape(f, path, ds, &nd, d, e)) return e->code;
  const size_t n = (size_t)v->rows * v->cols;
  float *buf = (d[0] == v->rows && d[1] == v->cols) ? kd_malloc(sizeof(float) * n, ds, e) : NULL;
  int rc = buf ? kd_h5_read_rows(f, path, ds, 0, d[0], H5T_NATIVE_FLOAT, buf, e) : KD_ERR_RUNTIME;
  if (!rc && memcmp(buf, m->params + v->offset, sizeof(float) * n) != 0) rc = KD_ERR_RUNTIME;
  free(buf);
  if (rc && !e->code)
    kd_fail(e, KD_ERR_RUNTIME, "%s: %s differs from %s: the student ties its head to %s, so they must be equal", path,
            ds, to, to);
  return rc ? e->code : KD_OK;
}

int kd_weights_read_bare(const char *path, kd_model *m, kd_err *e) {
  if (kd_weights_read(path, m, e)) return e->code;
  hid_t f;
  if (kd_h5_open_ro(&f, path, e)) return e->code;
  bare_ctx c = {m, path, ""};
  int rc = KD_OK;
  if (H5Ovisit_by_name(f, "/model", H5_INDEX_NAME, H5_ITER_INC, visit_bare, &c, H5P_DEFAULT) < 0 && !c.unknown[0])
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: cannot walk /model", path);
  if (!rc && c.unknown[0])
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: /model/%s is not a parameter of the student %s %s (its names follow "
                 "docs/format.md)", path, c.unknown, m->family, m->spec);
  if (!rc) rc = check_tied(f, path, m, e);
  H5Eclear2(H5E_DEFAULT);
  H5Fclose(f);
  return rc;
}

int kd_is_bare_weights(const char *path) {
  hid_t f;
  kd_err ignore;
  kd_err_clear(&ignore);
  if (kd_h5_open_ro(&f, path, &ignore)) return 0;
  const int bare = kd_h5_exists(f, "/model") && H5Aexists(f, "kd_format") <= 0;
  H5Eclear2(H5E_DEFAULT);
  H5Fclose(f);
  return bare;
}

/* Weights as read: a NaN or an infinity (a diverged run, a broken export) would only show as a non-finite loss. */
static int check_finite(const char *path, const char *ds, const float *w, int rows, int cols, kd_err *e) {
  for (size_t i = 0; i < (size_t)rows * cols; i++)
    if (!isfinite(w[i]))
      return kd_fail(e, KD_ERR_RUNTIME, "%s: %s row %d column %d is %s: the weights are not finite", path, ds,
                     (int)(i / (size_t)cols), (int)(i % (size_t)cols), isnan(w[i]) ? "NaN" : "infinite");
  return KD_OK;
}

int kd_weights_read(const char *path, kd_model *m, kd_err *e) {
  hid_t f;
  if (kd_h5_open_ro(&f, path, e)) return e->code;
  int rc = KD_OK;
  for (int i = 0; i < m->n_views && !rc; i++) {
    const kd_param_view *v = &m->views[i];
    char ds[96];
    snprintf(ds, sizeof ds, "/model/%s", v->name);
    int nd;
    int64_t dims[KD_H5_MAX_DIMS];
    rc = kd_h5_shape(f, path, ds, &nd, dims, e);
    if (!rc && (nd > 2 || dims[0] != v->rows || dims[1] != v->cols))
      rc = kd_fail(e, KD_ERR_RUNTIME, "%s: %s is [%lld, %lld], the student %s needs [%d, %d]", path, ds,
                   (long long)dims[0], (long long)dims[1], m->spec, v->rows, v->cols);
    if (!rc) rc = kd_h5_read_rows(f, path, ds, 0, v->rows, H5T_NATIVE_FLOAT, m->params + v->offset, e);
    if (!rc) rc = check_finite(path, ds, m->params + v->offset, v->rows, v->cols, e);
  }
  H5Fclose(f);
  return rc;
}
