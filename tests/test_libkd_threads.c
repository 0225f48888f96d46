/* libkd's sessions from several threads at once (one session each), and their errors. A tiny gpt with the byte
 * tokenizer is written as a weights file; the main thread computes reference results through the public API
 * (greedy, sampled and beam-search continuations, token logits, an encode/decode round trip); four threads then
 * open their own sessions of the same file and must get the same results bit for bit, while also making the
 * calls fail as a program might: a token id out of range, rows longer than the context, a prompt too long for
 * beam search, a missing file, a directory without checkpoints. Each failure is a code and a message in that
 * thread's kd_last_error(). Run under AddressSanitizer (launch/test.sh), leaks fail it. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "ckpt/weights.h"
#include "kd/libkd.h"
#include "kd/ckpt.h"
#include "kd/data.h"
#include "kd/model.h"

#define THREADS 4
#define ROWS 3
#define T 16
#define V 256
#define NEW 24

typedef struct results {
  char greedy[512], sampled[512];
  size_t n_greedy, n_sampled;
  int32_t beam[NEW];
  int n_beam;
  float logits[ROWS * T * V];
  int failures;            /* checks of this thread that failed */
  char why[512];
} results;

static char g_path[300], g_dir[256];
static results g_ref;

static int write_fixture(void) {
  kd_err e;
  kd_err_clear(&e);
  kd_model_spec spec;
  memset(&spec, 0, sizeof spec);
  kd_model *m = NULL;
  kd_tokenizer tok;
  if (kd_model_spec_parse(&spec, "gpt:vocab=256,ctx=16,layers=1,dim=16,heads=2", &e) || kd_model_create(&m, &spec, 4, &e))
    return fprintf(stderr, "fixture: %s\n", e.msg), 1;
  float *p = calloc(m->n_params, sizeof(float));
  for (size_t i = 0; p && i < m->n_params; i++) p[i] = 0.3f * (float)((i * 2654435761u) % 1000) / 1000.0f - 0.15f;
  kd_model_bind(m, p, NULL);
  kd_ckpt_meta meta;
  memset(&meta, 0, sizeof meta);
  int rc = !p || kd_tokenizer_bytes(&tok, &e);
  meta.tok = &tok;
  if (!rc) rc = kd_weights_write(g_path, m, &meta, &e);
  if (rc) fprintf(stderr, "fixture: %s\n", e.msg);
  kd_tokenizer_free(&tok);
  kd_model_free(m);
  free(p);
  return rc;
}

#define EXPECT(r, cond, ...)                                          \
  do {                                                                \
    if (!(cond)) {                                                    \
      (r)->failures++;                                                \
      snprintf((r)->why, sizeof (r)->why, __VA_ARGS__);              \
    }                                                                 \
  } while (0)

