#include "core/json.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/files.h"

#define NODES_PER_BLOCK 8192
#define MAX_DEPTH 256

typedef struct node_block {
  struct node_block *next;
  size_t used;
  kd_json nodes[NODES_PER_BLOCK];
} node_block;

struct kd_json_doc {
  node_block *blocks;
  char *strings;   /* every decoded string: never longer than its source text with its quotes */
  size_t str_used;
  kd_json *root;
};

typedef struct parser {
  const char *p, *end, *start;
  const char *what;
  kd_json_doc *doc;
  kd_err *e;
} parser;

static int bad(parser *ps, const char *why) {
  return kd_fail(ps->e, KD_ERR_RUNTIME, "%s: not valid JSON at byte %zu: %s", ps->what, (size_t)(ps->p - ps->start),
                 why);
}

static kd_json *new_node(parser *ps, kd_json_type type) {
  node_block *b = ps->doc->blocks;
  if (!b || b->used == NODES_PER_BLOCK) {
    b = kd_malloc(sizeof *b, "JSON nodes", ps->e);
    if (!b) return NULL;
    b->next = ps->doc->blocks;
    b->used = 0;
    ps->doc->blocks = b;
  }
  kd_json *n = &b->nodes[b->used++];
  memset(n, 0, sizeof *n);
  n->type = type;
  return n;
}

static void skip_space(parser *ps) {
  while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) ps->p++;
}

static int hex4(parser *ps, uint32_t *v) {
  if (ps->end - ps->p < 4) return bad(ps, "a \\u escape with fewer than 4 hex digits");
  *v = 0;
  for (int i = 0; i < 4; i++) {
    const char c = ps->p[i];
    const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0) return bad(ps, "a \\u escape with a character that is not a hex digit");
    *v = *v << 4 | (uint32_t)d;
  }
  ps->p += 4;
  return KD_OK;
}

static size_t put_utf8(char *o, uint32_t c) {
  if (c < 0x80) { o[0] = (char)c; return 1; }
  if (c < 0x800) { o[0] = (char)(0xc0 | c >> 6); o[1] = (char)(0x80 | (c & 0x3f)); return 2; }
  if (c < 0x10000) {
    o[0] = (char)(0xe0 | c >> 12); o[1] = (char)(0x80 | (c >> 6 & 0x3f)); o[2] = (char)(0x80 | (c & 0x3f));
    return 3;
  }
  o[0] = (char)(0xf0 | c >> 18); o[1] = (char)(0x80 | (c >> 12 & 0x3f));
  o[2] = (char)(0x80 | (c >> 6 & 0x3f)); o[3] = (char)(0x80 | (c & 0x3f));
  return 4;
}

/* A \u escape (after the u), with its low surrogate when it is a high one; unpaired surrogates become
 * U+FFFD as most readers do. */
static int unicode_escape(parser *ps, uint32_t *c) {
  if (hex4(ps, c)) return ps->e->code;
  if (*c >= 0xd800 && *c < 0xdc00 && ps->end - ps->p >= 6 && ps->p[0] == '\\' && ps->p[1] == 'u') {
    const char *save = ps->p;
    uint32_t lo;
    ps->p += 2;
    if (hex4(ps, &lo)) return ps->e->code;
    if (lo >= 0xdc00 && lo < 0xe000) {
      *c = 0x10000 + ((*c - 0xd800) << 10) + (lo - 0xdc00);
      return KD_OK;
    }
    ps->p = save;
  }
  if (*c >= 0xd800 && *c < 0xe000) *c = 0xfffd;
  return KD_OK;
}

/* The length of the valid UTF-8 character at p (no overlong forms, surrogates or code points past U+10FFFF), or 0. */
static size_t utf8_valid(const unsigned char *p, size_t n) {
  const unsigned c = p[0];
  size_t k;
  uint32_t cp, min;
  if (c >= 0xc2 && c <= 0xdf) k = 2, cp = c & 0x1f, min = 0x80;
  else if (c >= 0xe0 && c <= 0xef) k = 3, cp = c & 0x0f, min = 0x800;
  else if (c >= 0xf0 && c <= 0xf4) k = 4, cp = c & 0x07, min = 0x10000;
  else return 0;
  if (n < k) return 0;
  for (size_t i = 1; i < k; i++) {
    if ((p[i] & 0xc0) != 0x80) return 0;
    cp = cp << 6 | (p[i] & 0x3f);
  }
  return cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000) ? 0 : k;
}

