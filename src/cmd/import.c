/* kd import idx|text|pairs: data files; kd import weights: a Hugging Face model as a kd weights file (rank 0). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "core/dist.h"
#include "data/idx.h"
#include "data/pairs.h"
#include "data/text.h"
#include "interop/import_st.h"

#define I_(f) offsetof(kd_import_cfg, f)
static const kd_opt_spec idx_opts[] = {
  {"images", KD_OPT_STR, I_(images), STR(kd_import_cfg, images), NULL, NULL, 0, 0, 0, 0, "IDX images (gzip or plain)"},
  {"labels", KD_OPT_STR, I_(labels), STR(kd_import_cfg, labels), NULL, NULL, 0, 0, 0, 0, "IDX labels (gzip or plain)"},
  {"test-images", KD_OPT_STR, I_(test_images), STR(kd_import_cfg, test_images), "", NULL, 0, 0, 0, 0,
   "IDX test images"},
  {"test-labels", KD_OPT_STR, I_(test_labels), STR(kd_import_cfg, test_labels), "", NULL, 0, 0, 0, 0,
   "IDX test labels"},
  {"out", KD_OPT_STR, I_(out), STR(kd_import_cfg, out), NULL, NULL, 0, 0, 0, 0, "kd data file to write"},
};

static int import_idx(int argc, char **argv, kd_err *e) {
  kd_import_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  if (kd_opts_parse(idx_opts, N_OPTS(idx_opts), &cfg, argc, argv, "kd import idx", NULL, e)) return e->code;
  int rc = KD_OK;
  if (g_rank == 0) {
    int64_t rows[2];
    int dim = 0;
    rc = kd_import_idx(&cfg, rows, &dim, e);
    if (!rc)
      printf("kd import: wrote %s (/train %lld rows, /test %lld rows, %d features in [0, 1])\n", cfg.out,
             (long long)rows[0], (long long)rows[1], dim);
    fflush(stdout);
  }
  return kd_agree(MPI_COMM_WORLD, rc, e);
}

#define X_(f) offsetof(kd_text_cfg, f)
static const kd_opt_spec text_opts[] = {
  {"in", KD_OPT_STR, X_(in_given), STR(kd_text_cfg, in_given), NULL, NULL, 0, 0, 0, 0,
   "text files (one or more: --in a.txt b.txt ...)"},
  {"ctx", KD_OPT_INT, X_(ctx), 0, NULL, NULL, 2, 1 << 20, 0, 0, "tokens per row (T): rows overlap by one token"},
  {"out", KD_OPT_STR, X_(out), STR(kd_text_cfg, out), NULL, NULL, 0, 0, 0, 0, "kd data file to write"},
  {"doc-sep", KD_OPT_STR, X_(doc_sep), STR(kd_text_cfg, doc_sep), "", NULL, 0, 0, 0, 0,
   "a line that separates documents inside a file ('%' for fortune files); none: every file is a document"},
  {"valid-frac", KD_OPT_REAL, X_(valid_frac), 0, "0.05", NULL, 0, 1, 0, 1,
   "fraction of the documents (by a hash of their bytes) for /valid"},
  {"test-frac", KD_OPT_REAL, X_(test_frac), 0, "0.05", NULL, 0, 1, 0, 1, "fraction for /test"},
  {"tokenizer", KD_OPT_STR, X_(tokenizer), STR(kd_text_cfg, tokenizer), "bytes", NULL, 0, 0, 0, 0,
   "bytes: one token per byte, vocabulary 256; bpe:V: byte-level BPE of V ids (256 <= V <= 1048576), its V - 256 "
   "merges learnt from the training split's text; hf:PATH: a Hugging Face tokenizer.json of a byte-level BPE "
   "(GPT-2, Llama 3, Qwen2/3), applied as Hugging Face's library applies it"},
  {"teacher-tokenizer", KD_OPT_STR, X_(teacher_tokenizer), STR(kd_text_cfg, teacher_tokenizer), "", NULL, 0, 0, 0, 0,
   "a teacher with another tokenizer (bytes, bpe:V, hf:PATH or kd:FILE, the /tokenizer record of a kd data file): "
   "the same text in its tokens, row by row, with the byte offsets that align the two (docs/format.md)"},
  {"teacher-ctx", KD_OPT_INT, X_(teacher_ctx), 0, "0", NULL, 0, 1 << 20, 0, 0,
   "--teacher-tokenizer: teacher tokens per row (Tt; 0: the most any row needs; tokens past it are left out)"},
  {"force", KD_OPT_FLAG, X_(force), 0, "0", NULL, 0, 0, 0, 0, "replace an existing --out file"},
};

static const char text_help[] =
    "usage: kd import text --in FILE... --ctx T --out data.h5 [--doc-sep SEP] [--valid-frac F --test-frac F]\n"
    "                      [--tokenizer bytes|bpe:V|hf:tokenizer.json|kd:FILE]\n"
    "                      [--teacher-tokenizer bytes|bpe:V|hf:tokenizer.json|kd:FILE [--teacher-ctx Tt]]\n\n"
    "Token rows for sequence students: /SPLIT/tokens [N, T], /SPLIT/mask [N, T] (the targets) and the\n"
    "/tokenizer record. Documents go to /train, /valid or /test by a hash of their bytes; each split's\n"
    "documents joined by the separator line are cut into rows at stride T - 1, so every token after the\n"
    "first is a target exactly once. With bpe:V the merges are learnt from the training split only and\n"
    "encode all three; tokens are stored as uint8, uint16 or int32, the narrowest that holds V. Runs on\n"
    "rank 0. With --teacher-tokenizer, each row also gets the teacher's tokens of the same bytes\n"
    "(/SPLIT/teacher_tokens, teacher_mask) and where each token of either row ends (/SPLIT/offsets,\n"
    "teacher_offsets, bytes from the row's start), the teacher's record in /teacher_tokenizer.\n\noptions:\n";

/* --teacher-tokenizer: the teacher's tokens, the alignment's coverage and what it costs. */
static void print_teacher_stats(const kd_text_cfg *c, const kd_text_stats *st) {
  const double tok = (double)(st->tokens[0] + st->tokens[1] + st->tokens[2]);
  const double ttok = (double)(st->teacher_tokens[0] + st->teacher_tokens[1] + st->teacher_tokens[2]);
  const double rows = (double)(st->rows[0] + st->rows[1] + st->rows[2]);
  double targets = 0;
  for (int k = 0; k < 3; k++) targets += st->tokens[k] > 1 ? (double)(st->tokens[k] - 1) : 0.0;
  const double tbytes = st->teacher_vocab <= 256 ? 1.0 : st->teacher_vocab <= 65536 ? 2.0 : 4.0;
  printf("teacher tokenizer %s: %d ids, %.0f tokens (%.3f per student token), rows of %d; %lld teacher tokens "
         "past a row's %d left out; %.1f%% of the student's targets aligned (their position ends where a teacher "
         "position ends); alignment data %.1f bytes per student token\n",
         c->teacher_tokenizer, st->teacher_vocab, ttok, tok > 0 ? ttok / tok : 0.0, st->teacher_ctx,
         (long long)st->teacher_cut, st->teacher_ctx,
         targets > 0 ? 100.0 * (double)(st->aligned[0] + st->aligned[1] + st->aligned[2]) / targets : 0.0,
         tok > 0 ? rows * (4.0 * (double)c->ctx + (double)st->teacher_ctx * (tbytes + 1.0 + 4.0)) / tok : 0.0);
}

