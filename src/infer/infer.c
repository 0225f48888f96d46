#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/weights.h"
#include "core/atomic.h"
#include "core/h5io.h"
#include "core/provenance.h"
#include "kd/ckpt.h"
#include "kd/infer.h"
#include "kd/registry.h"

int kd_model_load(kd_model **m, float **params, const char *path, int max_batch, kd_err *e) {
  *m = NULL;
  *params = NULL;
  kd_model_spec ms;
  if (kd_weights_spec(path, &ms, e)) return e->code;
  kd_err me;
  kd_err_clear(&me);
  if (kd_model_create(m, &ms, max_batch, &me))
    return kd_fail(e, KD_ERR_RUNTIME, "%s: cannot build its student: %s", path, me.msg);
  *params = kd_malloc((*m)->n_params * sizeof(float), "parameters", e);
  int rc = *params ? KD_OK : e->code;
  if (!rc) {
    kd_model_bind(*m, *params, NULL);
    rc = kd_weights_read(path, *m, e);
  }
  if (rc) {
    kd_model_free(*m);
    free(*params);
    *m = NULL;
    *params = NULL;
  }
  return rc;
}

/* The split's rows for a model: present, as wide as it takes. */
static int open_split(kd_source **src, const kd_eval_cfg *cfg, const kd_model *m, const char *ckpt_path, kd_err *e) {
  kd_split_info info;
  if (kd_source_probe(cfg->data, cfg->split, &info, e)) return e->code;
  if (!info.present) return kd_fail(e, KD_ERR_RUNTIME, "%s: dataset /%s/x is missing", cfg->data, cfg->split);
  if (info.width != m->in_dim)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: /%s/x has %d features per row but the student %s of %s takes %d", cfg->data,
                   cfg->split, info.width, m->spec, ckpt_path, m->in_dim);
  return kd_source_open(src, cfg->data, cfg->split, 0, info.rows, e);
}

/* The teacher's logits of the split (kd eval --teacher). */
static int open_teacher(kd_teacher **t, const kd_eval_cfg *cfg, const kd_source *src, const kd_model *m, kd_err *e) {
  char ls[64];
  snprintf(ls, sizeof ls, "/%s/logits", cfg->split);
  int has, classes;
  if (kd_teacher_has(cfg->teacher, cfg->split, "logits", &has, e)) return e->code;
  if (!has) return kd_fail(e, KD_ERR_RUNTIME, "%s: dataset %s is missing", cfg->teacher, ls);
  if (kd_teacher_probe(cfg->teacher, cfg->split, cfg->data, kd_source_rows(src), &classes, e)) return e->code;
  if (classes != m->out_dim)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: /%s/logits has %d classes, the student %d", cfg->teacher, cfg->split,
                   classes, m->out_dim);
  return kd_teacher_open(t, cfg->teacher, cfg->split, 0, kd_source_rows(src), kd_source_rows(src), KD_TEACH_LOGITS, e);
}

/* The checkpoint, the split's rows and (want_teacher) the teacher's logits. */
static int load_for_inference(const kd_eval_cfg *cfg, kd_model **m, float **params, kd_source **src,
                              kd_teacher **teacher, char *ckpt_path, size_t n, kd_err *e) {
  kd_h5_quiet();
  if (kd_ckpt_resolve(cfg->ckpt, 0, ckpt_path, n, NULL, 0, e)) return e->code;
  if (kd_model_load(m, params, ckpt_path, (int)cfg->batch, e)) return e->code;
  if (open_split(src, cfg, *m, ckpt_path, e)) return e->code;
  if (teacher && cfg->teacher[0] && open_teacher(teacher, cfg, *src, *m, e)) return e->code;
  if (kd_source_validate(*src, (*m)->out_dim, 1, e)) return e->code;
  return teacher && *teacher ? kd_teacher_validate(*teacher, e) : KD_OK;
}

int kd_eval_run(const kd_eval_cfg *cfg, kd_eval_result *r, char *ckpt_path, size_t n, kd_err *e) {
  kd_model *m = NULL;
  float *params = NULL;
  kd_source *src = NULL;
  kd_teacher *teacher = NULL;
  int rc = load_for_inference(cfg, &m, &params, &src, &teacher, ckpt_path, n, e);
  if (!rc) rc = kd_eval_model(r, NULL, m, src, teacher, cfg->temperature, e);
  kd_teacher_free(teacher);
  kd_source_free(src);
  kd_model_free(m);
  free(params);
  return rc;
}

static int write_predictions(const kd_eval_cfg *cfg, const char *ckpt_path, const float *logits, int64_t rows, int C,
                             kd_err *e) {
  char ds[64];
  snprintf(ds, sizeof ds, "/%s/logits", cfg->split);
  kd_atomic a;
  hid_t f = H5I_INVALID_HID;
  if (kd_atomic_begin(&a, cfg->out, e) || kd_h5_create(&f, a.tmp, e)) return e->code;
  int64_t dims[2] = {rows, C};
  int rc = kd_h5_write_f32(f, a.tmp, ds, 2, dims, logits, e);
  kd_provenance p = kd_provenance_of("teacher");
  p.source_checkpoint = ckpt_path;
  p.source_data = cfg->data;
  if (!rc) rc = kd_provenance_write(f, a.tmp, &p, e);
  rc = kd_h5_close(f, a.tmp, rc, e);
  if (!rc) rc = kd_atomic_commit(&a, e);
  if (rc) kd_atomic_abort(&a);
  return rc;
}

int kd_predict_run(const kd_eval_cfg *cfg, int64_t *rows, char *ckpt_path, size_t n, kd_err *e) {
  kd_model *m = NULL;
  float *params = NULL, *logits = NULL;
  kd_source *src = NULL;
  int rc = load_for_inference(cfg, &m, &params, &src, NULL, ckpt_path, n, e);
  if (!rc) {
    logits = kd_malloc(sizeof(float) * (size_t)kd_source_rows(src) * m->out_dim, "predicted logits", e);
    rc = logits ? KD_OK : e->code;
  }
  if (!rc) rc = kd_infer_rows(logits, NULL, 0, m, src, e);
  if (!rc) rc = write_predictions(cfg, ckpt_path, logits, kd_source_rows(src), m->out_dim, e);
  if (!rc) *rows = kd_source_rows(src);
  free(logits);
  kd_source_free(src);
  kd_model_free(m);
  free(params);
  return rc;
}