/* The string at ps->p (its opening quote) into the string arena. */
static int parse_string(parser *ps, const char **out, size_t *len) {
  ps->p++;
  char *o = ps->doc->strings + ps->doc->str_used, *o0 = o;
  for (;;) {
    if (ps->p >= ps->end) return bad(ps, "a string without its closing quote");
    const unsigned char c = (unsigned char)*ps->p;
    if (c == '"') break;
    if (c < 0x20) return bad(ps, "a control character inside a string");
    if (c >= 0x80) { /* one UTF-8 character, checked: JSON text is UTF-8 */
      const size_t k = utf8_valid((const unsigned char *)ps->p, (size_t)(ps->end - ps->p));
      if (!k) return bad(ps, "a string that is not valid UTF-8");
      memcpy(o, ps->p, k);
      o += k;
      ps->p += k;
      continue;
    }
    if (c != '\\') {
      *o++ = (char)c;
      ps->p++;
      continue;
    }
    if (ps->end - ps->p < 2) return bad(ps, "a string without its closing quote");
    const char x = ps->p[1];
    ps->p += 2;
    switch (x) {
    case '"': *o++ = '"'; break;
    case '\\': *o++ = '\\'; break;
    case '/': *o++ = '/'; break;
    case 'b': *o++ = '\b'; break;
    case 'f': *o++ = '\f'; break;
    case 'n': *o++ = '\n'; break;
    case 'r': *o++ = '\r'; break;
    case 't': *o++ = '\t'; break;
    case 'u': {
      uint32_t cp;
      if (unicode_escape(ps, &cp)) return ps->e->code;
      o += put_utf8(o, cp);
      break;
    }
    default: ps->p -= 2; return bad(ps, "an unknown escape in a string");
    }
  }
  ps->p++;
  *o = 0;
  *out = o0;
  *len = (size_t)(o - o0);
  ps->doc->str_used += *len + 1;
  return KD_OK;
}

static int parse_number(parser *ps, kd_json *n) {
  const char *s = ps->p;
  if (ps->p < ps->end && *ps->p == '-') ps->p++;
  if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') return bad(ps, "a value that is not JSON");
  int integral = 1;
  while (ps->p < ps->end && ((*ps->p >= '0' && *ps->p <= '9') || *ps->p == '.' || *ps->p == 'e' || *ps->p == 'E' ||
                             *ps->p == '+' || *ps->p == '-')) {
    if (*ps->p == '.' || *ps->p == 'e' || *ps->p == 'E') integral = 0;
    ps->p++;
  }
  char buf[64];
  const size_t len = (size_t)(ps->p - s);
  if (len >= sizeof buf) return bad(ps, "a number of more than 63 characters");
  memcpy(buf, s, len);
  buf[len] = 0;
  char *endp;
  errno = 0;
  n->number = strtod(buf, &endp);
  if (endp != buf + len) return bad(ps, "a malformed number");
  if (integral) {
    errno = 0;
    const long long v = strtoll(buf, &endp, 10);
    if (errno == 0 && endp == buf + len) {
      n->is_int = 1;
      n->integer = v;
    }
  }
  return KD_OK;
}

static int literal(parser *ps, const char *word) {
  const size_t n = strlen(word);
  if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0) return bad(ps, "a value that is not JSON");
  ps->p += n;
  return KD_OK;
}

static kd_json *parse_value(parser *ps, int depth);

/* Elements (array) or members (object) up to the closing bracket. */
static int parse_container(parser *ps, kd_json *n, int depth) {
  const int object = n->type == KD_JSON_OBJECT;
  const char close = object ? '}' : ']';
  ps->p++;
  skip_space(ps);
  kd_json **tail = &n->child;
  if (ps->p < ps->end && *ps->p == close) {
    ps->p++;
    return KD_OK;
  }
  for (;;) {
    const char *key = NULL;
    size_t key_len = 0;
    skip_space(ps);
    if (object) {
      if (ps->p >= ps->end || *ps->p != '"') return bad(ps, "an object member without a quoted name");
      if (parse_string(ps, &key, &key_len)) return ps->e->code;
      skip_space(ps);
      if (ps->p >= ps->end || *ps->p != ':') return bad(ps, "an object member without ':'");
      ps->p++;
    }
    kd_json *v = parse_value(ps, depth + 1);
    if (!v) return ps->e->code;
    v->key = key;
    v->key_len = key_len;
    *tail = v;
    tail = &v->next;
    n->len++;
    skip_space(ps);
    if (ps->p < ps->end && *ps->p == ',') {
      ps->p++;
      continue;
    }
    if (ps->p < ps->end && *ps->p == close) {
      ps->p++;
      return KD_OK;
    }
    return bad(ps, object ? "an object without ',' or '}' after a member" : "an array without ',' or ']' after an element");
  }
}

