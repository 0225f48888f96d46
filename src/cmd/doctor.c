/* kd doctor: before training, will distillation pay and with which T and
 * alpha (src/doctor). It takes kd train's options (the run it examines) and
 * a few of its own. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/dist.h"
#include "doctor/doctor.h"

#define D_(f) offsetof(kd_doctor_cfg, f)
static const kd_opt_spec opts[] = {
  {"baseline-steps", KD_OPT_INT, D_(baseline_steps), 0, "2000", NULL, 0, 1e9, 0, 0,
   "train the student from scratch on the labels for about N steps (whole epochs, its own schedule) to measure "
   "the teacher's margin over it (0: no baseline; needs --student)"},
  {"rows", KD_OPT_INT, D_(rows), 0, "5000", NULL, 0, 1e15, 0, 0,
   "rows of each split the teacher statistics read, spread over the split (0: all)"},
  {"teacher-params", KD_OPT_INT, D_(teacher_params), 0, "0", NULL, 0, 1e15, 0, 0,
   "the teacher's parameter count, for the capacity ratio, when neither a checkpoint nor the teacher file's "
   "source_student attribute tells it (0: unknown)"},
  {"work", KD_OPT_STR, D_(work), STR(kd_doctor_cfg, work), "", NULL, 0, 0, 0, 0,
   "the baseline's run folder, kept (default: a fresh folder under TMPDIR, removed; across nodes name a shared "
   "one)"},
  {"json", KD_OPT_FLAG, D_(json), 0, "0", NULL, 0, 0, 0, 0, "print one JSON object instead of the report"},
};

int cmd_doctor(int argc, char **argv, kd_err *e) {
  if (cmd_wants_help(argc, argv)) {
    cmd_help("usage: kd doctor --data FILE (--teacher FILE | --teacher-model CKPT) [--student SPEC] [kd train options]\n"
             "                 [--baseline-steps N] [--rows N] [--json]\n\n"
             "Before training: will distillation pay for this run, and with which T and alpha? It reads what kd train\n"
             "would read with the same options (the transfer rows: /train less --val-rows, cut to --train-rows; the\n"
             "evaluation split: /valid, else the held-out rows, else /test) and reports, each with its number, the\n"
             "threshold and what to do: the capacity ratio; the teacher's margin over the student trained from\n"
             "scratch for --baseline-steps (with its standard error) and whether that student fits its rows; the\n"
             "teacher's probability off the target and entropy at T = 1, 2, 4, 8 (dark knowledge); the teacher on the\n"
             "transfer rows against the evaluation split (shift); transfer rows all teacher-correct; for sparse files\n"
             "the mass the stored ids hold. Token rows: per target token. Ends with a verdict: distil or not, T, alpha.\n"
             "Runs on any number of ranks (the baseline is a data-parallel run). docs/usage.md, \"Before you train\".\n\n"
             "options (and every kd train option, kd train --help):\n",
             opts, N_OPTS(opts));
    return KD_OK;
  }
  char **mine = malloc(sizeof *mine * (size_t)(argc + 1)), **train = malloc(sizeof *train * (size_t)(argc + 1));
  kd_doctor_cfg *cfg = calloc(1, sizeof *cfg);
  kd_doctor_report *r = calloc(1, sizeof *r);
  int rc = !mine || !train || !cfg || !r ? kd_fail(e, KD_ERR_RUNTIME, "out of memory (kd doctor)") : KD_OK;
  int n_mine = 0, n_train = 0;
  if (!rc) cmd_split_args(opts, N_OPTS(opts), argc, argv, mine, &n_mine, train, &n_train);
  if (!rc) rc = kd_opts_parse(opts, N_OPTS(opts), cfg, n_mine, mine, "kd doctor", NULL, e);
  if (!rc) rc = kd_train_cfg_parse(&cfg->train, n_train, train, e);
  if (!rc && !cfg->train.data[0]) rc = kd_fail(e, KD_ERR_USAGE, "kd doctor: --data FILE is required");
  if (!rc && !cfg->train.teacher[0] && !cfg->train.teacher_model[0])
    rc = kd_fail(e, KD_ERR_USAGE, "kd doctor: --teacher FILE or --teacher-model CKPT is required (the teacher to judge)");
  if (!rc && cfg->train.teacher[0] && cfg->train.teacher_model[0])
    rc = kd_fail(e, KD_ERR_USAGE, "kd doctor: --teacher and --teacher-model: name one teacher");
  if (!rc) rc = kd_doctor_run(cfg, MPI_COMM_WORLD, r, e);
  if (!rc && g_rank == 0) {
    if (cfg->json) kd_doctor_json(stdout, r);
    else kd_doctor_print(stdout, r);
    if (fflush(stdout) != 0 || ferror(stdout)) rc = kd_fail(e, KD_ERR_RUNTIME, "kd doctor: cannot write the report");
  }
  free(r);
  free(cfg);
  free(train);
  free(mine);
  return rc;
}
