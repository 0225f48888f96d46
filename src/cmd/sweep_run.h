/* kd sweep's groups of ranks (sweep_run.c): the loop that claims and trains settings, and the final wait. */
#ifndef KD_CMD_SWEEP_RUN_H
#define KD_CMD_SWEEP_RUN_H

#include <mpi.h>

#include "cmd/sweep.h"

typedef struct cmd_sweep_ctx {
  const cmd_sweep_grid *grid;
  kd_train_cfg base;       /* the shared train options */
  char dir[KD_PATH_MAX];   /* the sweep's folder */
  int resuming;            /* skip finished settings, resume interrupted ones */
  int json;                /* the sweep's own lines go to stderr, stdout is the JSON summary's */
  MPI_Comm group;          /* this rank's group */
  int group_id, group_rank, group_size, world_rank;
} cmd_sweep_ctx;

/* SIGTERM and SIGUSR1 stop the sweep (install 1), or the handlers before it are put back (0). */
void cmd_sweep_signals(int install);
/* Collective over c->group: settings until none is left or a stop. *stopped: a stop was asked for (a signal, or
 * a setting stopped); *failed: a setting failed. Returns KD_OK, or KD_ERR_FATAL (an MPI call failed). */
int cmd_sweep_run_group(const cmd_sweep_ctx *c, int *stopped, int *failed, kd_err *e);
/* Collective over world, untimed: every group has finished. */
int cmd_sweep_wait_all(MPI_Comm world, int rank, kd_err *e);

#endif