static kd_json *parse_value(parser *ps, int depth) {
  if (depth > MAX_DEPTH) {
    bad(ps, "nesting deeper than 256");
    return NULL;
  }
  skip_space(ps);
  if (ps->p >= ps->end) {
    bad(ps, "the text ends where a value should be");
    return NULL;
  }
  const char c = *ps->p;
  kd_json_type t = c == '{' ? KD_JSON_OBJECT : c == '[' ? KD_JSON_ARRAY : c == '"' ? KD_JSON_STRING
                 : c == 't' ? KD_JSON_TRUE : c == 'f' ? KD_JSON_FALSE : c == 'n' ? KD_JSON_NULL : KD_JSON_NUMBER;
  kd_json *n = new_node(ps, t);
  if (!n) return NULL;
  int rc;
  switch (t) {
  case KD_JSON_OBJECT:
  case KD_JSON_ARRAY: rc = parse_container(ps, n, depth); break;
  case KD_JSON_STRING: rc = parse_string(ps, &n->str, &n->len); break;
  case KD_JSON_TRUE: rc = literal(ps, "true"); break;
  case KD_JSON_FALSE: rc = literal(ps, "false"); break;
  case KD_JSON_NULL: rc = literal(ps, "null"); break;
  default: rc = parse_number(ps, n); break;
  }
  return rc ? NULL : n;
}

void kd_json_free(kd_json_doc *doc) {
  if (!doc) return;
  while (doc->blocks) {
    node_block *b = doc->blocks;
    doc->blocks = b->next;
    free(b);
  }
  free(doc->strings);
  free(doc);
}

int kd_json_parse(kd_json_doc **out, const char *text, size_t len, const char *what, kd_err *e) {
  *out = NULL;
  kd_json_doc *doc = kd_calloc(1, sizeof *doc, "JSON document", e);
  if (!doc) return e->code;
  doc->strings = kd_malloc(len + 1, "JSON strings", e);
  parser ps = {text, text + len, text, what, doc, e};
  if (doc->strings) doc->root = parse_value(&ps, 0);
  if (doc->root) {
    skip_space(&ps);
    if (ps.p != ps.end) bad(&ps, "text after the value");
  }
  if (e->code) {
    kd_json_free(doc);
    return e->code;
  }
  *out = doc;
  return KD_OK;
}

int kd_json_parse_file(kd_json_doc **out, const char *path, kd_err *e) {
  *out = NULL;
  uint8_t *buf;
  size_t n;
  if (kd_read_all(path, &buf, &n, e)) return e->code;
  kd_json_parse(out, (const char *)buf, n, path, e);
  free(buf);
  return e->code;
}

const kd_json *kd_json_root(const kd_json_doc *doc) { return doc->root; }

const kd_json *kd_json_get(const kd_json *o, const char *key) {
  if (!o || o->type != KD_JSON_OBJECT) return NULL;
  const size_t n = strlen(key);
  for (const kd_json *m = o->child; m; m = m->next)
    if (m->key_len == n && memcmp(m->key, key, n) == 0) return m;
  return NULL;
}

int kd_json_get_int(const kd_json *o, const char *key, int64_t *v) {
  const kd_json *m = kd_json_get(o, key);
  if (!m || m->type != KD_JSON_NUMBER || !m->is_int) return 0;
  *v = m->integer;
  return 1;
}

int kd_json_get_num(const kd_json *o, const char *key, double *v) {
  const kd_json *m = kd_json_get(o, key);
  if (!m || m->type != KD_JSON_NUMBER) return 0;
  *v = m->number;
  return 1;
}

const char *kd_json_get_str(const kd_json *o, const char *key) {
  const kd_json *m = kd_json_get(o, key);
  return m && m->type == KD_JSON_STRING ? m->str : NULL;
}

int kd_json_is_true(const kd_json *o, const char *key) {
  const kd_json *m = kd_json_get(o, key);
  return m && m->type == KD_JSON_TRUE;
}

int kd_json_write_str(FILE *f, const char *s, size_t n) {
  if (fputc('"', f) == EOF) return -1;
  for (size_t i = 0; i < n; i++) {
    const unsigned char c = (unsigned char)s[i];
    int rc;
    if (c == '"' || c == '\\') rc = fprintf(f, "\\%c", c);
    else if (c == '\n') rc = fputs("\\n", f);
    else if (c == '\t') rc = fputs("\\t", f);
    else if (c == '\r') rc = fputs("\\r", f);
    else if (c < 0x20 || c == 0x7f) rc = fprintf(f, "\\u%04x", c);
    else rc = fputc(c, f);
    if (rc < 0) return -1;
  }
  return fputc('"', f) == EOF ? -1 : 0;
}
