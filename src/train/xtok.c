/* A teacher with another tokenizer (--cross-tokenizer uld|exact|hybrid, issue 33). The data file holds, beside
 * each student row, the teacher's tokens of the same bytes and where every token of either row ends
 * (kd import text --teacher-tokenizer; docs/format.md). Each step the online teacher reads the teacher rows of
 * the batch's rows, and the loss is
 *   alpha * CE at every student target + (1 - alpha) * T^2 * D(teacher at a, student at i) at aligned pairs,
 * (i, a) aligned when student token i and teacher token a end at the same byte (data/align.h) and i has a
 * target (an unlabelled target: weight 1, as for the ordinary soft term); D of loss/xtok.h. Both sums are
 * divided by the global batch's targets, so a position with no aligned teacher position carries CE alone.
 * The teacher rows of this rank's shard are held in memory (4 bytes per token and offset). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dist.h"
#include "core/h5io.h"
#include "core/rng.h"
#include "models/fit.h"
#include "train/trainer.h"

static const char *const XT_DSETS[4] = {"/train/teacher_tokens", "/train/teacher_mask", "/train/offsets",
                                        "/train/teacher_offsets"};

/* Rank 0: the four datasets are there, [N, T] for the student's offsets and [N, Tt] for the teacher's. */
static int probe_file(const trainer *t, int *Tt, kd_err *e) {
  const char *path = t->data.data1;
  hid_t f;
  if (kd_h5_open_ro(&f, path, e)) return e->code;
  int rc = KD_OK;
  const int64_t N = t->data.n_file_rows, T = kd_source_width(t->data.train);
  for (int k = 0; k < 4 && !rc; k++) {
    int nd = 0;
    int64_t d[KD_H5_MAX_DIMS];
    if (!kd_h5_exists(f, XT_DSETS[k])) {
      rc = kd_fail(e, KD_ERR_USAGE, "kd train: --cross-tokenizer: %s has no %s (the teacher's rows of the text): "
                   "import it with kd import text --teacher-tokenizer B, B the teacher's tokenizer", path, XT_DSETS[k]);
      break;
    }
    if ((rc = kd_h5_shape(f, path, XT_DSETS[k], &nd, d, e))) break;
    if (k == 0) *Tt = nd == 2 ? (int)d[1] : 0;
    const int64_t want = k == 2 ? T : *Tt;
    if (nd != 2 || d[0] != N || d[1] != want || want < 1)
      rc = kd_fail(e, KD_ERR_RUNTIME, "%s: %s must be [%lld, %lld] (the rows of /train, %s)", path, XT_DSETS[k],
                   (long long)N, (long long)want, k == 2 ? "its width" : "the width of /train/teacher_tokens");
  }
  if (!rc && !kd_h5_exists(f, "/teacher_tokenizer"))
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s has teacher rows but no /teacher_tokenizer record (re-import it)", path);
  H5Fclose(f);
  return rc;
}

int tr_xtok_probe(trainer *t, kd_err *e) {
  tr_xtok *x = &t->xtok;
  x->kind = t->set.loss.xtok;
  if (x->kind == KD_XTOK_OFF) return KD_OK;
  int rc = KD_OK;
  if (t->net.model->input != KD_INPUT_TOKENS)
    rc = kd_fail(e, KD_ERR_USAGE, "kd train: --cross-tokenizer needs token rows (a gpt or llama student)");
  else if (t->data.streamed || t->data.is_set)
    rc = kd_fail(e, KD_ERR_USAGE, "kd train: --cross-tokenizer holds the shard's teacher rows in memory: it takes one "
                 "data file (not a set of shards) read with --stream off");
  else if (t->cfg.loss_chunk > 0)
    rc = kd_fail(e, KD_ERR_USAGE, "kd train: --cross-tokenizer takes the student's logits whole: --loss-chunk 0 or -1");
  else if (tr_root(t))
    rc = probe_file(t, &x->Tt, e);
  if ((rc = kd_agree(t->mpi.comm, rc, e))) return rc;
  if (kd_mpi_check(MPI_Bcast(&x->Tt, 1, MPI_INT, 0, t->mpi.comm), "MPI_Bcast", e))
    return kd_fatal(e, t->mpi.rank, "cross-tokenizer rows");
  x->T = kd_source_width(t->data.train);
  return KD_OK;
}

/* Ends strictly increasing on the row's tokens, then 0 (padding); *n: the tokens. The first bad position or -1. */
static int check_ends(const int32_t *end, int W, int *n) {
  int k = 0;
  while (k < W && end[k] > 0) {
    if (k && end[k] <= end[k - 1]) return k;
    k++;
  }
  *n = k;
  for (int p = k; p < W; p++)
    if (end[p] != 0) return p;
  return -1;
}

