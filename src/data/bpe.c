#include "data/bpe.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <utf8proc.h>
#if PCRE2_MAJOR < 10 || (PCRE2_MAJOR == 10 && PCRE2_MINOR < 34)
#error "kd needs PCRE2 10.34 or later (PCRE2_MATCH_INVALID_UTF)"
#endif

#include "core/rng.h"

/* ---- Pre-tokenization ---- */

enum { CL_WORD = 0, CL_PUNCT = 1, CL_NEWLINE = 2, CL_SPACE = 3 };

static int byte_class(uint8_t c) {
  if (c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')) return CL_WORD;
  if (c > 0x20 && c < 0x7f) return CL_PUNCT;
  return c == '\n' ? CL_NEWLINE : CL_SPACE;
}

/* A ' ' that starts the word or punctuation run after it. */
static int attaching_space(const uint8_t *p, size_t n, size_t i) {
  return p[i] == ' ' && i + 1 < n && byte_class(p[i + 1]) <= CL_PUNCT;
}

size_t kd_bpe_chunk_end(const uint8_t *p, size_t n, size_t i) {
  size_t j = i + (size_t)attaching_space(p, n, i);
  const int cls = byte_class(p[j]);
  /* scan at most one byte past the limit: a long run costs O(limit) per chunk */
  for (j++; j < n && j - i <= KD_BPE_MAX_CHUNK && byte_class(p[j]) == cls; j++)
    if (cls == CL_SPACE && attaching_space(p, n, j)) break;
  if (j - i <= KD_BPE_MAX_CHUNK) return j;
  j = i + KD_BPE_MAX_CHUNK;
  /* a UTF-8 lead byte has at most 3 continuation bytes: cut before the lead, not inside its sequence */
  for (int k = 0; k < 3 && (p[j] & 0xc0) == 0x80; k++) j--;
  return j;
}

/* GPT-2's pattern, the ecosystem's default pre-tokenizer (llama.cpp's "gpt-2", Hugging Face's
 * ByteLevel): contractions, a letter run, a digit run or a run of other characters (each with one
 * leading space), and whitespace (all of it but the last space before a word, unless it ends the text). */
#define GPT2_PATTERN "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

struct kd_bpe_splitter {
  int regex;                  /* 0: kd1, kd's byte classes (bpe.h) */
  int rc;                     /* PCRE2's error of the last match that failed */
  pcre2_code *code;
  pcre2_match_data *md;
};

/* A splitter by a regular expression: matches and the text between them are the chunks (Hugging Face's
 * Split pre-tokenizer with behavior "Isolated"). */
static int splitter_compile(kd_bpe_splitter **out, const char *pattern, const char *what, kd_err *e) {
  kd_bpe_splitter *s = kd_calloc(1, sizeof *s, "bpe pre-tokenizer", e);
  if (!s) return e->code;
  s->regex = 1;
  int err;
  PCRE2_SIZE at;
  /* Unicode classes for \p and \s; invalid UTF-8 is no match (those bytes become chunks of their own) */
  s->code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF,
                          &err, &at, NULL);
  s->md = s->code ? pcre2_match_data_create_from_pattern(s->code, NULL) : NULL;
  if (!s->md) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    const int compiled = s->code != NULL;
    kd_bpe_splitter_free(s);
    return kd_fail(e, KD_ERR_RUNTIME, "bpe: cannot compile %s with PCRE2 (%s at %zu)", what,
                   compiled ? "out of memory" : (const char *)msg, (size_t)at);
  }
  /* faster where PCRE2 has its JIT (the same matches); without it the interpreter, in windows */
  (void)pcre2_jit_compile(s->code, PCRE2_JIT_COMPLETE);
  *out = s;
  return KD_OK;
}

int kd_bpe_splitter_new(kd_bpe_splitter **out, const char *pre, kd_err *e) {
  *out = NULL;
  if (strcmp(pre, KD_BPE_PRE_GPT2) == 0) return splitter_compile(out, GPT2_PATTERN, "GPT-2's pattern", e);
  if (strcmp(pre, KD_BPE_PRE_KD1) != 0)
    return kd_fail(e, KD_ERR_RUNTIME, "bpe: pre-tokenizer '%s' is not known to kd %s (%s, %s, %s)", pre, KD_VERSION,
                   KD_BPE_PRE_GPT2, KD_BPE_PRE_KD1, KD_BPE_PRE_REGEX);
  *out = kd_calloc(1, sizeof **out, "bpe pre-tokenizer", e);
  return e->code;
}

int kd_bpe_splitter_new_pattern(kd_bpe_splitter **out, const char *pattern, kd_err *e) {
  *out = NULL;
  return splitter_compile(out, pattern, "the tokenizer's split pattern", e);
}

const char *kd_bpe_gpt2_pattern(void) { return GPT2_PATTERN; }

void kd_bpe_splitter_free(kd_bpe_splitter *s) {
  if (!s) return;
  pcre2_match_data_free(s->md);
  pcre2_code_free(s->code);
  free(s);
}

/* PCRE2's interpreter checks the UTF-8 of the whole subject on every call (its JIT does not), so matching
 * from i to the end of a long text would cost the text's length per chunk. The subject is a window after i
 * instead, widened while a match reaches its last character (the match might go on, and \s+(?!\S) looks one
 * character past it) or none is found in it. */
#define SPLIT_WINDOW 1024
#define UTF8_MAX 4

