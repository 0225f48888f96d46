/* Provenance attributes on the root of the files kd writes for other runs
 * to read (data files, teacher files, predictions): what the file is, which
 * kd wrote it, and from what. One writer, so every file says it the same way
 * (docs/format.md). */
#ifndef KD_CORE_PROVENANCE_H
#define KD_CORE_PROVENANCE_H

#include <hdf5.h>
#include <stdint.h>

#include "kd/error.h"

typedef struct kd_provenance {
  const char *kind;               /* kd_format: "data", "teacher", "data+teacher" */
  const char *generator;          /* how the rows were made (data files), or NULL */
  const char *source_checkpoint;  /* the model that computed them, or NULL */
  const char *source_student;     /* its student spec, or NULL */
  const char *source_data;        /* the data file they were computed from, or NULL */
  int has_fingerprint;            /* data_fingerprint below is meaningful */
  uint64_t data_fingerprint;      /* /train fingerprint of that data (hex attribute) */
  int64_t rows[3];                /* rows_train, rows_valid, rows_test; -1: not written */
  int64_t features_layer;         /* -1: not written */
  int64_t seed;                   /* -1: not written */
} kd_provenance;

/* A provenance record with nothing but its kind set (counts -1). */
kd_provenance kd_provenance_of(const char *kind);
int kd_provenance_write(hid_t f, const char *path, const kd_provenance *p, kd_err *e);

#endif
