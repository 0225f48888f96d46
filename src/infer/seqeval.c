/* kd eval --decode: phoneme (token) and word error rates of decoded targets. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dist.h"
#include "infer/seqtask.h"

/* The split's rows, whole, on every rank (held-out splits are small), with
 * each row's prompt and reference lengths. */
typedef struct split_rows {
  int64_t n;
  int32_t *tokens;  /* [n, W] */
  int *plen, *ref;  /* [n] */
} split_rows;

static int load_rows(const kd_seq_task *t, split_rows *s, kd_err *e) {
  memset(s, 0, sizeof s[0]);
  kd_source *src = NULL;
  kd_batch b;
  memset(&b, 0, sizeof b);
  const int W = t->width;
  s->n = t->rows;
  s->tokens = kd_malloc(sizeof(int32_t) * (size_t)s->n * W, "evaluation rows", e);
  s->plen = kd_malloc(sizeof(int) * (size_t)s->n, "evaluation rows", e);
  s->ref = kd_malloc(sizeof(int) * (size_t)s->n, "evaluation rows", e);
  if (e->code || kd_source_open(&src, t->data, t->split, 0, s->n, e) || kd_seq_task_rows(t, src, e) ||
      kd_batch_init(&b, KD_INPUT_TOKENS, 256, W, e))
    goto out;
  for (int64_t r0 = 0; r0 < s->n; r0 += 256) {
    const int nb = (int)(s->n - r0 < 256 ? s->n - r0 : 256);
    if (kd_source_gather_range(src, r0, nb, &b, e)) goto out;
    memcpy(s->tokens + (size_t)r0 * W, b.tokens, sizeof(int32_t) * (size_t)nb * W);
  }
  for (int64_t r = 0; r < s->n; r++)
    if (kd_seq_row(t, s->tokens + (size_t)r * W, r, &s->plen[r], &s->ref[r], e)) goto out;
out:
  kd_batch_free(&b);
  kd_source_free(src);
  return e->code;
}

static void rows_free(split_rows *s) {
  free(s->tokens);
  free(s->plen);
  free(s->ref);
}

static int same_prompt(const split_rows *s, int W, int64_t a, int64_t b) {
  return s->plen[a] == s->plen[b] &&
         !memcmp(s->tokens + (size_t)a * W, s->tokens + (size_t)b * W, sizeof(int32_t) * (size_t)s->plen[a]);
}

/* First row of each word: consecutive rows with one prompt are a word's references. */
static int words_of(const split_rows *s, int W, int64_t **first, int64_t *n_words, kd_err *e) {
  *first = kd_malloc(sizeof(int64_t) * (size_t)(s->n + 1), "evaluation words", e);
  if (!*first) return e->code;
  int64_t n = 0;
  for (int64_t r = 0; r < s->n; r++)
    if (r == 0 || !same_prompt(s, W, r - 1, r)) (*first)[n++] = r;
  (*first)[n] = s->n;
  *n_words = n;
  return KD_OK;
}

void kd_seq_score(kd_seq_stats *st, const int32_t *hyp, int n, const int32_t *const *refs, const int *ref_len,
                  int n_refs, int *scratch) {
  int best_d = -1, best_len = 0;
  for (int r = 0; r < n_refs; r++) {
    const int d = kd_token_edit_distance(hyp, n, refs[r], ref_len[r], scratch);
    if (best_d < 0 || d < best_d) best_d = d, best_len = ref_len[r];
  }
  st->rows += 1;
  st->refs += n_refs;
  st->edits += best_d;
  st->ref_tokens += best_len;
  st->wrong += best_d > 0;
  st->hyp_tokens += n;
}

void kd_seq_rates(kd_seq_stats *st) {
  st->per = st->ref_tokens > 0 ? st->edits / st->ref_tokens : 0;
  st->wer = st->rows > 0 ? st->wrong / (double)st->rows : 0;
}

/* Word w's best hypothesis (batch row b) against its references, rows [r0, r1). */
static void score_word(kd_seq_stats *st, const split_rows *s, int W, int64_t r0, int64_t r1, const kd_hyps *h, int b,
                       int end_id, const int32_t **refs, int *ref_len, int *scratch) {
  const int32_t *hyp = h->tokens + (size_t)b * h->nbest * h->max_len;
  int n = h->len[(size_t)b * h->nbest];
  if (n > 0 && hyp[n - 1] == end_id) n--;
  for (int64_t r = r0; r < r1; r++) {
    refs[r - r0] = s->tokens + (size_t)r * W + s->plen[r];
    ref_len[r - r0] = s->ref[r];
  }
  kd_seq_score(st, hyp, n, refs, ref_len, (int)(r1 - r0), scratch);
}

