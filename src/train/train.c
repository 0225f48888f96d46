/* kd_train_run, the trainer's entry point: above the chain of generations (generations.c), which runs one
 * training run at a time (run.c), so the files call each other in one direction only. */
#include "train/stop.h"
#include "train/trainer.h"

/* SIGTERM and SIGUSR1 set a flag that the next step's allreduce carries to every rank (tr_step); installed
 * once for the whole run, generations included, so a signal between two generations is not lost. */
int kd_train_run(const kd_train_cfg *cli, MPI_Comm comm, kd_train_result *res, kd_err *e) {
  tr_stop_install();
  const int rc = tr_run_chain(cli, comm, res, e);
  /* After a stop the flag handler stays: a launcher that sees the first rank exit 75 sends SIGTERM to the
   * others (mpirun does), and a rank still on its way out must exit 75 too, not die of the signal. */
  if (rc != KD_STOPPED) tr_stop_restore();
  return rc;
}
