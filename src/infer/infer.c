#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/weights.h"
#include "core/atomic.h"
#include "core/h5io.h"
#include "core/progress.h"
#include "core/half.h"
#include "core/provenance.h"
#include "data/rows.h"
#include "kd/ckpt.h"
#include "kd/infer.h"
#include "kd/registry.h"
#include "models/fit.h"

int kd_model_load(kd_model **m, float **params, const char *path, int max_batch, kd_err *e) {
  *m = NULL;
  *params = NULL;
  kd_model_spec ms;
  if (kd_weights_spec(path, &ms, e)) return e->code;
  kd_err me;
  kd_err_clear(&me);
  if (max_batch <= 0) { /* automatic: as many rows as fit in KD_INFER_ACT_BYTES of activations, at most 1024 */
    if (kd_model_create(m, &ms, 1, &me))
      return kd_fail(e, KD_ERR_RUNTIME, "%s: cannot build its student: %s", path, me.msg);
    const size_t per_row = (*m)->act_bytes > 0 ? (*m)->act_bytes : 1;
    kd_model_free(*m);
    *m = NULL;
    max_batch = (int)(KD_INFER_ACT_BYTES / per_row < 1024 ? KD_INFER_ACT_BYTES / per_row : 1024);
    if (max_batch < 1) max_batch = 1;
  }
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

void kd_infer_who(char *buf, size_t n, const kd_model *m, const char *ckpt) {
  snprintf(buf, n, "the student %s:%s of %s", m->family, m->spec, ckpt);
}

/* What kd eval and kd predict work on: the split's rows [lo, hi) read in
 * order, a block at a time, by the row provider's stream (a bounded memory
 * whatever the split's size; the reader overlaps the forward passes). */
typedef struct inference {
  kd_model *m;
  float *params;
  kd_preprocess pre;       /* the checkpoint's input normalisation */
  kd_source *src;          /* the split's first row: its kind, width and tokenizer */
  int teacher;             /* the teacher's logits of the rows are read beside them */
  char split[16];          /* the file's split holding the rows ... */
  int64_t lo, hi;          /* ... and which of them */
  int64_t targets;         /* target tokens among them */
  kd_rows *rows;
} inference;

static void inference_free(inference *in) {
  kd_rows_free(in->rows);
  kd_source_free(in->src);
  kd_model_free(in->m);
  free(in->params);
  kd_preprocess_free(&in->pre);
}

/* --split valid of a data file without /valid: the rows the run held out
 * with --val-rows (the last N of /train), as its checkpoint records. */
static int held_out_rows(inference *in, const kd_eval_cfg *cfg, const char *ckpt_path, kd_err *e) {
  char v[64];
  const long long n = kd_ckpt_config_get(ckpt_path, "val-rows", v, sizeof v) ? atoll(v) : 0;
  if (n <= 0)
    return kd_fail(e, KD_ERR_RUNTIME,
                   "%s: dataset /valid/x is missing, and %s was not trained with --val-rows (its evaluations used "
                   "/valid or /test of its data)",
                   cfg->data, ckpt_path);
  kd_split_info info;
  if (kd_source_probe(cfg->data, "train", &info, e)) return e->code;
  if (!info.present || info.rows <= n)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: /train has %lld rows, not more than the --val-rows %lld of %s", cfg->data,
                   (long long)info.rows, n, ckpt_path);
  snprintf(in->split, sizeof in->split, "train");
  in->lo = info.rows - n;
  in->hi = info.rows;
  return KD_OK;
}

/* The split's rows for the model: present, as wide as it takes, every row
 * checked (a piece at a time) and the first one opened for the shapes. */
static int open_split(inference *in, const kd_eval_cfg *cfg, const char *ckpt_path, kd_err *e) {
  kd_split_info info;
  snprintf(in->split, sizeof in->split, "%s", cfg->split);
  if (kd_source_probe(cfg->data, cfg->split, &info, e)) return e->code;
  in->lo = 0;
  in->hi = info.rows;
  if (!info.present && strcmp(cfg->split, "valid") == 0) {
    if (held_out_rows(in, cfg, ckpt_path, e)) return e->code;
    if (kd_source_probe(cfg->data, "train", &info, e)) return e->code;
  }
  if (!info.present)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: dataset /%s/%s is missing", cfg->data, cfg->split,
                   in->m->input == KD_INPUT_TOKENS ? "tokens" : "x");
  char who[KD_PATH_MAX + 320];
  kd_infer_who(who, sizeof who, in->m, ckpt_path);
  if (kd_fit_split(in->m, who, cfg->data, in->split, &info, e)) return e->code;
  if (in->hi <= in->lo) return kd_fail(e, KD_ERR_RUNTIME, "%s: /%s has no rows", cfg->data, in->split);
  return kd_source_open(&in->src, cfg->data, in->split, in->lo, in->lo + 1, e);
}