size_t kd_bpe_split_next(kd_bpe_splitter *s, const uint8_t *text, size_t n, size_t i) {
  if (!s->regex) return kd_bpe_chunk_end(text, n, i);
  for (size_t w = SPLIT_WINDOW;; w *= 2) {
    const size_t len = n - i < w ? n - i : w;
    const int whole = len == n - i;
    const int rc = pcre2_match(s->code, (PCRE2_SPTR)(text + i), len, 0, 0, s->md, NULL);
    if (rc == PCRE2_ERROR_NOMATCH && whole) return n; /* only bytes that are not UTF-8 remain: one chunk */
    if (rc == PCRE2_ERROR_NOMATCH) continue;
    if (rc < 0) {
      s->rc = rc;
      return i; /* no progress: the caller reports kd_bpe_split_error */
    }
    const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->md);
    if (!whole && ov[1] + UTF8_MAX >= len) continue;
    if (ov[0] > 0) return i + ov[0]; /* text before the match (or bytes that are not UTF-8): a chunk of its own */
    if (ov[1] > 0) return i + ov[1];
    /* an empty match (a pattern that allows one): the next character is a chunk of its own */
    size_t j = i + 1;
    while (j < n && (text[j] & 0xc0) == 0x80) j++;
    return j;
  }
}

int kd_bpe_split_error(const kd_bpe_splitter *s, size_t at, kd_err *e) {
  PCRE2_UCHAR msg[256];
  pcre2_get_error_message(s->rc, msg, sizeof msg);
  return kd_fail(e, KD_ERR_RUNTIME, "bpe: PCRE2 could not split the text at byte %zu (%s)", at, (const char *)msg);
}

/* ---- Shared helpers ---- */

static uint64_t hash_bytes(const uint8_t *p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
  return kd_mix64(h ^ n);
}

static uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t)(uint32_t)a << 32 | (uint32_t)b; }

/* p grown (doubling) to hold need elements of elem bytes; NULL and an error when memory runs out. */
static void *grow(void *p, size_t *cap, size_t need, size_t elem, const char *what, kd_err *e) {
  if (need <= *cap) return p;
  size_t c = *cap ? *cap : 16;
  while (c < need) c *= 2;
  void *g = realloc(p, c * elem);
  if (!g) {
    kd_fail(e, KD_ERR_RUNTIME, "bpe: out of memory (%zu bytes for %s)", c * elem, what);
    return NULL;
  }
  *cap = c;
  return g;
}

/* An open-addressing table of int32 indices, -1 empty, of mask + 1 slots. */
static int32_t *new_slots(size_t n_slots, kd_err *e) {
  int32_t *s = kd_malloc(sizeof(int32_t) * n_slots, "bpe hash table", e);
  if (s) memset(s, 0xff, sizeof(int32_t) * n_slots);
  return s;
}

/* ---- Training state ---- */

typedef struct pair_rec {
  int32_t a, b;
  int64_t count;      /* occurrences over all chunks, each unique chunk weighted by its count */
  int32_t *chunks;    /* chunks that held the pair when it was counted (stale or repeated ones are skipped) */
  int32_t n_chunks, cap_chunks;
  int32_t last;       /* the chunk listed last, so one visit of a chunk lists it once */
  int32_t step;       /* the step that last raised count */
} pair_rec;

typedef struct heap_ent {
  int64_t count;
  uint64_t key;  /* (a, b): ties go to the smaller */
  int32_t pair;
} heap_ent;

typedef struct trainer {
  size_t n_chunks;
  int64_t *weight;   /* occurrences of each unique chunk in the text */
  size_t *off;       /* chunk c's ids: tok[off[c], off[c] + len[c]) */
  uint32_t *len;
  int32_t *tok;
  int32_t *stamp;    /* the step that last merged inside the chunk */
  pair_rec *pairs;
  size_t n_pairs, cap_pairs;
  int32_t *slots;    /* pair key -> index into pairs */
  size_t mask;
  heap_ent *heap;    /* max-heap with lazy deletion: an entry is stale when its count is not the pair's */
  size_t n_heap, cap_heap;
  int32_t *touched;  /* pairs whose count rose in this step */
  size_t n_touched, cap_touched;
  int32_t step;
  uint8_t *part, *fresh; /* [the longest chunk] scratch of a merge inside a chunk */
} trainer;

static void trainer_free(trainer *tr) {
  for (size_t i = 0; i < tr->n_pairs; i++) free(tr->pairs[i].chunks);
  free(tr->weight);
  free(tr->off);
  free(tr->len);
  free(tr->tok);
  free(tr->stamp);
  free(tr->pairs);
  free(tr->slots);
  free(tr->heap);
  free(tr->touched);
  free(tr->part);
  free(tr->fresh);
}

/* ---- Unique chunks ---- */

typedef struct chunk_set {
  int32_t *slots;
  size_t mask, n, cap;
  size_t *start;     /* the chunk's first occurrence in the text */
  uint32_t *len;
  uint64_t *hash;
  int64_t *weight;
} chunk_set;

static void chunk_set_free(chunk_set *s) {
  free(s->slots);
  free(s->start);
  free(s->len);
  free(s->hash);
  free(s->weight);
}

static int chunk_set_rehash(chunk_set *s, kd_err *e) {
  const size_t mask = s->mask * 2 + 1;
  int32_t *slots = new_slots(mask + 1, e);
  if (!slots) return e->code;
  for (size_t c = 0; c < s->n; c++) {
    size_t k = s->hash[c] & mask;
    while (slots[k] >= 0) k = (k + 1) & mask;
    slots[k] = (int32_t)c;
  }
  free(s->slots);
  s->slots = slots;
  s->mask = mask;
  return KD_OK;
}

