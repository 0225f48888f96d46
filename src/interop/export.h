/* kd export: a trained student in the files other tools run. GGUF for
 * llama.cpp, ollama and LM Studio: gpt students as llama.cpp's "gpt2"
 * architecture, llama students as its "llama", with the tokenizer record
 * as a byte-level "gpt2" vocabulary. safetensors for Hugging Face
 * transformers: DIR/model.safetensors and DIR/config.json, gpt students as
 * GPT2LMHeadModel, llama students as LlamaForCausalLM. */
#ifndef KD_INTEROP_EXPORT_H
#define KD_INTEROP_EXPORT_H

#include "kd/error.h"

typedef struct kd_export_cfg {
  char ckpt[KD_PATH_MAX];  /* FILE or DIR[:latest|best|step:N] */
  char format[16];         /* gguf | safetensors */
  char out[KD_PATH_MAX];   /* gguf: the file; safetensors: the directory */
  char dtype[8];           /* gguf: f32 | f16, the 2-D weights (norms and biases stay f32); safetensors: f32 | f16 |
                            * bf16, every tensor */
  int swap_qk;             /* tests only: write k where q goes and q where k goes (a wrong export to catch) */
} kd_export_cfg;

/* What was written, for the command's line. */
typedef struct kd_export_report {
  char ckpt[KD_PATH_MAX + 64];  /* the resolved checkpoint */
  char arch[32];                /* gguf: gpt2 | llama; safetensors: GPT2LMHeadModel | LlamaForCausalLM */
  char files[2 * KD_PATH_MAX + 32]; /* safetensors: the files written */
  char tokenizer[256];          /* what the vocabulary holds and how llama.cpp reads it, or the tokenizer.json */
  char warning[KD_PATH_MAX + 512]; /* "": none; else a file written, but llama.cpp will not read text as kd */
  int tensors;
  double bytes;
} kd_export_report;

/* By cfg->format: */
int kd_export_run(const kd_export_cfg *cfg, kd_export_report *r, kd_err *e);
int kd_export_gguf(const kd_export_cfg *cfg, kd_export_report *r, kd_err *e);        /* export_gguf.c */
int kd_export_safetensors(const kd_export_cfg *cfg, kd_export_report *r, kd_err *e); /* export_st.c */

#endif
