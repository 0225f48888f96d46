/* kd import weights: a Hugging Face model (safetensors weights and its config.json) as a kd weights file, the
 * layout of final.h5, for kd train --init and --teacher-model and for kd predict, eval and generate. A
 * GPT2LMHeadModel becomes a gpt student, a LlamaForCausalLM a llama (docs/format.md, "safetensors (Hugging
 * Face)"); F32, F16 and BF16 tensors become float32. */
#ifndef KD_INTEROP_IMPORT_ST_H
#define KD_INTEROP_IMPORT_ST_H

#include "kd/data.h"
#include "kd/error.h"
#include "kd/model.h"

typedef struct kd_import_weights_cfg {
  char in[KD_PATH_MAX];      /* model.safetensors, or model.safetensors.index.json of a sharded model */
  char config[KD_PATH_MAX];  /* config.json */
  char out[KD_PATH_MAX];     /* the kd weights file */
  int ctx;                   /* > 0: a llama's context instead of max_position_embeddings */
  char tokenizer[KD_PATH_MAX]; /* tokenizer.json for the /tokenizer record; "": the one beside config.json if any
                                * (a kind kd cannot read is then a note); "none": no record */
  int force;                 /* replace an existing out */
} kd_import_weights_cfg;

typedef struct kd_import_weights_report {
  char arch[32];           /* GPT2LMHeadModel | LlamaForCausalLM */
  char student[300];       /* family:spec */
  int tensors;             /* read into the student */
  int ignored;             /* HF's buffers, a tied lm_head equal to the embedding */
  int files;               /* safetensors files read */
  int by_type[3];          /* tensors read as F32, F16, BF16 */
  char tokenizer[KD_PATH_MAX + 600]; /* what became the /tokenizer record, or why none did */
} kd_import_weights_report;

int kd_import_weights(const kd_import_weights_cfg *cfg, kd_import_weights_report *r, kd_err *e);

/* The same model in memory, for inference (libkd's sessions): built with max_batch rows (0: automatic, as
 * kd_model_load), its parameters bound, and the tokenizer.json beside config.json as *tok (*have_tok 0 when
 * there is none or kd cannot apply it). */
int kd_hf_model_load(kd_model **m, float **params, kd_tokenizer *tok, int *have_tok, const char *in,
                     const char *config, int max_batch, kd_err *e);

#endif
