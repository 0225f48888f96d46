#define _POSIX_C_SOURCE 200809L /* fileno */
#include "core/files.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

double kd_seconds(void) {
  struct timespec ts;
  timespec_get(&ts, TIME_UTC);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int kd_read_all(const char *path, uint8_t **p, size_t *n, kd_err *e) {
  *p = NULL;
  *n = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return kd_fail(e, KD_ERR_RUNTIME, "cannot open %s: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
    fclose(f);
    return kd_fail(e, KD_ERR_RUNTIME, "%s is not a regular file (a directory)", path);
  }
  size_t cap = 1 << 16;
  uint8_t *buf = kd_malloc(cap + 1, path, e);
  while (buf) { /* read to the end: pipes and /proc files have no size to ask for */
    const size_t got = fread(buf + *n, 1, cap - *n, f);
    *n += got;
    if (got == 0) break;
    if (*n == cap) {
      uint8_t *g = realloc(buf, 2 * cap + 1);
      if (!g) {
        kd_fail(e, KD_ERR_RUNTIME, "out of memory reading %s (%zu bytes)", path, 2 * cap);
        break;
      }
      buf = g;
      cap *= 2;
    }
  }
  if (!e->code && ferror(f)) kd_fail(e, KD_ERR_RUNTIME, "cannot read %s: %s", path, strerror(errno));
  fclose(f);
  if (e->code) {
    free(buf);
    *n = 0;
    return e->code;
  }
  buf[*n] = 0;
  *p = buf;
  return KD_OK;
}

int kd_mkdirs(const char *dir, const char *what, kd_err *e) {
  char path[KD_PATH_MAX];
  if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
    return kd_fail(e, KD_ERR_USAGE, "%s %s: the path is too long", what, dir);
  for (char *p = path + 1;; p++) {
    if (*p != '/' && *p != '\0') continue;
    const char ch = *p;
    *p = '\0';
    struct stat pb;
    if (stat(path, &pb) == 0 && !S_ISDIR(pb.st_mode))
      return kd_fail(e, KD_ERR_USAGE, "%s %s: %s exists and is not a directory", what, dir, path);
    if (mkdir(path, 0777) != 0 && errno != EEXIST)
      return kd_fail(e, KD_ERR_RUNTIME, "%s %s: cannot create directory %s (%s)", what, dir, path, strerror(errno));
    if (!ch) return KD_OK;
    *p = ch;
  }
}
