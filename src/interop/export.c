/* kd export: a trained student in the files other tools run, one file per format: GGUF for llama.cpp,
 * ollama and LM Studio (export_gguf.c), safetensors and config.json for Hugging Face transformers
 * (export_st.c). */
#include "interop/export.h"

#include <string.h>

int kd_export_run(const kd_export_cfg *cfg, kd_export_report *r, kd_err *e) {
  memset(r, 0, sizeof *r);
  if (strcmp(cfg->format, "gguf") == 0) return kd_export_gguf(cfg, r, e);
  if (strcmp(cfg->format, "safetensors") == 0) return kd_export_safetensors(cfg, r, e);
  return kd_fail(e, KD_ERR_USAGE, "kd export: --format %s: expected gguf or safetensors", cfg->format);
}
