/* Thin checked helpers over HDF5. All return kd_code and name the file and
 * dataset in their messages; HDF5's own error stack printing is turned off
 * and its innermost message appended instead. */
#ifndef KD_H5IO_H
#define KD_H5IO_H

#include <stdint.h>
#include <hdf5.h>
#include "kd/error.h"

/* Silence HDF5's automatic error printing (call once). */
void kd_h5_quiet(void);
/* The process's HDF5 lock: held around every HDF5 call made while a
 * streamed reader thread (data/stream.c) may be making its own. */
void kd_h5_lock(void);
void kd_h5_unlock(void);

#define KD_H5_MAX_DIMS 4

/* A new IEEE float16 type (close it with H5Tclose). */
hid_t kd_h5_f16_type(void);

/* IEEE float16 in the file: a little-endian half memory type to read
 * dataset ds as it is (H5I_INVALID_HID when it holds another type). */
hid_t kd_h5_half_mem_type(hid_t file, const char *ds);
/* Bytes of one value of dataset ds as stored (0 if absent). */
size_t kd_h5_type_size(hid_t file, const char *ds);

/* Create (truncate) a file for writing; the message names path. */
int kd_h5_create(hid_t *file, const char *path, kd_err *e);
/* Close a file being written; a failed close becomes the error when rc is
 * KD_OK. Returns the (possibly new) rc. */
int kd_h5_close(hid_t file, const char *path, int rc, kd_err *e);

/* Open an existing file read-only (serial driver: each rank reads only its
 * own rows with hyperslab selections, no collective calls). */
int kd_h5_open_ro(hid_t *file, const char *path, kd_err *e);
int kd_h5_exists(hid_t file, const char *dset);

/* Shape of a numeric dataset of 1 to KD_H5_MAX_DIMS dimensions: ndims and
 * dims (the unused trailing ones set to 1). */
int kd_h5_shape(hid_t file, const char *path, const char *dset, int *ndims,
                int64_t dims[KD_H5_MAX_DIMS], kd_err *e);
/* Number of values of a shape from kd_h5_shape. */
int64_t kd_h5_count(const int64_t dims[KD_H5_MAX_DIMS]);

/* 1 when the dataset stores floating-point numbers, 0 otherwise (or absent). */
int kd_h5_is_float(hid_t file, const char *dset);

/* Read rows [row0, row0 + nrows) (along the first dimension, all of the
 * others) of a dataset into buf, converting
 * to mem_type (H5T_NATIVE_FLOAT or H5T_NATIVE_INT32). Checks that every filter
 * in the dataset's pipeline is available and names a missing one. */
int kd_h5_read_rows(hid_t file, const char *path, const char *dset,
                    int64_t row0, int64_t nrows, hid_t mem_type, void *buf,
                    kd_err *e);

/* Write a whole float32 / int32 dataset of 1 to KD_H5_MAX_DIMS dimensions
 * (intermediate groups are created). */
int kd_h5_write(hid_t file, const char *path, const char *dset, int ndims, const int64_t *dims, hid_t file_type,
                hid_t mem_type, const void *data, kd_err *e);
int kd_h5_write_f32(hid_t file, const char *path, const char *dset, int ndims,
                    const int64_t *dims, const float *data, kd_err *e);
int kd_h5_write_i32(hid_t file, const char *path, const char *dset, int ndims,
                    const int64_t *dims, const int32_t *data, kd_err *e);
/* Attributes on an object (file root "/" or a group/dataset). */
int kd_h5_attr_str(hid_t obj, const char *path, const char *name,
                   const char *value, kd_err *e);
int kd_h5_attr_i64(hid_t obj, const char *path, const char *name, int64_t value,
                   kd_err *e);
int kd_h5_attr_f64(hid_t obj, const char *path, const char *name, double value,
                   kd_err *e);

/* Read attributes; KD_ERR_RUNTIME naming the file when absent or mistyped. */
int kd_h5_get_attr_str(hid_t file, const char *path, const char *obj,
                       const char *name, char *buf, size_t size, kd_err *e);
int kd_h5_get_attr_i64(hid_t file, const char *path, const char *obj,
                       const char *name, int64_t *value, kd_err *e);
int kd_h5_get_attr_f64(hid_t file, const char *path, const char *obj,
                       const char *name, double *value, kd_err *e);
/* Array attributes of doubles (n values). */
int kd_h5_attr_f64_array(hid_t obj, const char *path, const char *name,
                         const double *values, int n, kd_err *e);
int kd_h5_get_attr_f64_array(hid_t file, const char *path, const char *obj,
                             const char *name, double *values, int n, kd_err *e);
/* Call fn(name, value) for each string attribute of obj (sorted by name). */
typedef int (*kd_h5_attr_fn)(const char *name, const char *value, void *ctx);
int kd_h5_each_str_attr(hid_t file, const char *path, const char *obj,
                        kd_h5_attr_fn fn, void *ctx, kd_err *e);

/* Dataset ds of file type ty and shape dims (ndims of 1 to KD_H5_MAX_DIMS), its groups created as needed. */
int kd_h5_create_dataset(hid_t f, const char *path, const char *ds, int ndims, const int64_t *dims, hid_t ty,
                         kd_err *e);
/* Rows [row0, row0 + n) (along the first dimension, all of the others) of dataset ds from float32 values
 * (converted here when the dataset is float16). */
int kd_h5_write_rows(hid_t f, const char *path, const char *ds, int64_t row0, int64_t n, const float *v, kd_err *e);
/* The same from memory of any type (HDF5 converts to the dataset's). */
int kd_h5_write_rows_typed(hid_t f, const char *path, const char *ds, int64_t row0, int64_t n, hid_t mem_type,
                           const void *v, kd_err *e);

#endif
