/* kd generate: a checkpoint continues a prompt (rank 0), or decodes the
 * targets of a data file's prompt-completion rows, or continues its text
 * rows after their first --prompt-tokens tokens (all ranks). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/dist.h"
#include "api/session.h"
#include "infer/seqtask.h"

typedef struct gen_cfg {
  char ckpt[KD_PATH_MAX];
  char prompt[8192];
  int64_t max_new;
  char decode[16];
  double temperature;
  int64_t top_k;
  int64_t seed;
  char data[KD_PATH_MAX];
  char split[16];
  char out[KD_PATH_MAX];
  int64_t nbest;
  double length_penalty;
  char select[16];
  int64_t batch;
  int64_t prompt_tokens;
  char progress[8];
  double progress_every;
  char print[8];
} gen_cfg;

#define G_(f) offsetof(gen_cfg, f)
static const kd_opt_spec opts[] = {
  {"ckpt", KD_OPT_STR, G_(ckpt), STR(gen_cfg, ckpt), NULL, NULL, 0, 0, 0, 0,
   "checkpoint FILE or DIR[:latest|best|step:N] of a gpt student"},
  {"prompt", KD_OPT_STR, G_(prompt), STR(gen_cfg, prompt), "", NULL, 0, 0, 0, 0,
   "text to continue (empty: a newline)"},
  {"max-new", KD_OPT_INT, G_(max_new), 0, "200", NULL, 1, 1 << 24, 0, 0, "tokens to generate"},
  {"decode", KD_OPT_STR, G_(decode), STR(gen_cfg, decode), "", NULL, 0, 0, 0, 0,
   "sample (the default with --prompt), greedy, or beam:K (beam search of width K; the default with --data, beam:5)"},
  {"data", KD_OPT_STR, G_(data), STR(gen_cfg, data), "", NULL, 0, 0, 0, 0,
   "decode the targets of this data file's prompt-completion rows (kd import pairs), or continue its text rows "
   "(--prompt-tokens), instead of --prompt"},
  {"split", KD_OPT_STR, G_(split), STR(gen_cfg, split), "train", NULL, 0, 0, 0, 0, "--data: the split to decode"},
  {"out", KD_OPT_STR, G_(out), STR(gen_cfg, out), "", NULL, 0, 0, 0, 0,
   "--data: the data file to write (the split's targets decoded; the other splits and /tokenizer copied)"},
  {"nbest", KD_OPT_INT, G_(nbest), 0, "1", NULL, 1, 1024, 0, 0,
   "--data: hypotheses kept per row in /SPLIT/nbest_* (at most the beam width)"},
  {"length-penalty", KD_OPT_REAL, G_(length_penalty), 0, "1", NULL, 0, 10, 0, 0,
   "beam search ranks hypotheses by logp / len^A (len counts the end token)"},
  {"select", KD_OPT_CHOICE, G_(select), STR(gen_cfg, select), "best", "best|closest", 0, 0, 0, 0,
   "--data: the row's new target: the best hypothesis, or the n-best one nearest its reference (Seq-Inter)"},
  {"batch", KD_OPT_INT, G_(batch), 0, "64", NULL, 1, 1 << 16, 0, 0,
   "--data: rows decoded together; the output is the same for any number of ranks at a given --batch"},
  {"prompt-tokens", KD_OPT_INT, G_(prompt_tokens), 0, "0", NULL, 0, 1 << 30, 0, 0,
   "--data with text rows (kd import text): continue each row after its first N tokens, up to the row's width (0: "
   "prompt-completion rows, decoded after their separator)"},
  {"temperature", KD_OPT_REAL, G_(temperature), 0, "1", NULL, 0, 100, 1, 0, "sampling temperature"},
  {"top-k", KD_OPT_INT, G_(top_k), 0, "0", NULL, 0, 1 << 24, 0, 0, "sample among the k most likely only (0: all)"},
  {"seed", KD_OPT_INT, G_(seed), 0, "1", NULL, 0, 9.2e18, 0, 0, "seed of the draws"},
  KD_PROGRESS_OPTS(gen_cfg),
  {"print", KD_OPT_CHOICE, G_(print), STR(gen_cfg, print), "text", "text|ids", 0, 0, 0, 0,
   "--prompt: print the continuation as text, or as token ids (a line 'prompt: ID ...' and a line 'new: ID:MARGIN "
   "...', MARGIN the step's largest logit minus its second largest)"},
};

/* --prompt: through libkd's public sessions (include/kd/libkd.h), the path an embedding program takes. */
static int generate(const gen_cfg *c, kd_err *e) {
  kd_session *s = NULL;
  const kd_session_params sp = {1, 0};
  if (kd_session_open(&s, c->ckpt, &sp) != KD_OK) return kd_fail(e, KD_ERR_RUNTIME, "%s", kd_last_error());
  kd_session_info info;
  kd_session_info_get(s, &info);
  int rc = KD_OK;
  if (!info.tokenizer)
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: no /tokenizer record: kd generate needs one to encode the prompt and decode "
                 "the output (kd import text writes it into the data, and training copies it into checkpoints)",
                 info.path);
  kd_gen_params p = kd_gen_default_params();
  p.max_new = (int)c->max_new;
  p.temperature = c->temperature;
  p.top_k = (int)c->top_k;
  p.seed = (uint64_t)c->seed;
  p.length_penalty = c->length_penalty;
  const char *mode = c->decode[0] ? c->decode : "sample";
  if (!rc) rc = kd_gen_mode_parse(&p, mode, e);
  const char *prompt = c->prompt[0] ? c->prompt : "\n";
  const size_t plen = strlen(prompt);
  const size_t cap_ids = 3 * plen + 4; /* NFC may lengthen the text (3x at most); the separator of a pairs student */
  int32_t *ids = rc ? NULL : kd_malloc(sizeof(int32_t) * cap_ids, "tokens", e);
  int32_t *out = ids ? kd_malloc(sizeof(int32_t) * (size_t)c->max_new, "tokens", e) : NULL;
  const int as_ids = strcmp(c->print, "ids") == 0;
  float *margins = out && as_ids ? kd_malloc(sizeof(float) * (size_t)c->max_new, "margins", e) : NULL;
  if (!rc && (!out || (as_ids && !margins))) rc = e->code;
  int n_prompt = 0, n = 0;
  if (!rc) rc = kd_session_encode_prompt(s, ids, (int)cap_ids, &n_prompt, prompt, plen, e);
  const double t0 = MPI_Wtime();
  if (!rc)
    rc = kd_session_generate_ex(s, out, (int)c->max_new, &n, p.mode == KD_GEN_BEAM ? NULL : margins, ids, n_prompt, &p,
                                e);
  const double dt = MPI_Wtime() - t0;
  if (!rc && as_ids) {
    printf("prompt:");
    for (int i = 0; i < n_prompt; i++) printf(" %d", (int)ids[i]);
    printf("\nnew:");
    for (int i = 0; i < n; i++) /* beam search has no per-step margin */
      if (p.mode == KD_GEN_BEAM) printf(" %d", (int)out[i]);
      else printf(" %d:%.6g", (int)out[i], (double)margins[i]);
    printf("\n");
  }
  if (!rc) {
    const size_t cap = 64 * (size_t)n + 1;
    char *text = as_ids ? NULL : kd_malloc(cap, "text", e);
    size_t len = 0;
    if (text) kd_session_decode(s, text, cap, &len, out, n);
    if (text) fwrite(text, 1, len, stdout);
    if (!as_ids) printf("\n");
    fprintf(stderr, "kd generate: %d new tokens in %.3f s (%.0f tokens/s, batch 1, %s) from %s\n", n, dt,
            dt > 0 ? n / dt : 0.0, mode, info.path);
    free(text);
    rc = e->code;
  }
  free(ids);
  free(out);
  free(margins);
  kd_session_close(s);
  return rc;
}

