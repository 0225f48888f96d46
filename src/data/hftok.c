#include "data/hftok.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomic.h"
#include "core/json.h"
#include "core/rng.h"
#include "data/bpe.h"

/* ---- GPT-2's byte-to-unicode map ---- */

void kd_hftok_byte_chars(char out[256][3], int len[256]) {
  int next = 256;
  for (int b = 0; b < 256; b++) {
    /* the printable bytes stand for themselves, the others (controls, space, 127-160, 173) for the code points
     * 256, 257, ... in byte order; all of them below 0x800 */
    const int printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
    const int cp = printable ? b : next++;
    memset(out[b], 0, 3);
    if (cp < 0x80) {
      out[b][0] = (char)cp;
      len[b] = 1;
    } else {
      out[b][0] = (char)(0xc0 | (cp >> 6));
      out[b][1] = (char)(0x80 | (cp & 0x3f));
      len[b] = 2;
    }
  }
}

/* The byte a code point stands for, or -1. */
static int byte_of(const int16_t *inverse, uint32_t cp) { return cp < 512 ? inverse[cp] : -1; }

static void byte_inverse(int16_t inverse[512]) {
  char bc[256][3];
  int bl[256];
  kd_hftok_byte_chars(bc, bl);
  for (int i = 0; i < 512; i++) inverse[i] = -1;
  for (int b = 0; b < 256; b++) {
    const uint32_t cp = bl[b] == 1 ? (uint8_t)bc[b][0] : ((uint32_t)(bc[b][0] & 0x1f) << 6) | (bc[b][1] & 0x3f);
    inverse[cp] = (int16_t)b;
  }
}

/* A byte-level string back to its bytes (out holds len bytes at least); -1 when a character is not in the map. */
static int64_t unmap(const int16_t *inverse, const char *s, size_t len, uint8_t *out) {
  int64_t n = 0;
  for (size_t i = 0; i < len;) {
    const uint8_t c = (uint8_t)s[i];
    uint32_t cp;
    if (c < 0x80) {
      cp = c;
      i++;
    } else if ((c & 0xe0) == 0xc0 && c >= 0xc2 && i + 1 < len && ((uint8_t)s[i + 1] & 0xc0) == 0x80) {
      cp = ((uint32_t)(c & 0x1f) << 6) | ((uint8_t)s[i + 1] & 0x3f);
      i += 2;
    } else {
      return -1;
    }
    const int b = byte_of(inverse, cp);
    if (b < 0) return -1;
    out[n++] = (uint8_t)b;
  }
  return n;
}

/* ---- a string -> id table over the vocabulary's byte-level strings ---- */

typedef struct str_table {
  int32_t *slot; /* -1 free */
  size_t mask;
  const char **str;
  size_t *len;
} str_table;

static uint64_t hash_str(const char *p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)p[i]) * 0x100000001b3ULL;
  return kd_mix64(h ^ n);
}

static int32_t table_find(const str_table *t, const char *s, size_t n) {
  for (size_t k = hash_str(s, n) & t->mask; t->slot[k] >= 0; k = (k + 1) & t->mask) {
    const int32_t id = t->slot[k];
    if (t->len[id] == n && memcmp(t->str[id], s, n) == 0) return id;
  }
  return -1;
}

static void table_add(str_table *t, int32_t id) {
  size_t k = hash_str(t->str[id], t->len[id]) & t->mask;
  while (t->slot[k] >= 0) k = (k + 1) & t->mask;
  t->slot[k] = id;
}

/* ---- loading ---- */

typedef struct loader {
  const char *path;
  const kd_json *root, *model;
  kd_tokenizer *t;
  const char **str;  /* [V] each id's string: byte-level for vocabulary tokens, the text of added tokens */
  size_t *len;
  str_table table;   /* the vocabulary's tokens (not added ones) by string */
  kd_err *e;
} loader;

/* s as one line of a message: control characters as '?', at most 60 bytes. */
static const char *printable(const char *s, char buf[64]) {
  size_t i = 0;
  for (; s[i] && i < 60; i++) buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
  buf[i] = 0;
  return buf;
}

static int unsupported(loader *L, const char *what) {
  return kd_fail(L->e, KD_ERR_RUNTIME, "%s: %s; kd reads byte-level BPE tokenizers (GPT-2, Llama 3, Qwen2/3 families)",
                 L->path, what);
}

