/* kd import idx: IDX files (MNIST, Fashion-MNIST) into a kd data file (rank 0). */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/dist.h"
#include "data/idx.h"

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

int cmd_import(int argc, char **argv, kd_err *e) {
  if (argc < 1 || strcmp(argv[0], "idx") != 0) {
    if (cmd_wants_help(argc, argv)) {
      cmd_help("usage: kd import idx --images F --labels F [--test-images F --test-labels F] --out FILE\n\noptions:\n",
               idx_opts, N_OPTS(idx_opts));
      return KD_OK;
    }
    return kd_fail(e, KD_ERR_USAGE, "kd import: expected a format, 'idx' (kd import idx --help)");
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
