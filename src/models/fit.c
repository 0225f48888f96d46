#include "models/fit.h"

#include <stdio.h>
#include <string.h>

static const char *kind_name(kd_input k) { return k == KD_INPUT_TOKENS ? "token" : "feature"; }

int kd_fit_split(const kd_model *m, const char *who, const char *data, const char *split, const kd_split_info *info,
                 kd_err *e) {
  if (info->kind != m->input)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: /%s holds %s rows but %s reads %s rows (/%s/%s)", data, split,
                   kind_name(info->kind), who, kind_name(m->input), split,
                   m->input == KD_INPUT_TOKENS ? "tokens" : "x");
  if (info->kind == KD_INPUT_FEATURES && info->width != m->in_dim)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: /%s/x has %d features per row but %s takes %d", data, split, info->width, who,
                   m->in_dim);
  if (info->kind == KD_INPUT_TOKENS && info->width > m->ctx)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: /%s/tokens rows have %d positions but %s has a context of %d", data, split,
                   info->width, who, m->ctx);
  return KD_OK;
}

/* The tokenizer record of the rows' file against the model's vocabulary. */
static int fit_tokenizer(const kd_model *m, const char *who, const kd_source *src, kd_err *e) {
  const int tv = kd_source_vocab(src);
  if (m->input != KD_INPUT_TOKENS || tv <= m->out_dim) return KD_OK;
  return kd_fail(e, KD_ERR_RUNTIME,
                 "%s: /tokenizer has %d ids but %s has a vocabulary of %d: ids %d..%d could not be read or predicted "
                 "(the model's vocabulary must hold the tokenizer's; a larger one is padding)",
                 kd_source_path(src), tv, who, m->out_dim, m->out_dim, tv - 1);
}

int kd_fit_rows(const kd_model *m, const char *who, const kd_source *src, int allow_unlabelled, kd_err *e) {
  const kd_split_info info = {1, kd_source_kind(src), kd_source_total(src), kd_source_width(src)};
  if (kd_fit_split(m, who, kd_source_path(src), kd_source_split(src), &info, e) || fit_tokenizer(m, who, src, e))
    return e->code;
  const int tv = kd_source_vocab(src);
  const int limit = m->input == KD_INPUT_TOKENS && tv > 0 && tv < m->out_dim ? tv : m->out_dim;
  if (!kd_source_validate(src, limit, allow_unlabelled, e)) return KD_OK;
  if (limit < m->out_dim) { /* say where the limit comes from */
    const size_t used = strlen(e->msg);
    snprintf(e->msg + used, sizeof e->msg - used, " (the ids of its /tokenizer record; %s's vocabulary of %d pads it)",
             who, m->out_dim);
  }
  return e->code;
}

int kd_fit_file(const kd_model *m, const char *who, const char *data, const char *split, int64_t lo, int64_t hi,
                int allow_unlabelled, int64_t *targets, kd_err *e) {
  kd_split_info info;
  if (kd_source_probe(data, split, &info, e)) return e->code;
  if (!info.present)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: dataset /%s/%s is missing", data, split,
                   m->input == KD_INPUT_TOKENS ? "tokens" : "x");
  if (kd_fit_split(m, who, data, split, &info, e)) return e->code;
  /* pieces of about 16 M values: a bounded memory whatever the split's size */
  const int64_t piece = (int64_t)(((size_t)16 << 20) / (size_t)(info.width > 0 ? info.width : 1)) + 1;
  if (targets) *targets = 0;
  for (int64_t a = lo; a < hi; a += piece) {
    kd_source *part;
    if (kd_source_open(&part, data, split, a, a + piece < hi ? a + piece : hi, e)) return e->code;
    const int rc = kd_fit_rows(m, who, part, allow_unlabelled, e);
    if (targets) *targets += kd_source_targets(part);
    kd_source_free(part);
    if (rc) return rc;
  }
  return KD_OK;
}

