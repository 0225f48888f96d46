/* Checkpoints: DIR/ckpt-<step>.h5 written by rank 0, atomically (temporary
 * name, fsync, rename, then the DIR/latest pointer, then the directory
 * fsync). A checkpoint holds the model, the optimizer state, the run state
 * (step, epoch, position in the epoch, best evaluation so far, logging
 * accumulators), the whole configuration and the data fingerprints. The
 * random streams are counter-based, keyed on (seed, epoch, step, row), so the
 * seed and the position are the complete generator state. */
#ifndef KD_CKPT_H
#define KD_CKPT_H

#include <stdint.h>

#include "kd/error.h"
#include "kd/model.h"

typedef struct kd_optim kd_optim; /* the optimizer state (src/optim) */

#define KD_CKPT_FORMAT_VERSION 1
#define KD_CKPT_SUMS 16 /* length of the logging accumulators */

typedef struct kd_run_state {
  int64_t step;             /* optimizer steps done */
  int64_t epoch;            /* 0-based epoch of the next step */
  int64_t step_in_epoch;    /* steps of that epoch already done */
  int64_t steps_per_epoch;  /* when written */
  int64_t ranks, threads;   /* when written */
  double best_metric;       /* best evaluation so far (NAN: none) */
  int64_t best_step;        /* its step (-1: none) */
  int64_t skipped;          /* steps skipped for non-finite values */
  double log_sums[KD_CKPT_SUMS];   /* since the last metrics row */
  int64_t log_steps;
  double epoch_sums[KD_CKPT_SUMS]; /* since the epoch began */
  uint64_t data_fp, teacher_fp;    /* row fingerprints (0: none) */
  int64_t last_ckpt_step;          /* step of the newest checkpoint written (-1: none) */
  char teacher_ckpt[KD_PATH_MAX];         /* self-distillation: the checkpoint teaching ("": none) */
} kd_run_state;

/* One option of the run configuration, as text. */
typedef struct kd_cfg_item {
  char name[64];
  char value[4096];
} kd_cfg_item;

typedef struct kd_ckpt_meta {
  const kd_cfg_item *cfg;
  int n_cfg;
  const char *data_path, *teacher_path;
  /* Trained parameters beside the student (loss terms' regressors): views
   * into aux_base, stored as /aux/<name>; not part of the deployed student. */
  const kd_param_view *aux_views;
  int n_aux;
  const float *aux_base;
  const kd_preprocess *pre;   /* input normalisation (/preprocess), or NULL */
  const kd_tokenizer *tok;    /* the data's tokenizer record (/tokenizer), or NULL */
} kd_ckpt_meta;

/* "DIR/ckpt-00000042.h5" */
void kd_ckpt_name(char *buf, size_t n, const char *dir, int64_t step);

/* Write the checkpoint of st->step into dir and point DIR/latest at it.
 * Test hook: KD_FAULT_CKPT=kill:N or enospc:N (optionally with
 * KD_FAULT_CKPT_STEP=S) cuts the temporary file to N bytes, then dies by
 * SIGKILL or fails as a full disk would, before the rename. */
int kd_ckpt_write(const char *dir, const kd_model *m, const kd_optim *o,
                  const kd_run_state *st, const kd_ckpt_meta *meta,
                  char *path_out, size_t path_n, kd_err *e);

/* Replace DIR/<name> (a pointer file: "latest", "best") atomically. */
int kd_ckpt_set_pointer(const char *dir, const char *pointer, const char *target,
                        kd_err *e);
/* Keep the newest `keep` checkpoints at or before current_step (and the
 * self-distillation teachers they name); remove the others, and those past
 * current_step (an abandoned future), never one named in protect. */
int kd_ckpt_rotate(const char *dir, int keep, int64_t current_step, const char *const *protect,
                   int n_protect, kd_err *e);

/* Check a checkpoint: it opens, it is complete, its checksum matches. */
int kd_ckpt_verify(const char *path, kd_err *e);

/* Resolve FILE or DIR[:latest|best|step:N] (a bare DIR means latest). With
 * fallback, a damaged latest checkpoint is reported (notes, one per line)
 * and the newest valid one is used instead. */
int kd_ckpt_resolve(const char *spec, int fallback, char *path, size_t n,
                    char *notes, size_t notes_n, kd_err *e);

/* The stored configuration (name/value pairs); caller frees *items. */
int kd_ckpt_read_config(const char *path, kd_cfg_item **items, int *n, kd_err *e);
/* One stored option of a checkpoint's (or weights file's) /config into val:
 * 1 when present, 0 when not (or the file has no /config). */
int kd_ckpt_config_get(const char *path, const char *name, char *val, size_t n);
/* Model parameters (shapes checked against m), and optionally the
 * optimizer state and run state. */
int kd_ckpt_read(const char *path, kd_model *m, kd_optim *o, kd_run_state *st,
                 kd_err *e);

/* The input normalisation of a checkpoint or weights file (kind none when
 * it has no /preprocess). */
int kd_ckpt_read_preprocess(const char *path, kd_preprocess *p, kd_err *e);

/* Read /aux/<name> of each view into base (shapes checked). */
int kd_ckpt_read_aux(const char *path, const kd_param_view *views, int n, float *base, kd_err *e);

#endif