static int chunk_set_add(chunk_set *s, const uint8_t *text, size_t i, size_t len, kd_err *e) {
  const uint64_t h = hash_bytes(text + i, len);
  size_t k = h & s->mask;
  for (int32_t c; (c = s->slots[k]) >= 0; k = (k + 1) & s->mask)
    if (s->hash[c] == h && s->len[c] == len && memcmp(text + s->start[c], text + i, len) == 0) {
      s->weight[c]++;
      return KD_OK;
    }
  if (s->n >= INT32_MAX / 2) return kd_fail(e, KD_ERR_RUNTIME, "bpe: more than %d distinct chunks", INT32_MAX / 2);
  if (s->n == s->cap) {
    size_t cap = s->cap, c1 = cap, c2 = cap, c3 = cap;
    size_t *st = grow(s->start, &c1, s->n + 1, sizeof *st, "chunks", e);
    if (st) s->start = st;
    uint32_t *ln = st ? grow(s->len, &c2, s->n + 1, sizeof *ln, "chunks", e) : NULL;
    if (ln) s->len = ln;
    uint64_t *hs = ln ? grow(s->hash, &c3, s->n + 1, sizeof *hs, "chunks", e) : NULL;
    if (hs) s->hash = hs;
    int64_t *wt = hs ? grow(s->weight, &cap, s->n + 1, sizeof *wt, "chunks", e) : NULL;
    if (!wt) return e->code;
    s->weight = wt;
    s->cap = cap;
  }
  s->slots[k] = (int32_t)s->n;
  s->start[s->n] = i;
  s->len[s->n] = (uint32_t)len;
  s->hash[s->n] = h;
  s->weight[s->n++] = 1;
  return 2 * s->n > s->mask ? chunk_set_rehash(s, e) : KD_OK;
}

/* The text's unique chunks, their counts and their ids (the bytes) into tr. */
static int collect_chunks(trainer *tr, kd_bpe_splitter *sp, const uint8_t *text, size_t n, kd_err *e) {
  chunk_set s = {0};
  s.mask = 1023;
  s.slots = new_slots(s.mask + 1, e);
  for (size_t i = 0; s.slots && i < n;) {
    const size_t j = kd_bpe_split_next(sp, text, n, i);
    if (j == i) {
      kd_bpe_split_error(sp, i, e);
      break;
    }
    if (j - i > INT_MAX) { /* merge_chunk counts a chunk's ids in int */
      kd_fail(e, KD_ERR_RUNTIME, "bpe: a chunk of %zu bytes without a break", j - i);
      break;
    }
    if (chunk_set_add(&s, text, i, j - i, e)) break;
    i = j;
  }
  size_t total = 0, longest = 1;
  for (size_t c = 0; !e->code && c < s.n; c++) {
    total += s.len[c];
    longest = s.len[c] > longest ? s.len[c] : longest;
  }
  if (!e->code) {
    tr->part = kd_malloc(longest, "bpe merge scratch", e);
    tr->fresh = kd_malloc(longest, "bpe merge scratch", e);
  }
  if (!e->code) {
    tr->n_chunks = s.n;
    tr->off = kd_malloc(sizeof(size_t) * (s.n + 1), "bpe chunks", e);
    tr->tok = kd_malloc(sizeof(int32_t) * (total + 1), "bpe chunk ids", e);
    tr->stamp = kd_malloc(sizeof(int32_t) * (s.n + 1), "bpe chunks", e);
  }
  if (!e->code) {
    size_t pos = 0;
    for (size_t c = 0; c < s.n; c++) {
      tr->off[c] = pos;
      tr->stamp[c] = -1;
      for (size_t k = 0; k < s.len[c]; k++) tr->tok[pos++] = text[s.start[c] + k];
    }
    tr->weight = s.weight;
    tr->len = s.len;
    s.weight = NULL;
    s.len = NULL;
  }
  chunk_set_free(&s);
  return e->code;
}

/* ---- Pair counts ---- */

static int pairs_rehash(trainer *tr, kd_err *e) {
  const size_t mask = tr->mask * 2 + 1;
  int32_t *slots = new_slots(mask + 1, e);
  if (!slots) return e->code;
  for (size_t p = 0; p < tr->n_pairs; p++) {
    size_t k = kd_mix64(pair_key(tr->pairs[p].a, tr->pairs[p].b)) & mask;
    while (slots[k] >= 0) k = (k + 1) & mask;
    slots[k] = (int32_t)p;
  }
  free(tr->slots);
  tr->slots = slots;
  tr->mask = mask;
  return KD_OK;
}

/* The index of pair (a, b), added with count 0 when new. */
static int pair_get(trainer *tr, int32_t a, int32_t b, int32_t *out, kd_err *e) {
  size_t k = kd_mix64(pair_key(a, b)) & tr->mask;
  for (int32_t p; (p = tr->slots[k]) >= 0; k = (k + 1) & tr->mask)
    if (tr->pairs[p].a == a && tr->pairs[p].b == b) {
      *out = p;
      return KD_OK;
    }
  if (tr->n_pairs >= INT32_MAX / 2)
    return kd_fail(e, KD_ERR_RUNTIME, "bpe: more than %d distinct pairs", INT32_MAX / 2);
  pair_rec *g = grow(tr->pairs, &tr->cap_pairs, tr->n_pairs + 1, sizeof *g, "pairs", e);
  if (!g) return e->code;
  tr->pairs = g;
  *out = (int32_t)tr->n_pairs;
  tr->slots[k] = *out;
  tr->pairs[tr->n_pairs++] = (pair_rec){.a = a, .b = b, .last = -1, .step = -1};
  return 2 * tr->n_pairs > tr->mask ? pairs_rehash(tr, e) : KD_OK;
}

static int list_chunk(pair_rec *q, int32_t c, kd_err *e) {
  if (q->n_chunks == q->cap_chunks) {
    size_t cap = (size_t)q->cap_chunks;
    int32_t *g = grow(q->chunks, &cap, (size_t)q->n_chunks + 1, sizeof *g, "the pair index", e);
    if (!g) return e->code;
    q->chunks = g;
    q->cap_chunks = cap > INT32_MAX ? INT32_MAX : (int32_t)cap;
  }
  q->chunks[q->n_chunks++] = c;
  q->last = c;
  return KD_OK;
}

