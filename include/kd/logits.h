/* kd logits: a trained model's raw logits for every split of a data file,
 * computed in parallel (each rank its own contiguous rows) and gathered to
 * rank 0 in bounded chunks, which writes the teacher file with serial HDF5.
 * (Collective HDF5 writes through Open MPI's OMPIO have been reported to hang
 * with HDF5 1.10; point-to-point chunks cannot.) */
#ifndef KD_LOGITS_H
#define KD_LOGITS_H

#include <mpi.h>

#include "kd/error.h"
#include "kd/options.h"

/* Collective over comm. rows_out[3]: rows written for train, valid, test. */
int kd_logits_run(const kd_eval_cfg *cfg, MPI_Comm comm, int64_t rows_out[3], kd_err *e);

#endif