/* --in takes every following word up to the next option. */
static int import_text(int argc, char **argv, kd_err *e) {
  kd_text_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  char **rest = kd_calloc((size_t)argc + 2, sizeof(char *), "arguments", e);
  if (!rest) return e->code;
  int nr = 0;
  static char in_given[] = "--in=given";
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--in") != 0) {
      rest[nr++] = argv[i];
      continue;
    }
    while (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0 && cfg.n_in < KD_TEXT_MAX_FILES) cfg.in[cfg.n_in++] = argv[++i];
    rest[nr++] = in_given;
  }
  int rc = kd_opts_parse(text_opts, N_OPTS(text_opts), &cfg, nr, rest, "kd import text", NULL, e);
  free(rest);
  int V;
  if (!rc && cfg.n_in == 0) rc = kd_fail(e, KD_ERR_USAGE, "kd import text: --in needs at least one file");
  if (!rc) rc = kd_text_tokenizer_parse(cfg.tokenizer, "--tokenizer", &V, e); /* on every rank: one message, not rank 0's */
  int Vt = 0;
  if (!rc && cfg.teacher_tokenizer[0]) rc = kd_text_tokenizer_parse(cfg.teacher_tokenizer, "--teacher-tokenizer", &Vt, e);
  if (!rc && !cfg.teacher_tokenizer[0] && cfg.teacher_ctx)
    rc = kd_fail(e, KD_ERR_USAGE, "kd import text: --teacher-ctx goes with --teacher-tokenizer");
  if (!rc && !cfg.force && access(cfg.out, F_OK) == 0)
    rc = kd_fail(e, KD_ERR_USAGE, "kd import text: --out %s exists; pass --force to replace it", cfg.out);
  if (rc) return rc;
  if (g_rank == 0) {
    kd_text_stats st;
    rc = kd_import_text(&cfg, &st, e);
    const int bpe = strcmp(cfg.tokenizer, "bytes") != 0, hf = V == KD_TEXT_HF;
    if (!rc && V > 0)
      printf("bpe: %d merges on %.1f MB of training text in %.2f s\n", st.bpe_merges, st.bpe_bytes / 1e6,
             st.bpe_seconds);
    if (!rc && hf)
      printf("tokenizer: %s read in %.2f s; %.1f MB of text tokenized in %.2f s (%.2f MB/s)\n", cfg.tokenizer + 3,
             st.load_seconds, st.encode_bytes / 1e6, st.encode_seconds,
             st.encode_seconds > 0 ? st.encode_bytes / 1e6 / st.encode_seconds : 0.0);
    char what[64];
    if (hf) snprintf(what, sizeof what, "Hugging Face bpe tokens, vocabulary %d", st.vocab);
    else if (V == KD_TEXT_KD) snprintf(what, sizeof what, "the record's tokens, vocabulary %d", st.vocab);
    else if (bpe) snprintf(what, sizeof what, "bpe tokens, vocabulary %d", st.vocab);
    else snprintf(what, sizeof what, "byte tokens");
    if (!rc)
      printf("kd import: wrote %s (%s, rows of %lld): train %lld documents, %lld tokens, %lld rows; valid "
             "%lld, %lld, %lld; test %lld, %lld, %lld\n",
             cfg.out, what, (long long)cfg.ctx, (long long)st.docs[0], (long long)st.tokens[0],
             (long long)st.rows[0], (long long)st.docs[1], (long long)st.tokens[1], (long long)st.rows[1],
             (long long)st.docs[2], (long long)st.tokens[2], (long long)st.rows[2]);
    if (!rc && cfg.teacher_tokenizer[0]) print_teacher_stats(&cfg, &st);
    fflush(stdout);
  }
  return kd_agree(MPI_COMM_WORLD, rc, e);
}

