/* A JSON reader (RFC 8259) and a few writing helpers, for the ecosystem's files: safetensors headers,
 * Hugging Face config.json and tokenizer.json.
 *
 * The parse gives a tree of nodes allocated in one arena (a tokenizer.json of a 128k vocabulary is about
 * a million nodes: one malloc each would dominate). Strings are decoded (escapes, \u surrogate pairs) to
 * UTF-8 with a NUL after them; a string may also hold NUL bytes, so its length is kept. Numbers keep their
 * double value and, when they are integers that fit, their exact int64 value. */
#ifndef KD_CORE_JSON_H
#define KD_CORE_JSON_H

#include <stdint.h>
#include <stdio.h>

#include "kd/error.h"

typedef enum kd_json_type {
  KD_JSON_NULL, KD_JSON_FALSE, KD_JSON_TRUE, KD_JSON_NUMBER, KD_JSON_STRING, KD_JSON_ARRAY, KD_JSON_OBJECT
} kd_json_type;

typedef struct kd_json kd_json;
struct kd_json {
  kd_json_type type;
  int is_int;          /* number: an integer within int64 */
  int64_t integer;     /* number: its exact value when is_int */
  double number;       /* number */
  const char *str;     /* string: the decoded bytes (NUL-terminated) */
  size_t len;          /* string: bytes; array, object: elements or members */
  const char *key;     /* a member of an object: its name (NUL-terminated) */
  size_t key_len;
  kd_json *child;      /* array, object: the first element or member */
  kd_json *next;       /* the next element or member of the parent */
};

typedef struct kd_json_doc kd_json_doc;

/* Parse text[0, len) (one value, whitespace around it); what names the source for messages, which give
 * the byte offset of the error. */
int kd_json_parse(kd_json_doc **doc, const char *text, size_t len, const char *what, kd_err *e);
/* Read and parse a whole file. */
int kd_json_parse_file(kd_json_doc **doc, const char *path, kd_err *e);
const kd_json *kd_json_root(const kd_json_doc *doc);
void kd_json_free(kd_json_doc *doc);

/* The member named key of an object (NULL when absent or when o is not an object). */
const kd_json *kd_json_get(const kd_json *o, const char *key);
/* Typed getters of a member: 1 when present with that type (the value stored), 0 otherwise. */
int kd_json_get_int(const kd_json *o, const char *key, int64_t *v);
int kd_json_get_num(const kd_json *o, const char *key, double *v);
const char *kd_json_get_str(const kd_json *o, const char *key); /* NULL unless a string */
int kd_json_is_true(const kd_json *o, const char *key);          /* present and true */

/* Write s[0, n) as a JSON string literal (quotes and escapes); returns 0, or -1 when writing failed. */
int kd_json_write_str(FILE *f, const char *s, size_t n);

#endif