/* Add delta to the count of (a, b), which chunk c holds (or held). */
static int count_pair(trainer *tr, int32_t a, int32_t b, int64_t delta, int32_t c, kd_err *e) {
  int32_t p = -1;
  if (pair_get(tr, a, b, &p, e)) return e->code;
  pair_rec *q = &tr->pairs[p];
  q->count += delta;
  if (delta < 0) return KD_OK;
  if (q->last != c && list_chunk(q, c, e)) return e->code;
  if (q->step == tr->step) return KD_OK;
  q->step = tr->step;
  int32_t *g = grow(tr->touched, &tr->cap_touched, tr->n_touched + 1, sizeof *g, "pairs", e);
  if (!g) return e->code;
  tr->touched = g;
  tr->touched[tr->n_touched++] = p;
  return KD_OK;
}

/* ---- Max-heap of pairs by count ---- */

static int heap_above(const heap_ent *x, const heap_ent *y) {
  return x->count > y->count || (x->count == y->count && x->key < y->key);
}

static int heap_push(trainer *tr, int32_t p, kd_err *e) {
  heap_ent *g = grow(tr->heap, &tr->cap_heap, tr->n_heap + 1, sizeof *g, "the pair heap", e);
  if (!g) return e->code;
  tr->heap = g;
  heap_ent x = {tr->pairs[p].count, pair_key(tr->pairs[p].a, tr->pairs[p].b), p};
  size_t i = tr->n_heap++;
  for (; i > 0 && heap_above(&x, &g[(i - 1) / 2]); i = (i - 1) / 2) g[i] = g[(i - 1) / 2];
  g[i] = x;
  return KD_OK;
}

static heap_ent heap_pop(trainer *tr) {
  heap_ent *h = tr->heap, top = h[0], x = h[--tr->n_heap];
  size_t i = 0;
  for (;;) {
    size_t k = 2 * i + 1;
    if (k >= tr->n_heap) break;
    if (k + 1 < tr->n_heap && heap_above(&h[k + 1], &h[k])) k++;
    if (!heap_above(&h[k], &x)) break;
    h[i] = h[k];
    i = k;
  }
  if (tr->n_heap) h[i] = x;
  return top;
}

/* Push the pairs counted up in this step that could be merged (twice or more). */
static int push_touched(trainer *tr, kd_err *e) {
  for (size_t i = 0; i < tr->n_touched; i++)
    if (tr->pairs[tr->touched[i]].count >= 2 && heap_push(tr, tr->touched[i], e)) return e->code;
  tr->n_touched = 0;
  return KD_OK;
}

/* The most frequent pair (count >= 2, ties: the smaller key), or -1. A popped entry whose count fell since
 * it was pushed goes back with the pair's count; one below the count is stale (a newer entry exists). */
static int32_t best_pair(trainer *tr, kd_err *e) {
  while (tr->n_heap) {
    const heap_ent top = heap_pop(tr);
    const int64_t c = tr->pairs[top.pair].count;
    if (c == top.count) return top.pair;
    if (c < top.count && c >= 2 && heap_push(tr, top.pair, e)) return -1;
  }
  return -1;
}

/* ---- Merging ---- */

/* Merge every (a, b) of chunk c, left to right, into x. Only the pairs that touch a merged position change:
 * the old ones are taken off the counts, the new ones (touching an x) added. */
static int merge_chunk(trainer *tr, int32_t c, int32_t a, int32_t b, int32_t x, kd_err *e) {
  int32_t *w = tr->tok + tr->off[c];
  const int L = (int)tr->len[c];
  const int64_t wt = tr->weight[c];
  uint8_t *part = tr->part, *fresh = tr->fresh; /* part: 1 first of a merge, 2 second */
  memset(part, 0, (size_t)L);
  memset(fresh, 0, (size_t)L);
  int found = 0;
  for (int i = 0; i + 1 < L; i++)
    if (w[i] == a && w[i + 1] == b) {
      part[i] = 1;
      part[i + 1] = 2;
      found = 1;
      i++;
    }
  if (!found) return KD_OK;
  for (int i = 0; i + 1 < L; i++)
    if ((part[i] || part[i + 1]) && count_pair(tr, w[i], w[i + 1], -wt, c, e)) return e->code;
  int m = 0;
  for (int i = 0; i < L; i++) {
    fresh[m] = part[i] == 1;
    w[m++] = part[i] == 1 ? x : w[i];
    i += part[i] == 1;
  }
  tr->len[c] = (uint32_t)m;
  for (int i = 0; i + 1 < m; i++)
    if ((fresh[i] || fresh[i + 1]) && count_pair(tr, w[i], w[i + 1], wt, c, e)) return e->code;
  return KD_OK;
}

/* Apply merge p (making id x) in the chunks its index lists; each chunk once. */
static int apply_merge(trainer *tr, int32_t p, int32_t x, kd_err *e) {
  const int32_t a = tr->pairs[p].a, b = tr->pairs[p].b;
  int32_t *list = tr->pairs[p].chunks;
  const int32_t n = tr->pairs[p].n_chunks;
  /* detached: the pair is gone once merged, and the counts below may move tr->pairs */
  tr->pairs[p].chunks = NULL;
  tr->pairs[p].n_chunks = tr->pairs[p].cap_chunks = 0;
  for (int32_t k = 0; k < n && !e->code; k++) {
    const int32_t c = list[k];
    if (tr->stamp[c] == tr->step) continue;
    tr->stamp[c] = tr->step;
    merge_chunk(tr, c, a, b, x, e);
  }
  free(list);
  return e->code;
}

