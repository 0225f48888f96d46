/* Atomic file replacement, the one way kd writes a file a reader may be
 * looking at: write it under DIR/.NAME.tmp, then kd_atomic_commit fsyncs it,
 * renames it over DIR/NAME and fsyncs DIR. A reader, or a crash at any
 * instant, sees the old file or the new one, never part of one. */
#ifndef KD_CORE_ATOMIC_H
#define KD_CORE_ATOMIC_H

#include "kd/error.h"

typedef struct kd_atomic {
  char path[KD_PATH_MAX];       /* the file to replace */
  char tmp[KD_PATH_MAX + 16];   /* DIR/.NAME.tmp: write here */
  char dir[KD_PATH_MAX];        /* DIR */
} kd_atomic;

/* Name the temporary file of path (nothing is created). */
int kd_atomic_begin(kd_atomic *a, const char *path, kd_err *e);
/* The temporary file is complete and closed: fsync, rename, fsync DIR. On
 * failure the temporary file is removed. */
int kd_atomic_commit(const kd_atomic *a, kd_err *e);
/* Give up: remove the temporary file (if any). */
void kd_atomic_abort(const kd_atomic *a);

/* fsync a file or directory by path (EINVAL from a file system that cannot
 * sync directories is not an error). */
int kd_fsync_path(const char *path, kd_err *e);

#endif