#define P_(f) offsetof(kd_pairs_cfg, f)
static const kd_opt_spec pairs_opts[] = {
  {"in", KD_OPT_STR, P_(in), STR(kd_pairs_cfg, in), NULL, NULL, 0, 0, 0, 0, "the pairs file"},
  {"out", KD_OPT_STR, P_(out), STR(kd_pairs_cfg, out), NULL, NULL, 0, 0, 0, 0, "kd data file to write"},
  {"format", KD_OPT_CHOICE, P_(format), STR(kd_pairs_cfg, format), "tsv", "tsv|cmudict-festival", 0, 0, 0, 0,
   "tsv: SOURCE<TAB>space-separated target symbols; cmudict-festival: Festival's lexicon lines "
   "(\"word\" pos (((phones) stress) ...)), each syllable's vowel given its stress digit"},
  {"ctx", KD_OPT_INT, P_(ctx), 0, "0", NULL, 0, 1 << 20, 0, 0,
   "positions per row (0: the longest row's); a longer row is an error"},
  {"valid-frac", KD_OPT_REAL, P_(valid_frac), 0, "0.05", NULL, 0, 1, 0, 1,
   "fraction of the distinct sources (by a hash) for /valid"},
  {"test-frac", KD_OPT_REAL, P_(test_frac), 0, "0.05", NULL, 0, 1, 0, 1, "fraction for /test"},
  {"force", KD_OPT_FLAG, P_(force), 0, "0", NULL, 0, 0, 0, 0, "replace an existing --out file"},
};