static int count_all_pairs(trainer *tr, kd_err *e) {
  tr->mask = 1023;
  tr->slots = new_slots(tr->mask + 1, e);
  for (size_t c = 0; !e->code && c < tr->n_chunks; c++) {
    const int32_t *w = tr->tok + tr->off[c];
    for (size_t i = 0; i + 1 < tr->len[c]; i++)
      if (count_pair(tr, w[i], w[i + 1], tr->weight[c], (int32_t)c, e)) break;
  }
  return e->code ? e->code : push_touched(tr, e);
}

/* ---- The tokenizer record ---- */

/* Vocabulary of the 256 bytes and the merges: id 256 + i is the bytes of merges[i][0] then [1]. */
static int fill_tokenizer(kd_tokenizer *t, int32_t *merges, int n_merges, kd_err *e) {
  memset(t, 0, sizeof *t);
  snprintf(t->kind, sizeof t->kind, "bpe");
  t->pad_id = t->sep_id = t->end_id = -1;
  t->vocab = 256 + n_merges;
  t->n_merges = n_merges;
  t->merges = merges;
  t->offsets = kd_malloc(sizeof(int64_t) * (size_t)(t->vocab + 1), "bpe vocabulary", e);
  if (!t->offsets) return e->code;
  int64_t total = 256;
  for (int i = 0; i <= 256; i++) t->offsets[i] = i;
  for (int i = 0; i < n_merges; i++) {
    const int32_t a = merges[2 * i], b = merges[2 * i + 1];
    total += (t->offsets[a + 1] - t->offsets[a]) + (t->offsets[b + 1] - t->offsets[b]);
    t->offsets[257 + i] = total;
  }
  t->bytes = kd_malloc((size_t)total, "bpe vocabulary", e);
  if (!t->bytes) return e->code;
  for (int i = 0; i < 256; i++) t->bytes[i] = (uint8_t)i;
  for (int i = 0; i < n_merges; i++) {
    const int32_t a = merges[2 * i], b = merges[2 * i + 1];
    const int64_t la = t->offsets[a + 1] - t->offsets[a], lb = t->offsets[b + 1] - t->offsets[b];
    memcpy(t->bytes + t->offsets[256 + i], t->bytes + t->offsets[a], (size_t)la);
    memcpy(t->bytes + t->offsets[256 + i] + la, t->bytes + t->offsets[b], (size_t)lb);
  }
  return KD_OK;
}

static int learn_merges(trainer *tr, int32_t *merges, int max_merges, int *n_merges, kd_err *e) {
  *n_merges = 0;
  if (count_all_pairs(tr, e)) return e->code;
  for (int m = 0; m < max_merges; m++) {
    const int32_t p = best_pair(tr, e);
    if (p < 0) break;
    merges[2 * m] = tr->pairs[p].a;
    merges[2 * m + 1] = tr->pairs[p].b;
    tr->step = m + 1;
    if (apply_merge(tr, p, 256 + m, e) || push_touched(tr, e)) return e->code;
    *n_merges = m + 1;
  }
  return e->code;
}

int kd_bpe_train(kd_tokenizer *t, const uint8_t *text, size_t n, int V, const char *pre, kd_err *e) {
  memset(t, 0, sizeof *t);
  if (V < 256 || V > KD_BPE_MAX_VOCAB)
    return kd_fail(e, KD_ERR_USAGE, "bpe: a vocabulary of %d ids is outside [256, %d]", V, KD_BPE_MAX_VOCAB);
  kd_bpe_splitter *sp;
  if (kd_bpe_splitter_new(&sp, pre, e)) return e->code;
  int32_t *merges = kd_malloc(sizeof(int32_t) * 2 * (size_t)(V - 256 + 1), "bpe merges", e);
  trainer tr = {0};
  int n_merges = 0;
  if (merges && !collect_chunks(&tr, sp, text, n, e)) learn_merges(&tr, merges, V - 256, &n_merges, e);
  trainer_free(&tr);
  kd_bpe_splitter_free(sp);
  if (e->code) {
    free(merges);
    return e->code;
  }
  if (fill_tokenizer(t, merges, n_merges, e)) { /* what fill_tokenizer holds (tokenizer.c calls this file: no call back) */
    free(t->offsets);
    free(t->bytes);
    free(t->merges);
    memset(t, 0, sizeof *t);
  }
  else snprintf(t->pre, sizeof t->pre, "%s", pre);
  return e->code;
}

/* ---- Encoding ---- */

#define EMPTY_KEY UINT64_MAX

struct kd_bpe_encoder {
  uint64_t *keys;   /* open addressing: pair key -> rank (EMPTY_KEY: free slot) */
  int32_t *ranks;
  size_t mask;
  const int32_t *made;    /* [ranks]: the id each merge makes (NULL: 256 + rank), the encoder's copy */
  int32_t *made_copy;
  int32_t byte_id[256];   /* the id of each single byte */
  /* ignore_merges: text tokens by their bytes (open addressing over ids; -1 free) */
  int32_t *whole;
  size_t whole_mask;
  int64_t *offsets;       /* copies of the vocabulary, for that lookup */
  uint8_t *bytes;
  int nfc;
  kd_bpe_splitter *split; /* the tokenizer's pre-tokenizer */
  int32_t *w;             /* [3 cap_w]: a chunk's ids and its links */
  uint64_t *heap;         /* [3 cap_w]: its candidate merges */
  size_t cap_w;
  uint8_t *norm;          /* the normalized text */
  size_t cap_norm;
};

void kd_bpe_encoder_free(kd_bpe_encoder *enc) {
  if (!enc) return;
  free(enc->keys);
  free(enc->ranks);
  free(enc->made_copy);
  free(enc->whole);
  free(enc->offsets);
  free(enc->bytes);
  free(enc->w);
  free(enc->heap);
  free(enc->norm);
  kd_bpe_splitter_free(enc->split);
  free(enc);
}