int kd_fit_targets(int64_t total, const char *data, const char *split, kd_input kind, kd_err *e) {
  if (total > 0) return KD_OK;
  if (kind == KD_INPUT_TOKENS)
    return kd_fail(e, KD_ERR_RUNTIME,
                   "%s: no target positions in /%s: /%s/mask is all zeros (at the positions after the first), so "
                   "there is no loss to compute",
                   data, split, split);
  return kd_fail(e, KD_ERR_RUNTIME, "%s: no labelled row in /%s (every /%s/y is -1): no accuracy or loss to measure",
                 data, split, split);
}

/* The first difference of two records, or NULL. */
static const char *record_difference(const kd_tokenizer *a, const kd_tokenizer *b) {
  if (strcmp(a->kind, b->kind) != 0) return "kind";
  if (a->vocab != b->vocab) return "id count";
  if (a->vocab > 0 && memcmp(a->offsets, b->offsets, sizeof(int64_t) * (size_t)(a->vocab + 1)) != 0) return "entries";
  if (a->vocab > 0 && memcmp(a->bytes, b->bytes, (size_t)a->offsets[a->vocab]) != 0) return "entries";
  if (a->n_merges != b->n_merges ||
      (a->n_merges && memcmp(a->merges, b->merges, sizeof(int32_t) * 2 * (size_t)a->n_merges) != 0))
    return "merges";
  if (a->sep_id != b->sep_id || a->end_id != b->end_id || a->pad_id != b->pad_id) return "special ids";
  if (strcmp(a->pre, b->pre) != 0) return "pre-tokenizers";
  if ((a->pattern == NULL) != (b->pattern == NULL) || (a->pattern && strcmp(a->pattern, b->pattern) != 0))
    return "split patterns";
  if (strcmp(a->normalizer, b->normalizer) != 0 || a->ignore_merges != b->ignore_merges) return "normalizers";
  if ((a->merge_ids == NULL) != (b->merge_ids == NULL) ||
      (a->merge_ids && memcmp(a->merge_ids, b->merge_ids, sizeof(int32_t) * (size_t)a->n_merges) != 0))
    return "merges";
  if ((a->token_kind == NULL) != (b->token_kind == NULL) ||
      (a->token_kind && memcmp(a->token_kind, b->token_kind, (size_t)a->vocab) != 0))
    return "token kinds";
  return NULL;
}

int kd_tokenizer_same(const kd_tokenizer *a, const kd_tokenizer *b) { return record_difference(a, b) == NULL; }

int kd_fit_tokenizers(const char *who, const char *ckpt, const char *data, kd_err *e) {
  return kd_fit_tokenizer_at(who, ckpt, data, "/tokenizer", e);
}

int kd_fit_tokenizer_at(const char *who, const char *ckpt, const char *data, const char *group, kd_err *e) {
  kd_tokenizer a, b;
  int has_a = 0, has_b = 0;
  memset(&b, 0, sizeof b);
  if (kd_tokenizer_read(&a, ckpt, &has_a, e) || kd_tokenizer_read_at(&b, data, group, &has_b, e)) {
    kd_tokenizer_free(&a);
    return e->code;
  }
  const char *diff = has_a && has_b ? record_difference(&a, &b) : NULL;
  if (diff)
    kd_fail(e, KD_ERR_RUNTIME,
            "%s: its /tokenizer (%s, %d ids) is not the %s of %s (%s, %d ids; the %s differ): the model would read "
            "every id as another token (tokenize the data with the model's tokenizer)",
            who, a.kind, a.vocab, group, data, b.kind, b.vocab, diff);
  kd_tokenizer_free(&a);
  kd_tokenizer_free(&b);
  return e->code;
}

int kd_fit_emit_ids(const kd_model *m, const kd_tokenizer *tok) {
  return tok && tok->vocab > 0 && tok->vocab < m->out_dim ? tok->vocab : m->out_dim;
}
