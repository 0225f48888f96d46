/* Byte-level BPE (data/bpe.h): the chunking, a hand-worked training run (merges, tie-break, ids, early
 * stop), determinism, round trips on UTF-8 text and random bytes, encoding that uses the merges, V = 256,
 * and the errors (bad V, a tokenizer that is not kd's BPE, too many tokens). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "data/bpe.h"
#include "kd/data.h"

static const char utf8_text[] = "naïve café — 日本語 ünïcödé 😀🎉 emoji, “quotes” and über-straße\n";

/* The chunks of s, joined by '|'. */
static void chunks_of(const char *s, char *out, size_t cap) {
  const size_t n = strlen(s);
  size_t pos = 0;
  for (size_t i = 0; i < n;) {
    const size_t j = kd_bpe_chunk_end((const uint8_t *)s, n, i);
    pos += (size_t)snprintf(out + pos, cap - pos, "%s%.*s", i ? "|" : "", (int)(j - i), s + i);
    i = j;
  }
}

static void test_chunks(void) {
  char got[512];
  chunks_of("Hello, world!\n\n  two  spaces\tx", got, sizeof got);
  CHECK(strcmp(got, "Hello|,| world|!|\n\n| | two| | spaces|\t|x") == 0, "chunks: '%s'", got);
  chunks_of("caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac-ok", got, sizeof got);
  CHECK(strcmp(got, "caf\xc3\xa9| \xe6\x97\xa5\xe6\x9c\xac|-|ok") == 0, "UTF-8 inside words: '%s'", got);
  /* a run past the limit is cut, not inside the 2-byte sequence that straddles byte 64 */
  char long_word[200];
  memset(long_word, 'a', 63);
  memcpy(long_word + 63, "\xc3\xa9", 2);
  memset(long_word + 65, 'b', 100);
  long_word[165] = 0;
  const size_t n = strlen(long_word), j = kd_bpe_chunk_end((const uint8_t *)long_word, n, 0);
  CHECK(j == 63, "long run cut at %zu, wanted 63 (before the UTF-8 lead byte)", j);
  size_t k = kd_bpe_chunk_end((const uint8_t *)long_word, n, j), count = 2;
  CHECK(k - j == KD_BPE_MAX_CHUNK, "second piece %zu bytes", k - j);
  for (; k < n; count++) k = kd_bpe_chunk_end((const uint8_t *)long_word, n, k);
  CHECK(k == n && count == 3, "pieces %zu, end %zu", count, k);
}

/* GPT-2's pre-tokenizer (the "gpt2" records kd import text writes): hand-worked splits of its pattern. */
static void gpt2_chunks_of(const char *s, size_t n, char *out, size_t cap) {
  kd_err e = {0};
  kd_bpe_splitter *sp;
  CHECK(kd_bpe_splitter_new(&sp, KD_BPE_PRE_GPT2, &e) == KD_OK, "splitter: %s", e.msg);
  size_t pos = 0;
  for (size_t i = 0; sp && i < n;) {
    const size_t j = kd_bpe_split_next(sp, (const uint8_t *)s, n, i);
    pos += (size_t)snprintf(out + pos, cap - pos, "%s%.*s", i ? "|" : "", (int)(j - i), s + i);
    i = j;
  }
  kd_bpe_splitter_free(sp);
}

static void test_gpt2_chunks(void) {
  char got[512];
  const char *a = "Hello world's 123 test!!  ok\n\n\xc3\xbc";
  gpt2_chunks_of(a, strlen(a), got, sizeof got);
  CHECK(strcmp(got, "Hello| world|'s| 123| test|!!| | ok|\n|\n|\xc3\xbc") == 0, "gpt2: '%s'", got);
  const char *b = "I'll   café x2 \xe6\x97\xa5\xe6\x9c\xac--\xe2\x80\x94 end  ";
  gpt2_chunks_of(b, strlen(b), got, sizeof got);
  CHECK(strcmp(got, "I|'ll|  | caf\xc3\xa9| x|2| \xe6\x97\xa5\xe6\x9c\xac|--\xe2\x80\x94| end|  ") == 0, "gpt2: '%s'", got);
  /* bytes that are not UTF-8 make chunks of their own; a long run is one chunk (no limit) */
  const char c[] = "ab\xff\xfe cd";
  gpt2_chunks_of(c, sizeof c - 1, got, sizeof got);
  CHECK(strcmp(got, "ab|\xff\xfe| cd") == 0, "gpt2 with invalid UTF-8: '%s'", got);
  char run[301];
  memset(run, '=', 300);
  run[300] = 0;
  gpt2_chunks_of(run, 300, got, sizeof got);
  CHECK(strlen(got) == 300, "a run of 300 '=' is one chunk (%zu bytes of output)", strlen(got));
  /* chunks longer than the splitter's first window (1024 bytes), across its edges */
  static char big[8192], out[16384];
  memset(big, ' ', 3000);
  memcpy(big + 3000, "x", 2);
  gpt2_chunks_of(big, 3001, out, sizeof out);
  CHECK(strchr(out, '|') && strchr(out, '|') - out == 2999 && strcmp(strchr(out, '|'), "| x") == 0,
        "3000 spaces then x: 2999 spaces and ' x' (%zu bytes before the cut)", strchr(out, '|') ? (size_t)(strchr(out, '|') - out) : 0);
  memset(big, 'a', 1023);
  memcpy(big + 1023, "\xe6\x97\xa5\xe6\x9c\xac b", 9);
  gpt2_chunks_of(big, 1031, out, sizeof out);
  CHECK(strlen(out) == 1032 && strcmp(out + 1029, "| b") == 0, "a word of 1029 bytes across the window's edge");
  memset(big, '=', 5000);
  gpt2_chunks_of(big, 5000, out, sizeof out);
  CHECK(strlen(out) == 5000, "a run of 5000 '=' is one chunk");
  kd_err e = {0};
  kd_bpe_splitter *sp = NULL;
  CHECK(kd_bpe_splitter_new(&sp, "wordpiece", &e) == KD_ERR_RUNTIME && strstr(e.msg, "'wordpiece' is not known"),
        "unknown pre-tokenizer: %s", e.msg);
}