/* Decode words [w0, w1) in batches of B. */
static int decode_words(const kd_seq_task *t, const kd_seq_cfg *sc, const split_rows *s, const int64_t *first,
                        int64_t w0, int64_t w1, int B, kd_seq_stats *st, kd_progress *prog, kd_err *e) {
  const int W = t->width;
  kd_hyps h;
  if (kd_hyps_init(&h, B, sc->nbest, W, e)) return e->code;
  int *plen = kd_malloc(sizeof(int) * 2 * (size_t)B, "decode rows", e), *maxl = plen ? plen + B : NULL;
  int *scratch = kd_malloc(sizeof(int) * (size_t)(W + 1), "edit distance", e);
  int32_t *prompts = kd_malloc(sizeof(int32_t) * (size_t)B * W, "prompts", e);
  int64_t *ids = kd_malloc(sizeof(int64_t) * (size_t)B, "decode rows", e), most = 1;
  for (int64_t w = w0; w < w1; w++) most = first[w + 1] - first[w] > most ? first[w + 1] - first[w] : most;
  const int32_t **refs = kd_malloc(sizeof(int32_t *) * (size_t)most, "references", e);
  int *ref_len = kd_malloc(sizeof(int) * (size_t)most, "references", e);
  for (int64_t g0 = w0; g0 < w1 && !e->code; g0 += B) {
    const int nb = (int)(w1 - g0 < B ? w1 - g0 : B);
    for (int b = 0; b < nb; b++) {
      const int64_t r = first[g0 + b];
      memcpy(prompts + (size_t)b * W, s->tokens + (size_t)r * W, sizeof(int32_t) * W);
      plen[b] = s->plen[r];
      maxl[b] = W - s->plen[r];
      ids[b] = r;
    }
    for (size_t i = 0; i < (size_t)h.rows * h.nbest; i++) h.len[i] = 0;
    for (size_t i = 0; i < (size_t)h.rows * h.nbest; i++) h.logp[i] = h.score[i] = -INFINITY;
    if (kd_decode_rows(t->m, prompts, W, plen, maxl, nb, ids, sc, &h, e)) break;
    for (int b = 0; b < nb; b++) score_word(st, s, W, first[g0 + b], first[g0 + b + 1], &h, b, sc->end_id, refs, ref_len, scratch);
    kd_progress_add(prog, nb, MPI_Wtime());
  }
  kd_progress_end(prog);
  free(plen);
  free(scratch);
  free(prompts);
  free(ids);
  free(refs);
  free(ref_len);
  kd_hyps_free(&h);
  return e->code;
}

int kd_seqeval_run(const kd_seqgen_cfg *c, MPI_Comm comm, kd_seq_stats *st, kd_err *e) {
  memset(st, 0, sizeof *st);
  int rank, P;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &P);
  kd_seq_task t;
  kd_seq_cfg sc;
  split_rows s;
  memset(&s, 0, sizeof s);
  int64_t *first = NULL, n_words = 0, w0 = 0, w1 = 0;
  kd_seq_threads(comm);
  int rc = kd_seq_task_open(&t, c->ckpt, c->data, c->split, 0, e);
  if (!rc) rc = kd_seq_cfg_make(&sc, c->decode, 1, c->length_penalty, c->temperature, c->top_k, c->seed, &t, e);
  if (!rc) rc = load_rows(&t, &s, e);
  if (!rc) rc = words_of(&s, t.width, &first, &n_words, e);
  rc = kd_agree(comm, rc, e);
  if (!rc) { /* whole batches per rank: a word's result does not depend on the number of ranks */
    const int64_t nblk = (n_words + c->batch - 1) / c->batch;
    int64_t b0, b1;
    kd_shard_range(nblk, P, rank, &b0, &b1);
    w0 = b0 * c->batch < n_words ? b0 * c->batch : n_words;
    w1 = b1 * c->batch < n_words ? b1 * c->batch : n_words;
  }
  kd_progress prog;
  char what[64];
  snprintf(what, sizeof what, "kd eval --decode /%s%s", t.split, P > 1 ? " (rank 0's words)" : "");
  if (!rc) rc = kd_seq_progress(&prog, c, comm, what, "words", w1 - w0, e);
  const double t0 = MPI_Wtime();
  if (!rc) rc = decode_words(&t, &sc, &s, first, w0, w1, (int)c->batch, st, &prog, e);
  double dt = MPI_Wtime() - t0;
  rc = kd_agree(comm, rc, e);
  if (!rc) {
    double sums[6] = {(double)st->rows, (double)st->refs, st->edits, st->ref_tokens, st->wrong, st->hyp_tokens};
    rc = kd_mpi_check(MPI_Allreduce(MPI_IN_PLACE, sums, 6, MPI_DOUBLE, MPI_SUM, comm), "MPI_Allreduce", e);
    if (!rc) rc = kd_mpi_check(MPI_Allreduce(MPI_IN_PLACE, &dt, 1, MPI_DOUBLE, MPI_MAX, comm), "MPI_Allreduce", e);
    st->rows = (int64_t)sums[0];
    st->refs = (int64_t)sums[1];
    st->edits = sums[2];
    st->ref_tokens = sums[3];
    st->wrong = sums[4];
    st->hyp_tokens = sums[5];
    st->seconds = dt;
    kd_seq_rates(st);
    st->seq_per_s = dt > 0 ? (double)st->rows / dt : 0;
    st->ranks = P;
  }
  free(first);
  rows_free(&s);
  kd_seq_task_close(&t);
  return rc;
}
