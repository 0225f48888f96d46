/* kd generate: a checkpoint continues a prompt (rank 0). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/dist.h"
#include "infer/generate.h"
#include "kd/ckpt.h"
#include "kd/infer.h"

typedef struct gen_cfg {
  char ckpt[KD_PATH_MAX];
  char prompt[8192];
  int64_t max_new;
  char decode[16];
  double temperature;
  int64_t top_k;
  int64_t seed;
} gen_cfg;

#define G_(f) offsetof(gen_cfg, f)
static const kd_opt_spec opts[] = {
  {"ckpt", KD_OPT_STR, G_(ckpt), STR(gen_cfg, ckpt), NULL, NULL, 0, 0, 0, 0,
   "checkpoint FILE or DIR[:latest|best|step:N] of a gpt student"},
  {"prompt", KD_OPT_STR, G_(prompt), STR(gen_cfg, prompt), "", NULL, 0, 0, 0, 0,
   "text to continue (empty: a newline)"},
  {"max-new", KD_OPT_INT, G_(max_new), 0, "200", NULL, 1, 1 << 24, 0, 0, "tokens to generate"},
  {"decode", KD_OPT_CHOICE, G_(decode), STR(gen_cfg, decode), "sample", "sample|greedy", 0, 0, 0, 0,
   "sample from the softmax, or take the most likely token"},
  {"temperature", KD_OPT_REAL, G_(temperature), 0, "1", NULL, 0, 100, 1, 0, "sampling temperature"},
  {"top-k", KD_OPT_INT, G_(top_k), 0, "0", NULL, 0, 1 << 24, 0, 0, "sample among the k most likely only (0: all)"},
  {"seed", KD_OPT_INT, G_(seed), 0, "1", NULL, 0, 9.2e18, 0, 0, "seed of the draws"},
};

/* The checkpoint's model and tokenizer. */
static int load(const gen_cfg *c, kd_model **m, float **params, kd_tokenizer *tok, char *path, size_t n, kd_err *e) {
  int present;
  if (kd_ckpt_resolve(c->ckpt, 0, path, n, NULL, 0, e) || kd_model_load(m, params, path, 1, e)) return e->code;
  if (kd_tokenizer_read(tok, path, &present, e)) return e->code;
  if (!present || tok->vocab == 0)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: no /tokenizer record: kd generate needs one to encode the prompt and decode "
                   "the continuation (kd import text writes it into the data, and training copies it; format.md)",
                   path);
  if (tok->vocab != (*m)->out_dim)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: the tokenizer has %d ids but the student's vocabulary is %d", path,
                   tok->vocab, (*m)->out_dim);
  return KD_OK;
}

static int generate(const gen_cfg *c, kd_err *e) {
  kd_model *m = NULL;
  float *params = NULL;
  kd_tokenizer tok;
  memset(&tok, 0, sizeof tok);
  char path[KD_PATH_MAX + 64];
  int rc = load(c, &m, &params, &tok, path, sizeof path, e);
  const char *prompt = c->prompt[0] ? c->prompt : "\n";
  const size_t plen = strlen(prompt);
  int32_t *ids = rc ? NULL : kd_malloc(sizeof(int32_t) * (plen + (size_t)c->max_new + 1), "tokens", e);
  int n_prompt = 0, n = 0;
  if (!rc && !ids) rc = e->code;
  if (!rc) rc = kd_tokenizer_encode(&tok, (const uint8_t *)prompt, plen, ids, (int)plen + 1, &n_prompt, e);
  const kd_decode_cfg dc = {strcmp(c->decode, "greedy") == 0, c->temperature, (int)c->top_k, (uint64_t)c->seed};
  const double t0 = MPI_Wtime();
  if (!rc) rc = kd_generate(m, ids, n_prompt, (int)c->max_new, tok.end_id, &dc, &n, e);
  const double dt = MPI_Wtime() - t0;
  if (!rc) {
    const size_t cap = 64 * (size_t)(n - n_prompt) + 1;
    uint8_t *text = kd_malloc(cap, "text", e);
    const size_t len = text ? kd_tokenizer_decode(&tok, ids + n_prompt, n - n_prompt, text, cap) : 0;
    if (text) fwrite(text, 1, len, stdout);
    printf("\n");
    fprintf(stderr, "kd generate: %d new tokens in %.3f s (%.0f tokens/s, batch 1, %s) from %s\n", n - n_prompt, dt,
            dt > 0 ? (n - n_prompt) / dt : 0.0, c->decode, path);
    free(text);
    rc = e->code;
  }
  free(ids);
  kd_tokenizer_free(&tok);
  kd_model_free(m);
  free(params);
  return rc;
}

int cmd_generate(int argc, char **argv, kd_err *e) {
  if (cmd_wants_help(argc, argv)) {
    cmd_help("usage: kd generate --ckpt CKPT --prompt TEXT [--max-new N] [--decode sample|greedy] [--temperature X\n"
             "                   --top-k K --seed S]\n\n"
             "Prints the checkpoint's continuation of the prompt: incremental decoding with a key/value cache,\n"
             "the prompt encoded and the output decoded by the checkpoint's tokenizer record. Runs on rank 0.\n\n"
             "options:\n",
             opts, N_OPTS(opts));
    return KD_OK;
  }
  gen_cfg c;
  memset(&c, 0, sizeof c);
  if (kd_opts_parse(opts, N_OPTS(opts), &c, argc, argv, "kd generate", NULL, e)) return e->code;
  int rc = g_rank == 0 ? generate(&c, e) : KD_OK;
  fflush(stdout);
  return kd_agree(MPI_COMM_WORLD, rc, e);
}
