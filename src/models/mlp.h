/* Multilayer perceptron student: Linear -> act (-> dropout) ... -> Linear.
 * Weights are [out, in] row-major like PyTorch's nn.Linear. */
#ifndef KD_MLP_H
#define KD_MLP_H

#include "kd/model.h"
#include "kd/registry.h"
#include "nn/kernels.h"

#define KD_MLP_MAX_LAYERS 32

typedef struct kd_mlp_cfg {
  int n_sizes;                      /* input, hidden..., classes */
  int sizes[KD_MLP_MAX_LAYERS + 1];
  kd_act act;                       /* hidden activation */
  float dropout;                    /* on hidden outputs, training only */
  int init_xavier;                  /* 0: He (fan_in) for hidden layers, 1: Xavier */
} kd_mlp_cfg;

/* The family's registry entry: spec text "784-800-800-10" (input,
 * hidden..., classes), settings activation=relu|gelu and init=he|xavier;
 * files store the activation as a root attribute. */
extern const kd_family kd_mlp_family;

/* Parse "784-800-800-10" into cfg->sizes (at least input and classes). */
int kd_mlp_parse_spec(kd_mlp_cfg *cfg, const char *spec, kd_err *e);

/* Build the model (sizes, views, activation buffers for max_batch rows).
 * Parameters are not allocated: bind them with kd_model_bind. */
int kd_mlp_create(kd_model **out, const kd_mlp_cfg *cfg, int max_batch, kd_err *e);

#endif
