/* Inference from checkpoints: kd eval and kd predict. The first piece of the
 * C inference API: build the student a checkpoint describes, load its
 * weights, run it over a split. */
#ifndef KD_INFER_H
#define KD_INFER_H

#include "kd/error.h"
#include "kd/eval.h"
#include "kd/model.h"
#include "kd/options.h"

/* Build the model of checkpoint (or weights file) `path`, parameters loaded
 * into *params (caller frees it with free() after kd_model_free). */
int kd_model_load(kd_model **m, float **params, const char *path, int max_batch, kd_err *e);

/* kd eval: metrics of the checkpoint on cfg->split. Serial (one rank). */
int kd_eval_run(const kd_eval_cfg *cfg, kd_eval_result *r, char *ckpt_path, size_t n, kd_err *e);
/* kd predict: write /SPLIT/logits of the checkpoint into cfg->out. Serial. */
int kd_predict_run(const kd_eval_cfg *cfg, int64_t *rows, char *ckpt_path, size_t n, kd_err *e);

#endif
