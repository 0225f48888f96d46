/* The student model interface. The trainer, loss, data, allreduce, optimizer
 * and checkpoint code only see this: sizes, named parameter views into one
 * contiguous buffer, forward to logits and backward from dlogits. A new
 * student family (a small Transformer, say) implements kd_model_ops and a
 * constructor; nothing else changes. */
#ifndef KD_MODEL_H
#define KD_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include "kd/error.h"

/* One named tensor inside the parameter buffer, row-major [rows, cols]
 * (a bias is [rows, 1]). Gradients and optimizer moments use the same offsets. */
typedef struct kd_param_view {
  char name[64];  /* "layer0/weight": also its checkpoint dataset path */
  size_t offset;  /* in floats, into params / grads / moments */
  int rows, cols;
  int decay;      /* 1: weight decay applies (weights), 0: it does not (biases) */
} kd_param_view;

/* Per-call forward settings. */
typedef struct kd_fwd {
  int train;               /* 1: dropout on, keep activations for backward */
  uint64_t dropout_key;    /* kd_key(seed, KD_RNG_DROPOUT, step, 0) */
  const int64_t *row_ids;  /* [B] global row index of each sample (dropout masks) */
} kd_fwd;

typedef struct kd_model kd_model;

typedef struct kd_model_ops {
  /* logits[B, out_dim] from x[B, in_dim]; B <= max_batch. */
  int (*forward)(kd_model *m, float *logits, const float *x, int B,
                 const kd_fwd *f, kd_err *e);
  /* Accumulate parameter gradients from dlogits[B, out_dim] of the last
   * training forward (same B). With dh (nullable) the gradient dh[B, width]
   * of hidden layer `layer` (1-based, its output after the activation) is
   * added there (feature distillation); with dlogits NULL the backward pass
   * starts at that layer and the layers above it get no gradient. */
  int (*backward)(kd_model *m, const float *dlogits, int B, int layer, const float *dh, kd_err *e);
  /* Output of hidden layer `layer` (1-based) of the last forward [B, *width],
   * or NULL when the model has no such layer. */
  const float *(*hidden)(const kd_model *m, int layer, int *width);
  /* Number of hidden layers (valid `layer` values are 1..n). */
  int (*n_hidden)(const kd_model *m);
  /* Fill params from a seed (deterministic, independent of ranks). */
  void (*init_params)(kd_model *m, uint64_t seed);
  void (*destroy)(kd_model *m);
} kd_model_ops;

struct kd_model {
  const kd_model_ops *ops;
  const char *family;     /* "mlp" */
  char spec[256];         /* canonical text form, e.g. "784-800-800-10" */
  int in_dim, out_dim;    /* input features, classes */
  int max_batch;
  size_t n_params;
  float *params;          /* bound by kd_model_bind: [n_params] */
  float *grads;           /* bound by kd_model_bind: [n_params] */
  int n_views;
  kd_param_view *views;
  /* Optional, set by the trainer: backward calls it whenever
   * grads[from, n_params) are final, and between its GEMMs, so gradient
   * communication can start and progress during the backward pass. */
  void (*grads_ready)(void *ctx, size_t from);
  void *grads_ready_ctx;
  void *impl;
};

/* For model implementations: report grads[from, n_params) final. */
static inline void kd_model_grads_ready(kd_model *m, size_t from) {
  if (m->grads_ready) m->grads_ready(m->grads_ready_ctx, from);
}

/* What a student is, as the command line and checkpoints give it. */
typedef struct kd_model_spec {
  char family[16];      /* "mlp" (a small Transformer comes next) */
  char sizes[256];      /* family-specific shape text, e.g. "784-800-800-10" */
  char activation[16];  /* "relu" | "gelu" */
  float dropout;        /* training only */
  int init_xavier;      /* 0: He for hidden layers */
} kd_model_spec;

/* The one place that knows the student families: build the model a spec
 * describes, with activation buffers for max_batch rows (parameters are
 * bound separately). */
int kd_model_create(kd_model **m, const kd_model_spec *spec, int max_batch, kd_err *e);

/* Point the model at caller-owned parameter and gradient buffers. */
void kd_model_bind(kd_model *m, float *params, float *grads);
void kd_model_free(kd_model *m);
static inline int kd_model_forward(kd_model *m, float *logits, const float *x,
                                   int B, const kd_fwd *f, kd_err *e) {
  return m->ops->forward(m, logits, x, B, f, e);
}
static inline int kd_model_backward(kd_model *m, const float *dlogits, int B,
                                    kd_err *e) {
  return m->ops->backward(m, dlogits, B, 0, NULL, e);
}

/* Backward with a hint gradient dh at hidden layer `layer` (see ops). */
static inline int kd_model_backward_hint(kd_model *m, const float *dlogits, int B, int layer,
                                         const float *dh, kd_err *e) {
  return m->ops->backward(m, dlogits, B, layer, dh, e);
}

#endif
