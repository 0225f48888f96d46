/* The stop flag of a run: SIGTERM and SIGUSR1 set it, the next step's allreduce carries it to every rank
 * (tr_step), and the run stops after a checkpoint (exit 75). A file of its own, below everything that reads it. */
#ifndef KD_TRAIN_STOP_H
#define KD_TRAIN_STOP_H

/* Clear the flag and install the handler for SIGTERM and SIGUSR1, keeping the old handlers. */
void tr_stop_install(void);
/* Put the old handlers back. */
void tr_stop_restore(void);
/* The signal that asked to stop, or 0. */
int tr_stop_signal(void);

#endif