/* --data: every rank decodes its blocks of rows; rank 0 writes the file. */
static int generate_data(const gen_cfg *c, kd_err *e) {
  if (!c->out[0]) return kd_fail(e, KD_ERR_USAGE, "kd generate --data needs --out FILE (the decoded data file)");
  if (c->prompt[0]) return kd_fail(e, KD_ERR_USAGE, "kd generate: --prompt and --data do not go together");
  const kd_seqgen_cfg g = {.ckpt = c->ckpt, .data = c->data, .split = c->split, .out = c->out,
                           .decode = c->decode[0] ? c->decode : "beam:5", .nbest = c->nbest,
                           .length_penalty = c->length_penalty, .temperature = c->temperature, .top_k = c->top_k,
                           .seed = c->seed, .batch = c->batch, .prompt_tokens = c->prompt_tokens,
                           .select_closest = strcmp(c->select, "closest") == 0, .progress = c->progress,
                           .progress_every = c->progress_every};
  kd_seq_stats st;
  const int rc = kd_seqgen_run(&g, MPI_COMM_WORLD, &st, e);
  if (!rc && g_rank == 0)
    printf("kd generate: %lld rows of /%s decoded (%s, n-best %lld%s) in %.2f s on %d rank%s: %.1f sequences/s, "
           "%.2f target tokens per row; wrote %s\n",
           (long long)st.rows, c->split, g.decode, (long long)c->nbest, g.select_closest ? ", closest kept" : "",
           st.seconds, st.ranks, st.ranks == 1 ? "" : "s", st.seq_per_s, st.rows ? st.hyp_tokens / st.rows : 0.0,
           c->out);
  return rc;
}

