#define _POSIX_C_SOURCE 200809L /* getline */
#include "data/pairs.h"

#include <errno.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomic.h"
#include "core/h5io.h"
#include "core/provenance.h"
#include "core/rng.h"
#include "data/tokenizer.h"

enum { PAD = 0, SEP = 1, END = 2, UNK = 3, N_SPECIAL = 4 };
static const char *const special[N_SPECIAL] = {"<pad>", "<sep>", "<end>", "<unk>"};

/* All strings of the file, NUL-terminated, addressed by offset. */
typedef struct pool {
  char *p;
  size_t n, cap;
} pool;

typedef struct entry {
  size_t src;        /* offset of the source string */
  int64_t sym0;      /* its first target symbol in syms */
  int n_sym;
  int split;
  int64_t line;
  int64_t first;     /* the entry where its source first appears */
} entry;

typedef struct pairs {
  pool s;
  entry *e;
  int64_t n, cap;
  size_t *syms;      /* offsets of target symbols */
  int64_t n_syms, cap_syms;
} pairs;

static void pairs_free(pairs *p) {
  free(p->s.p);
  free(p->e);
  free(p->syms);
}

static int grow(void **p, int64_t *cap, int64_t need, size_t size, kd_err *e) {
  if (need <= *cap) return KD_OK;
  int64_t c = *cap ? *cap : 1024;
  while (c < need) c *= 2;
  void *q = realloc(*p, (size_t)c * size);
  if (!q) return kd_fail(e, KD_ERR_RUNTIME, "out of memory (%lld entries)", (long long)c);
  *p = q;
  *cap = c;
  return KD_OK;
}

static int put_str(pool *s, const char *t, size_t n, size_t *off, kd_err *e) {
  if (s->n + n + 1 > s->cap) {
    size_t c = s->cap ? s->cap : 1 << 16;
    while (c < s->n + n + 1) c *= 2;
    char *q = realloc(s->p, c);
    if (!q) return kd_fail(e, KD_ERR_RUNTIME, "out of memory (%zu bytes of strings)", c);
    s->p = q;
    s->cap = c;
  }
  memcpy(s->p + s->n, t, n);
  s->p[s->n + n] = 0;
  *off = s->n;
  s->n += n + 1;
  return KD_OK;
}

static int add_sym(pairs *p, const char *t, size_t n, kd_err *e) {
  if (grow((void **)&p->syms, &p->cap_syms, p->n_syms + 1, sizeof(size_t), e)) return e->code;
  return put_str(&p->s, t, n, &p->syms[p->n_syms++], e);
}

/* ---- parsing: one line into an entry (its symbols appended) ---- */

typedef struct where {
  const char *path;
  int64_t line;
  const char *text;
} where;

static int bad(const where *w, kd_err *e, const char *what) {
  return kd_fail(e, KD_ERR_RUNTIME, "%s:%lld: %s: %.60s%s", w->path, (long long)w->line, what, w->text,
                 strlen(w->text) > 60 ? "..." : "");
}

static int begin_entry(pairs *p, const char *src, size_t n, int64_t line, kd_err *e) {
  if (grow((void **)&p->e, &p->cap, p->n + 1, sizeof(entry), e)) return e->code;
  entry *x = &p->e[p->n];
  memset(x, 0, sizeof *x);
  x->line = line;
  x->sym0 = p->n_syms;
  return put_str(&p->s, src, n, &x->src, e);
}

static int parse_tsv(pairs *p, const char *l, const where *w, kd_err *e) {
  const char *tab = strchr(l, '\t');
  if (!tab) return bad(w, e, "no tab between source and target");
  if (tab == l) return bad(w, e, "empty source");
  if (begin_entry(p, l, (size_t)(tab - l), w->line, e)) return e->code;
  int n = 0;
  for (const char *q = tab + 1; *q;) {
    while (*q == ' ') q++;
    const char *s = q;
    while (*q && *q != ' ') q++;
    if (q > s) {
      if (memchr(s, '\t', (size_t)(q - s))) return bad(w, e, "a second tab");
      if (add_sym(p, s, (size_t)(q - s), e)) return e->code;
      n++;
    }
  }
  if (n == 0) return bad(w, e, "empty target");
  p->e[p->n++].n_sym = n;
  return KD_OK;
}