static int is_null_or_empty(const kd_json *o, const char *key) {
  const kd_json *m = kd_json_get(o, key);
  return !m || m->type == KD_JSON_NULL || (m->type == KD_JSON_STRING && m->len == 0) || m->type == KD_JSON_FALSE;
}

static int check_model(loader *L) {
  const char *type = kd_json_get_str(L->model, "type");
  char why[256];
  if (!type && kd_json_get(L->model, "merges") && kd_json_get(L->model, "vocab")) type = "BPE";
  if (!type) return unsupported(L, "its model has no type");
  if (strcmp(type, "BPE") != 0) {
    snprintf(why, sizeof why, "model type '%s'%s is not supported", type,
             strcmp(type, "Unigram") == 0 ? " (SentencePiece Unigram)" : strcmp(type, "WordPiece") == 0 ? " (BERT's WordPiece)" : "");
    return unsupported(L, why);
  }
  if (kd_json_is_true(L->model, "byte_fallback"))
    return unsupported(L, "a BPE with byte_fallback (SentencePiece's BPE, as Llama 2 and Mistral have) is not supported");
  const kd_json *d = kd_json_get(L->model, "dropout");
  if (d && d->type == KD_JSON_NUMBER && d->number != 0) return unsupported(L, "BPE dropout is not supported");
  if (!is_null_or_empty(L->model, "continuing_subword_prefix") || !is_null_or_empty(L->model, "end_of_word_suffix"))
    return unsupported(L, "a BPE with a continuing_subword_prefix or end_of_word_suffix is not supported");
  L->t->ignore_merges = kd_json_is_true(L->model, "ignore_merges");
  return KD_OK;
}

/* Normalizer: none or NFC (alone or the only kind in a Sequence). */
static int read_normalizer(loader *L) {
  const kd_json *n = kd_json_get(L->root, "normalizer");
  if (!n || n->type == KD_JSON_NULL) return KD_OK;
  const kd_json *one = n, *list = NULL;
  const char *type = kd_json_get_str(n, "type");
  if (type && strcmp(type, "Sequence") == 0) list = kd_json_get(n, "normalizers");
  for (const kd_json *x = list ? list->child : one; x; x = list ? x->next : NULL) {
    const char *tx = kd_json_get_str(x, "type");
    if (!tx || strcmp(tx, "NFC") != 0) {
      char why[160];
      snprintf(why, sizeof why, "normalizer '%s' is not supported (NFC is)", tx ? tx : "?");
      return unsupported(L, why);
    }
    snprintf(L->t->normalizer, sizeof L->t->normalizer, "nfc");
  }
  return KD_OK;
}

static int byte_level_ok(loader *L, const kd_json *b, int *use_regex) {
  if (kd_json_is_true(b, "add_prefix_space"))
    return unsupported(L, "a ByteLevel pre-tokenizer with add_prefix_space is not supported");
  const kd_json *u = kd_json_get(b, "use_regex");
  *use_regex = !u || u->type == KD_JSON_TRUE; /* Hugging Face's default is true */
  return KD_OK;
}

/* The split regex, run by PCRE2: Hugging Face's library runs Oniguruma, whose syntax agrees on what tokenizers use
 * (classes \p{L} \p{N} \s, (?i:...), lookahead, counted repeats) but not on \h (a hex digit there, horizontal
 * space in PCRE2), so a pattern with it is refused, as is one with a NUL. */
static int set_pattern(loader *L, const char *p, size_t len) {
  if (strlen(p) != len) return unsupported(L, "its split pattern holds a NUL character");
  for (size_t i = 0; i + 1 < len; i++) {
    if (p[i] == '\\' && (p[i + 1] == 'h' || p[i + 1] == 'H'))
      return unsupported(L, "its split pattern uses \\h or \\H, which Oniguruma and PCRE2 read differently");
    if (p[i] == '\\') i++;
  }
  if (len >= KD_BPE_MAX_PATTERN) return unsupported(L, "its split pattern is longer than kd keeps (2047 bytes)");
  if (!(L->t->pattern = kd_malloc(strlen(p) + 1, "tokenizer pattern", L->e))) return L->e->code;
  memcpy(L->t->pattern, p, strlen(p) + 1);
  snprintf(L->t->pre, sizeof L->t->pre, "%s", KD_BPE_PRE_REGEX);
  return KD_OK;
}

