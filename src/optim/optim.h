/* Optimizers over the one contiguous parameter buffer: SGD with momentum
 * (optionally Nesterov, PyTorch's formulation, coupled weight decay) and AdamW
 * (decoupled weight decay). Weight decay applies to views with decay = 1. */
#ifndef KD_OPTIM_H
#define KD_OPTIM_H

#include <stddef.h>
#include <stdint.h>
#include "kd/error.h"
#include "kd/model.h"

typedef enum kd_optim_kind { KD_OPT_SGD = 0, KD_OPT_ADAMW = 1 } kd_optim_kind;
typedef enum kd_sched_kind { KD_SCHED_CONST = 0, KD_SCHED_COSINE = 1 } kd_sched_kind;

typedef struct kd_optim_cfg {
  kd_optim_kind kind;
  float momentum;      /* SGD */
  int nesterov;        /* SGD */
  float beta1, beta2, eps; /* AdamW */
  float weight_decay;
} kd_optim_cfg;

typedef struct kd_optim {
  kd_optim_cfg cfg;
  size_t n;
  float *m;      /* SGD momentum buffer / Adam first moment: [n] */
  float *v;      /* Adam second moment: [n] (NULL for SGD) */
  int64_t t;     /* steps taken */
} kd_optim;

/* A range [lo, hi) of the parameter buffer, in floats. */
typedef struct kd_range {
  size_t lo, hi;
} kd_range;

int kd_optim_init(kd_optim *o, const kd_optim_cfg *cfg, size_t n, kd_err *e);
void kd_optim_free(kd_optim *o);
/* One update of params from grads with learning rate lr. */
void kd_optim_step(kd_optim *o, float *params, const float *grads, float lr,
                   const kd_param_view *views, int n_views);
/* The same update from gscale * grads (gradient clipping folded into the one
 * pass), touching only the parts of `views` inside `ranges` (NULL: all of
 * them): a rank of a sharded optimizer passes the ranges it owns. Counts as
 * one step. */
void kd_optim_update(kd_optim *o, float *params, const float *grads, float lr, float gscale,
                     const kd_param_view *views, int n_views, const kd_range *ranges, int n_ranges);
/* The plain scalar loops kd_optim_update is checked against (tests). */
void kd_optim_step_ref(kd_optim *o, float *params, const float *grads, float lr,
                       const kd_param_view *views, int n_views);

/* Learning rate at step (0-based) of total_steps: linear warmup over `warmup`
 * steps from lr/warmup to lr, then constant or cosine decay to 0. */
float kd_lr_at(kd_sched_kind kind, float base_lr, int64_t step,
               int64_t total_steps, int64_t warmup);

/* Sum of squares of g[n] in double, in 16 interleaved partial sums (a fixed
 * order, so the same on every rank and CPU); kd_sumsq_ref is the plain loop. */
double kd_sumsq(const float *g, size_t n);
double kd_sumsq_ref(const float *g, size_t n);
/* The factor that scales a gradient of this norm down to max_norm (1 when
 * it is within, when max_norm <= 0, or when the norm is not finite). */
float kd_clip_scale(double norm, double max_norm);

#endif