static int is_vowel(const char *s, size_t n) {
  static const char *const v[] = {"aa", "ae", "ah", "ao", "aw", "ax", "axr", "ay", "eh",
                                  "er", "ey", "ih", "iy", "ow", "oy", "uh", "uw"};
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
    if (strlen(v[i]) == n && memcmp(v[i], s, n) == 0) return 1;
  return 0;
}

/* One syllable `((ph ph ...) D)` at *q: its phones appended, the vowel(s) with the digit. */
static int parse_syllable(pairs *p, const char **q, const where *w, int *n_sym, int64_t *unstressed, kd_err *e) {
  const char *c = *q;
  if (c[0] != '(' || c[1] != '(') return bad(w, e, "a syllable must look like ((phones) stress)");
  c += 2;
  const char *ph0 = c;
  while (*c && *c != ')' && *c != '(') c++;
  if (*c != ')') return bad(w, e, "unbalanced parentheses in a syllable");
  const char *ph1 = c++;
  if (*c++ != ' ' || *c < '0' || *c > '9' || c[1] != ')') return bad(w, e, "a syllable's stress must be one digit");
  const char digit = *c;
  *q = c + 2;
  int vowels = 0, phones = 0;
  for (const char *s = ph0; s < ph1;) {
    while (s < ph1 && *s == ' ') s++;
    const char *t = s;
    while (t < ph1 && *t != ' ') t++;
    if (t == s) break;
    char buf[64];
    const size_t len = (size_t)(t - s);
    if (len + 2 > sizeof buf) return bad(w, e, "a phone longer than 60 bytes");
    memcpy(buf, s, len);
    size_t bl = len;
    if (is_vowel(s, len)) {
      buf[bl++] = digit;
      vowels++;
    }
    if (add_sym(p, buf, bl, e)) return e->code;
    phones++;
    s = t;
  }
  if (phones == 0) return bad(w, e, "an empty syllable");
  *n_sym += phones;
  *unstressed += vowels == 0;
  return KD_OK;
}

static int parse_festival(pairs *p, const char *l, const where *w, int64_t *unstressed, kd_err *e) {
  if (l[0] != '(' || l[1] != '"') return bad(w, e, "expected (\"word\" pos (syllables))");
  char word[1024];
  size_t n = 0;
  const char *q = l + 2;
  for (; *q && *q != '"'; q++) {
    if (*q == '\\' && q[1]) q++;
    if (n + 1 >= sizeof word) return bad(w, e, "a word longer than 1023 bytes");
    word[n++] = *q;
  }
  if (*q != '"') return bad(w, e, "unterminated word");
  if (n == 0) return bad(w, e, "empty word");
  q++;
  if (*q++ != ' ') return bad(w, e, "expected a part of speech after the word");
  while (*q && *q != ' ' && *q != '(' && *q != ')') q++; /* the part of speech: not used */
  if (*q++ != ' ' || *q++ != '(') return bad(w, e, "expected the syllable list after the part of speech");
  if (begin_entry(p, word, n, w->line, e)) return e->code;
  int n_sym = 0;
  while (*q == '(') {
    if (parse_syllable(p, &q, w, &n_sym, unstressed, e)) return e->code;
    if (*q == ' ') q++;
  }
  if (q[0] != ')' || q[1] != ')') return bad(w, e, "unbalanced parentheses at the end");
  for (q += 2; *q; q++)
    if (*q != ' ' && *q != '\t') return bad(w, e, "text after the entry");
  if (n_sym == 0) return bad(w, e, "no syllables");
  p->e[p->n++].n_sym = n_sym;
  return KD_OK;
}

static int read_pairs(const kd_pairs_cfg *c, pairs *p, kd_pairs_stats *st, kd_err *e) {
  FILE *f = fopen(c->in, "rb");
  if (!f) return kd_fail(e, KD_ERR_RUNTIME, "%s: cannot read (%s)", c->in, strerror(errno));
  const int festival = strcmp(c->format, "cmudict-festival") == 0;
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  where w = {c->in, 0, ""};
  int rc = KD_OK;
  while (!rc && (len = getline(&line, &cap, f)) >= 0) {
    w.line++;
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
    w.text = line;
    if (len == 0 || (festival && (line[0] == ';' || (w.line == 1 && strcmp(line, "MNCL") == 0))) ||
        (!festival && line[0] == '#'))
      continue;
    if (memchr(line, 0, (size_t)len)) rc = bad(&w, e, "a NUL byte");
    else rc = festival ? parse_festival(p, line, &w, &st->unstressed, e) : parse_tsv(p, line, &w, e);
  }
  if (!rc && ferror(f)) rc = kd_fail(e, KD_ERR_RUNTIME, "%s: read failed (%s)", c->in, strerror(errno));
  free(line);
  fclose(f);
  if (!rc && p->n == 0)
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: no pairs to import (%s)", c->in,
                 w.line ? "only blank and comment lines" : "the file is empty");
  return rc;
}

