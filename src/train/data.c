/* The rows a run trains and evaluates on: this rank's shard of /train with
 * its teacher targets, rank 0's evaluation splits, and their fingerprints. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dist.h"
#include "core/h5io.h"
#include "core/rng.h"
#include "models/fit.h"
#include "train/trainer.h"

/* The student as messages name it: "--student SPEC". */
static void student_who(const trainer *t, char *buf, size_t n) { snprintf(buf, n, "--student %s", t->cfg.student); }

static int check_fit(const trainer *t, const char *split, kd_input kind, int width, kd_err *e) {
  char who[300];
  student_who(t, who, sizeof who);
  const kd_split_info info = {1, kind, 0, width};
  return kd_fit_split(t->net.model, who, t->cfg.data, split, &info, e);
}

/* The rows a rank holds against the student (kd_fit_rows). */
static int check_rows(const trainer *t, const kd_source *src, int allow_unlabelled, kd_err *e) {
  char who[300];
  student_who(t, who, sizeof who);
  return kd_fit_rows(t->net.model, who, src, allow_unlabelled, e);
}

/* The teacher's logits have the student's classes (or vocabulary). */
static int check_classes(const trainer *t, const char *split, int classes, kd_err *e) {
  const kd_model *m = t->net.model;
  if (classes == m->out_dim) return KD_OK;
  if (m->input == KD_INPUT_TOKENS)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: /%s/logits are over a vocabulary of %d but --student %s has vocab=%d",
                   t->cfg.teacher, split, classes, t->cfg.student, m->out_dim);
  return kd_fail(e, KD_ERR_RUNTIME, "%s: /%s/logits has %d classes but --student %s outputs %d", t->cfg.teacher, split,
                 classes, t->cfg.student, m->out_dim);
}

/* A whole split (or rows [lo, hi) of it) on this rank, with its teacher
 * logits when the teacher file has them for that split. */
static int load_eval_split(trainer *t, kd_source **src, kd_teacher **tstore, const char *split, int64_t lo,
                           int64_t hi, kd_err *e) {
  const kd_train_cfg *c = &t->cfg;
  int has = 0, classes = 0;
  const char *data = t->data.data1, *teacher = t->data.teacher1; /* a set's evaluation splits: its first shard's */
  if (c->teacher[0] && kd_teacher_has(teacher, split, "logits", &has, e)) return e->code;
  if (kd_source_open(src, data, split, lo, hi, e)) return e->code;
  const int64_t total = kd_source_total(*src);
  const int pos = kd_source_kind(*src) == KD_INPUT_TOKENS ? kd_source_width(*src) : 0;
  if (has && kd_teacher_probe(teacher, split, data, total, pos, &classes, e)) return e->code;
  if (check_fit(t, split, kd_source_kind(*src), kd_source_width(*src), e)) return e->code;
  if (has) {
    if (check_classes(t, split, classes, e)) return e->code;
    if (kd_teacher_open(tstore, teacher, split, lo, hi, total, KD_TEACH_LOGITS, e)) return e->code;
  }
  if (check_rows(t, *src, 1, e)) return e->code;
  if (kd_source_kind(*src) == KD_INPUT_TOKENS &&
      kd_fit_targets(kd_source_targets(*src), data, kd_source_split(*src), KD_INPUT_TOKENS, e))
    return e->code;
  return *tstore ? kd_teacher_validate(*tstore, e) : KD_OK;
}

/* Validation split: /valid, else the last --val-rows of /train, else /test. */
static int choose_valid(trainer *t, const kd_split_info *tr, const kd_split_info *vi, const kd_split_info *ti,
                        kd_err *e) {
  const kd_train_cfg *c = &t->cfg;
  t->data.n_train = tr->rows;
  if (vi->present) {
    snprintf(t->data.valid_name, sizeof t->data.valid_name, "valid");
    if (c->val_rows > 0 && tr_root(t))
      printf("kd: note: %s has /valid, so --val-rows %lld is not used\n", c->data, (long long)c->val_rows);
  } else if (c->val_rows > 0) {
    if (c->val_rows >= tr->rows)
      return kd_fail(e, KD_ERR_RUNTIME, "--val-rows %lld: /train of %s has only %lld rows", (long long)c->val_rows,
                     c->data, (long long)tr->rows);
    t->data.n_train = tr->rows - c->val_rows;
    snprintf(t->data.valid_name, sizeof t->data.valid_name, "train[%lld:]", (long long)t->data.n_train);
  } else if (ti->present) {
    snprintf(t->data.valid_name, sizeof t->data.valid_name, "test");
  }
  t->data.n_file_rows = tr->rows;
  if (c->train_rows > 0) {
    if (c->train_rows > t->data.n_train)
      return kd_fail(e, KD_ERR_RUNTIME, "--train-rows %lld: /train of %s has only %lld rows for training",
                     (long long)c->train_rows, c->data, (long long)t->data.n_train);
    t->data.n_train = c->train_rows;
  }
  if (t->data.n_train < t->mpi.size)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: /train has %lld training rows, fewer than the %d ranks", c->data,
                   (long long)t->data.n_train, t->mpi.size);
  return KD_OK;
}