static int train(kd_tokenizer *t, const char *text, size_t n, int V) {
  kd_err e = {0};
  const int rc = kd_bpe_train(t, (const uint8_t *)text, n, V, KD_BPE_PRE_KD1, &e);
  CHECK(rc == KD_OK, "train: %s", e.msg);
  return rc;
}

/* Encode and decode s; returns the id count (-1 on an error or a round trip that differs). */
static int round_trip(const kd_tokenizer *t, const uint8_t *s, size_t n) {
  int32_t *ids = malloc(sizeof(int32_t) * (n + 1));
  uint8_t *back = malloc(n + 1);
  kd_err e = {0};
  int m = 0;
  const int rc = kd_tokenizer_encode(t, s, n, ids, (int)n + 1, &m, &e);
  CHECK(rc == KD_OK, "encode: %s", e.msg);
  const size_t got = rc ? 0 : kd_tokenizer_decode(t, ids, m, back, n + 1);
  int ok = rc == KD_OK && got == n && memcmp(back, s, n) == 0;
  for (int i = 0; i < m; i++) ok = ok && ids[i] >= 0 && ids[i] < t->vocab;
  free(ids);
  free(back);
  return ok ? m : -1;
}

static void test_hand_worked(void) {
  /* chunks "aaab" x1 and " aaab" x2. (a,a) counts 6; then (a,b) and (256,a) tie at 3: the smaller pair
   * (97,98) wins; then (256,257) 3 and (' ',258) 2; then no pair is left, so 4 merges, not 44 */
  static const char text[] = "aaab aaab aaab";
  kd_tokenizer t;
  if (train(&t, text, strlen(text), 300)) return;
  static const int32_t want[8] = {97, 97, 97, 98, 256, 257, 32, 258};
  CHECK(strcmp(t.kind, "bpe") == 0 && t.pad_id == -1 && t.sep_id == -1 && t.end_id == -1, "kind %s", t.kind);
  CHECK(t.n_merges == 4 && t.vocab == 260, "merges %d, vocab %d", t.n_merges, t.vocab);
  for (int i = 0; t.n_merges == 4 && i < 8; i++) CHECK(t.merges[i] == want[i], "merge %d: %d", i / 2, t.merges[i]);
  CHECK(t.vocab == 260 && t.offsets[260] - t.offsets[259] == 5 && memcmp(t.bytes + t.offsets[259], " aaab", 5) == 0,
        "id 259 is ' aaab'");
  int32_t ids[16];
  int n = 0;
  kd_err e = {0};
  CHECK(kd_bpe_encode(&t, (const uint8_t *)"aaab aaab", 9, ids, 16, &n, &e) == KD_OK && n == 2 && ids[0] == 258 &&
            ids[1] == 259, "'aaab aaab' -> %d ids [%d %d]", n, ids[0], ids[1]);
  /* (a,a) ranks before (a,b): "aab" is [256, 'b'], not ['a', 257] */
  CHECK(kd_bpe_encode(&t, (const uint8_t *)"aab", 3, ids, 16, &n, &e) == KD_OK && n == 2 && ids[0] == 256 &&
            ids[1] == 'b', "'aab' -> %d ids [%d %d]", n, ids[0], ids[1]);
  /* "aaaa": left to right, (a,a)(a,a) -> [256, 256] */
  CHECK(kd_bpe_encode(&t, (const uint8_t *)"aaaa", 4, ids, 16, &n, &e) == KD_OK && n == 2 && ids[0] == 256 &&
            ids[1] == 256, "'aaaa' -> %d ids", n);
  kd_tokenizer_free(&t);
}

