/* kd synth: a synthetic data set and a fixed teacher's logits (rank 0). */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "core/dist.h"
#include "data/synth.h"

#define S_(f) offsetof(kd_synth_cfg, f)
static const kd_opt_spec opts[] = {
  {"out", KD_OPT_STR, S_(out), STR(kd_synth_cfg, out), NULL, NULL, 0, 0, 0, 0, "data file to write"},
  {"teacher-out", KD_OPT_STR, S_(teacher_out), STR(kd_synth_cfg, teacher_out), "", NULL, 0, 0, 0, 0,
   "teacher-logits file to write (empty: none)"},
  {"train", KD_OPT_INT, S_(train), 0, "20000", NULL, 1, 1e10, 0, 0, "training rows"},
  {"test", KD_OPT_INT, S_(test), 0, "4000", NULL, 0, 1e10, 0, 0, "test rows (0: no /test split)"},
  {"dim", KD_OPT_INT, S_(dim), 0, "64", NULL, 1, 1 << 20, 0, 0, "features per row"},
  {"classes", KD_OPT_INT, S_(classes), 0, "10", NULL, 2, 1 << 20, 0, 0, "classes"},
  {"clusters", KD_OPT_INT, S_(clusters), 0, "4", NULL, 1, 1024, 0, 0,
   "Gaussian clusters per class (more: a less linear problem)"},
  {"noise", KD_OPT_REAL, S_(noise), 0, "1.0", NULL, 0, 1e6, 1, 0, "standard deviation of each cluster"},
  {"separation", KD_OPT_REAL, S_(separation), 0, "5", NULL, 0, 1e6, 1, 0,
   "typical distance between two cluster centres, in noise deviations (smaller: harder)"},
  {"teacher-temperature", KD_OPT_REAL, S_(teacher_temperature), 0, "1.0", NULL, 0, 1e6, 1, 0,
   "divides the teacher's log-likelihood logits (larger: softer teacher)"},
  {"seed", KD_OPT_INT, S_(seed), 0, "1", NULL, 0, 9.2e18, 0, 0, "seed"},
  {"force", KD_OPT_FLAG, S_(force), 0, "0", NULL, 0, 0, 0, 0, "replace output files that exist"},
};

int cmd_synth(int argc, char **argv, kd_err *e) {
  if (cmd_wants_help(argc, argv)) {
    cmd_help("usage: kd synth --out data.h5 [--teacher-out teacher.h5] [OPTIONS]\n\n"
             "Writes /train/x, /train/y, /test/x, /test/y of a Gaussian-mixture set and, with --teacher-out,\n"
             "the Bayes classifier's logits as /train/logits and /test/logits. Runs on rank 0.\n\noptions:\n",
             opts, N_OPTS(opts));
    return KD_OK;
  }
  kd_synth_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  if (kd_opts_parse(opts, N_OPTS(opts), &cfg, argc, argv, "kd synth", NULL, e)) return e->code;
  for (int i = 0; i < 2 && !cfg.force; i++) {
    const char *out = i ? cfg.teacher_out : cfg.out;
    if (out[0] && access(out, F_OK) == 0)
      return kd_fail(e, KD_ERR_USAGE, "kd synth: --%s %s exists; pass --force to replace it", i ? "teacher-out" : "out",
                     out);
  }
  int rc = KD_OK;
  if (g_rank == 0) {
    kd_synth_stats st;
    rc = kd_synth_write(&cfg, &st, e);
    if (!rc) {
      printf("kd synth: wrote %s (%lld train, %lld test rows, %lld features, %lld classes)%s%s\n", cfg.out,
             (long long)cfg.train, (long long)cfg.test, (long long)cfg.dim, (long long)cfg.classes,
             cfg.teacher_out[0] ? " and teacher logits " : "", cfg.teacher_out);
      if (st.teacher_acc[0] >= 0) printf("kd synth: teacher train accuracy %.4f\n", st.teacher_acc[0]);
      if (st.teacher_acc[1] >= 0) printf("kd synth: teacher test accuracy %.4f\n", st.teacher_acc[1]);
    }
  }
  return kd_agree(MPI_COMM_WORLD, rc, e);
}