/* This rank's shard of the training rows and its teacher targets (streamed:
 * one pass over them, and stores of one row for their shapes). */
static int load_train(trainer *t, kd_err *e) {
  const kd_train_cfg *c = &t->cfg;
  const int C = t->net.model->out_dim;
  int64_t lo, hi;
  kd_shard_range(t->data.n_train, t->mpi.size, t->mpi.rank, &lo, &hi);
  if (t->data.streamed) return tr_open_stream(t, lo, hi, e); /* a snapshot teaches each batch (selfdistill.c) */
  if (kd_source_open(&t->data.train, c->data, "train", lo, hi, e)) return e->code;
  const int64_t total = kd_source_total(t->data.train);
  const int sparse = t->data.sparse_mode != KD_SPARSE_DENSE;
  if (c->teacher[0] && !sparse &&
      kd_teacher_open(&t->data.teacher, c->teacher, "train", lo, hi, total, KD_TEACH_LOGITS, e))
    return e->code;
  if (sparse && kd_sparse_open(&t->data.sparse, c->teacher, "train", lo, hi, total, t->data.sparse_mode, C, e))
    return e->code;
  if (check_rows(t, t->data.train, t->data.has_teacher, e)) return e->code;
  if (t->data.teacher && kd_teacher_validate(t->data.teacher, e)) return e->code;
  if (c->hint_layer > 0 && sparse) /* the FitNets features beside sparse logits */
    return kd_teacher_open(&t->data.teacher, c->teacher, "train", lo, hi, total, KD_TEACH_FEATURES, e);
  if (c->hint_layer > 0 && kd_teacher_load_features(t->data.teacher, e)) return e->code;
  if (c->self_distill) /* filled by each snapshot */
    return kd_teacher_new(&t->data.teacher, "train", lo, hi - lo,
                          kd_source_kind(t->data.train) == KD_INPUT_TOKENS ? kd_source_width(t->data.train) : 1, C, e);
  return KD_OK;
}

/* Evaluation data lives on rank 0, which evaluates. */
static int load_eval(trainer *t, const kd_split_info *vi, const kd_split_info *ti, const kd_split_info *tr,
                     kd_err *e) {
  tr_data *d = &t->data;
  if (!tr_root(t)) return KD_OK;
  if (vi->present) {
    if (load_eval_split(t, &d->valid, &d->valid_t, "valid", 0, vi->rows, e)) return e->code;
    d->has_valid = 1;
  } else if (t->cfg.val_rows > 0) {
    if (load_eval_split(t, &d->valid, &d->valid_t, "train", d->n_file_rows - t->cfg.val_rows, tr->rows, e))
      return e->code;
    d->has_valid = 1;
  }
  if (ti->present) {
    if (load_eval_split(t, &d->test, &d->test_t, "test", 0, ti->rows, e)) return e->code;
    d->has_test = 1;
    if (!d->has_valid)
      printf("kd: note: no /valid split and no --val-rows: evaluating on /test, so the best checkpoint is "
             "chosen on the test set\n");
  }
  return KD_OK;
}

