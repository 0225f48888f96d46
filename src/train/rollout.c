/* On-policy distillation (--on-policy LAMBDA, GKD): on a step the seed's draw makes on-policy, the student
 * samples a completion for the prompt of each of this rank's rows with the key/value-cache decoder of kd
 * generate, and each row becomes prompt + sample: its targets are the sampled tokens, unlabelled (a sample has
 * no hard label; the online teacher's distribution is the target), so the step's loss is the divergence
 * alone on the sampled positions. No gradient flows through the sampling (the rows are data to the step).
 *
 * A row's prompt is its unmasked prefix (prompt-completion rows), or, for a row whose every position is a
 * target, its first --prompt-tokens tokens. The rows are decoded in groups of TR_ROLLOUT_GROUP in the order of
 * their global row ids, and the draws are keyed by (seed, step) and the global row: the samples depend on the
 * batch's rows, not on the rank count, whenever each rank holds the same groups (a batch of every row). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/h5io.h"
#include "core/rng.h"
#include "train/trainer.h"

enum { TR_ROLLOUT_GROUP = 16 };

int tr_rollout_open(trainer *t, kd_err *e) {
  tr_rollout_state *r = &t->roll;
  const kd_train_cfg *c = &t->cfg;
  if (c->on_policy <= 0) return KD_OK;
  const kd_model *m = t->net.model;
  if (m->input != KD_INPUT_TOKENS)
    return kd_fail(e, KD_ERR_USAGE, "kd train: --on-policy samples tokens: it needs a gpt or llama student, not %s",
                   m->family);
  const int W = t->batch.in.alloc_width, G = TR_ROLLOUT_GROUP;
  r->W = W;
  r->prompt = c->prompt_tokens > 0 ? (int)(c->prompt_tokens < W - 1 ? c->prompt_tokens : W - 1) : W / 2;
  if (r->prompt < 1) r->prompt = 1;
  r->max_new = c->rollout_max_new > 0 && c->rollout_max_new < W ? (int)c->rollout_max_new : W;
  kd_tokenizer tok;
  int present = 0;
  const int h5 = kd_rows_streamed(t->data.rows);
  if (h5) kd_h5_lock();
  int rc = kd_tokenizer_read(&tok, t->data.data1, &present, e);
  if (h5) kd_h5_unlock();
  if (rc) return rc;
  r->end_id = present ? tok.end_id : -1;
  r->pad_id = present && tok.pad_id >= 0 ? tok.pad_id : 0;
  r->n_ids = present && tok.vocab < m->out_dim ? tok.vocab : 0;
  if (present) kd_tokenizer_free(&tok);
  /* padding ids are never drawn, so the draws are not from the softmax over every id the loss takes */
  if (r->n_ids > 0 && t->set.loss.div.kind == KD_DIV_REVERSE_SAMPLED)
    return kd_fail(e, KD_ERR_USAGE, "kd train: --divergence reverse-sampled with a student vocabulary of %d and a "
                   "tokenizer of %d ids: the rollout never draws the padding ids, so the sampled estimate would be "
                   "biased; use --divergence reverse, or a student vocabulary of %d",
                   m->out_dim, r->n_ids, r->n_ids);
  const size_t rows = (size_t)t->batch.in.capacity;
  r->order = kd_malloc(sizeof(int64_t) * 3 * rows, "rollout order", e);
  r->prompts = kd_malloc(sizeof(int32_t) * (size_t)G * W, "rollout prompts", e);
  r->plen = kd_malloc(sizeof(int) * 2 * (size_t)G, "rollout lengths", e);
  r->ids = kd_malloc(sizeof(int64_t) * (size_t)G, "rollout rows", e);
  r->row_plen = kd_malloc(sizeof(int) * rows, "rollout prompt lengths", e);
  if (e->code || kd_hyps_init(&r->h, G, 1, W, e)) return e->code;
  r->on = 1;
  return KD_OK;
}

void tr_rollout_free(tr_rollout_state *r) {
  free(r->order);
  free(r->prompts);
  free(r->plen);
  free(r->ids);
  free(r->row_plen);
  kd_hyps_free(&r->h);
  memset(r, 0, sizeof *r);
}

int tr_rollout_step(const trainer *t, int64_t step) {
  const double lambda = t->cfg.on_policy;
  if (!t->roll.on || lambda <= 0) return 0;
  return lambda >= 1.0 || kd_uniform(kd_key((uint64_t)t->cfg.seed, KD_RNG_ONPOLICY, (uint64_t)step, 0), 0) < lambda;
}

