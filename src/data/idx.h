/* IDX files (MNIST, Fashion-MNIST): images [N, rows, cols] and labels [N] of
 * unsigned bytes, big-endian header, gzip-compressed or plain. */
#ifndef KD_IDX_H
#define KD_IDX_H

#include <stdint.h>

#include "kd/error.h"

typedef struct kd_idx {
  int ndims;
  int64_t dims[4];
  int64_t count;     /* product of dims */
  uint8_t *data;     /* [count] */
} kd_idx;

/* Read an IDX file of unsigned bytes with 1 to 4 dimensions. */
int kd_idx_read(kd_idx *out, const char *path, kd_err *e);
void kd_idx_free(kd_idx *x);

typedef struct kd_import_cfg {
  char images[KD_PATH_MAX], labels[KD_PATH_MAX], test_images[KD_PATH_MAX], test_labels[KD_PATH_MAX], out[KD_PATH_MAX];
} kd_import_cfg;

/* kd import idx: write a kd data file (/train/x in [0, 1] float32,
 * /train/y int32, and /test/... when given). Serial. */
int kd_import_idx(const kd_import_cfg *cfg, int64_t rows[2], int *dim, kd_err *e);

#endif