/* The teacher's logits of the same rows (kd eval --teacher): dense, of the
 * student's classes, for these rows (read beside them, checked finite as
 * they are read). */
static int open_teacher(inference *in, const kd_eval_cfg *cfg, kd_err *e) {
  char ls[64];
  snprintf(ls, sizeof ls, "/%s/logits", in->split);
  int has, classes;
  const int64_t total = kd_source_total(in->src);
  if (kd_teacher_has(cfg->teacher, in->split, "logits", &has, e)) return e->code;
  int sparse = 0, sampled = 0;
  if (!has && (kd_teacher_has(cfg->teacher, in->split, "topk", &sparse, e) ||
               kd_teacher_has(cfg->teacher, in->split, "sampled", &sampled, e)))
    return e->code;
  if (!has && (sparse || sampled))
    return kd_fail(e, KD_ERR_RUNTIME,
                   "%s: /%s holds sparse teacher logits (/%s/%s), but the agreement and KL of kd eval --teacher need "
                   "dense ones (%s); evaluate without --teacher",
                   cfg->teacher, in->split, in->split, sparse ? "topk" : "sampled", ls);
  if (!has) return kd_fail(e, KD_ERR_RUNTIME, "%s: dataset %s is missing", cfg->teacher, ls);
  const int pos = kd_source_kind(in->src) == KD_INPUT_TOKENS ? kd_source_width(in->src) : 0;
  if (kd_teacher_probe(cfg->teacher, in->split, cfg->data, total, pos, &classes, e)) return e->code;
  if (classes != in->m->out_dim)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: /%s/logits has %d classes, the student %d", cfg->teacher, in->split,
                   classes, in->m->out_dim);
  in->teacher = 1;
  return KD_OK;
}

/* The reader of the rows [lo, hi) in order, in batches of the model's max_batch. */
static int open_rows(inference *in, const kd_eval_cfg *cfg, kd_err *e) {
  const kd_range_cfg r = {cfg->data, in->teacher ? cfg->teacher : NULL, in->split, in->lo, in->hi - in->lo,
                          in->m->out_dim, in->m->max_batch, &in->pre};
  return kd_rows_file_in_order(&in->rows, &r, e);
}

/* The checkpoint, the split's rows and (metrics) the teacher's logits. */
static int load_for_inference(inference *in, const kd_eval_cfg *cfg, int metrics, char *ckpt_path, size_t n,
                              kd_err *e) {
  kd_h5_quiet();
  memset(in, 0, sizeof *in);
  if (kd_ckpt_resolve(cfg->ckpt, 0, ckpt_path, n, NULL, 0, e)) return e->code;
  if (kd_model_load(&in->m, &in->params, ckpt_path, (int)cfg->batch, e)) return e->code;
  if (kd_ckpt_read_preprocess(ckpt_path, &in->pre, e) || open_split(in, cfg, ckpt_path, e)) return e->code;
  if (metrics && cfg->teacher[0] && open_teacher(in, cfg, e)) return e->code;
  char who[KD_PATH_MAX + 320];
  kd_infer_who(who, sizeof who, in->m, ckpt_path);
  if (kd_fit_file(in->m, who, cfg->data, in->split, in->lo, in->hi, 1, &in->targets, e) ||
      kd_fit_tokenizers(who, ckpt_path, cfg->data, e))
    return e->code;
  /* metrics need targets; kd predict writes the logits of every position whatever the mask */
  if (metrics && kd_source_kind(in->src) == KD_INPUT_TOKENS &&
      kd_fit_targets(in->targets, cfg->data, in->split, KD_INPUT_TOKENS, e))
    return e->code;
  return open_rows(in, cfg, e);
}

/* --temperature unset: the run's own (from its /config), else 4. */
static double eval_temperature(const kd_eval_cfg *cfg, const char *ckpt_path) {
  char v[64];
  if (!isnan(cfg->temperature)) return cfg->temperature;
  return kd_ckpt_config_get(ckpt_path, "temperature", v, sizeof v) && atof(v) > 0 ? atof(v) : 4.0;
}

/* A progress line over the rows of the split (kd eval, kd predict). */
static int begin_progress(kd_progress *p, const kd_eval_cfg *cfg, const inference *in, const char *cmd, kd_err *e) {
  /* --json: stdout holds the one JSON object and nothing else */
  const char *mode = cfg->progress[0] && !cfg->json ? cfg->progress : "off";
  if (kd_progress_init(p, mode, cfg->progress_every > 0 ? cfg->progress_every : 10, e)) return e->code;
  char what[96];
  snprintf(what, sizeof what, "%s /%s", cmd, in->split);
  const int tokens = kd_source_kind(in->src) == KD_INPUT_TOKENS;
  kd_progress_begin(p, what, "rows", in->hi - in->lo, tokens ? kd_source_width(in->src) : 0, MPI_Wtime());
  return KD_OK;
}

