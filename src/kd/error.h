/* Error reporting for libkd: every fallible call takes a kd_err* and returns a
 * kd_code; the message names the file, dataset, option or value involved.
 * Only the kd driver turns a code into a process exit status (or, for
 * KD_ERR_FATAL, into MPI_Abort): the library never exits. */
#ifndef KD_ERROR_H
#define KD_ERROR_H

#include <stddef.h>

#define KD_PATH_MAX 4096 /* bytes of a path kd keeps */

#ifdef KD_LIBKD_H /* the public header's macros of the same codes give way to the enumerators */
#undef KD_OK
#undef KD_ERR_RUNTIME
#undef KD_ERR_USAGE
#endif

typedef enum kd_code {
  KD_OK = 0,
  KD_ERR_RUNTIME = 1, /* bad data, I/O failure, non-finite values: exit 1 */
  KD_ERR_USAGE = 2,   /* bad arguments or rank count alone: exit 2 */
  KD_ERR_FATAL = 3,   /* an MPI call failed where the ranks cannot agree (peers may be
                       * blocked in a collective): the driver prints the rank-tagged
                       * message and aborts the whole job (MPI_Abort, exit 1) */
  KD_STOPPED = 75     /* stopped by SIGTERM/SIGUSR1 after writing a checkpoint:
                       * exit 75 (EX_TEMPFAIL), resume to continue */
} kd_code;

typedef struct kd_err {
  int code;       /* a kd_code */
  int rank;       /* rank that detected it; -1 when unknown or not rank-specific */
  char msg[1024];
} kd_err;

/* Record an error (printf-style) and return its code; the first error wins. */
int kd_fail(kd_err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void kd_err_clear(kd_err *e);

/* Checked allocation: NULL (and an error naming what) on failure. */
void *kd_malloc(size_t bytes, const char *what, kd_err *e);
void *kd_calloc(size_t n, size_t size, const char *what, kd_err *e);

#endif
