/* kd logits: a teacher's logits (and hidden features, or a Transformer teacher's
 * hidden states and attention maps) for every split of a data file,
 * computed on all ranks. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "data/fileset.h"
#include "kd/infer.h"

#define E_(f) offsetof(kd_eval_cfg, f)
static const kd_opt_spec opts[] = {
  {"ckpt", KD_OPT_STR, E_(ckpt), STR(kd_eval_cfg, ckpt), NULL, NULL, 0, 0, 0, 0,
   "teacher checkpoint FILE or DIR[:latest|best|step:N]"},
  {"data", KD_OPT_STR, E_(data), STR(kd_eval_cfg, data), NULL, NULL, 0, 0, 0, 0,
   "HDF5 data file, or a set of shard files: a quoted glob or a comma-separated list"},
  {"out", KD_OPT_STR, E_(out), STR(kd_eval_cfg, out), NULL, NULL, 0, 0, 0, 0,
   "teacher file to write: /SPLIT/logits for every split of the data file; for a set of data shards, a name "
   "with {} (replaced by each data shard's file name without .h5): one teacher shard per data shard"},
  {"batch", KD_OPT_INT, E_(batch), 0, "0", NULL, 0, 1 << 24, 0, 0,
   "rows per forward pass (0: as many as fit in 256 MiB of activations, at most 1024)"},
  {"features", KD_OPT_INT, E_(features), 0, "0", NULL, 0, 1000, 0, 0,
   "also write hidden layer K (1-based, after the activation) as /SPLIT/features, for --hint-layer"},
  {"hidden", KD_OPT_STR, E_(hidden), STR(kd_eval_cfg, hidden), "", NULL, 0, 0, 0, 0,
   "Transformer teachers (gpt, llama): also write hidden states l,l,... (0: the embedding output, l: the output of block l, before "
   "ln_f) as /SPLIT/hidden/{l} [N, T, D], for kd train --hidden-map"},
  {"attn", KD_OPT_STR, E_(attn), STR(kd_eval_cfg, attn), "", NULL, 0, 0, 0, 0,
   "Transformer teachers (gpt, llama): also write the attention probabilities of blocks l,l,... (1-based) as /SPLIT/attn/{l} "
   "[N, H, T, T], for kd train --attn-loss mse"},
  {"dtype", KD_OPT_CHOICE, E_(dtype), STR(kd_eval_cfg, dtype), "f32", "f32|f16", 0, 0, 0, 0,
   "type of the logits (dense or top-k; and hidden states and attention maps) written (f16: half the bytes; kd "
   "reads float16 teacher files as they are)"},
  {"topk", KD_OPT_INT, E_(topk), 0, "0", NULL, 0, 65536, 0, 0,
   "sparse logits for large vocabularies: write each position's K largest logits as /SPLIT/topk/ids, "
   "/SPLIT/topk/logits and the log-sum-exp of all of them as /SPLIT/topk/lse, instead of dense /SPLIT/logits"},
  {"sample", KD_OPT_INT, E_(sample), 0, "0", NULL, 0, 65535, 0, 0,
   "sparse logits, unbiased (RS-KD): draw S ids per position from the teacher's softmax at --sample-temperature "
   "and write the distinct ids with their counts as /SPLIT/sampled/ids and /SPLIT/sampled/counts"},
  {"sample-temperature", KD_OPT_REAL, E_(sample_temperature), 0, "1", NULL, 0, 1000, 1, 0,
   "temperature of the softmax --sample draws from; kd train --temperature must equal it"},
  {"seed", KD_OPT_INT, E_(seed), 0, "0", NULL, 0, 1e15, 0, 0,
   "seed of the --sample draws (each position's draws depend on the seed, split, row and position only)"},
  {"rows", KD_OPT_CHOICE, E_(rows), STR(kd_eval_cfg, rows), "student", "student|teacher", 0, 0, 0, 0,
   "which rows of the data file: the student's (/SPLIT/tokens), or the teacher's rows of the same text that kd import "
   "text --teacher-tokenizer writes (/SPLIT/teacher_tokens, read with /teacher_tokenizer): a teacher of that "
   "tokenizer's logits per teacher position"},
  KD_PROGRESS_OPTS(kd_eval_cfg),
};

static int logits_of_file(const kd_eval_cfg *cfg, kd_err *e) {
  int64_t rows[3] = {0, 0, 0};
  int rc = kd_logits_run(cfg, MPI_COMM_WORLD, rows, e);
  if (!rc && g_rank == 0) {
    printf("kd logits: wrote %s (train %lld, valid %lld, test %lld rows)\n", cfg->out, (long long)rows[0],
           (long long)rows[1], (long long)rows[2]);
    fflush(stdout);
  }
  return rc;
}

/* out with {} replaced by the data shard's file name, less its .h5. */
static int shard_out(char *buf, size_t n, const char *pattern, const char *shard, kd_err *e) {
  const char *base = strrchr(shard, '/');
  base = base ? base + 1 : shard;
  size_t len = strlen(base);
  if (len > 3 && strcmp(base + len - 3, ".h5") == 0) len -= 3;
  const char *at = strstr(pattern, "{}");
  if ((size_t)snprintf(buf, n, "%.*s%.*s%s", (int)(at - pattern), pattern, (int)len, base, at + 2) >= n)
    return kd_fail(e, KD_ERR_USAGE, "kd logits: --out %s: the name for %s is too long", pattern, shard);
  return KD_OK;
}