/* Every row of the shard: offsets that describe two tokenizations of the same bytes, teacher ids of the
 * teacher's vocabulary. Names the file, dataset, global row, position and value. */
static int check_rows(const trainer *t, kd_err *e) {
  const tr_xtok *x = &t->xtok;
  const char *path = t->data.data1;
  const int Vt = t->online.model->out_dim;
  for (int64_t r = 0; r < x->n; r++) {
    const int64_t row = x->lo + r;
    const int32_t *se = x->s_end + r * x->T, *te = x->t_end + r * x->Tt, *tk = x->t_tokens + r * x->Tt;
    int p;
    if ((p = check_ends(se, x->T, &x->ns[r])) >= 0)
      return kd_fail(e, KD_ERR_RUNTIME, "%s: /train/offsets row %lld position %d is %d: a row's token ends must "
                     "increase, then be 0 on padding (re-import the file)", path, (long long)row, p, (int)se[p]);
    if ((p = check_ends(te, x->Tt, &x->nt[r])) >= 0)
      return kd_fail(e, KD_ERR_RUNTIME, "%s: /train/teacher_offsets row %lld position %d is %d: a row's token ends "
                     "must increase, then be 0 on padding (re-import the file)", path, (long long)row, p, (int)te[p]);
    const int ns = x->ns[r], nt = x->nt[r];
    if (nt && (!ns || te[nt - 1] > se[ns - 1]))
      return kd_fail(e, KD_ERR_RUNTIME, "%s: /train/teacher_offsets row %lld: its last teacher token ends at byte %d, "
                     "past the student row's last byte %d: the two rows do not cover the same text", path,
                     (long long)row, (int)te[nt - 1], ns ? (int)se[ns - 1] : 0);
    for (int a = 0; a < x->Tt; a++) /* padding too: the teacher's forward reads up to the batch's longest row */
      if (tk[a] < 0 || tk[a] >= Vt)
        return kd_fail(e, KD_ERR_RUNTIME, "%s: /train/teacher_tokens row %lld position %d is %d, outside the teacher's "
                       "vocabulary [0, %d) of --teacher-model %s", path, (long long)row, a, (int)tk[a], Vt,
                       t->online.path);
  }
  return KD_OK;
}

/* This rank's rows of the four datasets. */
static int read_shard(trainer *t, kd_err *e) {
  tr_xtok *x = &t->xtok;
  const size_t ns = (size_t)x->n * x->T, nt = (size_t)x->n * x->Tt;
  x->t_tokens = kd_malloc(sizeof(int32_t) * (nt ? nt : 1), "teacher rows", e);
  x->t_mask = kd_malloc(nt ? nt : 1, "teacher rows", e);
  x->s_end = kd_malloc(sizeof(int32_t) * (ns ? ns : 1), "token offsets", e);
  x->t_end = kd_malloc(sizeof(int32_t) * (nt ? nt : 1), "token offsets", e);
  x->ns = kd_malloc(sizeof(int) * (size_t)(x->n ? 2 * x->n : 2), "row lengths", e);
  if (x->ns) x->nt = x->ns + (x->n ? x->n : 1);
  if (e->code) return e->code;
  const char *path = t->data.data1;
  hid_t f;
  if (kd_h5_open_ro(&f, path, e)) return e->code;
  int rc = kd_h5_read_rows(f, path, XT_DSETS[0], x->lo, x->n, H5T_NATIVE_INT32, x->t_tokens, e);
  if (!rc) rc = kd_h5_read_rows(f, path, XT_DSETS[1], x->lo, x->n, H5T_NATIVE_UINT8, x->t_mask, e);
  if (!rc) rc = kd_h5_read_rows(f, path, XT_DSETS[2], x->lo, x->n, H5T_NATIVE_INT32, x->s_end, e);
  if (!rc) rc = kd_h5_read_rows(f, path, XT_DSETS[3], x->lo, x->n, H5T_NATIVE_INT32, x->t_end, e);
  H5Fclose(f);
  return rc;
}

