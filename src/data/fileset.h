/* Sets of shard files: --data and --teacher name one HDF5 file, or many
 * with a quoted glob (expanded by kd) or a comma-separated list. The files
 * hold the same datasets; a split's rows are the files' rows concatenated
 * in the byte-wise order of their full paths. */
#ifndef KD_DATA_FILESET_H
#define KD_DATA_FILESET_H

#include <stdint.h>

#include "kd/data.h"

typedef struct kd_fileset {
  int n;                      /* files */
  char **paths;               /* [n] as expanded, sorted by strcmp */
  int64_t *row0;              /* [n + 1] first row of each file in the split's rows (after kd_fileset_rows) */
} kd_fileset;

/* Whether spec names several files (a comma, or a glob's * ? [). */
int kd_fileset_is_set(const char *spec);
/* Expand spec into its files: every one must exist; a glob matching none is an error. */
int kd_fileset_expand(kd_fileset *fs, const char *spec, kd_err *e);
/* A set of the one file path (not checked here: the readers name a missing file). */
int kd_fileset_single(kd_fileset *fs, const char *path, kd_err *e);
void kd_fileset_free(kd_fileset *fs);
/* The rows of split in each file (row0), each file's shape against the first's: same kind and width, the
 * same stored type of /SPLIT/x or /SPLIT/tokens. *info describes the whole set (rows summed; present = 0
 * when no file has the split, an error when only some have it). */
int kd_fileset_probe(kd_fileset *fs, const char *split, kd_split_info *info, kd_err *e);
/* The first file with rows of the split (after kd_fileset_probe). */
int kd_fileset_first_rows(const kd_fileset *fs);
/* A hash of the files' names and rows: the same on every rank that sees the same set. */
uint64_t kd_fileset_hash(const kd_fileset *fs);
/* The file holding row r of the split, and r's row in it. */
int kd_fileset_locate(const kd_fileset *fs, int64_t r, int64_t *local);
/* The files' names joined by commas into buf (truncated at n bytes, with "..." then). */
void kd_fileset_join(const kd_fileset *fs, char *buf, size_t n);

#endif
