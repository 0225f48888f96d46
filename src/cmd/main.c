#define _DEFAULT_SOURCE /* mallopt */
/* kd: the command-line driver. The only place that turns errors into exit
 * codes: 0 success, 1 data or runtime error, 2 usage error. */
#include <mpi.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "cmd/cmd.h"
#include "kd/kd.h"

int g_rank = 0, g_size = 1;

static void usage(FILE *f) {
  fprintf(f,
          "kd %s: knowledge distillation on MPI ranks\n"
          "\n"
          "usage: mpirun -np N kd COMMAND [OPTIONS]   (or launch/local.sh N COMMAND ...)\n"
          "\n"
          "commands:\n"
          "  train   train a student MLP with the combined KD loss on HDF5 data\n"
          "  eval    evaluate a checkpoint (accuracy, NLL, calibration, teacher agreement)\n"
          "  predict write a checkpoint's logits for a split (one rank)\n"
          "  logits  write a teacher's logits for every split, in parallel (a teacher file)\n"
          "  import  convert IDX files (MNIST, Fashion-MNIST) into a kd data file\n"
          "  synth   write a synthetic data set and a fixed teacher's logits\n"
          "\n"
          "  kd COMMAND --help lists the command's options and defaults.\n"
          "  kd --version prints the version.\n"
          "exit codes: 0 done, 1 data or runtime error, 2 usage error,\n"
          "            75 stopped by SIGTERM/SIGUSR1 after writing a checkpoint (resume with --resume DIR).\n",
          KD_VERSION);
}

static int report(const kd_err *e, int code) {
  if (code == KD_OK) return 0;
  if (code == KD_ERR_FATAL) {
    /* Peers may be blocked in a collective: the rank that saw it speaks and
     * the whole job ends. */
    fprintf(stderr, "kd: rank %d: %s\n", e->rank >= 0 ? e->rank : g_rank, e->msg);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
    return 1;
  }
  if (code == KD_STOPPED) {
    if (g_rank == 0) printf("kd: %s\n", e->msg);
    fflush(stdout);
    return code;
  }
  if (g_rank == 0) {
    if (g_size > 1 && e->rank >= 0) fprintf(stderr, "kd: error (rank %d): %s\n", e->rank, e->msg);
    else fprintf(stderr, "kd: error: %s\n", e->msg);
    fflush(stderr);
  }
  return code;
}

void cmd_help(const char *text, const kd_opt_spec *opts, int n) {
  if (g_rank != 0) return;
  fputs(text, stdout);
  kd_opts_help(opts, n, stdout);
}

int cmd_wants_help(int argc, char **argv) {
  for (int i = 0; i < argc; i++)
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return 1;
  return 0;
}

/* Keep freed blocks up to 32 MiB in the heap instead of returning them to the
 * kernel. Open MPI allocates and frees a temporary buffer of a gradient
 * bucket's size in every non-blocking collective; with glibc's defaults each
 * one came back as fresh pages, and their page faults cost 10-15 ms per step
 * of the reference student on the project's (virtualised) machine. */
static void tune_malloc(void) {
#ifdef __GLIBC__
  /* mallopt returns 0 when it declines; that only loses the tuning. */
  (void)mallopt(M_MMAP_THRESHOLD, 32 << 20);
  (void)mallopt(M_TRIM_THRESHOLD, 128 << 20);
#endif
}

int main(int argc, char **argv) {
  tune_malloc();
  if (MPI_Init(&argc, &argv) != MPI_SUCCESS) {
    fprintf(stderr, "kd: error: MPI_Init failed\n");
    return 1;
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
  /* Errors come back as codes: MPI must not abort on its own. */
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  kd_err e;
  kd_err_clear(&e);
  int code = 0;
  if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
    if (g_rank == 0) {
      usage(argc < 2 ? stderr : stdout);
      if (argc >= 2) {
        printf("\nkd train options:\n");
        kd_train_help(stdout);
      }
    }
    code = argc < 2 ? KD_ERR_USAGE : 0;
  } else if (strcmp(argv[1], "--version") == 0) {
    if (g_rank == 0) printf("kd %s\n", KD_VERSION);
  } else if (strcmp(argv[1], "train") == 0) {
    code = report(&e, cmd_train(argc - 2, argv + 2, &e));
  } else if (strcmp(argv[1], "logits") == 0) {
    code = report(&e, cmd_logits(argc - 2, argv + 2, &e));
  } else if (strcmp(argv[1], "import") == 0) {
    code = report(&e, cmd_import(argc - 2, argv + 2, &e));
  } else if (strcmp(argv[1], "eval") == 0) {
    code = report(&e, cmd_eval(argc - 2, argv + 2, &e));
  } else if (strcmp(argv[1], "predict") == 0) {
    code = report(&e, cmd_predict(argc - 2, argv + 2, &e));
  } else if (strcmp(argv[1], "synth") == 0) {
    code = report(&e, cmd_synth(argc - 2, argv + 2, &e));
  } else {
    kd_fail(&e, KD_ERR_USAGE, "unknown command '%s' (commands: train, eval, predict, logits, import, synth; see kd --help)", argv[1]);
    code = report(&e, KD_ERR_USAGE);
  }
  fflush(stdout);
  MPI_Finalize();
  return code;
}
