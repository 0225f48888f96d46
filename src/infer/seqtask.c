#include "infer/seqtask.h"

#include <stdlib.h>
#include <string.h>

#include "core/dist.h"
#include "kd/ckpt.h"
#include "nn/gemm.h"
#include "kd/infer.h"
#include "models/fit.h"

void kd_seq_threads(MPI_Comm comm) {
  const int n = kd_default_threads(comm); /* collective: every rank, before anything can fail */
  if (!getenv("OPENBLAS_NUM_THREADS")) kd_blas_set_threads(n);
}

static int check_tokenizer(const kd_seq_task *t, int present, kd_err *e) {
  if (t->prompt_tokens > 0) { /* text rows: no separator; the end token, where the record has one, stops a sample */
    if (present && t->tok.vocab > t->m->out_dim)
      return kd_fail(e, KD_ERR_RUNTIME, "%s: /tokenizer has %d ids but %s's vocabulary is %d: ids it could not read or "
                     "predict", t->data, t->tok.vocab, t->ckpt, t->m->out_dim);
    if (present && t->tok.end_id >= t->m->out_dim)
      return kd_fail(e, KD_ERR_RUNTIME, "%s: end_id %d outside %s's vocabulary of %d", t->data, t->tok.end_id, t->ckpt,
                     t->m->out_dim);
    return KD_OK;
  }
  if (!present)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: no /tokenizer record: decoding targets needs prompt-completion rows "
                   "with sep_id and end_id (kd import pairs writes them; docs/format.md)", t->data);
  if (t->tok.sep_id < 0 || t->tok.end_id < 0)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: /tokenizer (kind %s) has no %s: decoding targets needs prompt-completion "
                   "rows (kd import pairs); text rows are continued with kd generate --prompt-tokens N", t->data, t->tok.kind, t->tok.sep_id < 0 ? "sep_id" : "end_id");
  if (t->tok.vocab > t->m->out_dim)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: /tokenizer has %d ids but %s's vocabulary is %d: ids it could not read or "
                   "predict", t->data, t->tok.vocab, t->ckpt, t->m->out_dim);
  if (t->tok.sep_id >= t->m->out_dim || t->tok.end_id >= t->m->out_dim)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: sep_id %d / end_id %d outside %s's vocabulary of %d", t->data, t->tok.sep_id,
                   t->tok.end_id, t->ckpt, t->m->out_dim);
  return KD_OK;
}

int kd_seq_task_open(kd_seq_task *t, const char *ckpt, const char *data, const char *split, int64_t prompt_tokens,
                     kd_err *e) {
  memset(t, 0, sizeof *t);
  t->data = data;
  t->split = split;
  t->prompt_tokens = prompt_tokens > 0 ? (int)(prompt_tokens < (1 << 30) ? prompt_tokens : 1 << 30) : 0;
  int present = 0;
  kd_split_info info;
  if (kd_ckpt_resolve(ckpt, 0, t->ckpt, sizeof t->ckpt, NULL, 0, e) || kd_model_load(&t->m, &t->params, t->ckpt, 1, e))
    return e->code;
  if (!t->m->ops->decode_step || !t->m->ops->decode_reorder)
    return kd_fail(e, KD_ERR_USAGE, "%s: the student %s %s cannot decode (no autoregressive decoding)", t->ckpt,
                   t->m->family, t->m->spec);
  if (kd_tokenizer_read(&t->tok, data, &present, e)) return e->code;
  if (!present) t->tok.pad_id = t->tok.sep_id = t->tok.end_id = t->tok.unk_id = t->tok.target_id0 = -1;
  if (check_tokenizer(t, present, e)) return e->code;
  if (kd_source_probe(data, split, &info, e)) return e->code;
  if (!info.present) return kd_fail(e, KD_ERR_USAGE, "%s has no /%s split", data, split);
  if (info.kind != KD_INPUT_TOKENS)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: /%s holds feature rows; decoding needs token rows", data, split);
  char who[KD_PATH_MAX + 384];
  kd_infer_who(who, sizeof who, t->m, t->ckpt);
  if (kd_fit_split(t->m, who, data, split, &info, e) || kd_fit_tokenizers(who, t->ckpt, data, e)) return e->code;
  t->rows = info.rows;
  t->width = info.width;
  t->pad = t->tok.pad_id >= 0 ? t->tok.pad_id : t->tok.end_id >= 0 ? t->tok.end_id : 0; /* 0: kd import text's */
  return KD_OK;
}