static const char pairs_help[] =
    "usage: kd import pairs --in FILE --out data.h5 [--format tsv|cmudict-festival] [--ctx T]\n"
    "                       [--valid-frac F --test-frac F]\n\n"
    "Prompt-completion rows for sequence-level distillation: source characters, <sep>, target symbols,\n"
    "<end>, padded with <pad>; /SPLIT/mask marks the target and end tokens. One vocabulary from the\n"
    "training split (<pad> <sep> <end> <unk>, source characters, target symbols; held-out symbols unseen in\n"
    "training become <unk>) in /tokenizer (kind symbols). Pairs go to a split by a hash of their source, so\n"
    "every pronunciation of a word is in one split; a word's rows are consecutive. Runs on rank 0.\n\noptions:\n";

static int import_pairs(int argc, char **argv, kd_err *e) {
  kd_pairs_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  if (kd_opts_parse(pairs_opts, N_OPTS(pairs_opts), &cfg, argc, argv, "kd import pairs", NULL, e)) return e->code;
  if (!cfg.force && access(cfg.out, F_OK) == 0)
    return kd_fail(e, KD_ERR_USAGE, "kd import pairs: --out %s exists; pass --force to replace it", cfg.out);
  int rc = KD_OK;
  if (g_rank == 0) {
    kd_pairs_stats st;
    rc = kd_import_pairs(&cfg, &st, e);
    if (!rc)
      printf("kd import: wrote %s (symbols, vocabulary %d: %d source characters, %d target symbols; rows of %d): "
             "train %lld words, %lld rows; valid %lld, %lld; test %lld, %lld; %lld syllables without a vowel; "
             "unseen symbols: valid %lld, test %lld\n",
             cfg.out, st.vocab, st.n_source, st.n_target, st.width, (long long)st.words[0], (long long)st.rows[0],
             (long long)st.words[1], (long long)st.rows[1], (long long)st.words[2], (long long)st.rows[2],
             (long long)st.unstressed, (long long)st.unk[1], (long long)st.unk[2]);
    fflush(stdout);
  }
  return kd_agree(MPI_COMM_WORLD, rc, e);
}

#define W_(f) offsetof(kd_import_weights_cfg, f)
static const kd_opt_spec weights_opts[] = {
  {"in", KD_OPT_STR, W_(in), STR(kd_import_weights_cfg, in), NULL, NULL, 0, 0, 0, 0,
   "model.safetensors, or model.safetensors.index.json of a sharded model (its shards in the same directory)"},
  {"config", KD_OPT_STR, W_(config), STR(kd_import_weights_cfg, config), NULL, NULL, 0, 0, 0, 0,
   "the model's config.json (model_type gpt2 or llama)"},
  {"out", KD_OPT_STR, W_(out), STR(kd_import_weights_cfg, out), NULL, NULL, 0, 0, 0, 0, "kd weights file to write"},
  {"tokenizer", KD_OPT_STR, W_(tokenizer), STR(kd_import_weights_cfg, tokenizer), "", NULL, 0, 0, 0, 0,
   "tokenizer.json for the /tokenizer record (kd generate --prompt, kd export); default: the tokenizer.json beside "
   "--config when there is one; none: no record"},
  {"ctx", KD_OPT_INT, W_(ctx), 0, "0", NULL, 0, 1 << 16, 0, 0,
   "llama: the longest row kd runs (0: max_position_embeddings; rotary positions have no weights)"},
  {"force", KD_OPT_FLAG, W_(force), 0, "0", NULL, 0, 0, 0, 0, "replace an existing --out file"},
};

