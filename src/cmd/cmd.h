/* The kd driver's commands: one file each, with its option table. Only
 * the driver turns error codes into exit statuses. */
#ifndef KD_CMD_H
#define KD_CMD_H

#include <stddef.h>
#include <stdio.h>

#include "core/options.h"
#include "kd/error.h"

#define STR(cfg, f) sizeof(((cfg *)0)->f)
#define N_OPTS(t) ((int)(sizeof(t) / sizeof((t)[0])))

/* The two progress options of a command whose struct has `char progress[8]` and `double progress_every`. */
#define KD_PROGRESS_OPTS(cfg)                                                                                        \
  {"progress", KD_OPT_CHOICE, offsetof(cfg, progress), STR(cfg, progress), "auto", "auto|on|lines|off", 0, 0, 0, 0,  \
   "a progress line every --progress-every seconds (rows done, rate, ETA): on, redrawn in place; lines, plain lines "\
   "(logs); auto, in place on a terminal and plain lines otherwise"},                                                \
  {"progress-every", KD_OPT_REAL, offsetof(cfg, progress_every), 0, "10", NULL, 0, 86400, 1, 0,                      \
   "seconds between progress lines"}

extern int g_rank, g_size;

/* A command's --help: rank 0 prints its text and its option table. */
void cmd_help(const char *text, const kd_opt_spec *opts, int n);
int cmd_wants_help(int argc, char **argv);
/* argv of a command that takes kd train's options beside its own (doctor, sweep): its own options (table own)
 * into mine, the rest in order into train, each option with the value that follows it; both arrays hold argc. */
void cmd_split_args(const kd_opt_spec *own, int n_own, int argc, char **argv, char **mine, int *n_mine, char **train,
                    int *n_train);

/* The collective watchdog (watchdog.c): a thread that ends this process when
 * a blocking MPI call has not returned within limit_s seconds (0: none).
 * KD_ERR_FATAL (rank-tagged) when the thread cannot be started. */
int cmd_watchdog_start(double limit_s, int rank, kd_err *e);
/* --collective-timeout's default, for the commands that exchange data in a
 * loop (train, sweep, logits); the others run without one unless given. */
#define KD_COLLECTIVE_TIMEOUT_DEFAULT 300.0

int cmd_train(int argc, char **argv, kd_err *e);
int cmd_doctor(int argc, char **argv, kd_err *e);
int cmd_sweep(int argc, char **argv, kd_err *e);
int cmd_eval(int argc, char **argv, kd_err *e);
int cmd_predict(int argc, char **argv, kd_err *e);
int cmd_logits(int argc, char **argv, kd_err *e);
int cmd_import(int argc, char **argv, kd_err *e);
int cmd_synth(int argc, char **argv, kd_err *e);
int cmd_generate(int argc, char **argv, kd_err *e);
int cmd_export(int argc, char **argv, kd_err *e);
int cmd_tokenize(int argc, char **argv, kd_err *e);

#endif
