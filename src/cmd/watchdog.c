/* The collective watchdog (--collective-timeout S).
 *
 * MPI has no timeouts: a rank whose peer's node died, or whose link to it went
 * down, can wait in a collective forever, and MPI_Abort cannot cross a dead
 * link either. So the driver times every blocking MPI call it makes (through
 * the MPI profiling interface: these definitions take the place of the
 * library's and call its PMPI_ entry points), and a thread that makes no MPI
 * call ends this process when one has not returned within S seconds. Each
 * rank ends itself; the launcher sees the exit and ends the rest where it
 * still can. The thread only reads atomics: the cost per call is an atomic
 * increment and two stores. */
#define _GNU_SOURCE
#include "cmd/cmd.h"
#include "core/dist.h"

#include <mpi.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic(const char *) g_call; /* the blocking MPI call in progress, NULL between calls */
static atomic_uint g_seq;            /* bumped by every call: a new call restarts the count */
static double g_limit_s;             /* 0: no watchdog */
static int g_watch_rank;
static char g_host[64];

static void enter(const char *name) {
  atomic_fetch_add_explicit(&g_seq, 1, memory_order_relaxed);
  atomic_store_explicit(&g_call, name, memory_order_release);
}

static void leave(void) { atomic_store_explicit(&g_call, NULL, memory_order_release); }

/* Time is counted in the thread's own polls, not read from a clock: a
 * process stopped (SIGSTOP, a suspended Slurm job, a debugger) polls
 * nothing meanwhile, so it does not end itself as soon as it continues. */
static void *watch(void *arg) {
  (void)arg;
  double poll = g_limit_s / 20;
  poll = poll < 0.05 ? 0.05 : poll > 1 ? 1 : poll;
  const struct timespec nap = {(time_t)poll, (long)((poll - (time_t)poll) * 1e9)};
  /* A wait for rank 0's own work (kd_agree_after_root: a checkpoint written, an evaluation) is not the peers'
   * fault: it is allowed 10 S, at least 10 minutes, so that a rank 0 stuck in I/O or lost then still ends it. */
  const double solo_limit = g_limit_s * 10 > 600 ? g_limit_s * 10 : 600;
  unsigned seen = 0;
  long polls = 0; /* consecutive polls that found the same call in progress */
  for (;;) {
    nanosleep(&nap, NULL);
    const char *call = atomic_load_explicit(&g_call, memory_order_acquire);
    const unsigned seq = atomic_load_explicit(&g_seq, memory_order_relaxed);
    const int solo = kd_waiting_on_root();
    polls = call && seq == seen ? polls + 1 : 0;
    seen = seq;
    if (polls * poll < (solo ? solo_limit : g_limit_s)) continue;
    /* one write of a formatted line, not stdio: the main thread may hold stderr's lock */
    char line[512];
    const int n = snprintf(line, sizeof line,
                           "kd: rank %d (host %s): %s has not returned after %.0f s (--collective-timeout %g%s): a "
                           "peer rank, its node or the link to it is lost (or a rank works alone for longer: then "
                           "raise the timeout); ending this process\n",
                           g_watch_rank, g_host, call, polls * poll, g_limit_s,
                           solo ? "; waiting for rank 0's own work, allowed 10 times as long, at least 600 s" : "");
    if (n > 0 && write(2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1) < 0) {
      /* nothing left to tell: end anyway */
    }
    _exit(1); /* no atexit handlers: MPI's would block on the lost peer */
  }
  return NULL;
}

