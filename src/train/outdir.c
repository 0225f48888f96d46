/* The run's output folder: created by rank 0, and seen by every rank.
 * Rank 0 writes checkpoints there and every rank reads them on --resume,
 * so a folder local to rank 0's node (a node's /tmp or local SSD) only
 * fails at the first resume, on another node: say so at the start. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/dist.h"
#include "core/files.h"
#include "train/trainer.h"

int tr_prepare_out_dir(trainer *t, kd_err *e) {
  const kd_train_cfg *c = &t->cfg;
  if (!tr_root(t)) return KD_OK;
  if (kd_mkdirs(c->out, "--out", e)) return e->code;
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
  char name[128]; /* the file's name in --out */
} visible_probe;

static void host_name(char *host, size_t n) {
  if (gethostname(host, n) != 0) snprintf(host, n, "?");
  host[n - 1] = '\0';
}

/* Rank 0: a new file of a fresh token (O_EXCL: never another run's). */
static int write_probe(const trainer *t, visible_probe *p, char *path, size_t n, kd_err *e) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  p->token = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
  host_name(p->host, sizeof p->host);
  snprintf(p->name, sizeof p->name, ".kd-shared-%.40s-%ld-%016llx", p->host, (long)getpid(),
           (unsigned long long)p->token);
  snprintf(path, n, "%s/%s", t->cfg.out, p->name);
  const int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (fd < 0) return kd_fail(e, KD_ERR_RUNTIME, "--out %s: cannot create %s (%s)", t->cfg.out, path, strerror(errno));
  const int ok = write(fd, &p->token, sizeof p->token) == (ssize_t)sizeof p->token;
  const int err = errno;
  if (close(fd) != 0 || !ok) {
    unlink(path);
    return kd_fail(e, KD_ERR_RUNTIME, "--out %s: cannot write %s (%s)", t->cfg.out, path, strerror(ok ? errno : err));
  }
  return KD_OK;
}

/* Another rank: the token, retried for up to 5 s (a network filesystem may
 * answer from a cached listing of the folder for a moment). 0, or errno. */
static int read_probe(const char *path, uint64_t want) {
  int err = 0;
  for (int i = 0; i < 50; i++) {
    FILE *f = fopen(path, "rb");
    uint64_t got = 0;
    if (f) {
      const int ok = fread(&got, sizeof got, 1, f) == 1;
      err = ok ? (got == want ? 0 : EILSEQ) : (ferror(f) ? EIO : ENODATA);
      fclose(f);
    } else {
      err = errno;
    }
    if (!err) return 0;
    const struct timespec nap = {0, 100000000};
    nanosleep(&nap, NULL);
  }
  return err;
}

/* Collective. Rank 0 writes a file of a fresh token into --out; every other
 * rank must read that token back. */
int tr_check_out_shared(trainer *t, kd_err *e) {
  if (t->mpi.size == 1) return KD_OK;
  visible_probe p;
  memset(&p, 0, sizeof p);
  char path[KD_PATH_MAX + 160];
  int rc = tr_root(t) ? write_probe(t, &p, path, sizeof path, e) : KD_OK;
  if ((rc = kd_agree(t->mpi.comm, rc, e))) return rc;
  rc = kd_mpi_fatal(MPI_Bcast(&p, (int)sizeof p, MPI_BYTE, 0, t->mpi.comm), "MPI_Bcast", t->mpi.rank, e);
  if (rc) {
    if (tr_root(t)) unlink(path);
    return rc;
  }
  snprintf(path, sizeof path, "%s/%s", t->cfg.out, p.name);
  const int err = tr_root(t) ? 0 : read_probe(path, p.token);
  if (err) {
    char host[64];
    host_name(host, sizeof host);
    rc = kd_fail(e, KD_ERR_USAGE,
                 "--out %s is not shared: rank %d on host %s does not see the file rank 0 wrote there on host %s "
                 "(%s); checkpoints and --resume need a folder every node sees (a shared filesystem, not a node's "
                 "local disk)",
                 t->cfg.out, t->mpi.rank, host, p.host, err == EILSEQ ? "other contents" : strerror(err));
  }
  rc = kd_agree(t->mpi.comm, rc, e);
  /* after the agreement: a leftover probe is harmless, and an error now would be rank 0's alone */
  if (tr_root(t) && unlink(path) != 0)
    printf("kd: warning: --out %s: cannot remove %s (%s)\n", t->cfg.out, path, strerror(errno));
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
