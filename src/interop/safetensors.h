/* safetensors, Hugging Face's weights file: an 8-byte little-endian header length N, N bytes of JSON
 *   {"__metadata__": {"format": "pt"}, "NAME": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...}
 * (padded with spaces to a multiple of 8), then the tensors' bytes, row-major little-endian, each at its
 * offsets counted from the first byte after the header, contiguous: no gaps, no overlaps, nothing after
 * the last. A sharded model is several such files and an index JSON whose "weight_map" names the file of
 * each tensor (model.safetensors.index.json beside model-0000N-of-0000M.safetensors).
 *
 * The writer collects float32 tensors (the data stay the caller's until the write) and writes them as
 * F32, F16 or BF16, atomically. The reader checks the whole layout when it opens a file (every message
 * names the file and the tensor) and converts F32, F16 and BF16 tensors to float32. */
#ifndef KD_INTEROP_SAFETENSORS_H
#define KD_INTEROP_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "kd/error.h"

#define KD_ST_MAX_DIMS 8

typedef enum { KD_ST_F32 = 0, KD_ST_F16 = 1, KD_ST_BF16 = 2, KD_ST_OTHER = 3 } kd_st_dtype;

/* "F32", "F16", "BF16" */
const char *kd_st_dtype_name(kd_st_dtype t);

/* ---- writing ---- */

typedef struct kd_st_writer kd_st_writer;

int kd_st_writer_new(kd_st_writer **w, kd_err *e);
void kd_st_writer_free(kd_st_writer *w);
/* Tensor `name` of ndim dimensions from float32 data (row-major), stored as dtype. */
int kd_st_add(kd_st_writer *w, const char *name, const float *data, int ndim, const int64_t *shape, kd_st_dtype dtype,
              kd_err *e);
/* The file at path (under a temporary name, fsynced, renamed); *bytes (nullable): the tensors' bytes. */
int kd_st_write(const kd_st_writer *w, const char *path, double *bytes, kd_err *e);

/* ---- reading ---- */

typedef struct kd_st_tensor {
  const char *name;
  char dtype[16];           /* as the header spells it */
  kd_st_dtype type;         /* KD_ST_OTHER: a dtype kd does not convert (I64, BOOL, ...) */
  int ndim;
  int64_t shape[KD_ST_MAX_DIMS];
  uint64_t begin, end;      /* data_offsets */
  int file;                 /* which file of the model holds it */
  int used;                 /* for the caller: taken (or knowingly ignored) */
} kd_st_tensor;

typedef struct kd_st_model kd_st_model;

/* A .safetensors file, or an index JSON (its "weight_map" naming files in the index's directory). */
int kd_st_open(kd_st_model **m, const char *path, kd_err *e);
void kd_st_close(kd_st_model *m);

int kd_st_count(const kd_st_model *m);
int kd_st_file_count(const kd_st_model *m);
kd_st_tensor *kd_st_at(kd_st_model *m, int i);
/* NULL when the model has no tensor of that name. */
kd_st_tensor *kd_st_find(kd_st_model *m, const char *name);
/* The path of the file that holds t. */
const char *kd_st_path(const kd_st_model *m, const kd_st_tensor *t);
/* Elements of t. */
int64_t kd_st_numel(const kd_st_tensor *t);
/* "[2, 3]" */
void kd_st_shape_text(char *s, size_t n, int ndim, const int64_t *shape);
/* t's values as float32 into out [numel] (F32, F16 or BF16; any other dtype is an error naming it). */
int kd_st_read(const kd_st_model *m, const kd_st_tensor *t, float *out, kd_err *e);

#endif
