/* kd sweep's groups: each group of ranks takes the next unclaimed setting of the grid (a claim file created with
 * O_EXCL in DIR/claims by the group's rank 0, its index broadcast in the group), trains it with kd_train_run on
 * the group's communicator, records DIR/NAME/result.json, and takes the next, until none is left or a stop was
 * asked for. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cmd/sweep_run.h"
#include "core/dist.h"
#include "train/stop.h"

static volatile sig_atomic_t g_sweep_stop = 0;
static struct sigaction g_old_term, g_old_usr1;

static void on_signal(int sig) { g_sweep_stop = sig; }

/* Between settings no trainer is running to take SIGTERM/SIGUSR1: the sweep's own flag does (a trainer installs
 * its handler over this one while it runs and puts it back after). */
void cmd_sweep_signals(int install) {
  if (!install) {
    sigaction(SIGTERM, &g_old_term, NULL);
    sigaction(SIGUSR1, &g_old_usr1, NULL);
    return;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, &g_old_term);
  sigaction(SIGUSR1, &sa, &g_old_usr1);
}

static void dir_file(char *buf, size_t n, const cmd_sweep_ctx *c, const char *name) {
  snprintf(buf, n, "%s/%s", c->dir, name);
}

/* Group rank 0: the next setting no group has claimed (resuming: skipping the finished ones); -1 when none is
 * left or the sweep is stopping (DIR/stop), -2 on an error (in e). */
static int64_t claim_next(const cmd_sweep_ctx *c, kd_err *e) {
  char path[KD_PATH_MAX + 64];
  dir_file(path, sizeof path, c, "stop");
  if (access(path, F_OK) == 0) return -1;
  for (int64_t i = 0; i < c->grid->n_settings; i++) {
    snprintf(path, sizeof path, "%s/claims/%lld", c->dir, (long long)i);
    const int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0 && errno == EEXIST) continue;
    if (fd < 0) return kd_fail(e, KD_ERR_RUNTIME, "kd sweep: cannot create the claim %s (%s)", path, strerror(errno)), -2;
    close(fd);
    if (!c->resuming) return i;
    cmd_sweep_result r;
    char name[SWEEP_NAME_MAX];
    cmd_sweep_setting_name(c->grid, i, name, sizeof name);
    cmd_sweep_result_read(&r, c->dir, name, i);
    if (r.status != SWEEP_DONE) return i;
  }
  return -1;
}

/* Group rank 0: tell the other groups to claim nothing more. */
static void mark_stop(const cmd_sweep_ctx *c) {
  char path[KD_PATH_MAX + 64];
  dir_file(path, sizeof path, c, "stop");
  const int fd = open(path, O_WRONLY | O_CREAT, 0644);
  if (fd >= 0) close(fd);
  else fprintf(stderr, "kd: warning: kd sweep: cannot create %s (%s)\n", path, strerror(errno));
}

/* The group agrees on what comes next: [setting index or -1 (none, or stop), resume it from its checkpoint]. */
static int next_setting(const cmd_sweep_ctx *c, int stop_here, int64_t next[2], int *failed, kd_err *e) {
  int stop = 0;
  if (kd_mpi_check(MPI_Allreduce(&stop_here, &stop, 1, MPI_INT, MPI_MAX, c->group), "MPI_Allreduce", e))
    return kd_fatal(e, c->world_rank, "MPI_Allreduce of the sweep's stop flag");
  next[0] = -1;
  next[1] = 0;
  if (c->group_rank == 0 && stop) mark_stop(c);
  if (c->group_rank == 0 && !stop) {
    kd_err ce;
    kd_err_clear(&ce);
    next[0] = claim_next(c, &ce);
    if (next[0] == -2) {
      fprintf(stderr, "kd: error: %s\n", ce.msg);
      *failed = 1;
    }
    char path[KD_PATH_MAX + SWEEP_NAME_MAX + 16], name[SWEEP_NAME_MAX];
    if (next[0] >= 0) {
      cmd_sweep_setting_name(c->grid, next[0], name, sizeof name);
      snprintf(path, sizeof path, "%s/%s/latest", c->dir, name);
      next[1] = c->resuming && access(path, F_OK) == 0;
    }
  }
  if (kd_mpi_check(MPI_Bcast(next, 2, MPI_INT64_T, 0, c->group), "MPI_Bcast", e))
    return kd_fatal(e, c->world_rank, "MPI_Bcast of the sweep's next setting");
  return KD_OK;
}

