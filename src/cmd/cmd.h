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

extern int g_rank, g_size;

/* A command's --help: rank 0 prints its text and its option table. */
void cmd_help(const char *text, const kd_opt_spec *opts, int n);
int cmd_wants_help(int argc, char **argv);

int cmd_train(int argc, char **argv, kd_err *e);
int cmd_eval(int argc, char **argv, kd_err *e);
int cmd_predict(int argc, char **argv, kd_err *e);
int cmd_logits(int argc, char **argv, kd_err *e);
int cmd_import(int argc, char **argv, kd_err *e);
int cmd_synth(int argc, char **argv, kd_err *e);
int cmd_generate(int argc, char **argv, kd_err *e);

#endif
