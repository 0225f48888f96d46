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

#include "kd/kd.h"

static int g_rank = 0, g_size = 1;

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

/* A command's --help: rank 0 prints its text and its option table. */
static void print_help(const char *text, const kd_opt_spec *opts, int n) {
  if (g_rank != 0) return;
  fputs(text, stdout);
  kd_opts_help(opts, n, stdout);
}

static int wants_help(int argc, char **argv) {
  for (int i = 0; i < argc; i++)
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return 1;
  return 0;
}

static int cmd_train(int argc, char **argv, kd_err *e) {
  if (wants_help(argc, argv)) {
    print_help("usage: kd train --data FILE [--teacher FILE] --student SPEC --out DIR [OPTIONS]\n\n"
               "Loss per labelled row: alpha*CE(y, softmax(z_s)) + (1-alpha)*T^2*KL(softmax(z_t/T) || softmax(z_s/T)),\n"
               "averaged over the global batch. Without --teacher (or with --alpha 1) it is plain supervised training.\n\n"
               "options:\n",
               kd_train_opts, kd_train_n_opts);
    return KD_OK;
  }
  kd_train_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  if (kd_opts_parse(kd_train_opts, kd_train_n_opts, &cfg, argc, argv, "kd train", cfg.given, e)) return e->code;
  if (!cfg.resume[0] && kd_train_cfg_check(&cfg, e)) return e->code;
  kd_train_result res;
  return kd_train_run(&cfg, MPI_COMM_WORLD, &res, e);
}