/* /train against the student; the evaluation splits (a set's: its first shard's). */
static int probe_rest(trainer *t, int classes, kd_err *e) {
  tr_data *d = &t->data;
  const int dense = t->cfg.teacher[0] && d->sparse_mode == KD_SPARSE_DENSE;
  if (d->sparse_mode != KD_SPARSE_DENSE && t->set.loss.div.kind != KD_DIV_FORWARD)
    return kd_fail(e, KD_ERR_USAGE,
                   "kd train: --divergence %s needs the teacher's probability of every id the student puts mass on, "
                   "and %s holds sparse teacher logits: use dense /train/logits (kd logits without --topk or "
                   "--sample) or an online teacher (--teacher-model)", t->cfg.divergence, t->cfg.teacher);
  if (check_fit(t, "train", d->info_train.kind, d->info_train.width, e)) return e->code;
  if (dense && check_classes(t, "train", classes, e)) return e->code;
  if (kd_source_probe(d->data1, "valid", &d->info_valid, e) || kd_source_probe(d->data1, "test", &d->info_test, e))
    return e->code;
  return choose_valid(t, &d->info_train, &d->info_valid, &d->info_test, e);
}

/* The splits' shapes and what the teacher file holds, checked against the
 * student, before any row is read. */
int tr_probe_data(trainer *t, kd_err *e) {
  const kd_train_cfg *c = &t->cfg;
  tr_data *d = &t->data;
  kd_split_info *tr = &d->info_train;
  int classes = 0;
  if (tr_open_sets(t, e)) return e->code;
  if (d->is_set) {
    if (tr_probe_set(t, &classes, e)) return e->code;
    return probe_rest(t, classes, e);
  }
  if (kd_source_probe(c->data, "train", tr, e)) return e->code;
  const int pos = tr->kind == KD_INPUT_TOKENS ? tr->width : 0;
  if (!tr->present)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: dataset /train/%s is missing", c->data,
                   t->net.model->input == KD_INPUT_TOKENS ? "tokens" : "x");
  d->sparse_mode = KD_SPARSE_DENSE;
  if (c->teacher[0]) { /* dense /train/logits, or sparse ones (--sparse-kd) */
    if (kd_sparse_probe(c->teacher, "train", tr->rows, pos, &d->sparse_info, e) ||
        kd_sparse_resolve(c->sparse_kd, &d->sparse_info, c->teacher, c->temperature, &d->sparse_mode, e))
      return e->code;
  }
  const int dense = c->teacher[0] && d->sparse_mode == KD_SPARSE_DENSE;
  if (dense && kd_teacher_probe(c->teacher, "train", c->data, tr->rows, pos, &classes, e)) return e->code;
  d->dfiles.row0[1] = tr->rows;
  if (c->teacher[0]) d->tfiles.row0[1] = tr->rows;
  return probe_rest(t, classes, e);
}

int tr_load_data(trainer *t, kd_err *e) {
  tr_data *d = &t->data;
  if (load_train(t, e)) return e->code;
  if (tr_root(t) && kd_tokenizer_read(&d->tok, d->data1, &d->have_tok, e)) return e->code;
  return load_eval(t, &d->info_valid, &d->info_test, &d->info_train, e);
}

int tr_check_targets(trainer *t, kd_err *e) {
  if (kd_source_kind(t->data.train) != KD_INPUT_TOKENS) return KD_OK; /* feature rows: labels or a teacher, checked */
  int64_t n = t->data.streamed ? t->data.scan.targets : kd_source_targets(t->data.train);
  if (kd_mpi_check(MPI_Allreduce(MPI_IN_PLACE, &n, 1, MPI_INT64_T, MPI_SUM, t->mpi.comm), "MPI_Allreduce", e))
    return kd_fatal(e, t->mpi.rank, "target count");
  return kd_fit_targets(n, t->cfg.data, "train", KD_INPUT_TOKENS, e); /* the same total on every rank */
}

/* Fingerprints: of the data file's whole /train split (x, y), which teacher
 * files written by kd logits carry too, and of the teacher logits of the
 * rows this run trains on (checked at resume). Each rank hashes its own
 * share; an allreduce sums the parts. */
