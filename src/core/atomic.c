#include "core/atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int kd_fsync_path(const char *path, kd_err *e) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return kd_fail(e, KD_ERR_RUNTIME, "%s: cannot open for fsync (%s)", path, strerror(errno));
  int rc = fsync(fd);
  int err = errno;
  close(fd);
  if (rc != 0 && err != EINVAL) return kd_fail(e, KD_ERR_RUNTIME, "%s: fsync failed (%s)", path, strerror(err));
  return KD_OK;
}

int kd_atomic_begin(kd_atomic *a, const char *path, kd_err *e) {
  const size_t n = strlen(path);
  if (n == 0 || n >= sizeof a->path) return kd_fail(e, KD_ERR_USAGE, "%s: path empty or too long", path);
  memcpy(a->path, path, n + 1);
  const char *slash = strrchr(path, '/');
  if (slash) {
    snprintf(a->dir, sizeof a->dir, "%.*s", (int)(slash - path == 0 ? 1 : slash - path), path);
    snprintf(a->tmp, sizeof a->tmp, "%s/.%s.tmp", slash - path == 0 ? "" : a->dir, slash + 1);
  } else {
    snprintf(a->dir, sizeof a->dir, ".");
    snprintf(a->tmp, sizeof a->tmp, ".%s.tmp", path);
  }
  return KD_OK;
}

int kd_atomic_commit(const kd_atomic *a, kd_err *e) {
  int rc = kd_fsync_path(a->tmp, e);
  if (!rc && rename(a->tmp, a->path) != 0)
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: rename to %s failed (%s)", a->tmp, a->path, strerror(errno));
  if (rc) {
    unlink(a->tmp);
    return rc;
  }
  return kd_fsync_path(a->dir, e);
}

void kd_atomic_abort(const kd_atomic *a) { unlink(a->tmp); }