/* ---- splits and row order ---- */

static uint64_t hash_of(const char *s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (; *s; s++) h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
  return h;
}

/* Each entry's split (a hash of its source) and the first entry with the same source. */
static int assign(const kd_pairs_cfg *c, pairs *p, kd_err *e) {
  int64_t cap = 1;
  while (cap < 2 * p->n) cap *= 2;
  int64_t *slot = kd_malloc(sizeof(int64_t) * (size_t)cap, "source table", e);
  if (!slot) return e->code;
  for (int64_t i = 0; i < cap; i++) slot[i] = -1;
  for (int64_t i = 0; i < p->n; i++) {
    entry *x = &p->e[i];
    const char *src = p->s.p + x->src;
    const uint64_t h = hash_of(src);
    const double u = (double)(kd_mix64(h) >> 11) * (1.0 / 9007199254740992.0);
    x->split = u < c->valid_frac ? 1 : u < c->valid_frac + c->test_frac ? 2 : 0;
    int64_t k = (int64_t)(h & (uint64_t)(cap - 1));
    while (slot[k] >= 0 && strcmp(p->s.p + p->e[slot[k]].src, src) != 0) k = (k + 1) & (cap - 1);
    if (slot[k] < 0) slot[k] = i;
    x->first = slot[k];
  }
  free(slot);
  return KD_OK;
}

static int order_cmp(const void *a, const void *b) {
  const entry *x = a, *y = b;
  if (x->split != y->split) return x->split - y->split;
  if (x->first != y->first) return x->first < y->first ? -1 : 1;
  return x->line < y->line ? -1 : x->line > y->line;
}

/* ---- the vocabulary ---- */

typedef struct vocab {
  char (*chars)[5];  /* source characters, sorted */
  int n_chars;
  const char **tgt;  /* target symbols, sorted */
  int n_tgt;
} vocab;

static size_t char_len(const char *s) {
  const uint8_t c = (uint8_t)*s;
  size_t l = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
  for (size_t i = 1; i < l; i++)
    if (!s[i]) return i;
  return l;
}

static int str_cmp(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }
static int chr_cmp(const void *a, const void *b) { return strcmp((const char *)a, (const char *)b); }

static int build_vocab(const pairs *p, vocab *v, kd_err *e) {
  memset(v, 0, sizeof *v);
  size_t n_c = 0;
  int64_t n_t = 0;
  for (int64_t i = 0; i < p->n; i++)
    if (p->e[i].split == 0) n_c += strlen(p->s.p + p->e[i].src), n_t += p->e[i].n_sym;
  v->chars = kd_malloc(5 * (n_c ? n_c : 1), "source characters", e);
  v->tgt = kd_malloc(sizeof(char *) * (size_t)(n_t ? n_t : 1), "target symbols", e);
  if (e->code) return e->code;
  size_t k = 0;
  int64_t t = 0;
  for (int64_t i = 0; i < p->n; i++) {
    const entry *x = &p->e[i];
    if (x->split != 0) continue;
    for (const char *s = p->s.p + x->src; *s;) {
      const size_t l = char_len(s);
      memset(v->chars[k], 0, 5);
      memcpy(v->chars[k++], s, l);
      s += l;
    }
    for (int j = 0; j < x->n_sym; j++) v->tgt[t++] = p->s.p + p->syms[x->sym0 + j];
  }
  qsort(v->chars, k, 5, chr_cmp);
  qsort(v->tgt, (size_t)t, sizeof(char *), str_cmp);
  size_t u = 0;
  for (size_t i = 0; i < k; i++)
    if (u == 0 || strcmp(v->chars[i], v->chars[u - 1]) != 0) memcpy(v->chars[u++], v->chars[i], 5);
  v->n_chars = (int)u;
  int64_t w = 0;
  for (int64_t i = 0; i < t; i++)
    if (w == 0 || strcmp(v->tgt[i], v->tgt[w - 1]) != 0) v->tgt[w++] = v->tgt[i];
  v->n_tgt = (int)w;
  if (v->n_chars == 0 || v->n_tgt == 0) return kd_fail(e, KD_ERR_RUNTIME, "the training split is empty");
  return KD_OK;
}