/* Group rank 0: the setting's folder and its train.log, which stdout becomes while it trains (the terminal
 * keeps the sweep's own lines). Returns the saved stdout, or -1 (then the trainer's lines stay on stdout). */
static int redirect_stdout(const kd_train_cfg *cfg) {
  char path[KD_PATH_MAX + 16];
  if (mkdir(cfg->out, 0777) != 0 && errno != EEXIST) return -1; /* the trainer names the problem */
  snprintf(path, sizeof path, "%s/train.log", cfg->out);
  fflush(stdout);
  const int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
  int saved = fd >= 0 ? dup(STDOUT_FILENO) : -1;
  if (saved >= 0 && dup2(fd, STDOUT_FILENO) < 0) {
    close(saved);
    saved = -1;
  }
  if (saved < 0)
    fprintf(stderr, "kd: warning: kd sweep: cannot write %s (%s); the run's lines stay here\n", path, strerror(errno));
  if (fd >= 0) close(fd);
  return saved;
}

static void restore_stdout(int saved) {
  if (saved < 0) return;
  fflush(stdout);
  dup2(saved, STDOUT_FILENO);
  close(saved);
}

/* Group rank 0: record setting i's outcome and say it in one line. */
static void record(const cmd_sweep_ctx *c, int64_t i, const char *name, int rc, const kd_train_result *res,
                   const kd_err *se, double seconds, int *failed) {
  cmd_sweep_result r;
  memset(&r, 0, sizeof r);
  r.index = i;
  snprintf(r.name, sizeof r.name, "%s", name);
  r.status = rc == KD_OK ? SWEEP_DONE : rc == KD_STOPPED ? SWEEP_STOPPED : SWEEP_FAILED;
  r.steps = rc == KD_OK ? res->steps : 0;
  r.completed = rc == KD_OK && res->completed;
  r.best_is_nll = res->best_is_nll;
  r.valid_accuracy = rc == KD_OK ? res->valid_accuracy : -1;
  r.valid_nll = rc == KD_OK ? res->valid_nll : -1;
  r.test_accuracy = rc == KD_OK ? res->test_accuracy : -1;
  r.test_agreement = rc == KD_OK ? res->test_agreement : -1;
  r.seconds = seconds;
  if (rc != KD_OK) snprintf(r.error, sizeof r.error, "%s", se->msg);
  char *hint = rc == KD_STOPPED ? strstr(r.error, "; continue with:") : NULL;
  if (hint) *hint = '\0'; /* kd train's hint; the sweep's own (kd sweep --resume DIR) ends the job */
  kd_err we;
  kd_err_clear(&we);
  if (cmd_sweep_result_write(&r, c->dir, &we)) {
    fprintf(stderr, "kd: error: %s\n", we.msg);
    *failed = 1;
  }
  /* one line in one write: on stderr (--json), pieces of two groups' lines would interleave */
  char line[1024];
  size_t at = 0;
  at += (size_t)snprintf(line, sizeof line, "sweep: group %d: %s %s in %.1f s", c->group_id, name,
                         cmd_sweep_status_name(r.status), seconds);
  if (rc == KD_OK) {
    at += (size_t)snprintf(line + at, sizeof line - at, ": %lld steps", (long long)r.steps);
    if (r.valid_accuracy >= 0 && at < sizeof line)
      at += (size_t)snprintf(line + at, sizeof line - at, ", valid_acc %.4f", r.valid_accuracy);
    if (r.valid_nll >= 0 && at < sizeof line)
      at += (size_t)snprintf(line + at, sizeof line - at, ", valid_nll %.4f", r.valid_nll);
    if (r.test_accuracy >= 0 && at < sizeof line)
      at += (size_t)snprintf(line + at, sizeof line - at, ", test_acc %.4f", r.test_accuracy);
  } else {
    at += (size_t)snprintf(line + at, sizeof line - at, ": %.300s", r.error);
  }
  FILE *out = c->json ? stderr : stdout;
  fprintf(out, "%s\n", line);
  fflush(out);
}

