/* kd_doctor_run: what a kd train run would read, measured (doctor.h). The
 * splits follow the trainer's rules: the transfer rows are /train less the
 * --val-rows held out, cut to --train-rows; the evaluation split is /valid,
 * else the held-out rows, else /test. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/weights.h"
#include "core/dist.h"
#include "core/h5io.h"
#include "core/rng.h"
#include "doctor/baseline.h"
#include "doctor/scan.h"
#include "kd/ckpt.h"
#include "kd/infer.h"
#include "kd/registry.h"


/* Parameters of a model spec (0 when it cannot be built), and its outputs (classes or vocabulary). */
static size_t model_params(kd_model_spec *ms, int *outputs) {
  kd_err q = {0};
  kd_model *m = NULL;
  ms->frozen = 1;
  if (kd_model_create(&m, ms, 1, &q)) return 0;
  const size_t n = m->n_params;
  if (outputs) *outputs = m->out_dim;
  kd_model_free(m);
  return n;
}

static size_t spec_params(const char *student, int *outputs) {
  kd_model_spec ms;
  memset(&ms, 0, sizeof ms);
  kd_err q = {0};
  return kd_model_spec_parse(&ms, student, &q) ? 0 : model_params(&ms, outputs);
}

/* The teacher's size from what a teacher file records (kd logits writes both): its source checkpoint when
 * that is still there, else its spec (source_student, which names no family: the families are tried). */
static size_t file_teacher_params(const char *path) {
  hid_t f;
  kd_err q = {0};
  char spec[256], ckpt[KD_PATH_MAX], text[300];
  if (kd_h5_open_ro(&f, path, &q)) return 0;
  const int no_spec = kd_h5_get_attr_str(f, path, "/", "source_student", spec, sizeof spec, &q);
  const int no_ckpt = kd_h5_get_attr_str(f, path, "/", "source_checkpoint", ckpt, sizeof ckpt, &q);
  kd_h5_close(f, path, KD_OK, &q);
  kd_model_spec ms;
  memset(&ms, 0, sizeof ms);
  if (!no_ckpt && kd_weights_spec(ckpt, &ms, &q) == KD_OK) {
    const size_t n = model_params(&ms, NULL);
    if (n) return n;
  }
  if (no_spec) return 0;
  static const char *const families[] = {"", "gpt:", "llama:"};
  for (size_t i = 0; i < sizeof families / sizeof *families; i++) {
    snprintf(text, sizeof text, "%s%s", families[i], spec);
    const size_t n = spec_params(text, NULL);
    if (n) return n;
  }
  return 0;
}

/* The transfer rows and the evaluation split, as kd train would choose them. */
static int choose_splits(const kd_doctor_cfg *c, dr_split *tr, dr_split *ev, kd_doctor_report *r, int *tokens,
                         kd_err *e) {
  const kd_train_cfg *t = &c->train;
  kd_split_info ti, vi, xi;
  if (kd_source_probe(t->data, "train", &ti, e) || kd_source_probe(t->data, "valid", &vi, e) ||
      kd_source_probe(t->data, "test", &xi, e))
    return e->code;
  if (!ti.present) return kd_fail(e, KD_ERR_RUNTIME, "%s: no /train split", t->data);
  *tokens = ti.kind == KD_INPUT_TOKENS;
  memset(tr, 0, sizeof *tr);
  memset(ev, 0, sizeof *ev);
  tr->name = "train", tr->total = ti.rows, tr->hi = ti.rows;
  tr->labelled_fraction = t->labelled_fraction;
  tr->label_key = kd_key((uint64_t)t->seed, KD_RNG_LABELS, 0, 0);
  ev->labelled_fraction = 1;
  if (vi.present) {
    ev->name = "valid", ev->total = ev->hi = vi.rows;
  } else if (t->val_rows > 0) {
    if (t->val_rows >= ti.rows)
      return kd_fail(e, KD_ERR_USAGE, "--val-rows %lld: /train of %s has only %lld rows", (long long)t->val_rows,
                     t->data, (long long)ti.rows);
    tr->hi = ti.rows - t->val_rows;
    ev->name = "train", ev->total = ti.rows, ev->lo = tr->hi, ev->hi = ti.rows;
  } else if (xi.present) {
    ev->name = "test", ev->total = ev->hi = xi.rows;
  }
  if (t->train_rows > 0) {
    if (t->train_rows > tr->hi)
      return kd_fail(e, KD_ERR_USAGE, "--train-rows %lld: /train of %s has only %lld rows for training",
                     (long long)t->train_rows, t->data, (long long)tr->hi);
    tr->hi = t->train_rows;
  }
  if (!ev->name)
    snprintf(r->eval_name, sizeof r->eval_name, "none");
  else if (ev->lo > 0)
    snprintf(r->eval_name, sizeof r->eval_name, "train[%lld:]", (long long)ev->lo);
  else
    snprintf(r->eval_name, sizeof r->eval_name, "%s", ev->name);
  return KD_OK;
}

