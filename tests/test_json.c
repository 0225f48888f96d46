/* The JSON reader (core/json.h): values of every type, string escapes (\u with surrogate pairs, an unpaired
 * surrogate as U+FFFD, NUL inside a string), exact integers, members by name, the writer's escapes read back,
 * and malformed text as an error naming the byte offset. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/json.h"

static const kd_json *parse(kd_json_doc **d, const char *text, kd_err *e) {
  kd_err_clear(e);
  return kd_json_parse(d, text, strlen(text), "test.json", e) ? NULL : kd_json_root(*d);
}

static void test_values(void) {
  kd_err e = {0};
  kd_json_doc *d;
  const kd_json *r = parse(&d, " {\"a\": [1, -2.5e3, true, false, null, \"x\"], \"n\": 9007199254740993, "
                               "\"s\": \"q\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\\u0000z\", \"e\": {}, \"l\": []} ", &e);
  CHECK(r && r->type == KD_JSON_OBJECT && r->len == 5, "object: %s", e.msg);
  if (!r) return;
  const kd_json *a = kd_json_get(r, "a");
  CHECK(a && a->type == KD_JSON_ARRAY && a->len == 6, "array");
  const kd_json *x = a->child;
  CHECK(x->is_int && x->integer == 1, "1");
  x = x->next;
  CHECK(!x->is_int && x->number == -2500.0, "-2.5e3");
  x = x->next;
  CHECK(x->type == KD_JSON_TRUE && x->next->type == KD_JSON_FALSE && x->next->next->type == KD_JSON_NULL, "literals");
  int64_t n = 0;
  CHECK(kd_json_get_int(r, "n", &n) && n == 9007199254740993LL, "exact integer past 2^53: %lld", (long long)n);
  const kd_json *s = kd_json_get(r, "s");
  static const char want[] = "q\"\\/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80\0z";
  CHECK(s && s->len == sizeof want - 1 && memcmp(s->str, want, sizeof want - 1) == 0, "escapes (%zu bytes)",
        s ? s->len : 0);
  CHECK(kd_json_get(r, "e")->len == 0 && kd_json_get(r, "l")->len == 0 && !kd_json_get(r, "missing"), "empty");
  kd_json_free(d);
  r = parse(&d, "\"\\ud800x\"", &e);
  CHECK(r && strcmp(r->str, "\xef\xbf\xbdx") == 0, "an unpaired surrogate is U+FFFD");
  kd_json_free(d);
}

static void test_errors(void) {
  static const struct { const char *text; size_t at; } bad[] = {
      {"{\"a\": 1,}", 8}, {"[1 2]", 3}, {"\"abc", 4}, {"{\"a\" 1}", 5}, {"[1] x", 4}, {"tru", 0},
      {"\"\\q\"", 1}, {"\"\\u12g4\"", 3}, {"", 0}, {"[-]", 2}, {"\"a\nb\"", 2}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    kd_err e = {0};
    kd_json_doc *d = NULL;
    char at[64];
    snprintf(at, sizeof at, "at byte %zu:", bad[i].at);
    const int rc = kd_json_parse(&d, bad[i].text, strlen(bad[i].text), "test.json", &e);
    CHECK(rc == KD_ERR_RUNTIME && !d && strstr(e.msg, "test.json: not valid JSON") && strstr(e.msg, at),
          "'%s': %s", bad[i].text, e.msg);
  }
  char deep[600];
  memset(deep, '[', 300);
  memset(deep + 300, ']', 300);
  kd_err e = {0};
  kd_json_doc *d = NULL;
  CHECK(kd_json_parse(&d, deep, 600, "deep", &e) == KD_ERR_RUNTIME && strstr(e.msg, "nesting"), "depth: %s", e.msg);
}

static void test_write_read(void) {
  static const char raw[] = "a\"b\\c\n\t\x01\x7f\xc3\xa9";
  FILE *f = tmpfile();
  CHECK(f && kd_json_write_str(f, raw, sizeof raw - 1) == 0, "write");
  if (!f) return;
  char buf[128] = {0};
  rewind(f);
  const size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  kd_err e = {0};
  kd_json_doc *d;
  const kd_json *r = NULL;
  if (kd_json_parse(&d, buf, n, "written", &e) == KD_OK) r = kd_json_root(d);
  CHECK(r && r->len == sizeof raw - 1 && memcmp(r->str, raw, r->len) == 0, "written string reads back: %s", buf);
  if (r) kd_json_free(d);
}

int main(void) {
  test_values();
  test_errors();
  test_write_read();
  return check_summary("json");
}