/* A tokenizer made by hand from merges: merge 0 (b, c), merge 1 (a, b). Encoding "abc" must apply the
 * lower rank first, [a, 256], though (a, b) comes first in the text. */
static void test_rank_order(void) {
  kd_tokenizer t;
  kd_err e = {0};
  if (kd_tokenizer_bytes(&t, &e)) return;
  snprintf(t.kind, sizeof t.kind, "bpe");
  int64_t *off = realloc(t.offsets, sizeof(int64_t) * 259);
  uint8_t *bytes = realloc(t.bytes, 260);
  int32_t *merges = malloc(sizeof(int32_t) * 4);
  if (!off || !bytes || !merges) {
    CHECK(0, "out of memory");
    return;
  }
  t.offsets = off;
  t.bytes = bytes;
  t.merges = merges;
  memcpy(t.bytes + 256, "bcab", 4);
  t.offsets[257] = 258;
  t.offsets[258] = 260;
  t.vocab = 258;
  t.n_merges = 2;
  memcpy(t.merges, (int32_t[]){'b', 'c', 'a', 'b'}, sizeof(int32_t) * 4);
  int32_t ids[8];
  int n = 0;
  CHECK(kd_tokenizer_encode(&t, (const uint8_t *)"abc", 3, ids, 8, &n, &e) == KD_OK && n == 2 && ids[0] == 'a' &&
            ids[1] == 256, "'abc' -> %d ids [%d %d] (%s)", n, ids[0], ids[1], e.msg);
  CHECK(kd_tokenizer_encode(&t, (const uint8_t *)"abab", 4, ids, 8, &n, &e) == KD_OK && n == 2 && ids[0] == 257 &&
            ids[1] == 257, "'abab' -> %d ids", n);
  kd_tokenizer_free(&t);
}

/* The record's pre_tokenizer decides the encoding: kd1 keeps "x2" one word (a merge applies), gpt2 cuts it
 * into a letter and a number (the merge cannot). */
static void test_record_pre(void) {
  kd_tokenizer t;
  kd_err e = {0};
  if (kd_tokenizer_bytes(&t, &e)) return;
  snprintf(t.kind, sizeof t.kind, "bpe");
  int64_t *off = realloc(t.offsets, sizeof(int64_t) * 258);
  uint8_t *bytes = realloc(t.bytes, 258);
  int32_t *merges = malloc(sizeof(int32_t) * 2);
  if (!off || !bytes || !merges) {
    CHECK(0, "out of memory");
    return;
  }
  t.offsets = off, t.bytes = bytes, t.merges = merges;
  memcpy(t.bytes + 256, "x2", 2);
  t.offsets[257] = 258;
  t.vocab = 257;
  t.n_merges = 1;
  t.merges[0] = 'x', t.merges[1] = '2';
  int32_t ids[8];
  int n = 0;
  snprintf(t.pre, sizeof t.pre, "%s", KD_BPE_PRE_KD1);
  CHECK(kd_tokenizer_encode(&t, (const uint8_t *)"x2", 2, ids, 8, &n, &e) == KD_OK && n == 1 && ids[0] == 256,
        "kd1: 'x2' -> %d ids (%s)", n, e.msg);
  snprintf(t.pre, sizeof t.pre, "%s", KD_BPE_PRE_GPT2);
  CHECK(kd_tokenizer_encode(&t, (const uint8_t *)"x2", 2, ids, 8, &n, &e) == KD_OK && n == 2 && ids[0] == 'x' &&
            ids[1] == '2', "gpt2: 'x2' -> %d ids (%s)", n, e.msg);
  kd_tokenizer_free(&t);
}

/* A text of words from a small vocabulary (with UTF-8 ones), deterministic. */
static char *word_text(size_t *n) {
  static const char *words[] = {"the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "naïve", "café",
                                "日本語", "😀", "ünïcödé", "—", "again,", "and", "then."};
  const size_t cap = 1 << 18;
  char *s = malloc(cap);
  size_t pos = 0;
  uint64_t x = 12345;
  while (pos + 64 < cap) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    const char *w = words[(x >> 33) % (sizeof words / sizeof *words)];
    pos += (size_t)snprintf(s + pos, cap - pos, "%s%s", w, (x >> 20) % 11 == 0 ? "\n" : " ");
  }
  *n = pos;
  return s;
}

