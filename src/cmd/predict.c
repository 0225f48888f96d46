/* kd predict: a checkpoint's logits for a split, as a teacher file (rank 0). */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/dist.h"
#include "kd/infer.h"

#define E_(f) offsetof(kd_eval_cfg, f)
static const kd_opt_spec opts[] = {
  {"ckpt", KD_OPT_STR, E_(ckpt), STR(kd_eval_cfg, ckpt), NULL, NULL, 0, 0, 0, 0,
   "checkpoint FILE or DIR[:latest|best|step:N]"},
  {"data", KD_OPT_STR, E_(data), STR(kd_eval_cfg, data), NULL, NULL, 0, 0, 0, 0, "HDF5 data file"},
  {"out", KD_OPT_STR, E_(out), STR(kd_eval_cfg, out), NULL, NULL, 0, 0, 0, 0,
   "HDF5 file to write /SPLIT/logits into (created, or replaced)"},
  {"split", KD_OPT_STR, E_(split), STR(kd_eval_cfg, split), "test", NULL, 0, 0, 0, 0, "split to predict"},
  {"batch", KD_OPT_INT, E_(batch), 0, "0", NULL, 0, 1 << 24, 0, 0,
   "rows per forward pass (0: as many as fit in 256 MiB of activations, at most 1024)"},
  {"dtype", KD_OPT_CHOICE, E_(dtype), STR(kd_eval_cfg, dtype), "f32", "f32|f16", 0, 0, 0, 0,
   "type of the logits written (f16: half the bytes; kd reads float16 teacher files as they are)"},
  KD_PROGRESS_OPTS(kd_eval_cfg),
};

int cmd_predict(int argc, char **argv, kd_err *e) {
  if (cmd_wants_help(argc, argv)) {
    cmd_help("usage: kd predict --ckpt CKPT --data FILE --out FILE [--split test]\n\n"
             "Writes the student's raw logits for every row of /SPLIT as /SPLIT/logits (a teacher file).\n"
             "CKPT is a checkpoint or weights file, or DIR[:latest|best|step:N] (a bare run directory means its "
             "latest checkpoint).\nRuns on rank 0.\n\noptions:\n",
             opts, N_OPTS(opts));
    return KD_OK;
  }
  kd_eval_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  if (kd_opts_parse(opts, N_OPTS(opts), &cfg, argc, argv, "kd predict", NULL, e)) return e->code;
  int rc = KD_OK;
  if (g_rank == 0) {
    char path[KD_PATH_MAX + 128];
    int64_t rows = 0;
    rc = kd_predict_run(&cfg, &rows, path, sizeof path, e);
    if (!rc) printf("kd predict: wrote /%s/logits (%lld rows) of %s to %s\n", cfg.split, (long long)rows, path, cfg.out);
    fflush(stdout);
  }
  return kd_agree(MPI_COMM_WORLD, rc, e);
}