static int local_fingerprints(trainer *t, uint64_t fp[2], kd_err *e) {
  const tr_data *d = &t->data;
  fp[0] = d->streamed ? d->scan.data_fp : kd_source_fingerprint(d->train);
  fp[1] = !t->cfg.teacher[0] ? 0
          : d->streamed      ? d->scan.teacher_fp
                             : kd_teacher_fingerprint(d->teacher) + kd_sparse_fingerprint(d->sparse);
  if (tr_root(t) && t->data.has_valid && strcmp(kd_source_split(t->data.valid), "train") == 0) {
    fp[0] += kd_source_fingerprint(t->data.valid);
    fp[1] += kd_teacher_fingerprint(t->data.valid_t);
  }
  /* The rows in memory are the whole of /train, as stored, unless the run
   * trains on a prefix: only then read it again, in bounded chunks of this
   * rank's share. */
  if (t->cfg.train_rows > 0) {
    int64_t lo, hi;
    kd_shard_range(t->data.n_file_rows, t->mpi.size, t->mpi.rank, &lo, &hi);
    return kd_source_fingerprint_file(t->cfg.data, "train", lo, hi, &fp[0], e);
  }
  return KD_OK;
}

/* A teacher file written by kd logits names the data it was made from. */
static int check_provenance(trainer *t, kd_err *e) {
  hid_t f;
  if (kd_h5_open_ro(&f, t->cfg.teacher, e)) return e->code;
  char hex[64] = "";
  int rc = KD_OK, has = H5Aexists(f, "data_fingerprint") > 0;
  if (has) rc = kd_h5_get_attr_str(f, t->cfg.teacher, "/", "data_fingerprint", hex, sizeof hex, e);
  H5Fclose(f);
  if (!rc && has && strtoull(hex, NULL, 16) != t->st.data_fp)
    rc = kd_fail(e, KD_ERR_RUNTIME,
                 "%s: the teacher logits were computed from other data (its data_fingerprint %s, /train of %s has "
                 "%016llx)",
                 t->cfg.teacher, hex, t->cfg.data, (unsigned long long)t->st.data_fp);
  if (!rc && !has && tr_root(t))
    printf("kd: note: %s carries no data fingerprint (written by another tool): only its row counts were checked\n",
           t->cfg.teacher);
  return rc;
}

/* A set: each shard's fingerprints summed over the ranks, then the set's from its shards'. */
static int set_fingerprints(trainer *t, kd_err *e) {
  const int n = t->data.dfiles.n;
  uint64_t *fp = t->data.scan.file_fp;
  if (kd_mpi_check(MPI_Allreduce(MPI_IN_PLACE, fp, 2 * n, MPI_UINT64_T, MPI_SUM, t->mpi.comm), "MPI_Allreduce", e))
    return kd_fatal(e, t->mpi.rank, "shard fingerprints");
  uint64_t *parts = kd_malloc(sizeof(uint64_t) * 2 * (size_t)n, "shard fingerprints", e);
  int rc = parts ? KD_OK : e->code;
  for (int i = 0; parts && i < n; i++) parts[i] = fp[2 * i], parts[n + i] = fp[2 * i + 1];
  if (!rc) {
    t->st.data_fp = tr_set_fingerprint(parts, n);
    t->st.teacher_fp = t->cfg.teacher[0] ? tr_set_fingerprint(parts + n, n) : t->online.checksum;
    if (t->cfg.teacher[0]) rc = tr_check_set_provenance(t, parts, e);
  }
  free(parts);
  return kd_agree(t->mpi.comm, rc, e);
}

int tr_fingerprint(trainer *t, kd_err *e) {
  if (t->data.is_set) return set_fingerprints(t, e);
  uint64_t fp[2] = {0, 0};
  int rc = local_fingerprints(t, fp, e);
  if ((rc = kd_agree(t->mpi.comm, rc, e))) return rc;
  if (kd_mpi_check(MPI_Allreduce(MPI_IN_PLACE, fp, 2, MPI_UINT64_T, MPI_SUM, t->mpi.comm), "MPI_Allreduce", e))
    return e->code;
  /* another tokenizer: the teacher rows are data too (a resume on a file imported again is refused) */
  t->st.data_fp = t->xtok.kind ? kd_mix64(fp[0] ^ t->xtok.fingerprint) : fp[0];
  t->st.teacher_fp = t->cfg.teacher[0] ? fp[1] : t->online.checksum; /* online: its checkpoint's checksum */
  if (!t->cfg.teacher[0]) return KD_OK;
  return kd_agree(t->mpi.comm, check_provenance(t, e), e);
}

/* Statistics of the training rows over all ranks: per-feature sums (for
 * --normalize) and the largest |x| (for the scale warning). */