static void test_train_encode(void) {
  size_t n;
  char *text = word_text(&n);
  kd_tokenizer a, b;
  if (train(&a, text, n, 600) || train(&b, text, n, 600)) {
    free(text);
    return;
  }
  CHECK(a.n_merges > 50 && a.n_merges <= 344 && a.vocab == 256 + a.n_merges, "merges %d vocab %d", a.n_merges,
        a.vocab);
  CHECK(a.n_merges == b.n_merges && memcmp(a.merges, b.merges, sizeof(int32_t) * 2 * (size_t)a.n_merges) == 0 &&
            a.offsets[a.vocab] == b.offsets[b.vocab] && memcmp(a.bytes, b.bytes, (size_t)a.offsets[a.vocab]) == 0,
        "training twice gives the same merges and vocabulary");
  for (int i = 0; i < a.n_merges; i++)
    CHECK(a.merges[2 * i] < 256 + i && a.merges[2 * i + 1] < 256 + i, "merge %d uses a later id", i);
  const int m = round_trip(&a, (const uint8_t *)text, n);
  CHECK(m > 0 && (size_t)m * 3 < n, "the training text: %d ids for %zu bytes (merges used)", m, n);
  /* unseen text: new words and symbols still round trip */
  CHECK(round_trip(&a, (const uint8_t *)utf8_text, strlen(utf8_text)) > 0, "UTF-8 text round trip");
  const int mu = round_trip(&a, (const uint8_t *)"the café 日本語 😀", strlen("the café 日本語 😀"));
  CHECK(mu > 0 && mu < 10, "known words encode to few ids (%d)", mu);
  kd_tokenizer_free(&a);
  kd_tokenizer_free(&b);
  free(text);
}

static void test_random_bytes(void) {
  const size_t n = 1 << 16;
  uint8_t *s = malloc(n);
  uint64_t x = 99;
  for (size_t i = 0; i < n; i++) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    s[i] = (uint8_t)(x >> 56);
  }
  kd_tokenizer t;
  if (train(&t, (const char *)s, n, 1000) == KD_OK) {
    CHECK(t.n_merges > 0, "random bytes still repeat some pairs");
    CHECK(round_trip(&t, s, n) > 0, "random bytes round trip (training text)");
    for (size_t i = 0; i < n; i++) s[i] ^= (uint8_t)(i * 7);
    CHECK(round_trip(&t, s, n) > 0, "random bytes round trip (other bytes)");
    CHECK(round_trip(&t, (const uint8_t *)"\0\xff\x80 \n", 5) == 5, "NUL, 0xff, a lone continuation byte");
    kd_tokenizer_free(&t);
  }
  free(s);
}

static void test_v256_and_errors(void) {
  size_t n;
  char *text = word_text(&n);
  kd_tokenizer t;
  if (train(&t, text, n, 256) == KD_OK) {
    CHECK(t.n_merges == 0 && t.vocab == 256, "V = 256: %d merges, vocab %d", t.n_merges, t.vocab);
    CHECK(round_trip(&t, (const uint8_t *)"abc", 3) == 3, "V = 256 encodes one id per byte");
    kd_tokenizer_free(&t);
  }
  kd_err e = {0};
  CHECK(kd_bpe_train(&t, (const uint8_t *)text, n, 100, KD_BPE_PRE_GPT2, &e) == KD_ERR_USAGE && strstr(e.msg, "100"), "V = 100: %s",
        e.msg);
  kd_err_clear(&e);
  CHECK(kd_bpe_train(&t, (const uint8_t *)text, n, KD_BPE_MAX_VOCAB + 1, KD_BPE_PRE_GPT2, &e) == KD_ERR_USAGE, "V too large");
  if (train(&t, text, n, 400) == KD_OK) {
    int32_t ids[4];
    int m;
    kd_err_clear(&e);
    CHECK(kd_tokenizer_encode(&t, (const uint8_t *)text, n, ids, 4, &m, &e) == KD_ERR_USAGE &&
              strstr(e.msg, "longer than 4 tokens"), "cap: %s", e.msg);
    t.bytes[t.offsets['x']] = 'y'; /* id 'x' no longer the byte 'x' */
    kd_err_clear(&e);
    CHECK(kd_tokenizer_encode(&t, (const uint8_t *)"x", 1, ids, 4, &m, &e) == KD_ERR_RUNTIME &&
              strstr(e.msg, "not a byte-level BPE kd can apply"), "foreign vocabulary: %s", e.msg);
    t.bytes[t.offsets['x']] = 'x';
    t.merges[2 * 5] = 256 + 7; /* merge 5 of an id made later */
    kd_err_clear(&e);
    CHECK(kd_tokenizer_encode(&t, (const uint8_t *)"x", 1, ids, 4, &m, &e) == KD_ERR_RUNTIME, "bad merge: %s", e.msg);
    kd_tokenizer_free(&t);
  }
  free(text);
}

int main(void) {
  test_chunks();
  test_gpt2_chunks();
  test_hand_worked();
  test_rank_order();
  test_record_pre();
  test_train_encode();
  test_random_bytes();
  test_v256_and_errors();
  return check_summary("test_bpe");
}
