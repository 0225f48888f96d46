/* examples/generate.c: a kd student inside another program, through libkd's public API.
 *
 *   cc generate.c $(pkg-config --cflags --libs kd) -o generate
 *   ./generate CKPT "The meaning of life is" [max_new] [greedy|sample|beam:K] [seed]
 *
 * prints the continuation, as `kd generate --ckpt CKPT --prompt ... --decode ... --seed ...` does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kd/libkd.h>

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s CKPT PROMPT [MAX_NEW] [greedy|sample|beam:K] [SEED]\n", argv[0]);
    return 2;
  }
  kd_gen_params gen = kd_gen_default_params();
  if (argc > 3) gen.max_new = atoi(argv[3]);
  if (argc > 4 && strcmp(argv[4], "greedy") == 0) gen.mode = KD_GEN_GREEDY;
  if (argc > 4 && strncmp(argv[4], "beam:", 5) == 0) {
    gen.mode = KD_GEN_BEAM;
    gen.beam = atoi(argv[4] + 5);
  }
  if (argc > 5) gen.seed = strtoull(argv[5], NULL, 10);

  kd_session *s;
  if (kd_session_open(&s, argv[1], NULL) != KD_OK) {
    fprintf(stderr, "error: %s\n", kd_last_error());
    return 1;
  }
  kd_session_info info;
  kd_session_info_get(s, &info);
  fprintf(stderr, "libkd %s: %s:%s from %s\n", kd_version(), info.family, info.spec, info.path);

  size_t cap = 64 * (size_t)(gen.max_new + 1), len = 0;
  char *text = malloc(cap);
  int rc = text ? kd_session_generate_text(s, text, cap, &len, argv[2], &gen) : KD_ERR_RUNTIME;
  if (rc == KD_OK) {
    fwrite(text, 1, len, stdout);
    putchar('\n');
  } else {
    fprintf(stderr, "error: %s\n", text ? kd_last_error() : "out of memory");
  }
  free(text);
  kd_session_close(s);
  return rc;
}
