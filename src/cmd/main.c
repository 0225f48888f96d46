#define _GNU_SOURCE /* mallopt, sched_getaffinity */
/* kd: the command-line driver. The only place that turns errors into exit
 * codes: 0 success, 1 data or runtime error, 2 usage error. */
#include <mpi.h>
#include <sched.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "cmd/cmd.h"
#include "kd/kd.h"

static void usage(FILE *f) {
  fprintf(f,
          "kd %s: knowledge distillation on MPI ranks\n"
          "\n"
          "usage: mpirun -np N kd COMMAND [OPTIONS]   (or launch/local.sh N COMMAND ...)\n"
          "\n"
          "commands:\n"
          "  train   train a student (mlp, or gpt and llama on token rows) with the combined KD loss on HDF5 data\n"
          "  doctor  before training: will distillation pay for this run, and with which T and alpha\n"
          "  sweep   train every setting of a grid of train options in one MPI job, groups of ranks taking them in\n"
          "          turn, and rank them by their validation metric\n"
          "  eval    evaluate a checkpoint (accuracy, NLL, calibration, teacher agreement)\n"
          "  predict write a checkpoint's logits for a split (one rank)\n"
          "  logits  write a teacher's logits for every split, in parallel (a teacher file)\n"
          "  import  convert IDX files (MNIST, Fashion-MNIST), plain text or prompt-completion pairs into a kd data file,\n"
          "          or a Hugging Face model (safetensors) into a kd weights file\n"
          "  synth   write a synthetic data set and a fixed teacher's logits\n"
          "  generate continue a prompt with a gpt or llama checkpoint, or decode a data file's prompt rows\n"
          "  export  write a gpt or llama student as GGUF for llama.cpp and ollama, or as safetensors for Hugging Face\n"
          "          transformers (one rank)\n"
          "  tokenize text to token ids, a line per document, with a Hugging Face tokenizer.json or a kd tokenizer\n"
          "\n"
          "  kd COMMAND --help lists the command's options and defaults.\n"
          "  --collective-timeout S (any command; default %g for train, doctor, sweep and logits, none for the others; 0 for\n"
          "          none): a rank whose MPI call has not returned within S seconds (a peer's node died or its link\n"
          "          went down) says so and ends itself. S must exceed the longest time one rank works alone\n"
          "          (rank 0's evaluations and checkpoints).\n"
          "  kd --version prints the version.\n"
          "exit codes: 0 done, 1 data or runtime error, 2 usage error,\n"
          "            75 stopped by SIGTERM/SIGUSR1 after writing a checkpoint (resume with --resume DIR).\n",
          KD_VERSION, KD_COLLECTIVE_TIMEOUT_DEFAULT);
}

/* --collective-timeout S (or =S) anywhere before a `--`, taken out of argv.
 * Returns 0 (*given = 1 when it was there), or -1 with a message for a
 * value that is neither 0 nor a number of seconds >= 1. */
static int take_collective_timeout(int *argc, char **argv, double *limit, int *given, char *msg, size_t len) {
  static const char name[] = "--collective-timeout";
  const size_t nl = sizeof name - 1;
  for (int i = 1; i < *argc && strcmp(argv[i], "--") != 0; i++) {
    if (strncmp(argv[i], name, nl) != 0 || (argv[i][nl] != '\0' && argv[i][nl] != '=')) continue;
    const char *v = argv[i][nl] == '=' ? argv[i] + nl + 1 : i + 1 < *argc ? argv[i + 1] : NULL;
    const int used = argv[i][nl] == '=' ? 1 : 2;
    char *end = NULL;
    const double s = v ? strtod(v, &end) : -1;
    /* below a second, ordinary calls (a checkpoint's wait) would end the rank */
    if (!v || end == v || *end != '\0' || !(s == 0 || (s >= 1 && s <= 1e9))) {
      snprintf(msg, len, "--collective-timeout: expected 0 (no watchdog) or seconds >= 1, got '%s'", v ? v : "");
      return -1;
    }
    *limit = s;
    *given = 1;
    for (int j = i; j + used <= *argc; j++) argv[j] = argv[j + used];
    *argc -= used;
    i--;
  }
  return 0;
}

static int g_json; /* --json given: stdout holds the JSON alone */

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
    FILE *f = g_json ? stderr : stdout;
    if (g_rank == 0) fprintf(f, "kd: %s\n", e->msg);
    fflush(f);
    return code;
  }
  if (g_rank == 0) {
    if (g_size > 1 && e->rank >= 0) fprintf(stderr, "kd: error (rank %d): %s\n", e->rank, e->msg);
    else fprintf(stderr, "kd: error: %s\n", e->msg);
    fflush(stderr);
  }
  return code;
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

/* srun started this rank without PMIx (srun --mpi=none, a site whose
 * MpiDefault is none, or pmi2): Open MPI's MPI_Init would abort with a page
 * of text. Say in one line what to change instead. (Open MPI only: MPICH
 * starts under pmi2.) */