/* One teacher shard per data shard, in the set's order. */
static int logits_of_set(const kd_eval_cfg *cfg, kd_err *e) {
  if (!strstr(cfg->out, "{}"))
    return kd_fail(e, KD_ERR_USAGE, "kd logits: --data %s names a set of shards: --out needs {} for each data shard's "
                   "name (e.g. --out 'teacher-{}.h5')", cfg->data);
  kd_fileset fs;
  int rc = kd_fileset_expand(&fs, cfg->data, e);
  /* every rank expands the pattern itself: the ranks agree on the outcome and on the list before any shard */
  uint64_t h[2] = {rc ? 0 : kd_fileset_hash(&fs), 0}, lo[2], hi[2];
  h[1] = (uint64_t)(rc != 0);
  if (MPI_Allreduce(h, lo, 2, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD) != MPI_SUCCESS ||
      MPI_Allreduce(h, hi, 2, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD) != MPI_SUCCESS)
    return rc ? rc : kd_fail(e, KD_ERR_RUNTIME, "kd logits: MPI_Allreduce failed (rank %d)", g_rank);
  if (rc) return rc;
  if (hi[1]) {
    kd_fileset_free(&fs);
    return kd_fail(e, KD_ERR_RUNTIME, "--data %s: another rank could not expand it", cfg->data);
  }
  if (lo[0] != hi[0]) {
    kd_fileset_free(&fs);
    return kd_fail(e, KD_ERR_RUNTIME, "--data %s: the ranks see different files (rank %d sees %d)", cfg->data, g_rank,
                   fs.n);
  }
  kd_eval_cfg one = *cfg;
  for (int i = 0; i < fs.n && !rc; i++) {
    snprintf(one.data, sizeof one.data, "%s", fs.paths[i]);
    rc = shard_out(one.out, sizeof one.out, cfg->out, fs.paths[i], e);
    for (int j = 0; j < i && !rc; j++) { /* two shards of one name in different folders */
      char other[sizeof one.out];
      if (!shard_out(other, sizeof other, cfg->out, fs.paths[j], e) && strcmp(other, one.out) == 0)
        rc = kd_fail(e, KD_ERR_USAGE, "kd logits: --out %s names %s for both %s and %s", cfg->out, one.out,
                     fs.paths[j], fs.paths[i]);
    }
    if (!rc) rc = logits_of_file(&one, e);
  }
  kd_fileset_free(&fs);
  return rc;
}

int cmd_logits(int argc, char **argv, kd_err *e) {
  if (cmd_wants_help(argc, argv)) {
    cmd_help("usage: mpirun -np N kd logits --ckpt TEACHER --data FILE --out FILE\n\n"
             "Writes the teacher's raw logits for every split of the data file (/train, /valid, /test) as\n"
             "/SPLIT/logits, each rank computing its own rows, with the teacher checkpoint, the data file and\n"
             "its /train fingerprint recorded as attributes. A gpt teacher's hidden states and attention\n"
             "probabilities go with them (--hidden, --attn) as /SPLIT/hidden/{l} and /SPLIT/attn/{l}.\n"
             "For large vocabularies, --topk K and --sample S write sparse logits instead (each round of rows\n"
             "is reduced as it is computed: the dense logits of a split never exist in memory or on disk).\n\noptions:\n",
             opts, N_OPTS(opts));
    return KD_OK;
  }
  kd_eval_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  if (kd_opts_parse(opts, N_OPTS(opts), &cfg, argc, argv, "kd logits", NULL, e)) return e->code;
  if (kd_fileset_is_set(cfg.data)) return logits_of_set(&cfg, e);
  return logits_of_file(&cfg, e);
}