static int cmd_synth(int argc, char **argv, kd_err *e) {
  if (wants_help(argc, argv)) {
    print_help("usage: kd synth --out data.h5 [--teacher-out teacher.h5] [OPTIONS]\n\n"
               "Writes /train/x, /train/y, /test/x, /test/y of a Gaussian-mixture set and, with --teacher-out,\n"
               "the Bayes classifier's logits as /train/logits and /test/logits. Runs on rank 0.\n\noptions:\n",
               kd_synth_opts, kd_synth_n_opts);
    return KD_OK;
  }
  kd_synth_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  if (kd_opts_parse(kd_synth_opts, kd_synth_n_opts, &cfg, argc, argv, "kd synth", NULL, e)) return e->code;
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

static int cmd_eval(int argc, char **argv, int predict, kd_err *e) {
  const kd_opt_spec *specs = predict ? kd_predict_opts : kd_eval_opts;
  const int n = predict ? kd_predict_n_opts : kd_eval_n_opts;
  const char *cmd = predict ? "kd predict" : "kd eval";
  if (wants_help(argc, argv)) {
    if (g_rank == 0) {
      if (predict)
        printf("usage: kd predict --ckpt CKPT --data FILE --out FILE [--split test]\n\n"
               "Writes the student's raw logits for every row of /SPLIT as /SPLIT/logits (a teacher file).\n");
      else
        printf("usage: kd eval --ckpt CKPT --data FILE [--teacher FILE] [--temperature T] [--split test] [--json]\n\n"
               "Accuracy, NLL, expected calibration error (15 bins) and, with teacher logits for the split, top-1\n"
               "agreement and KL(teacher || student) at T.\n");
      printf("CKPT is a checkpoint or weights file, or DIR[:latest|best|step:N] (a bare run directory means its "
             "latest checkpoint).\nRuns on rank 0.\n\noptions:\n");
      kd_opts_help(specs, n, stdout);
    }
    return KD_OK;
  }
  kd_eval_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  if (kd_opts_parse(specs, n, &cfg, argc, argv, cmd, NULL, e)) return e->code;
  int rc = KD_OK;
  if (g_rank == 0) {
    char path[4200];
    if (predict) {
      int64_t rows = 0;
      rc = kd_predict_run(&cfg, &rows, path, sizeof path, e);
      if (!rc) printf("kd predict: wrote /%s/logits (%lld rows) of %s to %s\n", cfg.split, (long long)rows, path, cfg.out);
    } else {
      kd_eval_result r;
      rc = kd_eval_run(&cfg, &r, path, sizeof path, e);
      if (!rc && cfg.json) kd_eval_json(stdout, &r);
      else if (!rc) {
        char label[64];
        snprintf(label, sizeof label, "%s", cfg.split);
        kd_eval_print(stdout, label, &r);
      }
    }
    fflush(stdout);
  }
  return kd_agree(MPI_COMM_WORLD, rc, e);
}

static int cmd_logits(int argc, char **argv, kd_err *e) {
  if (wants_help(argc, argv)) {
    print_help("usage: mpirun -np N kd logits --ckpt TEACHER --data FILE --out FILE\n\n"
               "Writes the teacher's raw logits for every split of the data file (/train, /valid, /test) as\n"
               "/SPLIT/logits, each rank computing its own rows, with the teacher checkpoint, the data file and\n"
               "its /train fingerprint recorded as attributes.\n\noptions:\n",
               kd_logits_opts, kd_logits_n_opts);
    return KD_OK;
  }
  kd_eval_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  if (kd_opts_parse(kd_logits_opts, kd_logits_n_opts, &cfg, argc, argv, "kd logits", NULL, e)) return e->code;
  int64_t rows[3] = {0, 0, 0};
  int rc = kd_logits_run(&cfg, MPI_COMM_WORLD, rows, e);
  if (!rc && g_rank == 0) {
    printf("kd logits: wrote %s (train %lld, valid %lld, test %lld rows)\n", cfg.out, (long long)rows[0],
           (long long)rows[1], (long long)rows[2]);
    fflush(stdout);
  }
  return rc;
}

static const kd_opt_spec import_opts[] = {
  {"images", KD_OPT_STR, offsetof(kd_import_cfg, images), 4096, NULL, NULL, 0, 0, 0, 0, "IDX images (gzip or plain)"},
  {"labels", KD_OPT_STR, offsetof(kd_import_cfg, labels), 4096, NULL, NULL, 0, 0, 0, 0, "IDX labels (gzip or plain)"},
  {"test-images", KD_OPT_STR, offsetof(kd_import_cfg, test_images), 4096, "", NULL, 0, 0, 0, 0, "IDX test images"},
  {"test-labels", KD_OPT_STR, offsetof(kd_import_cfg, test_labels), 4096, "", NULL, 0, 0, 0, 0, "IDX test labels"},
  {"out", KD_OPT_STR, offsetof(kd_import_cfg, out), 4096, NULL, NULL, 0, 0, 0, 0, "kd data file to write"},
};

static int cmd_import(int argc, char **argv, kd_err *e) {
  const int n = (int)(sizeof import_opts / sizeof import_opts[0]);
  if (argc < 1 || strcmp(argv[0], "idx") != 0) {
    if (wants_help(argc, argv)) {
      print_help("usage: kd import idx --images F --labels F [--test-images F --test-labels F] --out FILE\n\noptions:\n",
                 import_opts, n);
      return KD_OK;
    }
    return kd_fail(e, KD_ERR_USAGE, "kd import: expected a format, 'idx' (kd import idx --help)");
  }
  if (wants_help(argc - 1, argv + 1)) {
    print_help("usage: kd import idx --images F --labels F [--test-images F --test-labels F] --out FILE\n\n"
               "Converts IDX files (MNIST, Fashion-MNIST) into a kd data file: /train/x [N, pixels] float32 in\n"
               "[0, 1], /train/y int32, and /test/... with the test files. Runs on rank 0.\n\noptions:\n",
               import_opts, n);
    return KD_OK;
  }
  kd_import_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  if (kd_opts_parse(import_opts, n, &cfg, argc - 1, argv + 1, "kd import idx", NULL, e)) return e->code;
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
        kd_opts_help(kd_train_opts, kd_train_n_opts, stdout);
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
    code = report(&e, cmd_eval(argc - 2, argv + 2, 0, &e));
  } else if (strcmp(argv[1], "predict") == 0) {
    code = report(&e, cmd_eval(argc - 2, argv + 2, 1, &e));
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