/* ByteLevel (GPT-2's pattern), or Sequence [Split(Regex, Isolated), ByteLevel(use_regex false)]. */
static int read_pre_tokenizer(loader *L) {
  const kd_json *p = kd_json_get(L->root, "pre_tokenizer");
  const char *type = kd_json_get_str(p, "type");
  int use_regex = 0;
  if (type && strcmp(type, "ByteLevel") == 0) {
    if (byte_level_ok(L, p, &use_regex)) return L->e->code;
    if (!use_regex) return unsupported(L, "a ByteLevel pre-tokenizer without its regex and no Split is not supported");
    return set_pattern(L, kd_bpe_gpt2_pattern(), strlen(kd_bpe_gpt2_pattern()));
  }
  const kd_json *list = type && strcmp(type, "Sequence") == 0 ? kd_json_get(p, "pretokenizers") : NULL;
  const kd_json *split = list ? list->child : NULL, *bl = split ? split->next : NULL;
  const char *ts = kd_json_get_str(split, "type"), *tb = kd_json_get_str(bl, "type");
  if (!list || list->len != 2 || !ts || strcmp(ts, "Split") != 0 || !tb || strcmp(tb, "ByteLevel") != 0) {
    char why[200];
    snprintf(why, sizeof why, "pre-tokenizer '%s' is not supported (ByteLevel, or a Sequence of Split and ByteLevel, is)",
             type ? type : "none");
    return unsupported(L, why);
  }
  const kd_json *rx = kd_json_get(kd_json_get(split, "pattern"), "Regex");
  const char *regex = rx && rx->type == KD_JSON_STRING ? rx->str : NULL;
  const char *behavior = kd_json_get_str(split, "behavior");
  if (!regex) return unsupported(L, "a Split pre-tokenizer by a plain string (not a Regex) is not supported");
  if (!behavior || strcmp(behavior, "Isolated") != 0 || kd_json_is_true(split, "invert"))
    return unsupported(L, "a Split pre-tokenizer other than behavior Isolated, invert false is not supported");
  if (byte_level_ok(L, bl, &use_regex)) return L->e->code;
  if (use_regex) return unsupported(L, "a Split followed by a ByteLevel with its own regex is not supported");
  return set_pattern(L, regex, rx->len);
}

/* The vocabulary size: one past the largest id of the model's vocabulary and the added tokens. */
static int vocab_size(loader *L, const kd_json *vocab, const kd_json *added, int *V) {
  int64_t top = -1;
  for (const kd_json *m = vocab->child; m; m = m->next) {
    char pb[64];
    if (m->type != KD_JSON_NUMBER || !m->is_int || m->integer < 0 || m->integer >= KD_BPE_MAX_VOCAB)
      return kd_fail(L->e, KD_ERR_RUNTIME, "%s: model.vocab['%s'] is not an id in [0, %d)", L->path,
                     printable(m->key, pb), KD_BPE_MAX_VOCAB);
    top = m->integer > top ? m->integer : top;
  }
  for (const kd_json *a = added ? added->child : NULL; a; a = a->next) {
    int64_t id;
    if (!kd_json_get_int(a, "id", &id) || id < 0 || id >= KD_BPE_MAX_VOCAB || !kd_json_get_str(a, "content"))
      return kd_fail(L->e, KD_ERR_RUNTIME, "%s: an added token without an id in [0, %d) and a content", L->path,
                     KD_BPE_MAX_VOCAB);
    top = id > top ? id : top;
  }
  if (top < 255) return kd_fail(L->e, KD_ERR_RUNTIME, "%s: a vocabulary of %lld ids cannot be byte-level", L->path,
                                (long long)top + 1);
  *V = (int)top + 1;
  return KD_OK;
}