static int entry_is(const kd_tokenizer *t, int id, const uint8_t *p, int64_t len) {
  return t->offsets[id + 1] - t->offsets[id] == len && memcmp(t->bytes + t->offsets[id], p, (size_t)len) == 0;
}

static int is_text(const kd_tokenizer *t, int id) { return !t->token_kind || t->token_kind[id] == KD_TOKEN_TEXT; }

/* The id of each byte: kd's own BPE has them at 0..255; a Hugging Face vocabulary has one text token of each
 * single byte somewhere. */
static int find_byte_ids(const kd_tokenizer *t, int32_t byte_id[256], kd_err *e) {
  for (int b = 0; b < 256; b++) byte_id[b] = t->merge_ids ? -1 : b;
  if (!t->merge_ids) return KD_OK;
  for (int id = 0; id < t->vocab; id++)
    if (is_text(t, id) && t->offsets[id + 1] - t->offsets[id] == 1 && byte_id[t->bytes[t->offsets[id]]] < 0)
      byte_id[t->bytes[t->offsets[id]]] = id;
  for (int b = 0; b < 256; b++)
    if (byte_id[b] < 0)
      return kd_fail(e, KD_ERR_RUNTIME, "this 'bpe' /tokenizer has no token of the byte 0x%02x: a byte-level BPE "
                     "spells every byte", b);
  return KD_OK;
}

/* t is a byte-level BPE: for kd's own, bytes first and merge i the entry 256 + i; for every one, each merge's
 * entry the concatenation of its two ids. */
static int check_bpe(const kd_tokenizer *t, kd_err *e) {
  const char *why = NULL;
  int at = 0;
  const int own = t->merge_ids == NULL;
  if (t->n_merges < 0 || !t->offsets || (own && t->vocab < 256 + t->n_merges)) why = "fewer entries than 256 + merges";
  for (int i = 0; own && !why && i < 256; i++) {
    const uint8_t b = (uint8_t)i;
    at = i;
    if (!entry_is(t, i, &b, 1)) why = "an entry below 256 that is not its byte";
  }
  for (int i = 0; !why && i < t->n_merges; i++) {
    const int32_t a = t->merges[2 * i], b = t->merges[2 * i + 1], x = own ? 256 + i : t->merge_ids[i];
    at = x;
    if (a < 0 || b < 0 || (own && (a >= x || b >= x)) || a >= t->vocab || b >= t->vocab || x < 0 || x >= t->vocab) {
      why = own ? "a merge of an id that does not precede it" : "a merge of an id outside the vocabulary";
      break;
    }
    const int64_t la = t->offsets[a + 1] - t->offsets[a], lb = t->offsets[b + 1] - t->offsets[b];
    const uint8_t *p = t->bytes + t->offsets[x];
    if (t->offsets[x + 1] - t->offsets[x] != la + lb || !entry_is(t, a, p, la) || !entry_is(t, b, p + la, lb))
      why = "an entry that is not the concatenation of its merge";
  }
  if (!why) return KD_OK;
  return kd_fail(e, KD_ERR_RUNTIME, "this 'bpe' /tokenizer is not a byte-level BPE kd can apply (%s: id %d): kd decodes "
                 "its ids but cannot encode text with it", why, at);
}

static int add_merges(kd_bpe_encoder *enc, const kd_tokenizer *t, kd_err *e) {
  size_t slots = 16;
  while (slots < 2 * (size_t)t->n_merges) slots *= 2;
  enc->mask = slots - 1;
  enc->keys = kd_malloc(sizeof(uint64_t) * slots, "bpe encoder", e);
  enc->ranks = kd_malloc(sizeof(int32_t) * slots, "bpe encoder", e);
  if (t->merge_ids) {
    enc->made = enc->made_copy = kd_malloc(sizeof(int32_t) * (size_t)(t->n_merges ? t->n_merges : 1), "bpe encoder", e);
    if (enc->made_copy) memcpy(enc->made_copy, t->merge_ids, sizeof(int32_t) * (size_t)t->n_merges);
  }
  if (e->code) return e->code;
  for (size_t k = 0; k < slots; k++) enc->keys[k] = EMPTY_KEY;
  for (int i = 0; i < t->n_merges; i++) {
    const uint64_t key = pair_key(t->merges[2 * i], t->merges[2 * i + 1]);
    size_t k = kd_mix64(key) & enc->mask;
    while (enc->keys[k] != EMPTY_KEY && enc->keys[k] != key) k = (k + 1) & enc->mask;
    if (enc->keys[k] == key) continue; /* a repeated pair: its first (lowest) rank is the one that applies */
    enc->keys[k] = key;
    enc->ranks[k] = i;
  }
  return KD_OK;
}

/* ignore_merges: the text tokens by their bytes (the first id of equal bytes wins). */
static int add_whole_tokens(kd_bpe_encoder *enc, const kd_tokenizer *t, kd_err *e) {
  size_t slots = 16;
  while (slots < 2 * (size_t)t->vocab) slots *= 2;
  enc->whole_mask = slots - 1;
  enc->whole = kd_malloc(sizeof(int32_t) * slots, "bpe encoder", e);
  enc->offsets = kd_malloc(sizeof(int64_t) * ((size_t)t->vocab + 1), "bpe encoder", e);
  enc->bytes = kd_malloc((size_t)t->offsets[t->vocab] + 1, "bpe encoder", e);
  if (e->code) return e->code;
  memcpy(enc->offsets, t->offsets, sizeof(int64_t) * ((size_t)t->vocab + 1));
  memcpy(enc->bytes, t->bytes, (size_t)t->offsets[t->vocab]);
  for (size_t k = 0; k < slots; k++) enc->whole[k] = -1;
  for (int id = 0; id < t->vocab; id++) {
    if (!is_text(t, id)) continue;
    const uint8_t *p = t->bytes + t->offsets[id];
    const size_t len = (size_t)(t->offsets[id + 1] - t->offsets[id]);
    size_t k = hash_bytes(p, len) & enc->whole_mask;
    int dup = 0;
    for (; enc->whole[k] >= 0; k = (k + 1) & enc->whole_mask)
      if ((dup = entry_is(t, enc->whole[k], p, (int64_t)len))) break;
    if (!dup) enc->whole[k] = id;
  }
  return KD_OK;
}

