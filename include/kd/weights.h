/* Model weights in HDF5: /model/<view name> per parameter view, float32,
 * weights [out, in] as nn.Linear stores them. Written to a temporary name,
 * fsynced and renamed, so a reader never sees half a file. Checkpoints
 * (next) add optimizer and run state beside /model. */
#ifndef KD_WEIGHTS_H
#define KD_WEIGHTS_H

#include <hdf5.h>

#include "kd/error.h"
#include "kd/model.h"

#define KD_FORMAT_VERSION 1

/* Serial: call on one rank. activation: "relu" | "gelu". */
int kd_weights_write(const char *path, const kd_model *m, const char *activation,
                     kd_err *e);
/* Read /model/<view> into m->params; the file's student spec must match. */
int kd_weights_read(const char *path, kd_model *m, kd_err *e);

/* Write each view of base as float32 dataset GROUP/<view name> of an open file. */
int kd_write_views(hid_t f, const char *path, const char *group, const kd_param_view *views, int n,
                   const float *base, kd_err *e);

/* fsync a file or directory by path. */
int kd_fsync_path(const char *path, kd_err *e);

#endif
