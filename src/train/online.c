/* The online teacher (--teacher-model): a kd checkpoint of any family and
 * size, loaded frozen on every rank, run forward (inference mode) on each
 * training batch. Its logits fill the batch's teacher logits, as a teacher
 * file's would, and its intermediate tensors the kd_inter the attention and
 * hidden-state terms read. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/weights.h"
#include "core/dist.h"
#include "core/h5io.h"
#include "kd/registry.h"
#include "models/fit.h"
#include "train/trainer.h"

/* A checksum of the teacher: its spec and every parameter's bits. */
static uint64_t params_checksum(const kd_model *m) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (const char *p = m->spec; *p; p++) h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
  const uint32_t *w = (const uint32_t *)(const void *)m->params;
  for (size_t i = 0; i < m->n_params; i++) h = (h ^ w[i]) * 0x100000001b3ull;
  return h ? h : 1;
}

/* The data file holds the text in a teacher's tokens too (kd import text --teacher-tokenizer). */
static int has_teacher_rows(const trainer *t) {
  hid_t f;
  kd_err quiet = {0};
  if (kd_h5_open_ro(&f, t->data.data1, &quiet)) return 0;
  const int has = kd_h5_exists(f, "/teacher_tokenizer");
  H5Fclose(f);
  return has;
}

/* Rank 0: the checkpoint, verified, and the student it describes. */
static int resolve(trainer *t, kd_model_spec *ms, kd_err *e) {
  tr_online *o = &t->online;
  if (kd_ckpt_resolve(t->cfg.teacher_model, 0, o->path, sizeof o->path, NULL, 0, e) || kd_ckpt_verify(o->path, e) ||
      kd_weights_spec(o->path, ms, e)) {
    char why[sizeof e->msg];
    snprintf(why, sizeof why, "%s", e->msg);
    kd_err_clear(e);
    return kd_fail(e, KD_ERR_RUNTIME, "--teacher-model %s: %s", t->cfg.teacher_model, why);
  }
  char who[KD_PATH_MAX + 32];
  snprintf(who, sizeof who, "--teacher-model %s", o->path);
  if (kd_fit_tokenizer_at(who, o->path, t->data.data1, t->xtok.kind ? "/teacher_tokenizer" : "/tokenizer", e)) {
    kd_err q = {0};
    if (!t->xtok.kind && has_teacher_rows(t) &&
        !kd_fit_tokenizer_at(who, o->path, t->data.data1, "/teacher_tokenizer", &q)) {
      kd_err_clear(e);
      return kd_fail(e, KD_ERR_USAGE, "%s reads the tokens of %s's /teacher_tokenizer, not the student's /tokenizer: "
                     "add --cross-tokenizer uld|exact|hybrid (docs/usage.md, \"Different tokenizers\")", who,
                     t->cfg.data);
    }
    return e->code;
  }
  return kd_ckpt_read_preprocess(o->path, &o->pre, e); /* checked against the run's once it is known */
}

/* The teacher reads the student's rows as the student's normalisation
 * makes them: they must be the rows it was trained on (kd logits applies
 * the teacher's own /preprocess), so the two normalisations must agree. */
static int check_preprocess(const trainer *t, kd_err *e) {
  const kd_preprocess *a = &t->online.pre, *b = &t->data.pre;
  int same = a->kind == b->kind;
  if (same && a->kind != KD_NORM_NONE) {
    same = a->dim == b->dim;
    for (int j = 0; same && j < a->dim; j++)
      same = fabsf(a->offset[j] - b->offset[j]) <= 1e-5f * (1.0f + fabsf(a->offset[j])) &&
             fabsf(a->scale[j] - b->scale[j]) <= 1e-5f * (1.0f + fabsf(a->scale[j]));
  }
  if (same) return KD_OK;
  return kd_fail(e, KD_ERR_USAGE,
                 "--teacher-model %s reads inputs normalised as its /preprocess says (%s), the student's rows are "
                 "normalised %s%s: the teacher would see rows it was not trained on; train the student with the "
                 "teacher's --normalize on the same training rows (or use kd logits, which applies the teacher's own)",
                 t->online.path, kd_norm_name(a->kind), kd_norm_name(b->kind),
                 a->kind == b->kind ? " with other statistics" : "");
}