int kd_seq_task_rows(const kd_seq_task *t, const kd_source *src, kd_err *e) {
  char who[KD_PATH_MAX + 384];
  kd_infer_who(who, sizeof who, t->m, t->ckpt);
  return kd_fit_rows(t->m, who, src, 1, e);
}

void kd_seq_task_close(kd_seq_task *t) {
  kd_model_free(t->m);
  free(t->params);
  kd_tokenizer_free(&t->tok);
  memset(t, 0, sizeof *t);
}

int kd_seq_row(const kd_seq_task *t, const int32_t *tokens, int64_t row, int *plen, int *ref_len, kd_err *e) {
  const int W = t->width;
  int p = 0;
  while (p < W && tokens[p] != t->tok.sep_id) p++;
  if (p == W)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: /%s/tokens row %lld has no separator (id %d): not a prompt-completion row",
                   t->data, t->split, (long long)row, t->tok.sep_id);
  if (p == 0 || p + 1 >= W)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: /%s/tokens row %lld: the separator is at position %d of %d (%s)", t->data,
                   t->split, (long long)row, p, W, p == 0 ? "no source before it" : "no room for a target");
  *plen = p + 1;
  int n = 0;
  while (*plen + n < W && tokens[*plen + n] != t->tok.end_id && tokens[*plen + n] != t->tok.pad_id) n++;
  *ref_len = n;
  return KD_OK;
}

int kd_seq_text_row(const kd_seq_task *t, const uint8_t *mask, int64_t row, int *plen, int *ref_len, kd_err *e) {
  int L = t->width;
  while (L > 1 && !mask[L - 1]) L--; /* the last row of a split ends in padding */
  if (L < 2)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: /%s/tokens row %lld has %d token%s of text: no prompt and continuation to "
                   "take from it", t->data, t->split, (long long)row, L, L == 1 ? "" : "s");
  *plen = t->prompt_tokens < L - 1 ? t->prompt_tokens : L - 1;
  *ref_len = L - *plen;
  return KD_OK;
}

int kd_seq_progress(kd_progress *p, const kd_seqgen_cfg *c, MPI_Comm comm, const char *what, const char *unit,
                    int64_t total, kd_err *e) {
  int rank;
  MPI_Comm_rank(comm, &rank);
  if (kd_progress_init_on(p, c->progress ? c->progress : "off", c->progress_every > 0 ? c->progress_every : 10,
                          rank == 0, e))
    return e->code;
  kd_progress_begin(p, what, unit, total, 0, MPI_Wtime());
  return KD_OK;
}

int kd_seq_cfg_make(kd_seq_cfg *c, const char *decode, int64_t nbest, double length_penalty, double temperature,
                    int64_t top_k, int64_t seed, const kd_seq_task *t, kd_err *e) {
  memset(c, 0, sizeof *c);
  if (kd_decode_parse(decode, c, e)) return e->code;
  if (nbest > c->beam)
    return kd_fail(e, KD_ERR_USAGE, "--nbest %lld needs a beam at least as wide (--decode beam:K with K >= %lld)",
                   (long long)nbest, (long long)nbest);
  c->nbest = (int)nbest;
  c->length_penalty = length_penalty;
  c->temperature = temperature;
  c->top_k = (int)top_k;
  c->seed = (uint64_t)seed;
  c->end_id = t ? t->tok.end_id : -1;
  c->n_ids = t ? kd_fit_emit_ids(t->m, &t->tok) : 0;
  return KD_OK;
}