static int fill_vocab(loader *L) {
  const kd_json *vocab = kd_json_get(L->model, "vocab"), *added = kd_json_get(L->root, "added_tokens");
  kd_tokenizer *t = L->t;
  if (!vocab || vocab->type != KD_JSON_OBJECT) return unsupported(L, "its model has no vocab object");
  int V = 0;
  if (vocab_size(L, vocab, added, &V)) return L->e->code;
  t->vocab = V;
  L->str = kd_calloc((size_t)V, sizeof *L->str, "tokenizer strings", L->e);
  L->len = kd_calloc((size_t)V, sizeof *L->len, "tokenizer strings", L->e);
  t->token_kind = kd_malloc((size_t)V, "token kinds", L->e);
  t->offsets = kd_malloc(sizeof(int64_t) * ((size_t)V + 1), "tokenizer", L->e);
  size_t slots = 16;
  while (slots < 2 * (size_t)V) slots *= 2;
  L->table = (str_table){kd_malloc(sizeof(int32_t) * slots, "tokenizer table", L->e), slots - 1, L->str, L->len};
  if (L->e->code) return L->e->code;
  memset(t->token_kind, KD_TOKEN_UNUSED, (size_t)V);
  for (size_t k = 0; k < slots; k++) L->table.slot[k] = -1;
  for (const kd_json *m = vocab->child; m; m = m->next) {
    if (L->str[m->integer])
      return kd_fail(L->e, KD_ERR_RUNTIME, "%s: id %lld is in model.vocab twice", L->path, (long long)m->integer);
    L->str[m->integer] = m->key;
    L->len[m->integer] = m->key_len;
    t->token_kind[m->integer] = KD_TOKEN_TEXT;
  }
  for (const kd_json *a = added ? added->child : NULL; a; a = a->next) {
    int64_t id;
    kd_json_get_int(a, "id", &id);
    const kd_json *c = kd_json_get(a, "content");
    L->str[id] = c->str;
    L->len[id] = c->len;
    t->token_kind[id] = kd_json_is_true(a, "special") ? KD_TOKEN_SPECIAL : KD_TOKEN_ADDED;
  }
  for (int id = 0; id < V; id++)
    if (t->token_kind[id] == KD_TOKEN_TEXT) {
      if (table_find(&L->table, L->str[id], L->len[id]) >= 0)
        return kd_fail(L->e, KD_ERR_RUNTIME, "%s: the string of id %d is in model.vocab twice", L->path, id);
      table_add(&L->table, id);
    }
  return KD_OK;
}

/* The bytes each id stands for: vocabulary tokens unmapped from GPT-2's byte-level characters, added tokens
 * their text, unused ids none. */
static int fill_bytes(loader *L) {
  kd_tokenizer *t = L->t;
  int16_t inverse[512];
  byte_inverse(inverse);
  size_t total = 0;
  for (int id = 0; id < t->vocab; id++) total += L->len[id];
  if (!(t->bytes = kd_malloc(total + 1, "tokenizer", L->e))) return L->e->code;
  int64_t pos = 0;
  for (int id = 0; id < t->vocab; id++) {
    t->offsets[id] = pos;
    if (t->token_kind[id] != KD_TOKEN_TEXT) {
      if (L->len[id]) memcpy(t->bytes + pos, L->str[id], L->len[id]);
      pos += (int64_t)L->len[id];
      continue;
    }
    const int64_t n = unmap(inverse, L->str[id], L->len[id], t->bytes + pos);
    char pb[64];
    if (n < 0)
      return kd_fail(L->e, KD_ERR_RUNTIME, "%s: model.vocab['%s'] (id %d) is not in GPT-2's byte-level alphabet: not a "
                     "byte-level BPE vocabulary", L->path, printable(L->str[id], pb), id);
    pos += n;
  }
  t->offsets[t->vocab] = pos;
  return KD_OK;
}

