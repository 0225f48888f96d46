/* A program embedding libkd: built with include/kd/libkd.h alone (this target gets no private include path)
 * and linked against the shared libkd, as an outside program is. It opens an MLP weights file (make_fixtures.py:
 * 3-4-2, ReLU, standard normalisation), gets the logits a hand computation gives for raw feature rows, reads the
 * session's description, and checks that misuse returns a code and a message: token calls on feature rows, text
 * without a tokenizer, a missing file, a data file, NULL arguments. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "kd/libkd.h"

static void by_hand(const float x[3], double z[2]) {
  static const double off[3] = {1, 2, 3}, scl[3] = {2, 4, 0.5}, b0[4] = {0.5, -0.25, 0.125, 0}, b1[2] = {0.25, -0.5};
  double h[4];
  for (int j = 0; j < 4; j++) {
    double a = b0[j];
    for (int i = 0; i < 3; i++) a += ((3 * j + i) - 5) / 8.0 * ((x[i] - off[i]) / scl[i]);
    h[j] = a > 0 ? a : 0;
  }
  for (int k = 0; k < 2; k++) {
    z[k] = b1[k];
    for (int j = 0; j < 4; j++) z[k] += ((4 * k + j) - 3) / 4.0 * h[j];
  }
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: test_public_api FIXTURES_DIR\n");
    return 2;
  }
  char path[4096], data[4096];
  snprintf(path, sizeof path, "%s/mlp_weights.h5", argv[1]);
  snprintf(data, sizeof data, "%s/ref.h5", argv[1]);
  CHECK(strcmp(kd_version(), KD_VERSION_STRING) == 0, "library %s, header %s", kd_version(), KD_VERSION_STRING);

  kd_session *s = NULL;
  CHECK(kd_session_open(&s, path, NULL) == KD_OK && s, "open: %s", kd_last_error());
  if (!s) return check_summary("test_public_api");
  kd_session_info info;
  CHECK(kd_session_info_get(s, &info) == KD_OK, "info");
  CHECK(strcmp(info.family, "mlp") == 0 && strcmp(info.spec, "3-4-2") == 0 && !info.tokens && info.in_dim == 3 &&
            info.vocab == 2 && info.ctx == 0 && !info.tokenizer && info.end_id == -1,
        "info: %s:%s tokens %d in %d vocab %d", info.family, info.spec, info.tokens, info.in_dim, info.vocab);

  const float x[3 * 3] = {1, 2, 3, -4, 10, 2.5f, 7, -1, 0};
  float z[3 * 2];
  CHECK(kd_session_logits_features(s, z, x, 3) == KD_OK, "logits: %s", kd_last_error());
  for (int r = 0; r < 3; r++) {
    double want[2];
    by_hand(x + 3 * r, want);
    CHECK(fabs(z[2 * r] - want[0]) < 1e-5 && fabs(z[2 * r + 1] - want[1]) < 1e-5, "row %d: %g %g, by hand %g %g", r,
          z[2 * r], z[2 * r + 1], want[0], want[1]);
  }

  int32_t ids[8] = {0};
  int n = 0;
  CHECK(kd_session_logits_tokens(s, z, ids, 1, 2) == KD_ERR_USAGE && strstr(kd_last_error(), "reads feature rows"),
        "token logits of an MLP: %s", kd_last_error());
  CHECK(kd_session_encode(s, ids, 8, &n, "hi", 2) == KD_ERR_USAGE && strstr(kd_last_error(), "no tokenizer record"),
        "encode without a tokenizer: %s", kd_last_error());
  kd_gen_params g = kd_gen_default_params();
  CHECK(g.mode == KD_GEN_SAMPLE && g.max_new == 200 && g.temperature == 1.0 && g.seed == 1, "generation defaults");
  CHECK(kd_session_generate(s, ids, 8, &n, ids, 1, &g) == KD_ERR_USAGE && strstr(kd_last_error(), "cannot generate"),
        "generate with an MLP: %s", kd_last_error());
  CHECK(kd_session_logits_features(s, NULL, x, 1) == KD_ERR_USAGE, "NULL logits");
  kd_session_close(s);
  kd_session_close(NULL);

  kd_session *t = (kd_session *)1;
  CHECK(kd_session_open(&t, "no/such/file.h5", NULL) == KD_ERR_RUNTIME && t == NULL &&
            strstr(kd_last_error(), "no/such/file.h5"),
        "a missing file: %s", kd_last_error());
  CHECK(kd_session_open(&t, data, NULL) == KD_ERR_RUNTIME && t == NULL && strstr(kd_last_error(), "ref.h5"),
        "a data file: %s", kd_last_error());
  const kd_session_params bad = {-1, 0};
  CHECK(kd_session_open(&t, path, &bad) == KD_ERR_USAGE && t == NULL, "negative max_batch: %s", kd_last_error());
  CHECK(kd_session_open(NULL, path, NULL) == KD_ERR_USAGE, "NULL session pointer");
  return check_summary("test_public_api");
}
