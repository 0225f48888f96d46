/* What every command shares: the rank, and --help (main.c dispatches to the commands, which call only this). */
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"

int g_rank = 0, g_size = 1;

void cmd_help(const char *text, const kd_opt_spec *opts, int n) {
  if (g_rank != 0) return;
  fputs(text, stdout);
  kd_opts_help(opts, n, stdout);
  printf("\nevery command also takes --collective-timeout S: end a rank whose MPI call has not returned within S "
         "seconds, as when a peer's node died or its link went down (0: never; default: %g for train, sweep and logits, "
         "none for the others)\n",
         KD_COLLECTIVE_TIMEOUT_DEFAULT);
}

int cmd_wants_help(int argc, char **argv) {
  for (int i = 0; i < argc; i++)
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return 1;
  return 0;
}
