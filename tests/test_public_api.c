/* A program that embeds libkd sees only include/kd (this target gets no
 * private include path): it builds a student from a spec, binds its
 * parameters, runs a batch through it and gets the logits a hand
 * computation gives; an unknown family is a usage error. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "kd/kd.h"

int main(void) {
  kd_err e;
  kd_err_clear(&e);
  kd_model_spec spec;
  memset(&spec, 0, sizeof spec);
  CHECK(kd_model_spec_parse(&spec, "mlp:2-3-2", &e) == KD_OK, "parse: %s", e.msg);
  CHECK(strcmp(spec.family, "mlp") == 0 && strcmp(spec.text, "2-3-2") == 0, "family %s text %s", spec.family, spec.text);
  kd_model_spec bare;
  memset(&bare, 0, sizeof bare);
  CHECK(kd_model_spec_parse(&bare, "2-3-2", &e) == KD_OK && strcmp(bare.family, "mlp") == 0, "a bare spec is an MLP");
  kd_model *m = NULL;
  CHECK(kd_model_create(&m, &spec, 4, &e) == KD_OK, "create: %s", e.msg);
  if (!m) return check_summary("test_public_api");
  CHECK(m->n_params == 2 * 3 + 3 + 3 * 2 + 2, "parameters %zu", m->n_params);
  CHECK(strcmp(kd_model_attr_get(m, "activation"), "relu") == 0, "activation attribute");
  float p[17], g[17];
  for (int i = 0; i < 17; i++) p[i] = 0.1f * (float)(i - 8);
  kd_model_bind(m, p, g);
  float x[2] = {1.0f, -2.0f}, z[2];
  int32_t y[1] = {0};
  int64_t rows[1] = {0};
  kd_batch b = {KD_INPUT_FEATURES, 1, 2, 1, x, NULL, NULL, y, rows, 2};
  kd_fwd f = {0, 0};
  CHECK(kd_model_forward(m, z, &b, &f, &e) == KD_OK, "forward: %s", e.msg);
  /* by hand: h = relu(W0 x + b0), z = W1 h + b1, W [out, in] row-major */
  double h[3], want[2];
  for (int j = 0; j < 3; j++) {
    double a = p[6 + j] + p[2 * j] * x[0] + p[2 * j + 1] * x[1];
    h[j] = a > 0 ? a : 0;
  }
  for (int k = 0; k < 2; k++) want[k] = p[15 + k] + p[9 + 3 * k] * h[0] + p[10 + 3 * k] * h[1] + p[11 + 3 * k] * h[2];
  CHECK(fabs(z[0] - want[0]) < 1e-6 && fabs(z[1] - want[1]) < 1e-6, "logits %g %g, by hand %g %g", z[0], z[1],
        want[0], want[1]);
  kd_model_free(m);
  kd_model_spec bad;
  memset(&bad, 0, sizeof bad);
  kd_err_clear(&e);
  CHECK(kd_model_spec_parse(&bad, "tree:2-3", &e) == KD_ERR_USAGE && strstr(e.msg, "unknown student family 'tree'"),
        "unknown family: %s", e.msg);
  return check_summary("test_public_api");
}
