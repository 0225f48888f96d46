/* Small checked helpers for whole files and wall time, shared by the readers of text, JSON and tokenizer files. */
#ifndef KD_CORE_FILES_H
#define KD_CORE_FILES_H

#include <stddef.h>
#include <stdint.h>

#include "kd/error.h"

/* The whole file at path into *p (malloc'd, one byte more than *n, holding 0) and its length *n; a directory is
 * an error ("not a regular file"), as are open and read failures, each naming the path. */
int kd_read_all(const char *path, uint8_t **p, size_t *n, kd_err *e);
/* The folder dir and every missing parent (mkdir -p), as option `what` names it in messages ("--out"): a
 * path part that exists and is not a folder is a usage error, a failed mkdir a runtime one. */
int kd_mkdirs(const char *dir, const char *what, kd_err *e);
/* Wall-clock seconds (for rates reported to the user). */
double kd_seconds(void);

#endif