/* Where the teacher's outputs come from: a checkpoint, or the file's dense or sparse logits. */
static int open_teacher(const kd_doctor_cfg *c, dr_teacher *tch, int tokens, int64_t rows, int width,
                        kd_doctor_report *r, kd_err *e) {
  const kd_train_cfg *t = &c->train;
  memset(tch, 0, sizeof *tch);
  tch->data = t->data;
  tch->file = t->teacher;
  if (t->teacher_model[0]) {
    char path[KD_PATH_MAX];
    if (kd_ckpt_resolve(t->teacher_model, 0, path, sizeof path, NULL, 0, e) ||
        kd_model_load(&tch->model, &tch->params, path, DR_CHUNK, e) || kd_ckpt_read_preprocess(path, &tch->pre, e))
      return e->code;
    tch->mode = DR_MODEL;
    tch->classes = tch->model->out_dim;
    r->teacher_params = tch->model->n_params;
    snprintf(r->teacher_kind, sizeof r->teacher_kind, "checkpoint");
    return KD_OK;
  }
  if (!t->teacher[0]) return kd_fail(e, KD_ERR_USAGE, "kd doctor needs --teacher FILE or --teacher-model CKPT");
  kd_sparse_info si;
  kd_sparse_mode mode;
  const int pos = tokens ? width : 0;
  if (kd_sparse_probe(t->teacher, "train", rows, pos, &si, e) ||
      kd_sparse_resolve(t->sparse_kd, &si, t->teacher, t->temperature, &mode, e))
    return e->code;
  r->teacher_params = c->teacher_params > 0 ? (size_t)c->teacher_params : file_teacher_params(t->teacher);
  if (mode == KD_SPARSE_DENSE) {
    tch->mode = DR_DENSE;
    snprintf(r->teacher_kind, sizeof r->teacher_kind, "dense file");
    return kd_teacher_probe(t->teacher, "train", t->data, rows, pos, &tch->classes, e);
  }
  tch->sparse_mode = mode;
  tch->mode = mode == KD_SPARSE_SAMPLED ? DR_SAMPLED : DR_TOPK;
  /* the ids' range: the student's outputs, else a token file's vocabulary */
  tch->classes = r->classes;
  if (!tch->classes)
    return kd_fail(e, KD_ERR_USAGE, "kd doctor: a sparse teacher file (%s) needs --student SPEC (its outputs give the "
                   "range of the ids)", t->teacher);
  snprintf(r->teacher_kind, sizeof r->teacher_kind, "%s", mode == KD_SPARSE_SAMPLED ? "sampled file"
                                                           : mode == KD_SPARSE_TAIL ? "top-k + tail file"
                                                                                     : "top-k file");
  r->sparse_k = mode == KD_SPARSE_SAMPLED ? si.sampled_s : si.topk_k;
  r->sparse_has_lse = tch->has_lse = si.has_lse;
  r->sample_temperature = si.sample_temperature;
  return KD_OK;
}