/* Everything a thread computes with its own session. */
static void compute(results *r) {
  kd_session *s = NULL;
  if (kd_session_open(&s, g_path, NULL) != KD_OK) {
    EXPECT(r, 0, "open: %s", kd_last_error());
    return;
  }
  kd_gen_params g = kd_gen_default_params();
  g.max_new = NEW;
  g.mode = KD_GEN_GREEDY;
  EXPECT(r, kd_session_generate_text(s, r->greedy, sizeof r->greedy, &r->n_greedy, "The cat ", &g) == KD_OK,
         "greedy: %s", kd_last_error());
  g.mode = KD_GEN_SAMPLE;
  g.seed = 7;
  g.top_k = 20;
  EXPECT(r, kd_session_generate_text(s, r->sampled, sizeof r->sampled, &r->n_sampled, "The cat ", &g) == KD_OK,
         "sample: %s", kd_last_error());
  int32_t prompt[8];
  int n = 0;
  EXPECT(r, kd_session_encode(s, prompt, 8, &n, "Hello", 5) == KD_OK && n == 5 && prompt[0] == 'H', "encode");
  char back[8];
  size_t len = 0;
  EXPECT(r, kd_session_decode(s, back, sizeof back, &len, prompt, n) == KD_OK && len == 5 && !memcmp(back, "Hello", 5),
         "decode");
  g.mode = KD_GEN_BEAM;
  g.beam = 3;
  g.max_new = 8;
  EXPECT(r, kd_session_generate(s, r->beam, NEW, &r->n_beam, prompt, n, &g) == KD_OK && r->n_beam == 8, "beam: %s",
         kd_last_error());
  int32_t rows[ROWS * T];
  for (int i = 0; i < ROWS * T; i++) rows[i] = (i * 37 + 11) % V;
  EXPECT(r, kd_session_logits_tokens(s, r->logits, rows, ROWS, T) == KD_OK, "logits: %s", kd_last_error());

  /* misuse: a code and this thread's message */
  rows[5] = V;
  EXPECT(r, kd_session_logits_tokens(s, r->logits + 0, rows, 1, T) == KD_ERR_USAGE &&
                strstr(kd_last_error(), "holds 256, outside the vocabulary"),
         "id out of range: %s", kd_last_error());
  float spare[(T + 1) * V];
  int32_t long_row[T + 1] = {0};
  EXPECT(r, kd_session_logits_tokens(s, spare, long_row, 1, T + 1) == KD_ERR_USAGE &&
                strstr(kd_last_error(), "rows of 17 positions"),
         "too long a row: %s", kd_last_error());
  int32_t long_prompt[T + 4] = {0}, out[NEW];
  EXPECT(r, kd_session_generate(s, out, NEW, &n, long_prompt, T + 4, &g) == KD_ERR_USAGE &&
                strstr(kd_last_error(), "longer than the context"),
         "too long a prompt for beam search: %s", kd_last_error());
  long_prompt[2] = -3;
  g.mode = KD_GEN_GREEDY;
  EXPECT(r, kd_session_generate(s, out, NEW, &n, long_prompt, 4, &g) == KD_ERR_USAGE &&
                strstr(kd_last_error(), "outside the vocabulary"),
         "a bad prompt id: %s", kd_last_error());
  kd_session_close(s);
  kd_session *t = NULL;
  EXPECT(r, kd_session_open(&t, "missing/student.h5", NULL) == KD_ERR_RUNTIME && !t &&
                strstr(kd_last_error(), "missing/student.h5"),
         "missing file: %s", kd_last_error());
  EXPECT(r, kd_session_open(&t, g_dir, NULL) != KD_OK && !t && kd_last_error()[0], "a directory without checkpoints");
}

static void *run(void *arg) {
  compute(arg);
  return NULL;
}

int main(void) {
  snprintf(g_dir, sizeof g_dir, "%s/kd-libkd.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (!mkdtemp(g_dir)) return perror("mkdtemp"), 1;
  snprintf(g_path, sizeof g_path, "%s/student.h5", g_dir);
  if (write_fixture()) return 1;
  compute(&g_ref);
  CHECK(g_ref.failures == 0, "reference: %d failures, last: %s", g_ref.failures, g_ref.why);
  CHECK(g_ref.n_greedy > 0 && g_ref.n_sampled > 0, "continuations of %zu and %zu bytes", g_ref.n_greedy, g_ref.n_sampled);
  static results r[THREADS];
  pthread_t th[THREADS];
  for (int i = 0; i < THREADS; i++) CHECK(pthread_create(&th[i], NULL, run, &r[i]) == 0, "thread %d", i);
  for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < THREADS; i++) {
    CHECK(r[i].failures == 0, "thread %d: %d failures, last: %s", i, r[i].failures, r[i].why);
    CHECK(r[i].n_greedy == g_ref.n_greedy && !memcmp(r[i].greedy, g_ref.greedy, g_ref.n_greedy), "thread %d greedy", i);
    CHECK(r[i].n_sampled == g_ref.n_sampled && !memcmp(r[i].sampled, g_ref.sampled, g_ref.n_sampled),
          "thread %d sampled", i);
    CHECK(r[i].n_beam == g_ref.n_beam && !memcmp(r[i].beam, g_ref.beam, sizeof(int32_t) * (size_t)g_ref.n_beam),
          "thread %d beam", i);
    CHECK(!memcmp(r[i].logits, g_ref.logits, sizeof g_ref.logits), "thread %d logits", i);
  }
  unlink(g_path);
  rmdir(g_dir);
  return check_summary("test_libkd_threads");
}
