/* GPT student: a decoder-only Transformer as GPT-2 and nanoGPT (bias=True)
 * write it. Token embedding wte [V, D] and learned positions wpe [T, D];
 * per block x = x + attn(ln_1(x)), x = x + mlp(ln_2(x)) with causal
 * multi-head self-attention (c_attn [3D, D] giving q, k, v; c_proj [D, D])
 * and an MLP (c_fc [4D, D], tanh GELU, c_proj [D, 4D]); a final ln_f and
 * logits = ln_f(x) @ wte^T (the head tied to wte). Parameter views carry
 * nanoGPT's state_dict names with "." -> "/" ("transformer/h/0/attn/c_attn/
 * weight"), weights [out, in] as nn.Linear. Dropout (training only) where
 * nanoGPT applies it: the embedding sum, the attention probabilities and
 * both residual branches. */
#ifndef KD_MODELS_GPT_H
#define KD_MODELS_GPT_H

#include "kd/model.h"
#include "kd/registry.h"

typedef struct kd_gpt_cfg {
  int vocab, ctx, layers, dim, heads;
  float dropout;
} kd_gpt_cfg;

/* spec "vocab=V,ctx=T,layers=L,dim=D,heads=H": all five keys, any order. */
int kd_gpt_parse_spec(kd_gpt_cfg *cfg, const char *spec, kd_err *e);
/* The canonical text: the keys in the order above. */
void kd_gpt_spec_text(char *buf, size_t n, const kd_gpt_cfg *cfg);
/* frozen: inference only (an online teacher), the least activation memory. */
int kd_gpt_create(kd_model **m, const kd_gpt_cfg *cfg, int max_batch, int frozen, kd_err *e);

extern const kd_family kd_gpt_family;

#endif
