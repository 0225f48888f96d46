/* kd tokenize: text to token ids, a line per document (rank 0). */
#define _POSIX_C_SOURCE 200809L
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd/cmd.h"
#include "core/dist.h"
#include "data/tokenize.h"
#include "kd/ckpt.h"

#define X_(f) offsetof(kd_tokenize_cfg, f)
static const kd_opt_spec opts[] = {
  {"tokenizer", KD_OPT_STR, X_(tokenizer), STR(kd_tokenize_cfg, tokenizer), NULL, NULL, 0, 0, 0, 0,
   "bytes, hf:PATH (a Hugging Face tokenizer.json), or a kd data file or checkpoint FILE or DIR[:latest|best|step:N] "
   "(its /tokenizer record)"},
  {"in", KD_OPT_STR, X_(in), STR(kd_tokenize_cfg, in), NULL, NULL, 0, 0, 0, 0, "the text file"},
  {"doc-sep", KD_OPT_STR, X_(doc_sep), STR(kd_tokenize_cfg, doc_sep), "", NULL, 0, 0, 0, 0,
   "a line that separates documents, as kd import text cuts them ('%' for fortune files); none: the file is one"},
  {"lines", KD_OPT_FLAG, X_(lines), 0, "0", NULL, 0, 0, 0, 0, "every line (without its newline) is a document"},
  {"out", KD_OPT_STR, X_(out), STR(kd_tokenize_cfg, out), "-", NULL, 0, 0, 0, 0, "file to write (-: standard output)"},
};

int cmd_tokenize(int argc, char **argv, kd_err *e) {
  if (cmd_wants_help(argc, argv)) {
    cmd_help("usage: kd tokenize --tokenizer bytes|hf:tokenizer.json|FILE.h5 --in TEXT [--doc-sep S | --lines] [--out F]\n\n"
             "Prints each document of TEXT as its token ids, a line of space-separated ids per document, and a\n"
             "summary on standard error. Special and added tokens are never produced from text. Runs on rank 0.\n\n"
             "options:\n",
             opts, N_OPTS(opts));
    return KD_OK;
  }
  kd_tokenize_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  if (kd_opts_parse(opts, N_OPTS(opts), &cfg, argc, argv, "kd tokenize", NULL, e)) return e->code;
  if (cfg.lines && cfg.doc_sep[0])
    return kd_fail(e, KD_ERR_USAGE, "kd tokenize: --lines and --doc-sep cut documents two ways; give one");
  int rc = KD_OK;
  struct stat st;
  const int plain_file = stat(cfg.tokenizer, &st) == 0 && S_ISREG(st.st_mode); /* a data file, say: as it is */
  if (g_rank == 0 && !plain_file && strcmp(cfg.tokenizer, "bytes") != 0 && strncmp(cfg.tokenizer, "hf:", 3) != 0) {
    char path[KD_PATH_MAX + 64]; /* a checkpoint directory names its file */
    rc = kd_ckpt_resolve(cfg.tokenizer, 0, path, sizeof path, NULL, 0, e);
    if (!rc && strlen(path) >= sizeof cfg.tokenizer)
      rc = kd_fail(e, KD_ERR_USAGE, "kd tokenize: --tokenizer %s: the path is too long", path);
    if (!rc) snprintf(cfg.tokenizer, sizeof cfg.tokenizer, "%s", path);
  }
  if (g_rank == 0 && !rc) {
    kd_tokenize_stats st;
    rc = kd_tokenize_run(&cfg, &st, e);
    if (!rc)
      fprintf(stderr, "kd tokenize: %lld documents, %lld bytes, %lld tokens; tokenizer read in %.2f s, text tokenized "
              "in %.2f s (%.2f MB/s)\n", (long long)st.docs, (long long)st.bytes, (long long)st.tokens,
              st.load_seconds, st.encode_seconds, st.encode_seconds > 0 ? st.bytes / 1e6 / st.encode_seconds : 0.0);
  }
  return kd_agree(MPI_COMM_WORLD, rc, e);
}