int cmd_watchdog_start(double limit_s, int rank, kd_err *e) {
  g_limit_s = limit_s;
  g_watch_rank = rank;
  if (gethostname(g_host, sizeof g_host) != 0) snprintf(g_host, sizeof g_host, "?");
  g_host[sizeof g_host - 1] = '\0';
  if (limit_s <= 0) return KD_OK;
  /* the thread takes no signal: SIGTERM/SIGUSR1 (preemption) stay the main thread's */
  sigset_t all, old;
  sigfillset(&all);
  pthread_attr_t attr;
  pthread_t th;
  int rc = pthread_sigmask(SIG_BLOCK, &all, &old);
  if (!rc) rc = pthread_attr_init(&attr);
  if (!rc) {
    rc = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (!rc) rc = pthread_create(&th, &attr, watch, NULL);
    pthread_attr_destroy(&attr);
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (!rc) return KD_OK;
  kd_fail(e, KD_ERR_FATAL, "cannot start the collective watchdog thread (%s; --collective-timeout 0 runs without)",
          strerror(rc));
  e->rank = rank;
  return KD_ERR_FATAL;
}

/* The blocking calls kd makes (also those of a library inside the process). */
#define KD_TIMED(name, call)  \
  do {                        \
    enter(name);              \
    const int rc_ = (call);   \
    leave();                  \
    return rc_;               \
  } while (0)

int MPI_Allreduce(const void *s, void *r, int n, MPI_Datatype t, MPI_Op op, MPI_Comm c) {
  KD_TIMED("MPI_Allreduce", PMPI_Allreduce(s, r, n, t, op, c));
}
int MPI_Bcast(void *b, int n, MPI_Datatype t, int root, MPI_Comm c) {
  KD_TIMED("MPI_Bcast", PMPI_Bcast(b, n, t, root, c));
}
int MPI_Barrier(MPI_Comm c) { KD_TIMED("MPI_Barrier", PMPI_Barrier(c)); }
int MPI_Allgather(const void *s, int sn, MPI_Datatype st, void *r, int rn, MPI_Datatype rt, MPI_Comm c) {
  KD_TIMED("MPI_Allgather", PMPI_Allgather(s, sn, st, r, rn, rt, c));
}
int MPI_Allgatherv(const void *s, int sn, MPI_Datatype st, void *r, const int *rn, const int *d, MPI_Datatype rt,
                   MPI_Comm c) {
  KD_TIMED("MPI_Allgatherv", PMPI_Allgatherv(s, sn, st, r, rn, d, rt, c));
}
int MPI_Gather(const void *s, int sn, MPI_Datatype st, void *r, int rn, MPI_Datatype rt, int root, MPI_Comm c) {
  KD_TIMED("MPI_Gather", PMPI_Gather(s, sn, st, r, rn, rt, root, c));
}
int MPI_Gatherv(const void *s, int sn, MPI_Datatype st, void *r, const int *rn, const int *d, MPI_Datatype rt,
                int root, MPI_Comm c) {
  KD_TIMED("MPI_Gatherv", PMPI_Gatherv(s, sn, st, r, rn, d, rt, root, c));
}
int MPI_Reduce(const void *s, void *r, int n, MPI_Datatype t, MPI_Op op, int root, MPI_Comm c) {
  KD_TIMED("MPI_Reduce", PMPI_Reduce(s, r, n, t, op, root, c));
}
int MPI_Reduce_scatter(const void *s, void *r, const int *n, MPI_Datatype t, MPI_Op op, MPI_Comm c) {
  KD_TIMED("MPI_Reduce_scatter", PMPI_Reduce_scatter(s, r, n, t, op, c));
}
int MPI_Wait(MPI_Request *q, MPI_Status *st) { KD_TIMED("MPI_Wait", PMPI_Wait(q, st)); }
int MPI_Waitall(int n, MPI_Request q[], MPI_Status st[]) { KD_TIMED("MPI_Waitall", PMPI_Waitall(n, q, st)); }
int MPI_Send(const void *b, int n, MPI_Datatype t, int to, int tag, MPI_Comm c) {
  KD_TIMED("MPI_Send", PMPI_Send(b, n, t, to, tag, c));
}
int MPI_Recv(void *b, int n, MPI_Datatype t, int from, int tag, MPI_Comm c, MPI_Status *st) {
  KD_TIMED("MPI_Recv", PMPI_Recv(b, n, t, from, tag, c, st));
}
int MPI_Comm_split_type(MPI_Comm c, int type, int key, MPI_Info info, MPI_Comm *out) {
  KD_TIMED("MPI_Comm_split_type", PMPI_Comm_split_type(c, type, key, info, out));
}
int MPI_Comm_split(MPI_Comm c, int color, int key, MPI_Comm *out) {
  KD_TIMED("MPI_Comm_split", PMPI_Comm_split(c, color, key, out));
}
int MPI_Comm_dup(MPI_Comm c, MPI_Comm *out) { KD_TIMED("MPI_Comm_dup", PMPI_Comm_dup(c, out)); }
int MPI_Finalize(void) { KD_TIMED("MPI_Finalize", PMPI_Finalize()); }
/* Aborting needs the launcher, which a dead link may have cut off too. */
int MPI_Abort(MPI_Comm c, int code) { KD_TIMED("MPI_Abort", PMPI_Abort(c, code)); }
