/* kd eval: metrics of a checkpoint on a split (rank 0). */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/dist.h"
#include "infer/seqtask.h"
#include "kd/infer.h"

#define E_(f) offsetof(kd_eval_cfg, f)
static const kd_opt_spec opts[] = {
  {"ckpt", KD_OPT_STR, E_(ckpt), STR(kd_eval_cfg, ckpt), NULL, NULL, 0, 0, 0, 0,
   "checkpoint FILE or DIR[:latest|best|step:N]"},
  {"data", KD_OPT_STR, E_(data), STR(kd_eval_cfg, data), NULL, NULL, 0, 0, 0, 0, "HDF5 data file"},
  {"teacher", KD_OPT_STR, E_(teacher), STR(kd_eval_cfg, teacher), "", NULL, 0, 0, 0, 0,
   "teacher file: with /SPLIT/logits, adds teacher agreement and KL(teacher || student)"},
  {"split", KD_OPT_STR, E_(split), STR(kd_eval_cfg, split), "test", NULL, 0, 0, 0, 0, "split to evaluate"},
  {"temperature", KD_OPT_REAL, E_(temperature), 0, "", NULL, 0, 1000, 1, 0,
   "temperature of the KL (default: the run's own --temperature, from the checkpoint; 4 without one)"},
  {"batch", KD_OPT_INT, E_(batch), 0, "0", NULL, 0, 1 << 24, 0, 0,
   "rows per forward pass (0: as many as fit in 256 MiB of activations, at most 1024)"},
  {"json", KD_OPT_FLAG, E_(json), 0, "0", NULL, 0, 0, 0, 0,
   "print one JSON object with accuracy, nll, ece, agreement, kl, n (with --decode: per, wer, words, ...)"},
  {"decode", KD_OPT_STR, E_(decode), STR(kd_eval_cfg, decode), "", NULL, 0, 0, 0, 0,
   "greedy or beam:K: decode each prompt-completion row's target (kd import pairs) and report the phoneme (token) "
   "error rate, the word error rate and decoded sequences per second, on all ranks"},
  {"length-penalty", KD_OPT_REAL, E_(length_penalty), 0, "1", NULL, 0, 10, 0, 0,
   "--decode beam:K ranks hypotheses by logp / len^A"},
  KD_PROGRESS_OPTS(kd_eval_cfg),
};

/* --decode: PER and WER of decoded targets, every rank a share of the words. */
static int eval_decode(const kd_eval_cfg *cfg, kd_err *e) {
  if (cfg->teacher[0]) return kd_fail(e, KD_ERR_USAGE, "kd eval: --teacher and --decode do not go together");
  if (strcmp(cfg->decode, "sample") == 0)
    return kd_fail(e, KD_ERR_USAGE, "kd eval --decode: greedy or beam:K (sampled outputs are not scored)");
  const kd_seqgen_cfg g = {.ckpt = cfg->ckpt, .data = cfg->data, .split = cfg->split, .decode = cfg->decode,
                           .nbest = 1, .length_penalty = cfg->length_penalty, .temperature = 1.0, .seed = 1,
                           .batch = cfg->batch > 0 ? cfg->batch : 64,
                           .progress = cfg->json ? "off" : cfg->progress, /* --json: stdout holds the JSON alone */
                           .progress_every = cfg->progress_every};
  kd_seq_stats st;
  const int rc = kd_seqeval_run(&g, MPI_COMM_WORLD, &st, e);
  if (!rc && g_rank == 0 && cfg->json)
    printf("{\"per\": %.6f, \"wer\": %.6f, \"words\": %lld, \"references\": %lld, \"edits\": %.0f, "
           "\"reference_tokens\": %.0f, \"seq_per_s\": %.2f, \"seconds\": %.3f, \"ranks\": %d, \"decode\": \"%s\"}\n",
           st.per, st.wer, (long long)st.rows, (long long)st.refs, st.edits, st.ref_tokens, st.seq_per_s, st.seconds,
           st.ranks, cfg->decode);
  else if (!rc && g_rank == 0)
    printf("%s (%s): per %.4f  wer %.4f  (%lld words, %lld references; %.0f edits over %.0f reference tokens)  "
           "%.1f sequences/s on %d rank%s\n",
           cfg->split, cfg->decode, st.per, st.wer, (long long)st.rows, (long long)st.refs, st.edits, st.ref_tokens,
           st.seq_per_s, st.ranks, st.ranks == 1 ? "" : "s");
  fflush(stdout);
  return rc;
}

int cmd_eval(int argc, char **argv, kd_err *e) {
  if (cmd_wants_help(argc, argv)) {
    cmd_help("usage: kd eval --ckpt CKPT --data FILE [--teacher FILE] [--temperature T] [--split test] [--json]\n"
             "               [--decode greedy|beam:K [--length-penalty A]]\n\n"
             "Accuracy, NLL, expected calibration error (15 bins) and, with teacher logits for the split, top-1\n"
             "agreement and KL(teacher || student) at T. --split valid of a data file without /valid evaluates the\n"
             "rows the run held out with --val-rows (the checkpoint records them).\n"
             "CKPT is a checkpoint or weights file, or DIR[:latest|best|step:N] (a bare run directory means its "
             "latest checkpoint).\nRuns on rank 0. With --decode greedy|beam:K (prompt-completion rows, kd import pairs): each\n"
             "distinct source decoded once on all ranks and scored against its closest reference: PER (token edit\n"
             "distance over reference length), WER (targets not exactly right), sequences per second.\n\noptions:\n",
             opts, N_OPTS(opts));
    return KD_OK;
  }
  kd_eval_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  if (kd_opts_parse(opts, N_OPTS(opts), &cfg, argc, argv, "kd eval", NULL, e)) return e->code;
  if (cfg.decode[0]) return kd_agree(MPI_COMM_WORLD, eval_decode(&cfg, e), e);
  int rc = KD_OK;
  if (g_rank == 0) {
    char path[KD_PATH_MAX + 128];
    kd_eval_result r;
    rc = kd_eval_run(&cfg, &r, path, sizeof path, e);
    if (!rc && cfg.json) kd_eval_json(stdout, &r);
    else if (!rc) kd_eval_print(stdout, cfg.split, &r);
    fflush(stdout);
  }
  return kd_agree(MPI_COMM_WORLD, rc, e);
}