static const char weights_help[] =
    "usage: kd import weights --in model.safetensors|model.safetensors.index.json --config config.json --out init.h5\n"
    "                         [--tokenizer tokenizer.json|none] [--ctx T] [--force]\n\n"
    "A Hugging Face model as a kd weights file (the layout of final.h5) for kd train --init and --teacher-model,\n"
    "kd predict, eval and generate: a GPT2LMHeadModel (model_type gpt2) becomes a gpt student, a LlamaForCausalLM\n"
    "(llama) a llama student, its spec from config.json. F32, F16 and BF16 tensors become float32; GPT-2's Conv1D\n"
    "weights [in, out] are transposed to [out, in]; the attn.bias and rotary inv_freq buffers are skipped, and a\n"
    "tied lm_head.weight must equal the embedding. Every tensor is checked by name, shape and layout against\n"
    "the config. The tokenizer.json beside config.json (or --tokenizer) becomes the file's /tokenizer record when\n"
    "kd can apply it (byte-level BPE: GPT-2, Llama 3, Qwen2/3). Runs on rank 0.\n\noptions:\n";

static int import_weights(int argc, char **argv, kd_err *e) {
  kd_import_weights_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  if (kd_opts_parse(weights_opts, N_OPTS(weights_opts), &cfg, argc, argv, "kd import weights", NULL, e))
    return e->code;
  if (!cfg.force && access(cfg.out, F_OK) == 0)
    return kd_fail(e, KD_ERR_USAGE, "kd import weights: --out %s exists; pass --force to replace it", cfg.out);
  int rc = KD_OK;
  if (g_rank == 0) {
    kd_import_weights_report r;
    rc = kd_import_weights(&cfg, &r, e);
    if (!rc)
      printf("kd import: wrote %s (%s from the %s of %s: %d tensors of %d file%s, F32 %d, F16 %d, BF16 %d; %d "
             "skipped)\n", cfg.out, r.student, r.arch, cfg.in, r.tensors, r.files, r.files == 1 ? "" : "s",
             r.by_type[0], r.by_type[1], r.by_type[2], r.ignored);
    if (!rc) printf("tokenizer: %s\n", r.tokenizer);
    fflush(stdout);
  }
  return kd_agree(MPI_COMM_WORLD, rc, e);
}

int cmd_import(int argc, char **argv, kd_err *e) {
  if (argc >= 1 && strcmp(argv[0], "weights") == 0) {
    if (cmd_wants_help(argc - 1, argv + 1)) {
      cmd_help(weights_help, weights_opts, N_OPTS(weights_opts));
      return KD_OK;
    }
    return import_weights(argc - 1, argv + 1, e);
  }
  if (argc >= 1 && strcmp(argv[0], "pairs") == 0) {
    if (cmd_wants_help(argc - 1, argv + 1)) {
      cmd_help(pairs_help, pairs_opts, N_OPTS(pairs_opts));
      return KD_OK;
    }
    return import_pairs(argc - 1, argv + 1, e);
  }
  if (argc >= 1 && strcmp(argv[0], "text") == 0) {
    if (cmd_wants_help(argc - 1, argv + 1)) {
      cmd_help(text_help, text_opts, N_OPTS(text_opts));
      return KD_OK;
    }
    return import_text(argc - 1, argv + 1, e);
  }
  if (argc < 1 || strcmp(argv[0], "idx") != 0) {
    if (cmd_wants_help(argc, argv)) {
      cmd_help("usage: kd import idx|text|pairs|weights ... (kd import idx --help, kd import text --help, kd import "
               "pairs --help, kd import weights --help)\n\nidx options:\n",
               idx_opts, N_OPTS(idx_opts));
      return KD_OK;
    }
    return kd_fail(e, KD_ERR_USAGE,
                   "kd import: expected a format, 'idx', 'text', 'pairs' or 'weights' (kd import idx --help)");
  }
  if (cmd_wants_help(argc - 1, argv + 1)) {
    cmd_help("usage: kd import idx --images F --labels F [--test-images F --test-labels F] --out FILE\n\n"
             "Converts IDX files (MNIST, Fashion-MNIST) into a kd data file: /train/x [N, pixels] float32 in\n"
             "[0, 1], /train/y int32, and /test/... with the test files. Runs on rank 0.\n\noptions:\n",
             idx_opts, N_OPTS(idx_opts));
    return KD_OK;
  }
  return import_idx(argc - 1, argv + 1, e);
}