int tr_online_check_inputs(trainer *t, kd_err *e) {
  if (!t->online.model) return KD_OK;
  return kd_agree(t->mpi.comm, tr_root(t) ? check_preprocess(t, e) : KD_OK, e);
}

/* The teacher reads what the student reads and predicts what it predicts. */
static int check_fit(const trainer *t, const kd_model *tm, kd_err *e) {
  const kd_model *s = t->net.model;
  const char *p = t->online.path;
  char who[KD_PATH_MAX + 320];
  snprintf(who, sizeof who, "--teacher-model %s (%s:%s)", p, tm->family, tm->spec);
  if (tm->input != s->input)
    return kd_fail(e, KD_ERR_USAGE, "%s reads %s rows, the student %s", who,
                   tm->input == KD_INPUT_TOKENS ? "token" : "feature",
                   s->input == KD_INPUT_TOKENS ? "token rows" : "feature rows");
  if (t->xtok.kind) { /* another tokenizer: the teacher reads the file's teacher rows, any vocabulary */
    if (tm->input != KD_INPUT_TOKENS || t->xtok.Tt > tm->ctx)
      return kd_fail(e, KD_ERR_USAGE, "%s: %s: /train/teacher_tokens rows have %d positions, the teacher %s", who,
                     t->cfg.data, t->xtok.Tt, tm->input != KD_INPUT_TOKENS ? "reads no tokens" : "a shorter context");
    return KD_OK;
  }
  const int64_t crop = t->cfg.teacher_vocab_crop;
  if (crop > 0 && (crop != s->out_dim || crop > tm->out_dim))
    return kd_fail(e, KD_ERR_USAGE, "%s: --teacher-vocab-crop %lld: %s", who, (long long)crop,
                   crop > tm->out_dim ? "more logits than the teacher has" : "it must be the student's vocabulary");
  if (crop == 0 && tm->out_dim != s->out_dim && s->input == KD_INPUT_TOKENS) {
    const char *padded = tm->out_dim > s->out_dim ? "the student's vocabulary padded with unused ids: "
                                                    "--teacher-vocab-crop N; " : "";
    if (has_teacher_rows(t))
      return kd_fail(e, KD_ERR_USAGE, "%s has %d tokens in its vocabulary, the student %d, and %s holds the teacher's "
                     "rows of the text (/teacher_tokenizer): add --cross-tokenizer uld|exact|hybrid (docs/usage.md, "
                     "\"Different tokenizers\")", who, tm->out_dim, s->out_dim, t->cfg.data);
    return kd_fail(e, KD_ERR_USAGE, "%s has %d tokens in its vocabulary, the student %d: kd trains only on teacher "
                   "outputs indexed by the student's ids (%sanother tokenizer: see docs/usage.md, \"Different "
                   "tokenizers\")", who, tm->out_dim, s->out_dim, padded);
  }
  if (crop == 0 && tm->out_dim != s->out_dim)
    return kd_fail(e, KD_ERR_USAGE, "%s has %d classes, the student %d", who, tm->out_dim, s->out_dim);
  const kd_split_info info = {1, kd_source_kind(t->data.train), kd_source_total(t->data.train),
                              kd_source_width(t->data.train)};
  return kd_fit_split(tm, who, t->cfg.data, "train", &info, e);
}