static kd_eval_pass pass_of(const inference *in, double T, kd_progress *prog) {
  if (!in->src) { /* nothing was opened: the pass does not run */
    const kd_eval_pass none = {KD_INPUT_FEATURES, 0, 0, NULL, T, NULL, NULL, NULL};
    return none;
  }
  const kd_eval_pass p = {kd_source_kind(in->src), kd_source_width(in->src), in->teacher,
                          kd_source_token_bytes(in->src), T, NULL, NULL, prog};
  return p;
}

int kd_eval_run(const kd_eval_cfg *cfg, kd_eval_result *r, char *ckpt_path, size_t n, kd_err *e) {
  inference in;
  kd_progress prog;
  kd_eval_sums s;
  int rc = load_for_inference(&in, cfg, 1, ckpt_path, n, e);
  if (!rc) rc = begin_progress(&prog, cfg, &in, "kd eval", e);
  if (!rc) {
    const kd_eval_pass p = pass_of(&in, eval_temperature(cfg, ckpt_path), &prog);
    rc = kd_eval_rows(&s, in.m, in.rows, &p, e);
  }
  if (!rc) kd_progress_end(&prog);
  if (!rc) kd_eval_finish(r, &s);
  inference_free(&in);
  return rc;
}

/* kd predict's output file: /SPLIT/logits written a batch at a time, under
 * the HDF5 lock (the reader thread reads the rows beside it). */
typedef struct predictions {
  kd_atomic a;
  hid_t f;
  char ds[64];
} predictions;

static int create_predictions(predictions *o, const kd_eval_cfg *cfg, const inference *in, kd_err *e) {
  snprintf(o->ds, sizeof o->ds, "/%s/logits", cfg->split);
  if (kd_atomic_begin(&o->a, cfg->out, e) || kd_h5_create(&o->f, o->a.tmp, e)) return e->code;
  const int64_t rows = in->hi - in->lo, C = in->m->out_dim;
  const int64_t P = in->m->input == KD_INPUT_TOKENS ? kd_source_width(in->src) : 1;
  const int64_t d2[2] = {rows, C}, d3[3] = {rows, P, C};
  hid_t ft = strcmp(cfg->dtype, "f16") == 0 ? kd_h5_f16_type() : H5Tcopy(H5T_IEEE_F32LE);
  const int rc = kd_h5_create_dataset(o->f, o->a.tmp, o->ds, P > 1 ? 3 : 2, P > 1 ? d3 : d2, ft, e);
  if (ft >= 0) H5Tclose(ft);
  return rc;
}

static int put_predictions(void *ctx, const float *z, int64_t r0, int rows, kd_err *e) {
  const predictions *o = ctx;
  kd_h5_lock();
  const int rc = kd_h5_write_rows(o->f, o->a.tmp, o->ds, r0, rows, z, e);
  kd_h5_unlock();
  return rc;
}

/* Provenance (with the fingerprint kd train checks a teacher file against), closed, committed or removed. */
static int finish_predictions(predictions *o, const kd_eval_cfg *cfg, const char *ckpt_path, int rc, kd_err *e) {
  kd_provenance p = kd_provenance_of("teacher");
  p.source_checkpoint = ckpt_path;
  p.source_data = cfg->data;
  kd_split_info train;
  if (!rc) rc = kd_source_probe(cfg->data, "train", &train, e);
  if (!rc && train.present) {
    p.has_fingerprint = 1;
    rc = kd_source_fingerprint_file(cfg->data, "train", 0, train.rows, &p.data_fingerprint, e);
  }
  if (!rc) rc = kd_provenance_write(o->f, o->a.tmp, &p, e);
  rc = kd_h5_close(o->f, o->a.tmp, rc, e);
  if (!rc) rc = kd_atomic_commit(&o->a, e);
  if (rc) kd_atomic_abort(&o->a);
  return rc;
}

int kd_predict_run(const kd_eval_cfg *cfg, int64_t *rows, char *ckpt_path, size_t n, kd_err *e) {
  inference in;
  kd_progress prog;
  predictions o;
  memset(&o, 0, sizeof o);
  o.f = H5I_INVALID_HID;
  int rc = load_for_inference(&in, cfg, 0, ckpt_path, n, e);
  if (!rc) rc = begin_progress(&prog, cfg, &in, "kd predict", e);
  if (!rc) rc = create_predictions(&o, cfg, &in, e);
  kd_eval_pass p = pass_of(&in, 1.0, &prog);
  p.sink = put_predictions;
  p.ctx = &o;
  if (!rc) rc = kd_eval_rows(NULL, in.m, in.rows, &p, e);
  kd_rows_stop(in.rows); /* no reader beside the file's last calls */
  if (!rc) kd_progress_end(&prog);
  if (o.f >= 0) rc = finish_predictions(&o, cfg, ckpt_path, rc, e);
  else if (o.a.tmp[0]) kd_atomic_abort(&o.a);
  if (!rc) *rows = in.hi - in.lo;
  inference_free(&in);
  return rc;
}
