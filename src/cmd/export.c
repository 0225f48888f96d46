/* kd export: a trained student as files other tools run (GGUF for llama.cpp and ollama, safetensors for
 * Hugging Face transformers). Rank 0. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/dist.h"
#include "interop/export.h"

#define X_(f) offsetof(kd_export_cfg, f)
static const kd_opt_spec opts[] = {
  {"ckpt", KD_OPT_STR, X_(ckpt), STR(kd_export_cfg, ckpt), NULL, NULL, 0, 0, 0, 0,
   "checkpoint FILE or DIR[:latest|best|step:N] of a gpt or llama student"},
  {"format", KD_OPT_CHOICE, X_(format), STR(kd_export_cfg, format), "gguf", "gguf|safetensors", 0, 0, 0, 0,
   "gguf: GGUF v3 for llama.cpp, ollama and LM Studio (gpt as llama.cpp's gpt2, llama as its llama); safetensors: "
   "model.safetensors and config.json for Hugging Face transformers (gpt as GPT2LMHeadModel, llama as "
   "LlamaForCausalLM)"},
  {"out", KD_OPT_STR, X_(out), STR(kd_export_cfg, out), NULL, NULL, 0, 0, 0, 0,
   "gguf: the file to write (replaced); safetensors: the directory (made if absent; its files replaced)"},
  {"dtype", KD_OPT_CHOICE, X_(dtype), STR(kd_export_cfg, dtype), "f32", "f32|f16|bf16", 0, 0, 0, 0,
   "gguf: type of the weight matrices, f32 or f16 (norms and biases stay f32); safetensors: type of every tensor"},
};

int cmd_export(int argc, char **argv, kd_err *e) {
  if (cmd_wants_help(argc, argv)) {
    cmd_help("usage: kd export --ckpt CKPT --format gguf --out FILE.gguf [--dtype f32|f16]\n"
             "       kd export --ckpt CKPT --format safetensors --out DIR [--dtype f32|f16|bf16]\n\n"
             "gguf: writes a gpt or llama student and its tokenizer as a GGUF file that llama.cpp runs (llama-cli -m\n"
             "FILE.gguf, or an ollama Modelfile FROM ./FILE.gguf): the architecture's metadata, the weights under\n"
             "llama.cpp's tensor names, and the tokenizer record as a byte-level gpt2 vocabulary.\n"
             "safetensors: writes DIR/model.safetensors and DIR/config.json, which transformers loads with\n"
             "GPT2LMHeadModel.from_pretrained(DIR) (a gpt) or LlamaForCausalLM.from_pretrained(DIR) (a llama), and\n"
             "DIR/tokenizer.json, which Hugging Face's tokenizers load, where the record can be expressed so (bytes,\n"
             "kd's BPE, Hugging Face byte-level BPE). Runs on rank 0.\n\n"
             "options:\n",
             opts, N_OPTS(opts));
    return KD_OK;
  }
  kd_export_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  if (kd_opts_parse(opts, N_OPTS(opts), &cfg, argc, argv, "kd export", NULL, e)) return e->code;
  const char *hook = getenv("KD_EXPORT_SWAP_QK"); /* tests: a wrong file, to show the check would catch one */
  cfg.swap_qk = hook && strcmp(hook, "1") == 0;
  int rc = KD_OK;
  if (g_rank == 0) {
    kd_export_report r;
    rc = kd_export_run(&cfg, &r, e);
    if (!rc && strcmp(cfg.format, "safetensors") == 0) {
      printf("kd export: wrote %s (%s, %d tensors, %.1f MB of weights, %s) from %s; %s\n", r.files, r.arch, r.tensors,
             r.bytes / 1e6, cfg.dtype, r.ckpt, r.tokenizer);
    } else if (!rc) {
      printf("kd export: wrote %s (%s, %d tensors, %.1f MB of weights, %s) from %s; tokenizer: %s%s\n", cfg.out, r.arch,
             r.tensors, r.bytes / 1e6, cfg.dtype, r.ckpt, r.tokenizer,
             cfg.swap_qk ? " (KD_EXPORT_SWAP_QK=1: q and k exchanged, a wrong file for tests)" : "");
      if (r.warning[0]) printf("kd: warning: %s\n", r.warning);
    }
    fflush(stdout);
  }
  return kd_agree(MPI_COMM_WORLD, rc, e);
}