static int32_t char_id(const vocab *v, const char *s, size_t l) {
  char key[5] = {0};
  memcpy(key, s, l);
  const char(*f)[5] = bsearch(key, v->chars, (size_t)v->n_chars, 5, chr_cmp);
  return f ? (int32_t)(N_SPECIAL + (f - v->chars)) : UNK;
}

static int32_t tgt_id(const vocab *v, const char *s) {
  const char **f = bsearch(&s, v->tgt, (size_t)v->n_tgt, sizeof(char *), str_cmp);
  return f ? (int32_t)(N_SPECIAL + v->n_chars + (f - v->tgt)) : UNK;
}

/* Tokens of entry x into row [W] (or only its length when row is NULL). */
static int encode(const pairs *p, const entry *x, const vocab *v, int32_t *row, int64_t *unk) {
  int n = 0;
  for (const char *s = p->s.p + x->src; *s;) {
    const size_t l = char_len(s);
    const int32_t id = char_id(v, s, l);
    if (row) row[n] = id;
    if (row && id == UNK) ++*unk;
    n++;
    s += l;
  }
  if (row) row[n] = SEP;
  n++;
  for (int j = 0; j < x->n_sym; j++, n++) {
    if (!row) continue;
    row[n] = tgt_id(v, p->s.p + p->syms[x->sym0 + j]);
    if (row[n] == UNK) ++*unk;
  }
  if (row) row[n] = END;
  return n + 1;
}

static int make_tokenizer(const vocab *v, kd_tokenizer *t, kd_err *e) {
  memset(t, 0, sizeof *t);
  snprintf(t->kind, sizeof t->kind, "symbols");
  t->pad_id = PAD, t->sep_id = SEP, t->end_id = END, t->unk_id = UNK;
  t->target_id0 = N_SPECIAL + v->n_chars;
  t->vocab = N_SPECIAL + v->n_chars + v->n_tgt;
  size_t bytes = 0;
  for (int i = 0; i < N_SPECIAL; i++) bytes += strlen(special[i]);
  for (int i = 0; i < v->n_chars; i++) bytes += strlen(v->chars[i]);
  for (int i = 0; i < v->n_tgt; i++) bytes += strlen(v->tgt[i]);
  t->offsets = kd_malloc(sizeof(int64_t) * (size_t)(t->vocab + 1), "tokenizer", e);
  t->bytes = kd_malloc(bytes, "tokenizer", e);
  if (e->code) return e->code;
  size_t pos = 0;
  for (int id = 0; id < t->vocab; id++) {
    const char *s = id < N_SPECIAL ? special[id] : id < t->target_id0 ? v->chars[id - N_SPECIAL] : v->tgt[id - t->target_id0];
    t->offsets[id] = (int64_t)pos;
    memcpy(t->bytes + pos, s, strlen(s));
    pos += strlen(s);
  }
  t->offsets[t->vocab] = (int64_t)pos;
  return KD_OK;
}

/* ---- writing ---- */

static const char *const split_name[3] = {"train", "valid", "test"};

static int write_split(hid_t f, const char *path, const pairs *p, int64_t lo, int64_t hi, const vocab *v, int W,
                       hid_t tt, kd_pairs_stats *st, kd_err *e) {
  const int s = p->e[lo].split;
  const int64_t n = hi - lo;
  int32_t *tok = kd_calloc((size_t)n * W, sizeof(int32_t), "token rows", e);
  uint8_t *mask = kd_calloc((size_t)n * W, 1, "masks", e);
  int rc = e->code;
  for (int64_t i = 0; i < n && !rc; i++) {
    const entry *x = &p->e[lo + i];
    const int len = encode(p, x, v, tok + (size_t)i * W, &st->unk[s]);
    for (int k = len - 1 - x->n_sym; k < len; k++) mask[(size_t)i * W + k] = 1;
    st->rows[s]++;
    st->words[s] += i == 0 || x->first != p->e[lo + i - 1].first;
  }
  char ds[32];
  const int64_t dims[2] = {n, W};
  snprintf(ds, sizeof ds, "/%s/tokens", split_name[s]);
  if (!rc) rc = kd_h5_write(f, path, ds, 2, dims, tt, H5T_NATIVE_INT32, tok, e);
  snprintf(ds, sizeof ds, "/%s/mask", split_name[s]);
  if (!rc) rc = kd_h5_write(f, path, ds, 2, dims, H5T_STD_U8LE, H5T_NATIVE_UINT8, mask, e);
  free(tok);
  free(mask);
  return rc;
}