/* Setting next[0] on this group. KD_ERR_FATAL only (a peer may be blocked): every other outcome is the setting's. */
static int run_setting(const cmd_sweep_ctx *c, const int64_t next[2], int *stopped, int *failed, kd_err *e) {
  kd_train_cfg cfg;
  char name[SWEEP_NAME_MAX];
  cmd_sweep_setting_name(c->grid, next[0], name, sizeof name);
  if (cmd_sweep_setting_cfg(c->grid, next[0], &c->base, c->dir, &cfg, e)) return kd_fatal(e, c->world_rank, "setting");
  if (next[1]) snprintf(cfg.resume, sizeof cfg.resume, "%s", cfg.out);
  cfg.force = cfg.force || c->resuming; /* a retried setting's folder may hold an attempt without a checkpoint */
  const int lead = c->group_rank == 0;
  if (lead) {
    fprintf(c->json ? stderr : stdout, "sweep: group %d (%d rank%s): %s %s (setting %lld of %lld)\n", c->group_id,
            c->group_size, c->group_size > 1 ? "s" : "", next[1] ? "resumes" : "starts", name,
            (long long)next[0] + 1, (long long)c->grid->n_settings);
    fflush(c->json ? stderr : stdout);
  }
  const int saved = lead ? redirect_stdout(&cfg) : -1;
  kd_train_result res;
  memset(&res, 0, sizeof res);
  kd_err se;
  kd_err_clear(&se);
  const double t0 = MPI_Wtime();
  const int rc = kd_train_run(&cfg, c->group, &res, &se);
  const double seconds = MPI_Wtime() - t0;
  if (lead) restore_stdout(saved);
  if (rc == KD_ERR_FATAL) {
    *e = se;
    return rc;
  }
  if (lead) record(c, next[0], name, rc, &res, &se, seconds, failed);
  *stopped |= rc == KD_STOPPED || tr_stop_signal() != 0; /* a signal after the run's last step is a stop too */
  *failed |= rc != KD_OK && rc != KD_STOPPED;
  return KD_OK;
}

int cmd_sweep_run_group(const cmd_sweep_ctx *c, int *stopped, int *failed, kd_err *e) {
  *stopped = *failed = 0;
  for (;;) {
    int64_t next[2];
    if (next_setting(c, *stopped || g_sweep_stop != 0, next, failed, e)) return e->code;
    if (next[0] < 0) break;
    if (run_setting(c, next, stopped, failed, e)) return e->code;
  }
  *stopped |= g_sweep_stop != 0;
  return KD_OK;
}

/* Groups end at different times: a timed blocking barrier would let the collective watchdog end the ranks of a
 * group that finished first. MPI_Test is not timed (cmd/watchdog.c wraps blocking calls only). */
int cmd_sweep_wait_all(MPI_Comm world, int rank, kd_err *e) {
  MPI_Request req;
  if (kd_mpi_check(MPI_Ibarrier(world, &req), "MPI_Ibarrier", e)) return kd_fatal(e, rank, "MPI_Ibarrier");
  for (int done = 0; !done;) {
    if (kd_mpi_check(MPI_Test(&req, &done, MPI_STATUS_IGNORE), "MPI_Test", e)) return kd_fatal(e, rank, "MPI_Test");
    if (!done) nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
  }
  return KD_OK;
}
