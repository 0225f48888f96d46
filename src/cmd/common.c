/* What every command shares: the rank, and --help (main.c dispatches to the commands, which call only this). */
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "kd/train.h"
#include "train/config.h"

int g_rank = 0, g_size = 1;

void cmd_help(const char *text, const kd_opt_spec *opts, int n) {
  if (g_rank != 0) return;
  fputs(text, stdout);
  kd_opts_help(opts, n, stdout);
  printf("\nevery command also takes --collective-timeout S: end a rank whose MPI call has not returned within S "
         "seconds, as when a peer's node died or its link went down (0: never; default: %g for train, doctor, sweep and logits, "
         "none for the others)\n",
         KD_COLLECTIVE_TIMEOUT_DEFAULT);
}

int cmd_wants_help(int argc, char **argv) {
  for (int i = 0; i < argc; i++)
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return 1;
  return 0;
}

/* A command's option at arg ("--name" or "--name=value") in table t: its entry, or NULL. */
static const kd_opt_spec *option_of(const char *arg, const kd_opt_spec *t, int n) {
  if (strncmp(arg, "--", 2) != 0) return NULL;
  const char *eq = strchr(arg + 2, '=');
  char name[64];
  snprintf(name, sizeof name, "%.*s", (int)(eq ? (size_t)(eq - arg - 2) : strlen(arg + 2)), arg + 2);
  const int i = kd_opts_index(t, n, name);
  return i < 0 ? NULL : &t[i];
}

void cmd_split_args(const kd_opt_spec *own, int n_own, int argc, char **argv, char **mine, int *n_mine, char **train,
                    int *n_train) {
  *n_mine = *n_train = 0;
  for (int i = 0; i < argc; i++) {
    const kd_opt_spec *s = option_of(argv[i], own, n_own);
    const kd_opt_spec *o = s ? s : option_of(argv[i], kd_train_opts, KD_TRAIN_N_OPTS);
    char **to = s ? mine : train;
    int *n = s ? n_mine : n_train;
    to[(*n)++] = argv[i];
    /* the value in the next word, unless a flag or --name=value */
    if (o && o->type != KD_OPT_FLAG && !strchr(argv[i], '=') && i + 1 < argc) to[(*n)++] = argv[++i];
  }
}