int cmd_generate(int argc, char **argv, kd_err *e) {
  if (cmd_wants_help(argc, argv)) {
    cmd_help("usage: kd generate --ckpt CKPT --prompt TEXT [--max-new N] [--decode sample|greedy|beam:K] [--temperature X\n"
             "                   --top-k K --seed S --length-penalty A]\n"
             "       kd generate --ckpt CKPT --data FILE --out OUT.h5 [--split train] [--decode greedy|sample|beam:K]\n"
             "                   [--nbest N --length-penalty A --select best|closest --temperature X --seed S]\n\n"
             "Prints the checkpoint's continuation of the prompt: incremental decoding with a key/value cache,\n"
             "the prompt encoded and the output decoded by the checkpoint's tokenizer record. Runs on rank 0.\n"
             "With --data, decodes the target of every prompt-completion row of the split (source, separator;\n"
             "kd import pairs) on all ranks, each its blocks of --batch rows, and writes OUT.h5: the split's rows\n"
             "with the decoded targets (usable as --data for training; sequence-level distillation),\n"
             "/SPLIT/nbest_tokens, nbest_lengths and nbest_scores (summed log-probabilities), the other splits\n"
             "and /tokenizer copied. The same file for any number of ranks. With --prompt-tokens N, the split's\n"
             "text rows (kd import text) are continued instead: each row's first N tokens kept, the rest of the\n"
             "row sampled or decoded (its mask marks the new tokens; kd eval --ckpt TEACHER on the file scores\n"
             "them).\n\n"
             "options:\n",
             opts, N_OPTS(opts));
    return KD_OK;
  }
  gen_cfg c;
  memset(&c, 0, sizeof c);
  if (kd_opts_parse(opts, N_OPTS(opts), &c, argc, argv, "kd generate", NULL, e)) return e->code;
  if (!c.data[0] && c.prompt_tokens > 0)
    return kd_fail(e, KD_ERR_USAGE, "kd generate: --prompt-tokens goes with --data (text rows to continue)");
  if (c.data[0]) {
    const int rc = generate_data(&c, e);
    fflush(stdout);
    return kd_agree(MPI_COMM_WORLD, rc, e);
  }
  int rc = g_rank == 0 ? generate(&c, e) : KD_OK;
  fflush(stdout);
  return kd_agree(MPI_COMM_WORLD, rc, e);
}
