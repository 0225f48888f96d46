/* kd export: a trained student in the files other tools run. GGUF (this
 * file's first format) for llama.cpp, ollama and LM Studio: gpt students as
 * llama.cpp's "gpt2" architecture, llama students as its "llama", with the
 * tokenizer record as a byte-level "gpt2" vocabulary. */
#ifndef KD_INTEROP_EXPORT_H
#define KD_INTEROP_EXPORT_H

#include "kd/error.h"

typedef struct kd_export_cfg {
  char ckpt[KD_PATH_MAX];  /* FILE or DIR[:latest|best|step:N] */
  char format[16];         /* gguf */
  char out[KD_PATH_MAX];
  char dtype[8];           /* f32 | f16: the 2-D weights (norms and biases stay f32) */
  int swap_qk;             /* tests only: write k where q goes and q where k goes (a wrong export to catch) */
} kd_export_cfg;

/* What was written, for the command's line. */
typedef struct kd_export_report {
  char ckpt[KD_PATH_MAX + 64];  /* the resolved checkpoint */
  char arch[16];                /* gpt2 | llama */
  char tokenizer[96];           /* what the vocabulary holds and how llama.cpp reads it */
  char warning[KD_PATH_MAX + 512]; /* "": none; else a file written, but llama.cpp will not read text as kd */
  int tensors;
  double bytes;
} kd_export_report;

int kd_export_run(const kd_export_cfg *cfg, kd_export_report *r, kd_err *e);

#endif
