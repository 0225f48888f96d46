#include "kd/infer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kd/ckpt.h"
#include "kd/data.h"
#include "kd/h5io.h"
#include "kd/weights.h"

int kd_model_load(kd_model **m, float **params, const char *path, int max_batch, kd_err *e) {
  *m = NULL;
  *params = NULL;
  hid_t f;
  if (kd_h5_open_ro(&f, path, e)) return e->code;
  char family[16], student[256], act[16];
  int rc = kd_h5_get_attr_str(f, path, "/", "family", family, sizeof family, e);
  if (!rc) rc = kd_h5_get_attr_str(f, path, "/", "student", student, sizeof student, e);
  if (!rc) rc = kd_h5_get_attr_str(f, path, "/", "activation", act, sizeof act, e);
  H5Fclose(f);
  if (rc) return rc;
  kd_model_spec ms;
  memset(&ms, 0, sizeof ms);
  snprintf(ms.family, sizeof ms.family, "%s", family);
  snprintf(ms.sizes, sizeof ms.sizes, "%s", student);
  snprintf(ms.activation, sizeof ms.activation, "%s", act);
  kd_err me;
  kd_err_clear(&me);
  if (kd_model_create(m, &ms, max_batch, &me))
    return kd_fail(e, KD_ERR_RUNTIME, "%s: cannot build its student: %s", path, me.msg);
  *params = kd_malloc((*m)->n_params * sizeof(float), "parameters", e);
  if (!*params) {
    kd_model_free(*m);
    *m = NULL;
    return e->code;
  }
  kd_model_bind(*m, *params, NULL);
  if ((rc = kd_weights_read(path, *m, e))) {
    kd_model_free(*m);
    free(*params);
    *m = NULL;
    *params = NULL;
  }
  return rc;
}

/* The checkpoint and the split's rows (teacher logits when available). */
static int load_for_inference(const kd_eval_cfg *cfg, kd_model **m, float **params, kd_split *s, int want_teacher,
                              char *ckpt_path, size_t n, kd_err *e) {
  kd_h5_quiet();
  memset(s, 0, sizeof *s);
  if (kd_ckpt_resolve(cfg->ckpt, 0, ckpt_path, n, NULL, 0, e)) return e->code;
  if (kd_model_load(m, params, ckpt_path, (int)cfg->batch, e)) return e->code;
  int present, dim, classes;
  int64_t rows;
  if (kd_split_probe(cfg->data, NULL, cfg->split, &present, &rows, &dim, &classes, e)) return e->code;
  if (!present) return kd_fail(e, KD_ERR_RUNTIME, "%s: dataset /%s/x is missing", cfg->data, cfg->split);
  if (dim != (*m)->in_dim)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: /%s/x has %d features per row but the student %s of %s takes %d", cfg->data,
                   cfg->split, dim, (*m)->spec, ckpt_path, (*m)->in_dim);
  const char *teacher = NULL;
  if (want_teacher && cfg->teacher[0]) {
    hid_t f;
    char ls[64];
    snprintf(ls, sizeof ls, "/%s/logits", cfg->split);
    if (kd_h5_open_ro(&f, cfg->teacher, e)) return e->code;
    int has = kd_h5_exists(f, ls);
    H5Fclose(f);
    if (!has) return kd_fail(e, KD_ERR_RUNTIME, "%s: dataset %s is missing", cfg->teacher, ls);
    teacher = cfg->teacher;
  }
  if (kd_split_load(s, cfg->data, teacher, cfg->split, 0, rows, e)) return e->code;
  if (teacher && s->classes != (*m)->out_dim)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: /%s/logits has %d classes, the student %d", cfg->teacher, cfg->split,
                   s->classes, (*m)->out_dim);
  return kd_split_validate(s, (*m)->out_dim, 1, cfg->data, teacher, e);
}

int kd_eval_run(const kd_eval_cfg *cfg, kd_eval_result *r, char *ckpt_path, size_t n, kd_err *e) {
  kd_model *m = NULL;
  float *params = NULL;
  kd_split s;
  int rc = load_for_inference(cfg, &m, &params, &s, 1, ckpt_path, n, e);
  if (!rc) rc = kd_eval_model(r, NULL, m, &s, cfg->temperature, e);
  kd_split_free(&s);
  kd_model_free(m);
  free(params);
  return rc;
}

int kd_predict_run(const kd_eval_cfg *cfg, int64_t *rows, char *ckpt_path, size_t n, kd_err *e) {
  kd_model *m = NULL;
  float *params = NULL;
  kd_split s;
  float *logits = NULL;
  int rc = load_for_inference(cfg, &m, &params, &s, 0, ckpt_path, n, e);
  if (!rc) {
    logits = kd_malloc(sizeof(float) * (size_t)s.n * m->out_dim, "predicted logits", e);
    rc = logits ? KD_OK : e->code;
  }
  kd_eval_result r;
  if (!rc) rc = kd_eval_model(&r, logits, m, &s, 1.0, e);
  if (!rc) {
    char tmp[KD_PATH_MAX + 32], ds[64];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", cfg->out, (int)getpid());
    snprintf(ds, sizeof ds, "/%s/logits", cfg->split);
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) {
      rc = kd_fail(e, KD_ERR_RUNTIME, "%s: cannot create (is the directory writable?)", tmp);
    } else {
      int64_t dims[2] = {s.n, m->out_dim};
      rc = kd_h5_write_f32(f, tmp, ds, 2, dims, logits, e);
      if (!rc && (kd_h5_attr_str(f, "/", "kd_format", "teacher", e) || kd_h5_attr_i64(f, "/", "format_version", 1, e) ||
                  kd_h5_attr_str(f, "/", "kd_version", KD_VERSION, e) ||
                  kd_h5_attr_str(f, "/", "source_checkpoint", ckpt_path, e) ||
                  kd_h5_attr_str(f, "/", "source_data", cfg->data, e)))
        rc = e->code;
      if (H5Fclose(f) < 0 && !rc) rc = kd_fail(e, KD_ERR_RUNTIME, "%s: closing failed", tmp);
      if (!rc && rename(tmp, cfg->out) != 0)
        rc = kd_fail(e, KD_ERR_RUNTIME, "%s: rename to %s failed (%s)", tmp, cfg->out, strerror(errno));
      if (rc) unlink(tmp);
    }
    *rows = s.n;
  }
  free(logits);
  kd_split_free(&s);
  kd_model_free(m);
  free(params);
  return rc;
}