/* Does the teacher give logits for the evaluation split? */
static int eval_has_teacher(const dr_teacher *tch, const dr_split *ev, int pos, int *has, kd_err *e) {
  *has = 1;
  if (tch->mode == DR_MODEL) return KD_OK;
  if (tch->mode == DR_DENSE) return kd_teacher_has(tch->file, ev->name, "logits", has, e);
  kd_sparse_info si;
  if (kd_sparse_probe(tch->file, ev->name, ev->total, pos, &si, e)) return e->code;
  *has = si.topk_k > 0;
  return KD_OK;
}

static void report_init(kd_doctor_report *r) {
  memset(r, 0, sizeof *r);
  r->base_metric = r->teacher_metric = r->margin = r->margin_se = r->base_train_metric = NAN;
  r->sample_temperature = NAN;
}

/* kd doctor reads one data file and one teacher file: a set of shard files (kd train's --data 'a*.h5' or a,b)
 * is refused with a line rather than read as a file name. */
static int one_file(const char *opt, const char *path, kd_err *e) {
  if (!path[0] || !strpbrk(path, ",*?[")) return KD_OK;
  return kd_fail(e, KD_ERR_USAGE, "kd doctor: %s %s: a set of shard files; name one shard (its rows are a sample of "
                 "the set)", opt, path);
}

/* The teacher's outputs must be the student's: as many classes (or the same vocabulary). */
static int same_outputs(const kd_doctor_cfg *c, int student_out, const dr_teacher *tch, kd_err *e) {
  if (!student_out || student_out == tch->classes) return KD_OK;
  return kd_fail(e, KD_ERR_USAGE, "kd doctor: the teacher (%s) has %d outputs per %s but --student %s has %d",
                 tch->mode == DR_MODEL ? c->train.teacher_model : c->train.teacher, tch->classes,
                 tch->mode == DR_MODEL ? "position or row" : "row or position", c->train.student, student_out);
}

int kd_doctor_run(const kd_doctor_cfg *c, MPI_Comm comm, kd_doctor_report *r, kd_err *e) {
  report_init(r);
  dr_split tr, ev;
  dr_teacher tch;
  memset(&tch, 0, sizeof tch);
  kd_split_info ti;
  int tokens = 0, student_out = 0;
  int rc = one_file("--data", c->train.data, e);
  if (!rc) rc = one_file("--teacher", c->train.teacher, e);
  if (!rc) rc = choose_splits(c, &tr, &ev, r, &tokens, e);
  if (!rc) rc = kd_source_probe(c->train.data, "train", &ti, e);
  if (!rc && c->train.student[0]) {
    r->student_params = spec_params(c->train.student, &student_out);
    if (!r->student_params)
      rc = kd_fail(e, KD_ERR_USAGE, "kd doctor: --student %s: not a student kd can build", c->train.student);
  }
  r->classes = student_out;
  if (!rc) rc = open_teacher(c, &tch, tokens, ti.rows, ti.width, r, e);
  if (!rc) rc = same_outputs(c, student_out, &tch, e);
  if ((rc = kd_agree(comm, rc, e))) goto done;
  r->tokens = tokens;
  r->classes = tch.classes;
  r->transfer_rows = tr.hi - tr.lo;
  r->eval_rows = ev.hi - ev.lo;
  r->labelled_fraction = c->train.labelled_fraction;
  int has = 0; /* the teacher's logits of the evaluation split are known */
  if (ev.name && (rc = kd_agree(comm, eval_has_teacher(&tch, &ev, tokens ? ti.width : 0, &has, e), e))) goto done;
  if (tch.mode != DR_SAMPLED) {
    if ((rc = dr_scan(&tch, &tr, c->rows, comm, &r->transfer, e))) goto done;
    if (has && (rc = dr_scan(&tch, &ev, c->rows, comm, &r->eval, e))) goto done;
  }
  const int paired = has && (tch.mode == DR_DENSE || tch.mode == DR_MODEL);
  if (c->baseline_steps > 0 && c->train.student[0] && ev.name)
    if ((rc = dr_baseline(c, &tch, paired, &tr, &ev, comm, r, e))) goto done;
  kd_doctor_judge(r);
done:
  if (tch.model) kd_model_free(tch.model);
  free(tch.params);
  kd_preprocess_free(&tch.pre);
  return rc;
}