/* The shared ids of the two records: the identity where they are the same record and vocabulary. */
static int build_map(trainer *t, kd_err *e) {
  tr_xtok *x = &t->xtok;
  const int Vs = t->net.model->out_dim, Vt = t->online.model->out_dim;
  kd_tokenizer s, tt;
  int has_s = 0, has_t = 0;
  memset(&tt, 0, sizeof tt);
  if (kd_tokenizer_read(&s, t->data.data1, &has_s, e)) return e->code;
  int rc = kd_tokenizer_read_at(&tt, t->data.data1, "/teacher_tokenizer", &has_t, e);
  if (!rc && (!has_s || !has_t))
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: --cross-tokenizer needs both records, /tokenizer and /teacher_tokenizer",
                 t->data.data1);
  if (!rc && (s.vocab > Vs || tt.vocab > Vt))
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: %s has %d ids, more than the %s's vocabulary of %d (%s)", t->data.data1,
                 s.vocab > Vs ? "/tokenizer" : "/teacher_tokenizer", s.vocab > Vs ? s.vocab : tt.vocab,
                 s.vocab > Vs ? "student" : "teacher", s.vocab > Vs ? Vs : Vt,
                 s.vocab > Vs ? t->cfg.student : t->online.path);
  if (!rc) {
    x->identity = Vs == Vt && kd_tokenizer_same(&s, &tt);
    rc = x->identity ? kd_vocab_map_identity(&x->map, Vs, e) : kd_vocab_map_build(&x->map, &s, Vs, &tt, Vt, e);
  }
  if (has_s) kd_tokenizer_free(&s);
  if (has_t) kd_tokenizer_free(&tt);
  return rc;
}

/* The shard's teacher rows and both offsets, each row hashed with its global index (summed: any rank count). */
static uint64_t rows_fingerprint(const tr_xtok *x) {
  uint64_t d = 0;
  for (int64_t r = 0; r < x->n; r++) {
    uint64_t h = kd_mix64((uint64_t)(x->lo + r) ^ 0x78746fu);
    for (int a = 0; a < x->Tt; a++) {
      const size_t k = (size_t)r * x->Tt + a;
      h = kd_mix64(h ^ ((uint64_t)(uint32_t)x->t_tokens[k] << 1 | x->t_mask[k]));
      h = kd_mix64(h ^ (uint64_t)(uint32_t)x->t_end[k]);
    }
    for (int i = 0; i < x->T; i++) h = kd_mix64(h ^ (uint64_t)(uint32_t)x->s_end[(size_t)r * x->T + i]);
    d += h;
  }
  return d;
}

/* Targets of the shard and those with an aligned teacher position: text rows' targets are every position but
 * the last of the row's tokens. */
static void count_aligned(tr_xtok *x, uint64_t c[2]) {
  for (int64_t r = 0; r < x->n; r++) {
    const int ns = x->ns[r];
    const int np = kd_align_positions(x->pi, x->pa, x->s_end + r * x->T, ns, x->t_end + r * x->Tt, x->nt[r]);
    c[0] += ns > 0 ? ns - 1 : 0;
    for (int k = 0; k < np; k++) c[1] += x->pi[k] < ns - 1;
  }
}

static int load_local(trainer *t, kd_err *e) {
  tr_xtok *x = &t->xtok;
  int64_t hi;
  kd_shard_range(t->data.n_train, t->mpi.size, t->mpi.rank, &x->lo, &hi);
  x->n = hi - x->lo;
  const int Vs = t->net.model->out_dim, m = x->T < x->Tt ? x->T : x->Tt;
  if (read_shard(t, e) || check_rows(t, e) || build_map(t, e) || kd_xtok_work_init(&x->work, &x->map, e) ||
      kd_batch_init(&x->in, KD_INPUT_TOKENS, t->net.model->max_batch, x->Tt, e))
    return e->code;
  x->pi = kd_malloc(sizeof(int32_t) * (size_t)m, "aligned pairs", e);
  x->pa = kd_malloc(sizeof(int32_t) * (size_t)m, "aligned pairs", e);
  x->g = kd_malloc(sizeof(double) * (size_t)Vs, "cross-tokenizer gradient", e);
  return e->code;
}

int tr_xtok_load(trainer *t, kd_err *e) {
  tr_xtok *x = &t->xtok;
  if (x->kind == KD_XTOK_OFF) return KD_OK;
  int rc = load_local(t, e);
  if ((rc = kd_agree(t->mpi.comm, rc, e))) return rc;
  uint64_t local[3] = {0, 0, rows_fingerprint(x)}, all[3] = {0, 0, 0};
  count_aligned(x, local);
  if (kd_mpi_check(MPI_Allreduce(local, all, 3, MPI_UINT64_T, MPI_SUM, t->mpi.comm), "MPI_Allreduce", e))
    return kd_fatal(e, t->mpi.rank, "cross-tokenizer alignment");
  x->aligned_share = all[0] ? (double)all[1] / (double)all[0] : 0.0;
  x->fingerprint = all[2];
  return KD_OK;
}