static int direct_launch_without_pmix(void) {
#ifdef OPEN_MPI
  return getenv("SLURM_STEP_ID") && getenv("SLURM_PROCID") && !getenv("PMIX_RANK") && !getenv("OMPI_COMM_WORLD_RANK");
#else
  return 0;
#endif
}

/* Ranks this launcher starts on this node (0: unknown). */
static long local_ranks(void) {
  const char *v = getenv("OMPI_COMM_WORLD_LOCAL_SIZE"); /* mpirun */
  if (!v) v = getenv("SLURM_STEP_TASKS_PER_NODE");     /* srun: "2" or "2(x3),1" */
  return v ? strtol(v, NULL, 10) : 0;
}

/* More ranks on this node than CPUs in this rank's affinity mask (a launcher
 * that binds nothing passes its own, possibly narrow, mask on): ranks that
 * busy-poll for each other then wait a scheduler slice per message, so ask
 * Open MPI to yield while it waits (unless the user chose). Measured under a
 * Slurm whose slurmd held one CPU: 3,200 -> 209,000 samples/s. */
static void yield_when_oversubscribed(void) {
#if defined(__linux__)
  cpu_set_t mine;
  CPU_ZERO(&mine);
  const long n = local_ranks();
  if (n > 1 && sched_getaffinity(0, sizeof mine, &mine) == 0 && CPU_COUNT(&mine) < n)
    setenv("OMPI_MCA_mpi_yield_when_idle", "1", 0);
#endif
}

int main(int argc, char **argv) {
  tune_malloc();
  if (direct_launch_without_pmix()) {
    if (strcmp(getenv("SLURM_PROCID"), "0") == 0)
      fprintf(stderr, "kd: error: srun started kd without PMIx, which this Open MPI needs to start ranks: use srun "
                      "--mpi=pmix (or MpiDefault=pmix in slurm.conf, or SLURM_MPI_TYPE=pmix), or start kd with mpirun "
                      "inside the allocation (launch/slurm.sbatch does either: KD_LAUNCHER=auto|srun|mpirun)\n");
    return KD_ERR_USAGE;
  }
  yield_when_oversubscribed();
  int provided = 0; /* a streamed run's reader thread makes no MPI call: the main thread's are all */
  if (MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
    fprintf(stderr, "kd: error: MPI_Init_thread failed\n");
    return 1;
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
  for (int i = 2; i < argc; i++) g_json |= strcmp(argv[i], "--json") == 0;
  /* Errors come back as codes: MPI must not abort on its own. */
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  kd_err e;
  kd_err_clear(&e);
  int code = 0;
  double limit = 0;
  int given = 0;
  char msg[256];
  /* every rank sees the same argv: all of them refuse alike, without a collective */
  const int bad = take_collective_timeout(&argc, argv, &limit, &given, msg, sizeof msg);
  /* By default only the commands whose ranks exchange data in a loop are
   * watched: in the others, ranks wait for rank 0's work alone, however long. */
  if (!given && argc >= 2 && (strcmp(argv[1], "train") == 0 || strcmp(argv[1], "logits") == 0 ||
                                strcmp(argv[1], "doctor") == 0 || strcmp(argv[1], "sweep") == 0))
    limit = KD_COLLECTIVE_TIMEOUT_DEFAULT;
  if (bad) {
    kd_fail(&e, KD_ERR_USAGE, "%s", msg);
    code = report(&e, KD_ERR_USAGE);
  } else if (cmd_watchdog_start(limit, g_rank, &e) != KD_OK) {
    code = report(&e, KD_ERR_FATAL); /* this rank alone: the job ends (MPI_Abort) */
  } else if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
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
  } else if (strcmp(argv[1], "doctor") == 0) {
    code = report(&e, cmd_doctor(argc - 2, argv + 2, &e));
  } else if (strcmp(argv[1], "sweep") == 0) {
    code = report(&e, cmd_sweep(argc - 2, argv + 2, &e));
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
  } else if (strcmp(argv[1], "generate") == 0) {
    code = report(&e, cmd_generate(argc - 2, argv + 2, &e));
  } else if (strcmp(argv[1], "export") == 0) {
    code = report(&e, cmd_export(argc - 2, argv + 2, &e));
  } else if (strcmp(argv[1], "tokenize") == 0) {
    code = report(&e, cmd_tokenize(argc - 2, argv + 2, &e));
  } else {
    kd_fail(&e, KD_ERR_USAGE, "unknown command '%s' (commands: train, doctor, sweep, eval, predict, logits, import, synth, generate, export, tokenize; see kd --help)", argv[1]);
    code = report(&e, KD_ERR_USAGE);
  }
  fflush(stdout);
  MPI_Finalize();
  return code;
}
