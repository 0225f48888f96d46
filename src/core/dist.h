/* MPI helpers: collective error agreement, thread defaults. */
#ifndef KD_DIST_H
#define KD_DIST_H

#include <mpi.h>
#include "kd/error.h"

/* Collective: every rank passes its local result (rc, e). Returns the same
 * code on all ranks: KD_OK if all succeeded, otherwise the error of the
 * lowest failing rank, whose message is copied into e on every rank
 * (e->rank names it). Use at every validation point so no rank is left
 * waiting in a later collective while another has given up. */
int kd_agree(MPI_Comm comm, int rc, kd_err *e);

/* kd_agree after work rank 0 did alone (a checkpoint written, an evaluation,
 * the final weights): the other ranks wait for it here, and their wait is
 * marked, so a collective watchdog (the kd driver's --collective-timeout)
 * gives it a longer limit: its length depends on the filesystem and the
 * evaluation set, not on the peers. Rank 0's own wait has the plain one. */
int kd_agree_after_root(MPI_Comm comm, int rc, kd_err *e);

/* Whether this process is now in such a wait (read by a watchdog
 * thread; the flag is atomic). */
int kd_waiting_on_root(void);

/* Turn the error in e (or, if none, `what`) into KD_ERR_FATAL, tagged with
 * rank: for an MPI call that failed where the other ranks cannot be told
 * (they may be blocked in a collective). Returns KD_ERR_FATAL. */
int kd_fatal(kd_err *e, int rank, const char *what);

/* A failed MPI call (mpi_rc) that leaves peers waiting: e becomes that
 * KD_ERR_FATAL error, replacing any earlier one. KD_OK on success. */
int kd_mpi_fatal(int mpi_rc, const char *what, int rank, kd_err *e);

/* Check an MPI return code. */
int kd_mpi_check(int mpi_rc, const char *what, kd_err *e);

/* Cores this process may run on (sched_getaffinity) divided among the ranks
 * of comm that share its node (MPI_Comm_split_type), at least 1. */
int kd_default_threads(MPI_Comm comm);

/* Ranks of comm on this rank's node and the cores they may run on (the
 * union of their affinity masks). */
int kd_node_load(MPI_Comm comm, int *ranks, int *cores, kd_err *e);

/* *nodes = how many nodes (groups of ranks that share memory, as MPI sees
 * them: MPI_COMM_TYPE_SHARED) comm spans; the same answer on all ranks. */
int kd_node_count(MPI_Comm comm, int *nodes, kd_err *e);

#endif