int tr_xtok_gather(trainer *t, kd_err *e) {
  tr_xtok *x = &t->xtok;
  const kd_batch *b = &t->batch.in;
  kd_batch_untrim(&x->in);
  for (int i = 0; i < b->rows; i++) {
    const int64_t r = b->row_ids[i] - x->lo;
    if (r < 0 || r >= x->n)
      return kd_fail(e, KD_ERR_RUNTIME, "rank %d: row %lld is outside this rank's teacher rows [%lld, %lld)",
                     t->mpi.rank, (long long)b->row_ids[i], (long long)x->lo, (long long)(x->lo + x->n));
    memcpy(x->in.tokens + (size_t)i * x->Tt, x->t_tokens + r * x->Tt, sizeof(int32_t) * (size_t)x->Tt);
    memcpy(x->in.mask + (size_t)i * x->Tt, x->t_mask + r * x->Tt, (size_t)x->Tt);
    x->in.y[i] = 0;
    x->in.row_ids[i] = b->row_ids[i];
  }
  x->in.rows = b->rows;
  kd_batch_trim(&x->in, NULL, 0); /* the teacher runs up to its rows' last token */
  return KD_OK;
}

/* The soft term of one student row: every aligned pair whose student position has a target. */
static void row_soft(trainer *t, int i, float scale, double sums[2]) {
  tr_xtok *x = &t->xtok;
  const kd_batch *b = &t->batch.in;
  const int W = b->width, Wt = x->in.width, C = t->net.model->out_dim, Vt = t->online.model->out_dim;
  const int64_t r = b->row_ids[i] - x->lo;
  const int32_t *se = x->s_end + r * x->T, *te = x->t_end + r * x->Tt;
  /* the row's tokens within the trimmed widths (trimming keeps every target, so these are all of them) */
  const int ns = x->ns[r] < W ? x->ns[r] : W, nt = x->nt[r] < Wt ? x->nt[r] : Wt;
  const int np = kd_align_positions(x->pi, x->pa, se, ns, te, nt);
  const double T = t->cfg.temperature, alpha = t->cfg.alpha;
  for (int k = 0; k < np; k++) {
    const size_t p = (size_t)i * W + x->pi[k];
    const int32_t y = t->batch.targets[p];
    if (y == KD_Y_IGNORE) continue;
    const double w = (y >= 0 ? 1.0 - alpha : 1.0) * T * T;
    const float *zs = t->batch.logits + p * C, *zt = t->batch.tb.logits + ((size_t)i * Wt + x->pa[k]) * Vt;
    const double d = kd_xtok_pair(x->kind, &t->set.loss.div, zs, zt, T, x->g, &x->work);
    sums[0] += T * T * d;
    sums[1] += w * d;
    float *dl = t->batch.dlogits + p * C;
    const double gs = w * (double)scale;
    for (int c = 0; c < C; c++) dl[c] += (float)(gs * x->g[c]);
  }
}

void tr_xtok_loss(trainer *t, float scale, kd_loss_sums *ls) {
  const kd_batch *b = &t->batch.in;
  const int P = b->rows * b->width, C = t->net.model->out_dim;
  const double alpha = t->cfg.alpha;
  const kd_loss_cfg lcfg = {(float)alpha, (float)t->cfg.temperature, t->set.loss.div};
  const kd_targets hard = {t->batch.targets, NULL, NULL, NULL, NULL, NULL};
  kd_loss_sums ce = {0, 0, 0, 0, 0, 0};
  /* without teacher logits the loss is CE alone at every labelled target: its gradient scaled by alpha here */
  kd_loss_forward_backward(t->batch.dlogits, &ce, t->batch.logits, &hard, P, C, &lcfg, (float)(alpha * scale));
  double soft[2] = {0.0, 0.0};
  for (int i = 0; i < b->rows; i++) row_soft(t, i, scale, soft);
  ls->loss += alpha * ce.ce + soft[1];
  ls->ce += ce.ce;
  ls->kd += soft[0];
  ls->correct += ce.correct;
  ls->labelled += ce.labelled;
  ls->rows += ce.rows;
}

void tr_xtok_free(tr_xtok *x) {
  free(x->t_tokens);
  free(x->t_mask);
  free(x->s_end);
  free(x->t_end);
  free(x->ns);
  kd_batch_free(&x->in);
  kd_vocab_map_free(&x->map);
  kd_xtok_work_free(&x->work);
  free(x->pi);
  free(x->pa);
  free(x->g);
  memset(x, 0, sizeof *x);
}
