/* kd logits: a trained model's raw logits for every split of a data file,
 * computed in parallel (each rank its own contiguous rows) and gathered to
 * rank 0 in bounded chunks, which writes the teacher file with serial HDF5.
 * (Collective HDF5 writes through Open MPI's OMPIO have been reported to hang
 * with HDF5 1.10; point-to-point chunks cannot.) */
#ifndef KD_LOGITS_H
#define KD_LOGITS_H

#include <hdf5.h>
#include <mpi.h>

#include <stdint.h>

#include "kd/error.h"

/* Rank 0: create dataset `ds` [n, C] (P = 0) or [n, P, C] in an open file,
 * float32 or (f16) IEEE float16. */
int kd_logits_create(hid_t f, const char *path, const char *ds, int64_t n, int P, int C, int f16, kd_err *e);
/* The same for any shape of 1 to KD_H5_MAX_DIMS dimensions (dims[0]: rows). */
int kd_logits_create_nd(hid_t f, const char *path, const char *ds, int ndims, const int64_t *dims, int f16, kd_err *e);
/* The same with the file type ty (integer datasets take float rows, converted by HDF5). */
int kd_logits_create_typed(hid_t f, const char *path, const char *ds, int ndims, const int64_t *dims, hid_t ty,
                           kd_err *e);
/* Collective: every rank holds rows [lo, hi) of an n-row split (shards as
 * kd_shard_range(n, P, r)) in `local`, C values a row; rank 0 receives them in bounded
 * chunks and writes them into `ds` of f. Rank 0 keeps receiving after a
 * write error so no sender blocks; the error is returned on rank 0 only
 * (agree on it afterwards). A failed send or receive is KD_ERR_FATAL. */
int kd_logits_gather(MPI_Comm comm, hid_t f, const char *path, const char *ds, int64_t n, int C,
                     const float *local, kd_err *e);
/* One round of it: each rank sends its shard's rows [first, first + chunk)
 * (relative to its shard, clipped), held in `local`. */
int kd_logits_gather_round(MPI_Comm comm, hid_t f, const char *path, const char *ds, int64_t n, int C, int64_t first,
                           int64_t chunk, const float *local, kd_err *e);

#endif