static int build(trainer *t, const kd_model_spec *ms, kd_err *e) {
  tr_online *o = &t->online;
  kd_model_spec spec = *ms;
  /* the attention terms read every layer's q/k/v and maps; logits and hidden states need no more */
  spec.frozen = t->set.inter.relations || t->set.inter.maps ? 2 : 1;
  spec.dropout = 0.0f;
  if (kd_model_create(&o->model, &spec, t->sched.b_local, e)) return e->code;
  if (check_fit(t, o->model, e)) return e->code;
  o->params = kd_malloc(sizeof(float) * o->model->n_params, "teacher parameters", e);
  if (!o->params) return e->code;
  kd_model_bind(o->model, o->params, NULL);
  kd_tap_shape sh;
  if (!o->model->ops->tap || !o->model->ops->tap(o->model, KD_TAP_HIDDEN, 0, &sh)) return KD_OK; /* no Transformer */
  const int L = o->model->ops->n_hidden(o->model);
  o->ptrs = kd_calloc((size_t)KD_INTER_ARRAYS * (L + 1), sizeof *o->ptrs, "teacher taps", e);
  if (!o->ptrs) return e->code;
  kd_inter_bind(&o->inter, o->ptrs, L);
  o->inter.dim = sh.dim;
  o->inter.heads = sh.heads;
  o->inter.kv_heads = sh.kv_heads;
  o->inter.head_dim = sh.head_dim;
  o->model->ops->tap(o->model, KD_TAP_Q, 1, &sh); /* the shape, also where the tensors are not kept (frozen == 1) */
  o->inter.ld = sh.ld;
  return KD_OK;
}

int tr_online_open(trainer *t, kd_err *e) {
  tr_online *o = &t->online;
  if (!t->cfg.teacher_model[0]) return KD_OK;
  kd_model_spec ms;
  memset(&ms, 0, sizeof ms);
  int rc = tr_root(t) ? resolve(t, &ms, e) : KD_OK;
  if ((rc = kd_agree(t->mpi.comm, rc, e))) return rc;
  if (kd_mpi_check(MPI_Bcast(&ms, (int)sizeof ms, MPI_BYTE, 0, t->mpi.comm), "MPI_Bcast", e) ||
      kd_mpi_check(MPI_Bcast(o->path, (int)sizeof o->path, MPI_CHAR, 0, t->mpi.comm), "MPI_Bcast", e))
    return kd_fatal(e, t->mpi.rank, "online teacher");
  rc = build(t, &ms, e);
  if ((rc = kd_agree(t->mpi.comm, rc, e))) return rc;
  rc = tr_root(t) ? kd_weights_read(o->path, o->model, e) : KD_OK;
  if ((rc = kd_agree(t->mpi.comm, rc, e))) return rc;
  if ((rc = tr_bcast_floats(o->params, o->model->n_params, 0, t->mpi.comm, e))) return rc;
  o->checksum = params_checksum(o->model);
  t->data.teacher_live = t->data.has_teacher = 1;
  return KD_OK;
}

int tr_online_forward(trainer *t, kd_err *e) {
  tr_online *o = &t->online;
  const kd_fwd inference = {0, 0};
  const kd_batch *in = t->xtok.kind ? &t->xtok.in : &t->batch.in; /* another tokenizer: the teacher's rows */
  if (kd_model_forward(o->model, t->batch.tb.logits, in, &inference, e)) return e->code;
  const int Ct = o->model->out_dim, C = t->net.model->out_dim;
  /* --teacher-vocab-crop: each position's first C logits, packed into rows of C (in place, forwards) */
  if (Ct > C && !t->xtok.kind) {
    const size_t P = (size_t)t->batch.in.rows * (size_t)kd_batch_positions(&t->batch.in);
    float *z = t->batch.tb.logits;
    for (size_t p = 1; p < P; p++) memmove(z + p * C, z + p * Ct, sizeof(float) * (size_t)C);
  }
  if (!o->ptrs) return KD_OK;
  const kd_model *m = o->model;
  for (int l = 0; l <= o->inter.layers; l++) {
    o->inter.hidden[l] = m->ops->tap(m, KD_TAP_HIDDEN, l, NULL);
    o->inter.q[l] = l ? m->ops->tap(m, KD_TAP_Q, l, NULL) : NULL;
    o->inter.k[l] = l ? m->ops->tap(m, KD_TAP_K, l, NULL) : NULL;
    o->inter.v[l] = l ? m->ops->tap(m, KD_TAP_V, l, NULL) : NULL;
    o->inter.attn[l] = l ? m->ops->tap(m, KD_TAP_ATTN, l, NULL) : NULL;
  }
  return KD_OK;
}

void tr_online_free(tr_online *o) {
  kd_model_free(o->model);
  free(o->params);
  free(o->ptrs);
  kd_preprocess_free(&o->pre);
  memset(o, 0, sizeof *o);
}