/* One merge, "LEFT RIGHT" or ["LEFT", "RIGHT"], into its ids and the id of their concatenation. */
static int one_merge(loader *L, const kd_json *m, int i, char **buf, size_t *cap) {
  const char *a, *b;
  size_t la, lb;
  if (m->type == KD_JSON_STRING) {
    const char *sp = memchr(m->str, ' ', m->len);
    char pb[64];
    if (!sp)
      return kd_fail(L->e, KD_ERR_RUNTIME, "%s: model.merges[%d] '%s' is not two tokens", L->path, i, printable(m->str, pb));
    a = m->str, la = (size_t)(sp - m->str), b = sp + 1, lb = m->len - la - 1;
  } else if (m->type == KD_JSON_ARRAY && m->len == 2 && m->child->type == KD_JSON_STRING &&
             m->child->next->type == KD_JSON_STRING) {
    a = m->child->str, la = m->child->len, b = m->child->next->str, lb = m->child->next->len;
  } else {
    return kd_fail(L->e, KD_ERR_RUNTIME, "%s: model.merges[%d] is neither \"A B\" nor [\"A\", \"B\"]", L->path, i);
  }
  if (la + lb + 1 > *cap) {
    *cap = 2 * (la + lb + 1);
    free(*buf);
    if (!(*buf = kd_malloc(*cap, "merge", L->e))) return L->e->code;
  }
  memcpy(*buf, a, la);
  memcpy(*buf + la, b, lb);
  const int32_t x = table_find(&L->table, a, la), y = table_find(&L->table, b, lb),
                z = table_find(&L->table, *buf, la + lb);
  char pa[64], pb[64], ta[64], tb[64];
  if (x < 0 || y < 0 || z < 0) {
    snprintf(ta, sizeof ta, "%.*s", (int)(la < 60 ? la : 60), a);
    snprintf(tb, sizeof tb, "%.*s", (int)(lb < 60 ? lb : 60), b);
    return kd_fail(L->e, KD_ERR_RUNTIME, "%s: model.merges[%d] ('%s' '%s'): %s is not in model.vocab", L->path, i,
                   printable(ta, pa), printable(tb, pb),
                   x < 0 ? "the left token" : y < 0 ? "the right token" : "their concatenation");
  }
  L->t->merges[2 * i] = x;
  L->t->merges[2 * i + 1] = y;
  L->t->merge_ids[i] = z;
  return KD_OK;
}

/* Two merges of one pair: Hugging Face's library keeps the later rank, llama.cpp the earlier; kd refuses the
 * file rather than side with either. */
static int repeated_merge(loader *L) {
  const kd_tokenizer *t = L->t;
  size_t slots = 16;
  while (slots < 2 * (size_t)t->n_merges) slots *= 2;
  uint64_t *keys = kd_malloc(sizeof(uint64_t) * slots, "merge table", L->e);
  int32_t *first = kd_malloc(sizeof(int32_t) * slots, "merge table", L->e);
  for (size_t k = 0; keys && first && k < slots; k++) keys[k] = UINT64_MAX;
  for (int i = 0; keys && first && i < t->n_merges && !L->e->code; i++) {
    const uint64_t key = (uint64_t)(uint32_t)t->merges[2 * i] << 32 | (uint32_t)t->merges[2 * i + 1];
    size_t k = kd_mix64(key) & (slots - 1);
    while (keys[k] != UINT64_MAX && keys[k] != key) k = (k + 1) & (slots - 1);
    if (keys[k] == key)
      kd_fail(L->e, KD_ERR_RUNTIME, "%s: model.merges[%d] repeats the pair of model.merges[%d]: Hugging Face and "
              "llama.cpp would apply different ranks", L->path, i, (int)first[k]);
    keys[k] = key;
    first[k] = i;
  }
  free(keys);
  free(first);
  return L->e->code;
}

static int fill_merges(loader *L) {
  const kd_json *merges = kd_json_get(L->model, "merges");
  if (!merges || merges->type != KD_JSON_ARRAY) return unsupported(L, "its BPE model has no merges array");
  kd_tokenizer *t = L->t;
  t->n_merges = (int)merges->len;
  t->merges = kd_malloc(sizeof(int32_t) * 2 * (merges->len + 1), "tokenizer merges", L->e);
  t->merge_ids = kd_malloc(sizeof(int32_t) * (merges->len + 1), "tokenizer merges", L->e);
  char *buf = NULL;
  size_t cap = 0;
  int i = 0;
  for (const kd_json *m = merges->child; m && !L->e->code; m = m->next, i++) one_merge(L, m, i, &buf, &cap);
  free(buf);
  return L->e->code ? L->e->code : repeated_merge(L);
}

/* What the encoder needs (the split pattern compiles, every byte has a token), found now and named by the file. */
static int can_encode(loader *L) {
  kd_err ee;
  kd_err_clear(&ee);
  kd_bpe_encoder *enc = NULL;
  if (kd_bpe_encoder_new(&enc, L->t, &ee)) return kd_fail(L->e, KD_ERR_RUNTIME, "%s: %s", L->path, ee.msg);
  kd_bpe_encoder_free(enc);
  return KD_OK;
}

