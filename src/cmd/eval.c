/* kd eval: metrics of a checkpoint on a split (rank 0). */
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
  {"teacher", KD_OPT_STR, E_(teacher), STR(kd_eval_cfg, teacher), "", NULL, 0, 0, 0, 0,
   "teacher file: with /SPLIT/logits, adds teacher agreement and KL(teacher || student)"},
  {"split", KD_OPT_STR, E_(split), STR(kd_eval_cfg, split), "test", NULL, 0, 0, 0, 0, "split to evaluate"},
  {"temperature", KD_OPT_REAL, E_(temperature), 0, "", NULL, 0, 1000, 1, 0,
   "temperature of the KL (default: the run's own --temperature, from the checkpoint; 4 without one)"},
  {"batch", KD_OPT_INT, E_(batch), 0, "0", NULL, 0, 1 << 24, 0, 0,
   "rows per forward pass (0: as many as fit in 256 MiB of activations, at most 1024)"},
  {"json", KD_OPT_FLAG, E_(json), 0, "0", NULL, 0, 0, 0, 0,
   "print one JSON object with accuracy, nll, ece, agreement, kl, n"},
};

int cmd_eval(int argc, char **argv, kd_err *e) {
  if (cmd_wants_help(argc, argv)) {
    cmd_help("usage: kd eval --ckpt CKPT --data FILE [--teacher FILE] [--temperature T] [--split test] [--json]\n\n"
             "Accuracy, NLL, expected calibration error (15 bins) and, with teacher logits for the split, top-1\n"
             "agreement and KL(teacher || student) at T. --split valid of a data file without /valid evaluates the\n"
             "rows the run held out with --val-rows (the checkpoint records them).\n"
             "CKPT is a checkpoint or weights file, or DIR[:latest|best|step:N] (a bare run directory means its "
             "latest checkpoint).\nRuns on rank 0.\n\noptions:\n",
             opts, N_OPTS(opts));
    return KD_OK;
  }
  kd_eval_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  if (kd_opts_parse(opts, N_OPTS(opts), &cfg, argc, argv, "kd eval", NULL, e)) return e->code;
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
