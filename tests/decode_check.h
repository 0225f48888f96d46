/* A check both autoregressive families share (test_gpt.c, test_llama.c): their decode_step contract. */
#ifndef KD_TESTS_DECODE_CHECK_H
#define KD_TESTS_DECODE_CHECK_H

#include <string.h>

#include "check.h"
#include "kd/model.h"

/* Two sequences (tokens [2, T]) decoded afresh with every position but the last fed without logits (keys and
 * values only) leave the same cache: the last position's logits [2, V] equal want bit for bit. Ends the
 * decode. */
static inline void check_prefix_without_logits(kd_model *m, const int32_t *tokens, int T, int V, const float *want) {
  enum { MAX_V = 64 };
  float z[2 * MAX_V];
  kd_err e;
  kd_err_clear(&e);
  CHECK(V <= MAX_V, "vocabulary %d over the check's %d", V, MAX_V);
  if (V > MAX_V) return;
  m->ops->decode_end(m);
  CHECK(m->ops->decode_begin(m, 2, &e) == KD_OK, "decode_begin: %s", e.msg);
  for (int p = 0; p < T; p++) {
    const int32_t tk[2] = {tokens[p], tokens[T + p]};
    const int ps[2] = {p, p};
    CHECK(m->ops->decode_step(m, p + 1 < T ? NULL : z, tk, ps, 2, &e) == KD_OK, "decode_step: %s", e.msg);
  }
  CHECK(memcmp(z, want, sizeof(float) * 2 * (size_t)V) == 0,
        "a prefix fed without logits changes the last position's logits");
}

#endif
