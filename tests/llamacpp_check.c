/* llamacpp_check: the real llama.cpp (its prebuilt CPU libraries, fetched by tests/llamacpp.sh) runs a GGUF
 * file kd exported, for tests/test_gguf.sh. Compiled by the test against llama.cpp's own headers; not part of kd.
 *
 *   llamacpp_check BACKEND_DIR MODEL.gguf logits ROWS.bin OUT.bin   logits at every position of each row
 *   llamacpp_check BACKEND_DIR MODEL.gguf greedy ROWS.bin N OUT.bin  N greedy tokens after each row
 *   llamacpp_check BACKEND_DIR MODEL.gguf tokenize TEXTS.bin OUT.bin its tokenization of each text
 *
 * ROWS.bin: int32 count, int32 length, then count rows of length token ids. TEXTS.bin: int32 count, then per
 * text an int32 byte length and the bytes. OUT.bin: float32 [count, length, vocab] logits; int32 [count, N]
 * tokens; int32 per text its id count, then the ids. The context holds float32 keys and values and flash
 * attention is off, so the comparison is with llama.cpp's own arithmetic, not a quantized cache. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml-backend.h"
#include "gguf.h"
#include "llama.h"

static void quiet(enum ggml_log_level level, const char *text, void *data) {
  (void)data;
  if (level >= GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
}

static void die(const char *what) {
  fprintf(stderr, "llamacpp_check: %s\n", what);
  exit(1);
}

static int32_t *read_ints(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) die("cannot open the input");
  fseek(f, 0, SEEK_END);
  const long bytes = ftell(f);
  fseek(f, 0, SEEK_SET);
  int32_t *v = malloc((size_t)bytes + 4);
  if (!v || fread(v, 1, (size_t)bytes, f) != (size_t)bytes) die("cannot read the input");
  fclose(f);
  *n = (size_t)bytes / 4;
  return v;
}

static void write_all(const char *path, const void *p, size_t bytes) {
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(p, 1, bytes, f) != bytes || fclose(f)) die("cannot write the output");
}

static struct llama_context *context(struct llama_model *m, int n_ctx) {
  struct llama_context_params cp = llama_context_default_params();
  cp.n_ctx = (uint32_t)n_ctx;
  cp.n_batch = cp.n_ubatch = (uint32_t)n_ctx;
  cp.n_seq_max = 1;
  cp.n_threads = cp.n_threads_batch = 1;
  cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
  cp.type_k = cp.type_v = GGML_TYPE_F32;
  struct llama_context *c = llama_init_from_model(m, cp);
  if (!c) die("llama_init_from_model failed");
  return c;
}

/* Feed tokens [0, n) at positions p0.. (logits of every position when all_logits), after clearing the memory when
 * p0 is 0. */
static void feed(struct llama_context *c, const int32_t *tok, int n, int p0, int all_logits) {
  if (p0 == 0) llama_memory_clear(llama_get_memory(c), 1);
  struct llama_batch b = llama_batch_init(n, 0, 1);
  for (int i = 0; i < n; i++) {
    b.token[i] = tok[i];
    b.pos[i] = p0 + i;
    b.n_seq_id[i] = 1;
    b.seq_id[i][0] = 0;
    b.logits[i] = (int8_t)(all_logits || i == n - 1);
  }
  b.n_tokens = n;
  if (llama_decode(c, b) != 0) die("llama_decode failed");
  llama_batch_free(b);
}

int main(int argc, char **argv) {
  if (argc < 6) die("usage: llamacpp_check BACKEND_DIR MODEL.gguf logits|greedy|tokenize ...");
  llama_log_set(quiet, NULL);
  ggml_backend_load_all_from_path(argv[1]);
  llama_backend_init();
  struct llama_model_params mp = llama_model_default_params();
  struct llama_model *m = llama_model_load_from_file(argv[2], mp);
  if (!m) die("llama_model_load_from_file failed");
  /* ggml's own reader, which also reads every tensor's bytes (each padded to the alignment, the last too) */
  struct ggml_context *data = NULL;
  struct gguf_init_params gp = {false, &data};
  struct gguf_context *g = gguf_init_from_file(argv[2], gp);
  if (!g) die("gguf_init_from_file (with the tensors' data) failed");
  gguf_free(g);
  ggml_free(data);
  const struct llama_vocab *vocab = llama_model_get_vocab(m);
  const int V = llama_vocab_n_tokens(vocab), ctx = llama_model_n_ctx_train(m);
  const char *cmd = argv[3];
  size_t n;
  int32_t *in = read_ints(argv[4], &n);
  if (strcmp(cmd, "tokenize") == 0) {
    const int count = in[0];
    const char *p = (const char *)(in + 1);
    size_t cap = 1024, used = 0;
    int32_t *out = malloc(sizeof(int32_t) * cap);
    for (int t = 0; t < count; t++) {
      int32_t len;
      memcpy(&len, p, 4);
      p += 4;
      llama_token ids[65536];
      const int k = llama_tokenize(vocab, p, len, ids, 65536, false, false);
      if (k < 0) die("llama_tokenize: too many tokens");
      if (used + (size_t)k + 1 > cap) {
        while (used + (size_t)k + 1 > cap) cap *= 2;
        if (!(out = realloc(out, sizeof(int32_t) * cap))) die("out of memory");
      }
      out[used++] = k;
      memcpy(out + used, ids, sizeof(int32_t) * (size_t)k);
      used += (size_t)k;
      p += len;
    }
    write_all(argv[5], out, sizeof(int32_t) * used);
    return 0;
  }
  const int rows = in[0], T = in[1];
  const int32_t *tok = in + 2;
  if (strcmp(cmd, "logits") == 0) {
    struct llama_context *c = context(m, ctx);
    float *out = malloc(sizeof(float) * (size_t)rows * T * V);
    for (int r = 0; r < rows; r++) {
      feed(c, tok + (size_t)r * T, T, 0, 1);
      for (int i = 0; i < T; i++) memcpy(out + ((size_t)r * T + i) * V, llama_get_logits_ith(c, i), sizeof(float) * V);
    }
    write_all(argv[5], out, sizeof(float) * (size_t)rows * T * V);
    return 0;
  }
  if (strcmp(cmd, "greedy") == 0 && argc >= 7) {
    const int N = atoi(argv[5]);
    struct llama_context *c = context(m, ctx);
    int32_t *out = malloc(sizeof(int32_t) * (size_t)rows * N);
    for (int r = 0; r < rows; r++) {
      feed(c, tok + (size_t)r * T, T, 0, 0);
      for (int k = 0; k < N; k++) {
        const float *z = llama_get_logits_ith(c, -1);
        int best = 0;
        for (int v = 1; v < V; v++) best = z[v] > z[best] ? v : best;
        out[(size_t)r * N + k] = best;
        if (k + 1 < N) feed(c, &out[(size_t)r * N + k], 1, T + k, 0);
      }
    }
    write_all(argv[6], out, sizeof(int32_t) * (size_t)rows * N);
    return 0;
  }
  die("unknown command");
}