static int write_file(const kd_pairs_cfg *c, const pairs *p, const vocab *v, int W, kd_pairs_stats *st, kd_err *e) {
  kd_tokenizer tk;
  if (make_tokenizer(v, &tk, e)) {
    kd_tokenizer_free(&tk);
    return e->code;
  }
  kd_atomic a;
  memset(&a, 0, sizeof a);
  hid_t f = H5I_INVALID_HID;
  int rc = kd_atomic_begin(&a, c->out, e) || kd_h5_create(&f, a.tmp, e) ? e->code : KD_OK;
  const hid_t tt = tk.vocab <= 256 ? H5T_STD_U8LE : tk.vocab <= 65536 ? H5T_STD_U16LE : H5T_STD_I32LE;
  for (int64_t lo = 0; lo < p->n && !rc;) { /* the entries are sorted by split */
    int64_t hi = lo;
    while (hi < p->n && p->e[hi].split == p->e[lo].split) hi++;
    rc = write_split(f, a.tmp, p, lo, hi, v, W, tt, st, e);
    lo = hi;
  }
  if (!rc) rc = kd_tokenizer_write(f, a.tmp, &tk, e);
  char gen[KD_PATH_MAX + 256];
  snprintf(gen, sizeof gen, "kd import pairs (%s from %s: %d source characters, %d target symbols, rows of %d)",
           c->format, c->in, v->n_chars, v->n_tgt, W);
  kd_provenance pv = kd_provenance_of("data");
  pv.generator = gen;
  for (int s = 0; s < 3; s++) pv.rows[s] = st->rows[s];
  if (!rc) rc = kd_provenance_write(f, a.tmp, &pv, e);
  if (f >= 0) rc = kd_h5_close(f, a.tmp, rc, e);
  if (!rc) rc = kd_atomic_commit(&a, e);
  if (rc && a.tmp[0]) kd_atomic_abort(&a);
  st->vocab = tk.vocab;
  kd_tokenizer_free(&tk);
  return rc;
}

int kd_import_pairs(const kd_pairs_cfg *c, kd_pairs_stats *st, kd_err *e) {
  kd_h5_quiet();
  memset(st, 0, sizeof *st);
  if (c->valid_frac + c->test_frac >= 1.0)
    return kd_fail(e, KD_ERR_USAGE, "kd import pairs: --valid-frac %g and --test-frac %g leave no training pairs",
                   c->valid_frac, c->test_frac);
  pairs p;
  vocab v;
  memset(&p, 0, sizeof p);
  memset(&v, 0, sizeof v);
  int rc = read_pairs(c, &p, st, e);
  if (!rc) rc = assign(c, &p, e);
  if (!rc) {
    qsort(p.e, (size_t)p.n, sizeof(entry), order_cmp);
    rc = build_vocab(&p, &v, e);
  }
  int W = 0;
  for (int64_t i = 0; i < p.n && !rc; i++) {
    const int len = encode(&p, &p.e[i], &v, NULL, NULL);
    if (c->ctx > 0 && len > c->ctx)
      rc = kd_fail(e, KD_ERR_RUNTIME, "%s:%lld: '%s' takes %d tokens (source, separator, target, end); --ctx is %lld",
                   c->in, (long long)p.e[i].line, p.s.p + p.e[i].src, len, (long long)c->ctx);
    W = len > W ? len : W;
  }
  if (c->ctx > 0) W = (int)c->ctx;
  if (!rc) rc = write_file(c, &p, &v, W, st, e);
  st->n_source = v.n_chars;
  st->n_target = v.n_tgt;
  st->width = W;
  free(v.chars);
  free(v.tgt);
  pairs_free(&p);
  return rc;
}