static int32_t whole_token(const kd_bpe_encoder *enc, const uint8_t *p, size_t len) {
  for (size_t k = hash_bytes(p, len) & enc->whole_mask; enc->whole[k] >= 0; k = (k + 1) & enc->whole_mask) {
    const int32_t id = enc->whole[k];
    if ((size_t)(enc->offsets[id + 1] - enc->offsets[id]) == len && memcmp(enc->bytes + enc->offsets[id], p, len) == 0)
      return id;
  }
  return -1;
}

int kd_bpe_encoder_new(kd_bpe_encoder **out, const kd_tokenizer *t, kd_err *e) {
  *out = NULL;
  if (check_bpe(t, e)) return e->code;
  kd_bpe_encoder *enc = kd_calloc(1, sizeof *enc, "bpe encoder", e);
  if (!enc) return e->code;
  enc->nfc = strcmp(t->normalizer, "nfc") == 0;
  if (t->normalizer[0] && !enc->nfc)
    kd_fail(e, KD_ERR_RUNTIME, "bpe: normalizer '%s' is not known to kd %s (nfc)", t->normalizer, KD_VERSION);
  if (!e->code) find_byte_ids(t, enc->byte_id, e);
  if (!e->code) add_merges(enc, t, e);
  if (!e->code && t->ignore_merges) add_whole_tokens(enc, t, e);
  if (!e->code) {
    if (strcmp(t->pre, KD_BPE_PRE_REGEX) == 0) {
      if (!t->pattern) kd_fail(e, KD_ERR_RUNTIME, "bpe: a 'regex' pre-tokenizer without its pattern");
      else kd_bpe_splitter_new_pattern(&enc->split, t->pattern, e);
    } else {
      kd_bpe_splitter_new(&enc->split, t->pre[0] ? t->pre : KD_BPE_PRE_KD1, e);
    }
  }
  if (e->code) {
    kd_bpe_encoder_free(enc);
    return e->code;
  }
  *out = enc;
  return KD_OK;
}

static int32_t rank_of(const kd_bpe_encoder *enc, int32_t a, int32_t b) {
  const uint64_t key = pair_key(a, b);
  for (size_t k = kd_mix64(key) & enc->mask; enc->keys[k] != EMPTY_KEY; k = (k + 1) & enc->mask)
    if (enc->keys[k] == key) return enc->ranks[k];
  return INT32_MAX;
}

/* A min-heap of (rank, position) keys: the next merge to try is the lowest rank, leftmost. */
static void merge_push(uint64_t *h, size_t *n, uint64_t key) {
  size_t i = (*n)++;
  while (i > 0 && h[(i - 1) / 2] > key) {
    h[i] = h[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  h[i] = key;
}

static uint64_t merge_pop(uint64_t *h, size_t *n) {
  const uint64_t top = h[0], last = h[--(*n)];
  size_t i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= *n) break;
    if (c + 1 < *n && h[c + 1] < h[c]) c++;
    if (h[c] >= last) break;
    h[i] = h[c];
    i = c;
  }
  if (*n) h[i] = last;
  return top;
}

/* The pair starting at symbol i, if it has a merge, onto the heap. */
static void push_pair(const kd_bpe_encoder *enc, const int32_t *id, const int32_t *next, int32_t i, uint64_t *h,
                      size_t *n) {
  if (i < 0 || next[i] < 0) return;
  const int32_t r = rank_of(enc, id[i], id[next[i]]);
  if (r != INT32_MAX) merge_push(h, n, (uint64_t)r << 32 | (uint32_t)i);
}

/* One chunk into w [len] (scratch: w holds 3 len ints, heap 3 len keys); returns the id count. Merges are applied
 * one at a time, the lowest rank first and of equal ranks the leftmost, as Hugging Face's BPE applies them (each
 * merge makes at most two new pairs, so the heap holds at most 3 len keys). For kd's own merges, whose parts are
 * always made by earlier merges, this is the same as applying each rank to all its occurrences in turn. */
static size_t encode_chunk(const kd_bpe_encoder *enc, const uint8_t *p, size_t len, int32_t *w, uint64_t *heap) {
  if (enc->whole) {
    const int32_t id = whole_token(enc, p, len);
    if (id >= 0) {
      w[0] = id;
      return 1;
    }
  }
  int32_t *id = w, *prev = w + len, *next = w + 2 * len;
  const int32_t L = (int32_t)len;
  for (int32_t i = 0; i < L; i++) {
    id[i] = enc->byte_id[p[i]];
    prev[i] = i - 1;
    next[i] = i + 1 < L ? i + 1 : -1;
  }
  size_t n = 0;
  for (int32_t i = 0; i + 1 < L; i++) push_pair(enc, id, next, i, heap, &n);
  while (n) {
    const uint64_t key = merge_pop(heap, &n);
    const int32_t r = (int32_t)(key >> 32), i = (int32_t)(uint32_t)key;
    if (id[i] < 0 || next[i] < 0 || rank_of(enc, id[i], id[next[i]]) != r) continue; /* stale: merged since */
    const int32_t j = next[i];
    id[i] = enc->made ? enc->made[r] : 256 + r;
    id[j] = -1;
    next[i] = next[j];
    if (next[j] >= 0) prev[next[j]] = i;
    push_pair(enc, id, next, prev[i], heap, &n);
    push_pair(enc, id, next, i, heap, &n);
  }
  size_t m = 0;
  for (int32_t i = 0; i >= 0; i = next[i]) w[m++] = id[i]; /* in place: m <= i at every step */
  return m;
}

