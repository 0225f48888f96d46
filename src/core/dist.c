#define _GNU_SOURCE
#include "core/dist.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

int kd_mpi_check(int mpi_rc, const char *what, kd_err *e) {
  if (mpi_rc == MPI_SUCCESS) return KD_OK;
  char s[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(mpi_rc, s, &len);
  return kd_fail(e, KD_ERR_RUNTIME, "MPI call %s failed: %s", what, s);
}

static atomic_int g_on_root; /* > 0 inside kd_agree_after_root */

int kd_waiting_on_root(void) { return atomic_load_explicit(&g_on_root, memory_order_acquire) > 0; }

int kd_agree_after_root(MPI_Comm comm, int rc, kd_err *e) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  if (rank == 0) return kd_agree(comm, rc, e); /* rank 0 comes last: its wait is on the peers, timed */
  atomic_fetch_add_explicit(&g_on_root, 1, memory_order_release);
  rc = kd_agree(comm, rc, e);
  atomic_fetch_sub_explicit(&g_on_root, 1, memory_order_release);
  return rc;
}

/* A fatal error (KD_ERR_FATAL: a peer may be blocked in a collective) is
 * returned at once without communicating: the driver aborts the job. */
int kd_agree(MPI_Comm comm, int rc, kd_err *e) {
  if (rc == KD_ERR_FATAL) return rc;
  int rank, size;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  /* Lowest failing rank speaks for everyone. */
  int mine = rc != KD_OK ? rank : size, bad = rc != KD_OK, first = size, failing = 0;
  if (MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm) != MPI_SUCCESS ||
      MPI_Allreduce(&bad, &failing, 1, MPI_INT, MPI_SUM, comm) != MPI_SUCCESS)
    return kd_fatal(e, rank, "MPI_Allreduce failed while agreeing on errors");
  if (failing == 0) return KD_OK;
  struct { int code, rank; char msg[sizeof e->msg]; } pkt;
  if (rank == first) {
    pkt.code = e->code ? e->code : rc;
    pkt.rank = e->rank >= 0 ? e->rank : rank;
    memcpy(pkt.msg, e->msg, sizeof pkt.msg);
  }
  if (MPI_Bcast(&pkt, (int)sizeof pkt, MPI_BYTE, first, comm) != MPI_SUCCESS)
    return kd_fatal(e, rank, "MPI_Bcast failed while agreeing on errors");
  e->code = pkt.code;
  /* Name the rank only when the problem is not everyone's. */
  e->rank = failing < size ? pkt.rank : -1;
  memcpy(e->msg, pkt.msg, sizeof e->msg);
  return e->code;
}

int kd_mpi_fatal(int mpi_rc, const char *what, int rank, kd_err *e) {
  if (mpi_rc == MPI_SUCCESS) return KD_OK;
  kd_err_clear(e); /* this failure, not an earlier local one, is what ends the job */
  kd_mpi_check(mpi_rc, what, e);
  return kd_fatal(e, rank, what);
}

int kd_fatal(kd_err *e, int rank, const char *what) {
  if (e->code == KD_OK) kd_fail(e, KD_ERR_FATAL, "%s", what);
  e->code = KD_ERR_FATAL; /* keep the message of the call that failed */
  e->rank = rank;
  return KD_ERR_FATAL;
}

int kd_default_threads(MPI_Comm comm) {
  cpu_set_t mine;
  CPU_ZERO(&mine);
  if (sched_getaffinity(0, sizeof mine, &mine) != 0) return 1;
  int cores = CPU_COUNT(&mine);
  MPI_Comm node;
  if (MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) != MPI_SUCCESS) return 1;
  int local = 1;
  MPI_Comm_size(node, &local);
  /* Share my cores with every rank on this node whose affinity overlaps
   * mine: unbound ranks split the node, ranks bound to disjoint cores
   * (--map-by slot:PE=N) each use all of their own. */
  cpu_set_t all[256];
  int sharing = local;
  if (local <= 256 &&
      MPI_Allgather(&mine, (int)sizeof mine, MPI_BYTE, all, (int)sizeof mine, MPI_BYTE, node) == MPI_SUCCESS) {
    sharing = 0;
    for (int i = 0; i < local; i++) {
      cpu_set_t both;
      CPU_AND(&both, &mine, &all[i]);
      if (CPU_COUNT(&both) > 0) sharing++;
    }
  }
  MPI_Comm_free(&node);
  int t = sharing > 0 ? cores / sharing : 1;
  return t < 1 ? 1 : t;
}

int kd_node_load(MPI_Comm comm, int *ranks, int *cores, kd_err *e) {
  cpu_set_t mine, all;
  CPU_ZERO(&mine);
  if (sched_getaffinity(0, sizeof mine, &mine) != 0) CPU_SET(0, &mine);
  MPI_Comm node;
  if (kd_mpi_check(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node), "MPI_Comm_split_type", e))
    return e->code;
  int rc = kd_mpi_check(MPI_Comm_size(node, ranks), "MPI_Comm_size", e);
  /* The cores any rank of the node may run on: the union of their masks. */
  if (!rc)
    rc = kd_mpi_check(MPI_Allreduce(&mine, &all, (int)sizeof mine, MPI_BYTE, MPI_BOR, node), "MPI_Allreduce", e);
  if (kd_mpi_check(MPI_Comm_free(&node), "MPI_Comm_free", e)) rc = e->code;
  *cores = rc ? 1 : CPU_COUNT(&all);
  return rc;
}

int kd_node_count(MPI_Comm comm, int *nodes, kd_err *e) {
  int local_rank = 0;
  MPI_Comm node;
  int rc = kd_mpi_check(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node), "MPI_Comm_split_type", e);
  if (!rc) {
    rc = kd_mpi_check(MPI_Comm_rank(node, &local_rank), "MPI_Comm_rank", e);
    if (kd_mpi_check(MPI_Comm_free(&node), "MPI_Comm_free", e)) rc = e->code;
  }
  /* every rank takes part in the count, also one whose node query failed
   * (it counts as a node of its own): none is left alone in the allreduce */
  int leader = rc || local_rank == 0;
  *nodes = 1;
  if (kd_mpi_check(MPI_Allreduce(&leader, nodes, 1, MPI_INT, MPI_SUM, comm), "MPI_Allreduce", e)) rc = e->code;
  return rc;
}