int kd_hftok_load(kd_tokenizer *t, const char *path, kd_err *e) {
  memset(t, 0, sizeof *t);
  kd_json_doc *doc;
  if (kd_json_parse_file(&doc, path, e)) return e->code;
  snprintf(t->kind, sizeof t->kind, "bpe");
  t->pad_id = t->sep_id = t->end_id = t->unk_id = t->target_id0 = -1;
  loader L = {path, kd_json_root(doc), NULL, t, NULL, NULL, {0}, e};
  L.model = kd_json_get(L.root, "model");
  if (!L.model || L.model->type != KD_JSON_OBJECT) unsupported(&L, "it has no model object (is it a tokenizer.json?)");
  if (!e->code) check_model(&L);
  if (!e->code) read_normalizer(&L);
  if (!e->code) read_pre_tokenizer(&L);
  if (!e->code) fill_vocab(&L);
  if (!e->code) fill_bytes(&L);
  if (!e->code) fill_merges(&L);
  if (!e->code) can_encode(&L);
  free(L.str);
  free(L.len);
  free(L.table.slot);
  kd_json_free(doc);
  if (e->code) kd_tokenizer_free(t);
  return e->code;
}

/* ---- writing tokenizer.json ---- */

typedef struct writer {
  FILE *f;
  const kd_tokenizer *t;
  char bc[256][3];
  int bl[256];
  int bad; /* a write failed */
} writer;

static void put_raw(writer *w, const char *s) {
  if (fputs(s, w->f) == EOF) w->bad = 1;
}

/* Id i as a JSON string: byte-level for text tokens, the text itself for added ones. */
static void put_token(writer *w, int id) {
  const kd_tokenizer *t = w->t;
  const uint8_t *p = t->bytes + t->offsets[id];
  const size_t n = (size_t)(t->offsets[id + 1] - t->offsets[id]);
  if (t->token_kind && t->token_kind[id] != KD_TOKEN_TEXT) {
    if (kd_json_write_str(w->f, (const char *)p, n)) w->bad = 1;
    return;
  }
  char buf[512], *s = n * 2 < sizeof buf ? buf : malloc(2 * n + 1);
  if (!s) {
    w->bad = 1;
    return;
  }
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    memcpy(s + k, w->bc[p[i]], (size_t)w->bl[p[i]]);
    k += (size_t)w->bl[p[i]];
  }
  if (kd_json_write_str(w->f, s, k)) w->bad = 1;
  if (s != buf) free(s);
}

/* The merge's halves as one string "LEFT RIGHT" would be ambiguous for no byte-level token (a space is "Ġ"),
 * but the array form is what current Hugging Face releases write. */
static void put_merges(writer *w) {
  const kd_tokenizer *t = w->t;
  put_raw(w, "[");
  for (int i = 0; i < t->n_merges; i++) {
    put_raw(w, i ? ",\n    [" : "\n    [");
    put_token(w, t->merges[2 * i]);
    put_raw(w, ", ");
    put_token(w, t->merges[2 * i + 1]);
    put_raw(w, "]");
  }
  put_raw(w, t->n_merges ? "\n  ]" : "]");
}

static void put_added(writer *w) {
  const kd_tokenizer *t = w->t;
  int first = 1;
  put_raw(w, "[");
  for (int id = 0; t->token_kind && id < t->vocab; id++) {
    const int k = t->token_kind[id];
    if (k != KD_TOKEN_SPECIAL && k != KD_TOKEN_ADDED) continue;
    if (fprintf(w->f, "%s\n    {\"id\": %d, \"content\": ", first ? "" : ",", id) < 0) w->bad = 1;
    put_token(w, id);
    if (fprintf(w->f, ", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, "
                "\"special\": %s}", k == KD_TOKEN_SPECIAL ? "true" : "false") < 0)
      w->bad = 1;
    first = 0;
  }
  put_raw(w, first ? "]" : "\n  ]");
}

static void put_vocab(writer *w) {
  const kd_tokenizer *t = w->t;
  int first = 1;
  put_raw(w, "{");
  for (int id = 0; id < t->vocab; id++) {
    if (t->token_kind && t->token_kind[id] != KD_TOKEN_TEXT) continue;
    put_raw(w, first ? "\n      " : ",\n      ");
    put_token(w, id);
    if (fprintf(w->f, ": %d", id) < 0) w->bad = 1;
    first = 0;
  }
  put_raw(w, "\n    }");
}