/* Row i's prompt length (0: a row with no target, left as it is). */
static int prompt_of(const tr_rollout_state *r, const kd_batch *b, int i) {
  const uint8_t *mk = b->mask + (size_t)i * b->width;
  int p = 1, last = b->width - 1;
  while (p < b->width && !mk[p]) p++;
  if (p >= b->width) return 0;
  if (p > 1) return p; /* the unmasked prefix */
  while (!mk[last]) last--; /* text: --prompt-tokens, within the row's text (a short document ends in padding) */
  return r->prompt < last ? r->prompt : last;
}

static int by_row_id(const void *a, const void *b) {
  const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

/* order[0..n): the batch's rows by global id (pairs of id and row in order[n..3n) while sorting). */
static void sort_rows(int64_t *order, int n, const int64_t *ids) {
  int64_t *pairs = order + n;
  for (int i = 0; i < n; i++) pairs[2 * i] = ids[i], pairs[2 * i + 1] = i;
  qsort(pairs, (size_t)n, 2 * sizeof(int64_t), by_row_id);
  for (int i = 0; i < n; i++) order[i] = pairs[2 * i + 1];
}

/* Row i becomes its prompt and hypothesis k of the group: the sampled tokens its targets, unlabelled. */
static void write_row(const tr_rollout_state *r, kd_batch *b, int i, int plen, int k) {
  const int W = b->width, n = r->h.len[k];
  int32_t *tok = b->tokens + (size_t)i * W;
  uint8_t *mk = b->mask + (size_t)i * W;
  memcpy(tok + plen, r->h.tokens + (size_t)k * r->h.max_len, sizeof(int32_t) * (size_t)n);
  for (int p = plen + n; p < W; p++) tok[p] = r->pad_id;
  memset(mk, 0, (size_t)W);
  memset(mk + plen, 1, (size_t)n);
  b->y[i] = -1;
}

/* One group of rows (indices into the batch) decoded and written back. */
static int decode_group(trainer *t, const int64_t *rows, int g, uint64_t seed, kd_err *e) {
  tr_rollout_state *r = &t->roll;
  kd_batch *b = &t->batch.in;
  const int W = b->width;
  int *plen = r->plen, *maxl = r->plen + TR_ROLLOUT_GROUP;
  for (int k = 0; k < g; k++) {
    const int i = (int)rows[k];
    plen[k] = r->row_plen[i];
    maxl[k] = W - plen[k] < r->max_new ? W - plen[k] : r->max_new;
    r->ids[k] = b->row_ids[i];
    memcpy(r->prompts + (size_t)k * W, b->tokens + (size_t)i * W, sizeof(int32_t) * (size_t)W);
  }
  const kd_seq_cfg sc = {KD_DECODE_SAMPLE, 1, 1, 0.0, t->cfg.rollout_temperature, (int)t->cfg.rollout_top_k, seed,
                         r->end_id, r->n_ids};
  for (size_t k = 0; k < (size_t)r->h.rows; k++) r->h.len[k] = 0, r->h.logp[k] = r->h.score[k] = -INFINITY;
  if (kd_decode_rows(t->net.model, r->prompts, W, plen, maxl, g, r->ids, &sc, &r->h, e)) return e->code;
  for (int k = 0; k < g; k++) write_row(r, b, (int)rows[k], plen[k], k);
  return KD_OK;
}

int tr_rollout(trainer *t, int64_t step, kd_err *e) {
  tr_rollout_state *r = &t->roll;
  kd_batch *b = &t->batch.in;
  const uint64_t seed = kd_key((uint64_t)t->cfg.seed, KD_RNG_ONPOLICY, (uint64_t)step, 1);
  sort_rows(r->order, b->rows, b->row_ids);
  int n = 0; /* the rows with a prompt, in row-id order, packed at the front of order */
  for (int k = 0; k < b->rows; k++) {
    const int i = (int)r->order[k];
    r->row_plen[i] = prompt_of(r, b, i);
    if (r->row_plen[i] > 0) r->order[n++] = i;
  }
  r->sampled = 0;
  for (int g0 = 0; g0 < n; g0 += TR_ROLLOUT_GROUP) {
    const int g = n - g0 < TR_ROLLOUT_GROUP ? n - g0 : TR_ROLLOUT_GROUP;
    if (decode_group(t, r->order + g0, g, seed, e)) return e->code;
    for (int k = 0; k < g; k++) r->sampled += r->h.len[k];
  }
  r->steps++;
  r->total += r->sampled;
  return KD_OK;
}
