/* Minimal assertions for kd's C tests: count failures, print each, and let
 * main return check_summary() (non-zero when anything failed). */
#ifndef KD_TEST_CHECK_H
#define KD_TEST_CHECK_H

#include <math.h>
#include <stdio.h>

static int check_failures = 0, check_count = 0;

#define CHECK(cond, ...)                                              \
  do {                                                                \
    check_count++;                                                    \
    if (!(cond)) {                                                    \
      check_failures++;                                               \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                   \
      fputc('\n', stderr);                                            \
    }                                                                 \
  } while (0)

/* |a - b| <= atol + rtol * max(|a|, |b|) */
static inline int check_close(double a, double b, double rtol, double atol) {
  double d = fabs(a - b), m = fabs(a) > fabs(b) ? fabs(a) : fabs(b);
  return d <= atol + rtol * m && !isnan(a) && !isnan(b);
}

static inline int check_summary(const char *name) {
  printf("%s: %d checks, %d failed\n", name, check_count, check_failures);
  return check_failures ? 1 : 0;
}

#endif