static void put_document(writer *w, const char *pattern) {
  const kd_tokenizer *t = w->t;
  put_raw(w, "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": ");
  put_added(w);
  put_raw(w, t->normalizer[0] ? ",\n  \"normalizer\": {\"type\": \"NFC\"}" : ",\n  \"normalizer\": null");
  put_raw(w, ",\n  \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": "
             "{\"Regex\": ");
  if (kd_json_write_str(w->f, pattern, strlen(pattern))) w->bad = 1;
  put_raw(w, "}, \"behavior\": \"Isolated\", \"invert\": false}, {\"type\": \"ByteLevel\", \"add_prefix_space\": false, "
             "\"trim_offsets\": false, \"use_regex\": false}]},\n  \"post_processor\": null,\n  \"decoder\": {\"type\": "
             "\"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": false, \"use_regex\": false},\n  \"model\": "
             "{\n    \"type\": \"BPE\",\n    \"dropout\": null,\n    \"unk_token\": null,\n    "
             "\"continuing_subword_prefix\": null,\n    \"end_of_word_suffix\": null,\n    \"fuse_unk\": false,\n    "
             "\"byte_fallback\": false,\n    \"ignore_merges\": ");
  put_raw(w, t->ignore_merges ? "true" : "false");
  put_raw(w, ",\n    \"vocab\": ");
  put_vocab(w);
  put_raw(w, ",\n    \"merges\": ");
  put_merges(w);
  put_raw(w, "\n  }\n}\n");
}

/* Hugging Face keeps one id per vocabulary string: a record with two equal text tokens cannot be written. */
static int two_equal_tokens(const kd_tokenizer *t, char *why_not, size_t cap, kd_err *e) {
  size_t slots = 16;
  while (slots < 2 * (size_t)t->vocab) slots *= 2;
  int32_t *slot = kd_malloc(sizeof(int32_t) * slots, "token table", e);
  if (!slot) return -1;
  for (size_t k = 0; k < slots; k++) slot[k] = -1;
  int found = 0;
  for (int id = 0; id < t->vocab && !found; id++) {
    if (t->token_kind && t->token_kind[id] != KD_TOKEN_TEXT) continue;
    const char *p = (const char *)t->bytes + t->offsets[id];
    const size_t n = (size_t)(t->offsets[id + 1] - t->offsets[id]);
    size_t k = hash_str(p, n) & (slots - 1);
    for (; slot[k] >= 0; k = (k + 1) & (slots - 1)) {
      const int32_t o = slot[k];
      if ((size_t)(t->offsets[o + 1] - t->offsets[o]) == n && memcmp(t->bytes + t->offsets[o], p, n) == 0) {
        snprintf(why_not, cap, "ids %d and %d spell the same bytes, and tokenizer.json holds one id per string", o, id);
        found = 1;
        break;
      }
    }
    slot[k] = id;
  }
  free(slot);
  return found;
}

int kd_hftok_write_json(const kd_tokenizer *t, const char *path, char *why_not, size_t cap, kd_err *e) {
  why_not[0] = 0;
  const int bytes = strcmp(t->kind, "bytes") == 0, bpe = strcmp(t->kind, "bpe") == 0;
  const char *pattern = bytes || (bpe && strcmp(t->pre, KD_BPE_PRE_GPT2) == 0) ? kd_bpe_gpt2_pattern()
                        : bpe && strcmp(t->pre, KD_BPE_PRE_REGEX) == 0 && t->pattern ? t->pattern : NULL;
  if (!bytes && !bpe) {
    snprintf(why_not, cap, "a '%s' vocabulary has no Hugging Face tokenizer model", t->kind);
    return KD_OK;
  }
  if (!pattern) {
    snprintf(why_not, cap, "its BPE record splits words as kd1, which no Hugging Face pre-tokenizer does");
    return KD_OK;
  }
  const int dup = two_equal_tokens(t, why_not, cap, e);
  if (dup) return dup < 0 ? e->code : KD_OK;
  kd_atomic a;
  if (kd_atomic_begin(&a, path, e)) return e->code;
  writer w = {.f = fopen(a.tmp, "w"), .t = t};
  if (!w.f) return kd_fail(e, KD_ERR_RUNTIME, "cannot create %s (for %s): %s", a.tmp, path, strerror(errno));
  kd_hftok_byte_chars(w.bc, w.bl);
  errno = 0;
  put_document(&w, pattern);
  const int closed = fclose(w.f);
  if (w.bad || closed != 0) {
    kd_atomic_abort(&a);
    return kd_fail(e, KD_ERR_RUNTIME, "cannot write %s: %s", path, errno ? strerror(errno) : "a write failed");
  }
  return kd_atomic_commit(&a, e);
}
