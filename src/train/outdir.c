/* The run's output folder: created by rank 0, and seen by every rank.
 * Rank 0 writes checkpoints there and every rank reads them on --resume,
 * so a folder local to rank 0's node (a node's /tmp or local SSD) only
 * fails at the first resume, on another node: say so at the start. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/dist.h"
#include "train/trainer.h"

static int mkdir_p(const char *dir, kd_err *e) {
  char path[KD_PATH_MAX];
  snprintf(path, sizeof path, "%s", dir);
  for (char *p = path + 1;; p++) {
    if (*p != '/' && *p != '\0') continue;
    const char ch = *p;
    *p = '\0';
    struct stat pb;
    if (stat(path, &pb) == 0 && !S_ISDIR(pb.st_mode))
      return kd_fail(e, KD_ERR_USAGE, "--out %s: %s exists and is not a directory", dir, path);
    if (mkdir(path, 0777) != 0 && errno != EEXIST)
      return kd_fail(e, KD_ERR_RUNTIME, "--out %s: cannot create directory %s (%s)", dir, path, strerror(errno));
    if (!ch) break;
    *p = ch;
  }
  return KD_OK;
}

int tr_prepare_out_dir(trainer *t, kd_err *e) {
  const kd_train_cfg *c = &t->cfg;
  if (!tr_root(t)) return KD_OK;
  if (mkdir_p(c->out, e)) return e->code;
  struct stat sb;
  if (stat(c->out, &sb) != 0 || !S_ISDIR(sb.st_mode)) return kd_fail(e, KD_ERR_USAGE, "--out %s: not a directory", c->out);
  char m[KD_PATH_MAX + 32];
  snprintf(m, sizeof m, "%s/metrics.csv", c->out);
  if (access(m, F_OK) == 0 && !c->force)
    return kd_fail(e, KD_ERR_USAGE,
                   "--out %s already holds a run (metrics.csv); continue it with --resume %s, or pass --force to "
                   "overwrite it",
                   c->out, c->out);
  if (access(c->out, W_OK) != 0)
    return kd_fail(e, KD_ERR_RUNTIME, "--out %s: directory is not writable (%s)", c->out, strerror(errno));
  return KD_OK;
}

/* What rank 0 wrote into the folder, for the others to find. */
typedef struct {
  uint64_t token;
  char host[64];
} visible_probe;

static void host_name(char *host, size_t n) {
  if (gethostname(host, n) != 0) snprintf(host, n, "?");
  host[n - 1] = '\0';
}

static int read_probe(const char *path, uint64_t want, kd_err *e) {
  FILE *f = fopen(path, "rb");
  uint64_t got = 0;
  const int ok = f && fread(&got, sizeof got, 1, f) == 1 && got == want;
  if (f) fclose(f);
  if (ok) return KD_OK;
  return kd_fail(e, KD_ERR_RUNTIME, "cannot read %s (%s)", path, f ? "other contents" : strerror(errno));
}

/* Collective. Rank 0 writes a file of a fresh token into --out; every other
 * rank must read that token back. */
int tr_check_out_shared(trainer *t, kd_err *e) {
  if (t->mpi.size == 1) return KD_OK;
  visible_probe p;
  memset(&p, 0, sizeof p);
  char path[KD_PATH_MAX + 64];
  int rc = KD_OK;
  if (tr_root(t)) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    p.token = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 16);
    host_name(p.host, sizeof p.host);
    snprintf(path, sizeof path, "%s/.kd-shared-%016llx", t->cfg.out, (unsigned long long)p.token);
    FILE *f = fopen(path, "wb");
    const int ok = f && fwrite(&p.token, sizeof p.token, 1, f) == 1;
    if ((f && fclose(f) != 0) || !ok)
      rc = kd_fail(e, KD_ERR_RUNTIME, "--out %s: cannot write %s (%s)", t->cfg.out, path, strerror(errno));
  }
  if ((rc = kd_agree(t->mpi.comm, rc, e))) return rc;
  if (kd_mpi_check(MPI_Bcast(&p, (int)sizeof p, MPI_BYTE, 0, t->mpi.comm), "MPI_Bcast", e)) return e->code;
  snprintf(path, sizeof path, "%s/.kd-shared-%016llx", t->cfg.out, (unsigned long long)p.token);
  if (!tr_root(t) && read_probe(path, p.token, e)) {
    char host[64];
    host_name(host, sizeof host);
    kd_err_clear(e);
    rc = kd_fail(e, KD_ERR_USAGE,
                 "--out %s is not shared: rank %d on host %s does not see the file rank 0 wrote there on host %s; "
                 "checkpoints and --resume need a folder every node sees (a shared filesystem, not a node's local "
                 "disk)",
                 t->cfg.out, t->mpi.rank, host, p.host);
  }
  rc = kd_agree(t->mpi.comm, rc, e);
  if (tr_root(t)) unlink(path);
  return rc;
}

int tr_check_resume_shared(trainer *t, kd_err *e) {
  int rc = KD_OK;
  if (!tr_root(t) && access(t->resume.path, R_OK) != 0) {
    char host[64];
    host_name(host, sizeof host);
    rc = kd_fail(e, KD_ERR_USAGE,
                 "--resume: rank %d on host %s cannot read %s (%s), which rank 0 found: the run's folder must be on a "
                 "filesystem every node shares",
                 t->mpi.rank, host, t->resume.path, strerror(errno));
  }
  return kd_agree(t->mpi.comm, rc, e);
}