/* NFC of text[0, len) into enc->norm: each run of valid UTF-8 normalized, a line at a time (no character composes
 * with a newline, and utf8proc's memory stays that of a line), other bytes kept as they are. */
static int normalize_nfc(kd_bpe_encoder *enc, const uint8_t *text, size_t len, size_t *out_len, kd_err *e) {
  size_t pos = 0;
  for (size_t i = 0; i < len;) {
    size_t j = i;
    utf8proc_int32_t c;
    int line_end = 0;
    for (utf8proc_ssize_t k; !line_end && j < len && (k = utf8proc_iterate(text + j, (utf8proc_ssize_t)(len - j), &c)) > 0;) {
      j += (size_t)k;
      line_end = c == '\n';
    }
    uint8_t *run = NULL;
    utf8proc_ssize_t m = 0;
    if (j > i) {
      m = utf8proc_map(text + i, (utf8proc_ssize_t)(j - i), &run, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
      if (m < 0) return kd_fail(e, KD_ERR_RUNTIME, "bpe: NFC of the text at byte %zu failed (%s)", i, utf8proc_errmsg(m));
    }
    const size_t bad = j < len && !line_end ? 1 : 0; /* the byte that is not UTF-8, which stopped the run */
    if (pos + (size_t)m + bad > enc->cap_norm) {
      size_t cap = enc->cap_norm ? enc->cap_norm : 4096;
      while (cap < pos + (size_t)m + bad) cap *= 2;
      uint8_t *p = realloc(enc->norm, cap);
      if (!p) {
        free(run);
        return kd_fail(e, KD_ERR_RUNTIME, "bpe: out of memory for the normalized text (%zu bytes)", cap);
      }
      enc->norm = p;
      enc->cap_norm = cap;
    }
    if (m) memcpy(enc->norm + pos, run, (size_t)m);
    free(run);
    pos += (size_t)m;
    if (bad) enc->norm[pos++] = text[j];
    i = j + bad;
  }
  *out_len = pos;
  return KD_OK;
}

static int encode_text(kd_bpe_encoder *enc, const uint8_t *text, size_t len, int32_t *ids, size_t cap, size_t *n,
                       kd_err *e);

int kd_bpe_encoder_encode(kd_bpe_encoder *enc, const uint8_t *text, size_t len, int32_t *ids, size_t cap, size_t *n,
                          kd_err *e) {
  *n = 0;
  if (enc->nfc) {
    if (normalize_nfc(enc, text, len, &len, e)) return e->code;
    text = enc->norm;
  }
  return encode_text(enc, text, len, ids, cap, n, e);
}

int kd_bpe_encoder_encode_alloc(kd_bpe_encoder *enc, const uint8_t *text, size_t len, int32_t **ids, size_t *n,
                                kd_err *e) {
  *n = 0;
  if (enc->nfc) {
    if (normalize_nfc(enc, text, len, &len, e)) return e->code;
    text = enc->norm;
  }
  /* a token holds one byte at least */
  if (!(*ids = kd_malloc(sizeof(int32_t) * (len + 1), "token ids", e))) return e->code;
  return encode_text(enc, text, len, *ids, len, n, e);
}

static int encode_text(kd_bpe_encoder *enc, const uint8_t *text, size_t len, int32_t *ids, size_t cap, size_t *n,
                       kd_err *e) {
  for (size_t i = 0; i < len;) {
    const size_t j = kd_bpe_split_next(enc->split, text, len, i);
    if (j == i) return kd_bpe_split_error(enc->split, i, e);
    if (j - i > enc->cap_w) { /* a chunk longer than any before: its scratch, doubled */
      if (j - i > INT32_MAX / 4) return kd_fail(e, KD_ERR_RUNTIME, "bpe: a chunk of %zu bytes is too long", j - i);
      size_t c = enc->cap_w ? enc->cap_w : 64;
      while (c < j - i) c *= 2;
      int32_t *w = realloc(enc->w, sizeof(int32_t) * 3 * c);
      uint64_t *h = w ? realloc(enc->heap, sizeof(uint64_t) * 3 * c) : NULL;
      if (w) enc->w = w;
      if (h) enc->heap = h;
      if (!w || !h) return kd_fail(e, KD_ERR_RUNTIME, "bpe: out of memory for a chunk of %zu bytes", j - i);
      enc->cap_w = c;
    }
    const size_t m = encode_chunk(enc, text + i, j - i, enc->w, enc->heap);
    if (*n + m > cap) return kd_fail(e, KD_ERR_USAGE, "the text is longer than %zu tokens", cap);
    memcpy(ids + *n, enc->w, sizeof(int32_t) * m);
    *n += m;
    i = j;
  }
  return KD_OK;
}

int kd_bpe_encode(const kd_tokenizer *t, const uint8_t *text, size_t len, int32_t *ids, int cap, int *n, kd_err *e) {
  *n = 0;
  kd_bpe_encoder *enc;
  if (kd_bpe_encoder_new(&enc, t, e)) return e->code;
  size_t got = 0;
  kd_bpe_encoder_encode(enc, text, len, ids, cap > 0 ? (size_t)cap : 0, &got, e);
  kd_bpe_encoder_free(enc);
  *n = (int)got;
  return e->code;
}
