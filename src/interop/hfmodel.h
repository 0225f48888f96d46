/* kd's gpt and llama students as Hugging Face transformers models (docs/format.md, "safetensors (Hugging
 * Face)"): a gpt is a GPT2LMHeadModel, a llama a LlamaForCausalLM. Their state_dict names are kd's view
 * names with "/" -> "."; vectors (norms, biases) are 1-D; GPT-2's Conv1D layers (c_attn, c_proj, c_fc and the
 * MLP's c_proj) store their weights [in, out], the transpose of kd's [out, in]; everything else is as kd
 * holds it. The config.json keys of both, written and read. */
#ifndef KD_INTEROP_HFMODEL_H
#define KD_INTEROP_HFMODEL_H

#include <stddef.h>
#include <stdint.h>

#include "kd/error.h"
#include "kd/model.h"
#include "kd/registry.h"

/* One parameter view as Hugging Face stores it. */
typedef struct kd_hf_param {
  char name[128];    /* the state_dict name */
  int ndim;          /* 1: a vector [rows]; 2: a matrix */
  int64_t shape[2];  /* as stored: [rows, cols], or [cols, rows] when transposed */
  int transpose;     /* GPT-2's Conv1D: stored [in, out] */
} kd_hf_param;

/* The architecture a gpt or llama student is in transformers ("GPT2LMHeadModel", "LlamaForCausalLM"), NULL
 * for other families. */
const char *kd_hf_arch(const kd_model *m);
/* The base model's prefix of the names ("transformer.", "model."): files saved from GPT2Model or LlamaModel
 * lack it (GPT-2's own model.safetensors on the Hub does). */
const char *kd_hf_base_prefix(const kd_model *m);
void kd_hf_param_of(kd_hf_param *p, const kd_model *m, const kd_param_view *v);

/* config.json of m's architecture (atomically); torch_dtype "float32", "float16" or "bfloat16". */
int kd_hf_config_write(const char *path, const kd_model *m, const char *torch_dtype, kd_err *e);
/* The student a config.json describes (family and spec text; a configuration kd's gpt or llama does not compute
 * exactly is an error naming the key); arch (n bytes) gets its architecture's name. ctx > 0: a llama's context
 * instead of max_position_embeddings. */
int kd_hf_config_read(kd_model_spec *spec, char *arch, size_t n, const char *path, int ctx, kd_err *e);

#endif