static int fit(trainer *t, kd_err *e) {
  const int D = kd_source_width(t->data.train);
  double *st = kd_calloc((size_t)4 * D + 2, sizeof(double), "input statistics", e);
  if (!st) return e->code;
  double *sum = st, *sumsq = st + D, *lo = st + 2 * D, *hi = st + 3 * D, *tail = st + 4 * D;
  for (int j = 0; j < D; j++) {
    lo[j] = INFINITY;
    hi[j] = -INFINITY;
  }
  if (t->data.streamed) { /* measured by the streamed pass */
    memcpy(st, t->data.scan.stats, sizeof(double) * 4 * (size_t)D);
    tail[1] = t->data.scan.absmax;
  } else {
    kd_source_stats(t->data.train, sum, sumsq, lo, hi, &tail[1]);
  }
  tail[0] = (double)(t->data.streamed ? t->data.scan.rows : kd_source_rows(t->data.train));
  for (int j = 0; j < D; j++) lo[j] = -lo[j]; /* one MAX reduction for both extremes */
  const MPI_Comm comm = t->mpi.comm;
  int rc = KD_OK;
  if (kd_mpi_check(MPI_Allreduce(MPI_IN_PLACE, sum, 2 * D, MPI_DOUBLE, MPI_SUM, comm), "MPI_Allreduce", e) ||
      kd_mpi_check(MPI_Allreduce(MPI_IN_PLACE, lo, 2 * D, MPI_DOUBLE, MPI_MAX, comm), "MPI_Allreduce", e) ||
      kd_mpi_check(MPI_Allreduce(MPI_IN_PLACE, &tail[0], 1, MPI_DOUBLE, MPI_SUM, comm), "MPI_Allreduce", e) ||
      kd_mpi_check(MPI_Allreduce(MPI_IN_PLACE, &tail[1], 1, MPI_DOUBLE, MPI_MAX, comm), "MPI_Allreduce", e))
    rc = e->code;
  for (int j = 0; j < D; j++) lo[j] = -lo[j];
  const kd_norm kind = t->set.data.normalize;
  if (!rc) rc = kd_preprocess_build(&t->data.pre, kind, D, tail[0], sum, sumsq, lo, hi, e);
  if (!rc && tr_root(t) && kind == KD_NORM_NONE && tail[1] > 100)
    printf("kd: warning: /train/x of %s is far from unit scale (max |x| = %g over the training rows); training may "
           "diverge or stall: consider --normalize standard (or minmax), or scale the inputs\n",
           t->cfg.data, tail[1]);
  free(st);
  return rc;
}

/* The normalisation of a resumed run is the checkpoint's: rank 0 reads it, all receive it. */
static int restore(trainer *t, kd_err *e) {
  kd_preprocess *p = &t->data.pre;
  int rc = tr_root(t) ? kd_ckpt_read_preprocess(t->resume.path, p, e) : KD_OK;
  if ((rc = kd_agree(t->mpi.comm, rc, e))) return rc;
  int hdr[2] = {(int)p->kind, p->dim};
  if (kd_mpi_check(MPI_Bcast(hdr, 2, MPI_INT, 0, t->mpi.comm), "MPI_Bcast", e)) return e->code;
  if (!tr_root(t) && hdr[0] != KD_NORM_NONE) {
    p->kind = (kd_norm)hdr[0];
    p->dim = hdr[1];
    p->offset = kd_malloc(sizeof(float) * (size_t)p->dim, "normalisation offsets", e);
    p->scale = kd_malloc(sizeof(float) * (size_t)p->dim, "normalisation scales", e);
  }
  if ((rc = kd_agree(t->mpi.comm, e->code, e)) || hdr[0] == KD_NORM_NONE) return rc;
  if ((rc = tr_bcast_floats(p->offset, (size_t)p->dim, 0, t->mpi.comm, e))) return rc;
  return tr_bcast_floats(p->scale, (size_t)p->dim, 0, t->mpi.comm, e);
}

int tr_preprocess(trainer *t, kd_err *e) {
  int rc = t->cfg.resume[0] ? restore(t, e) : fit(t, e);
  if (rc) return rc;
  tr_data *d = &t->data;
  rc = kd_source_set_preprocess(d->train, &d->pre, e);
  if (!rc && d->valid) rc = kd_source_set_preprocess(d->valid, &d->pre, e);
  if (!rc && d->test) rc = kd_source_set_preprocess(d->test, &d->pre, e);
  return kd_agree(t->mpi.comm, rc, e);
}
