/* The tokenizer.json reader (data/hftok.h) without MPI, so that it runs under the sanitizers in little time: a
 * small byte-level BPE loads, encodes by Hugging Face's merge order (a vocabulary whose later-ranked merge is
 * a part of an earlier one), keeps an added token out of the text, survives kd's tokenizer.json writer and
 * reading back; and damaged or unsupported files are errors naming the file (never a crash, never a leak). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "data/bpe.h"
#include "data/hftok.h"
#include "kd/data.h"

static char dir[64] = "/tmp/kd-hftok.XXXXXX";

/* The 256 byte strings of GPT-2's byte-level alphabet as JSON members "s": id. */
static void byte_vocab(char *out, size_t cap) {
  char bc[256][3];
  int bl[256];
  kd_hftok_byte_chars(bc, bl);
  size_t pos = 0;
  for (int b = 0; b < 256; b++) {
    const char *s = bc[b];
    pos += (size_t)snprintf(out + pos, cap - pos, "%s\"%s%.*s\": %d", b ? ", " : "",
                            s[0] == '"' || s[0] == '\\' ? "\\" : "", bl[b], s, b);
  }
}

static const char *write_file(const char *name, const char *text) {
  static char path[256];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  if (!f || fputs(text, f) == EOF || fclose(f)) fprintf(stderr, "cannot write %s\n", path);
  return path;
}

static char *doc(const char *extra_vocab, const char *merges, const char *pre, const char *model_extra) {
  static char vocab[8192];
  byte_vocab(vocab, sizeof vocab);
  char *s = malloc(16384);
  snprintf(s, 16384,
           "{\"version\": \"1.0\", \"added_tokens\": [{\"id\": 300, \"content\": \"<|end|>\", \"special\": true}], "
           "\"normalizer\": null, \"pre_tokenizer\": %s, \"model\": {\"type\": \"BPE\"%s, \"vocab\": {%s%s}, "
           "\"merges\": [%s]}}",
           pre, model_extra, vocab, extra_vocab, merges);
  return s;
}

static const char *BL = "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true}";

static void encode(const kd_tokenizer *t, const char *text, int32_t *ids, int *n) {
  kd_err e = {0};
  *n = 0;
  CHECK(kd_tokenizer_encode(t, (const uint8_t *)text, strlen(text), ids, 64, n, &e) == KD_OK, "encode: %s", e.msg);
}

static void test_good(void) {
  char *s = doc(", \"ab\": 256, \"aba\": 257", "[\"ab\", \"a\"], [\"a\", \"b\"]", BL, "");
  const char *path = write_file("good.json", s);
  free(s);
  kd_tokenizer t;
  kd_err e = {0};
  CHECK(kd_hftok_load(&t, path, &e) == KD_OK, "load: %s", e.msg);
  if (e.code) return;
  CHECK(t.vocab == 301 && t.n_merges == 2 && t.token_kind[300] == KD_TOKEN_SPECIAL && t.token_kind[299] == KD_TOKEN_UNUSED,
        "vocab %d merges %d", t.vocab, t.n_merges);
  int32_t ids[64];
  int n;
  encode(&t, "abab", ids, &n); /* the lowest rank first, one pair at a time: "ab" "ab" -> "aba" "b" */
  CHECK(n == 2 && ids[0] == 257 && ids[1] == 'b', "abab -> %d ids: %d %d", n, ids[0], ids[1]);
  encode(&t, "x<|end|>", ids, &n);
  CHECK(n == 8 && ids[1] == '<', "an added token's spelling stays text: %d ids", n);
  char why[256];
  const char *out = write_file("written.json", "");
  CHECK(kd_hftok_write_json(&t, out, why, sizeof why, &e) == KD_OK && !why[0], "write: %s %s", e.msg, why);
  kd_tokenizer u;
  CHECK(kd_hftok_load(&u, out, &e) == KD_OK, "read back: %s", e.msg);
  if (!e.code) {
    int32_t again[64];
    int m;
    encode(&u, "abab", again, &m);
    CHECK(m == 2 && again[0] == 257 && u.vocab == t.vocab && u.token_kind[300] == KD_TOKEN_SPECIAL, "read back encodes");
    kd_tokenizer_free(&u);
  }
  kd_tokenizer_free(&t);
}

static void test_bad(void) {
  static const struct { const char *name, *extra, *merges, *model, *word; int raw; } cases[] = {
    {"unigram", "", "", "", "Unigram", 1},
    {"fallback", "", "", ", \"byte_fallback\": true", "byte_fallback", 0},
    {"merge", "", "[\"a\", \"q\"]", "", "their concatenation is not in model.vocab", 0},
    {"repeat", ", \"ab\": 256", "[\"a\", \"b\"], [\"a\", \"b\"]", "", "repeats the pair", 0},
    {"badid", ", \"zz\": -4", "", "", "is not an id", 0},
    {"truncated", "", "", "", "not valid JSON", 2},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *s = cases[i].raw == 1 ? strdup("{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}")
                                : doc(cases[i].extra, cases[i].merges, BL, cases[i].model);
    if (cases[i].raw == 2) s[strlen(s) / 2] = 0;
    char name[64];
    snprintf(name, sizeof name, "%s.json", cases[i].name);
    const char *path = write_file(name, s);
    free(s);
    kd_tokenizer t;
    kd_err e = {0};
    CHECK(kd_hftok_load(&t, path, &e) == KD_ERR_RUNTIME && strstr(e.msg, cases[i].word) && strstr(e.msg, name),
          "%s: %s", cases[i].name, e.msg);
  }
  kd_tokenizer t;
  kd_err e = {0};
  CHECK(kd_hftok_load(&t, dir, &e) == KD_ERR_RUNTIME && strstr(e.msg, "not a regular file"), "a directory: %s", e.msg);
}

int main(void) {
  if (!mkdtemp(dir)) return perror("mkdtemp"), 1;
  test_good();
  test_bad();
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  return check_summary("test_hftok");
}
