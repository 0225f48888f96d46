/* Model weights in HDF5: /model/<view name> per parameter view, float32,
 * weights [out, in] as nn.Linear stores them, and the root attributes that
 * say which student they are (family, student, the family's own settings).
 * Written atomically (core/atomic.h). Checkpoints add optimizer and run
 * state beside /model. */
#ifndef KD_WEIGHTS_H
#define KD_WEIGHTS_H

#include <hdf5.h>

#include "kd/error.h"
#include "kd/model.h"
#include "kd/registry.h"

#define KD_FORMAT_VERSION 1

#include "kd/ckpt.h"

/* Serial: call on one rank. meta (nullable) adds the run's /config and
 * /preprocess, so a weights file alone says how to evaluate it. */
int kd_weights_write(const char *path, const kd_model *m, const kd_ckpt_meta *meta, kd_err *e);
/* /config (the run's options as text) and /preprocess of meta into an open file. */
int kd_write_run_meta(hid_t f, const char *path, const kd_ckpt_meta *meta, kd_err *e);
/* Read /model/<view> into m->params (shapes checked). */
int kd_weights_read(const char *path, kd_model *m, kd_err *e);

/* Weights written by another tool (h5py, say): /model/<view> of every view,
 * checked by name and shape; besides them only the model's tied dataset
 * (equal to its view) and its skipped buffers may be there. */
int kd_weights_read_bare(const char *path, kd_model *m, kd_err *e);
/* An HDF5 file with /model and no kd_format attribute. */
int kd_is_bare_weights(const char *path);

/* Root attributes family, student and the model's family settings. */
int kd_write_model_attrs(hid_t f, const char *path, const kd_model *m, kd_err *e);
/* The spec a checkpoint or weights file describes (from those attributes). */
int kd_weights_spec(const char *path, kd_model_spec *spec, kd_err *e);

/* Write each view of base as float32 dataset GROUP/<view name> of an open file. */
int kd_write_views(hid_t f, const char *path, const char *group, const kd_param_view *views, int n,
                   const float *base, kd_err *e);

#endif
