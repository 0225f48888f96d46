#include "kd/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int kd_fail(kd_err *e, int code, const char *fmt, ...) {
  if (!e) return code;
  if (e->code != KD_OK) return e->code; /* keep the first (root) cause */
  e->code = code;
  e->rank = -1;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->msg, sizeof e->msg, fmt, ap);
  va_end(ap);
  return code;
}

void kd_err_clear(kd_err *e) {
  e->code = KD_OK;
  e->rank = -1;
  e->msg[0] = '\0';
}

void *kd_malloc(size_t bytes, const char *what, kd_err *e) {
  void *p = malloc(bytes ? bytes : 1);
  if (!p) kd_fail(e, KD_ERR_RUNTIME, "out of memory allocating %zu bytes for %s", bytes, what);
  return p;
}

void *kd_calloc(size_t n, size_t size, const char *what, kd_err *e) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p) kd_fail(e, KD_ERR_RUNTIME, "out of memory allocating %zu x %zu bytes for %s", n, size, what);
  return p;
}
