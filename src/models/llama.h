/* Llama student: a decoder-only Transformer exactly as Hugging Face's
 * LlamaForCausalLM computes it. Token embedding embed_tokens [V, D], no
 * learned positions; per block
 *   x = x + o_proj(attn(rope(q_proj(n1)), rope(k_proj(n1)), v_proj(n1))), n1 = input_layernorm(x)
 *   x = x + down_proj(silu(gate_proj(n2)) * up_proj(n2)),               n2 = post_attention_layernorm(x)
 * with RMSNorm x * rsqrt(mean(x^2) + eps) * w (no bias), rotary embeddings
 * in HF's rotate_half convention (dimension i pairs with i + hd/2,
 * frequencies theta^(-2i/hd), positions 0..T-1, hd = D/H), causal
 * attention of H query heads sharing G key/value heads scaled by
 * 1/sqrt(hd), a SwiGLU MLP of width F, no biases anywhere; a final norm
 * and an untied lm_head [V, D] (tie=1: the embedding). Parameter views
 * carry HF's state_dict names with "." -> "/" ("model/layers/0/self_attn/
 * q_proj/weight"), weights [out, in]; q, k and v (and gate and up) sit
 * side by side in the parameter buffer, so one GEMM computes them.
 * --dropout applies to the attention probabilities (HF's attention_dropout;
 * Llama has no residual dropout). RoPE is HF's default type: configurations
 * with rope_scaling (Llama 3.1's "llama3" frequencies, linear, dynamic,
 * YaRN) are another model. */
#ifndef KD_MODELS_LLAMA_H
#define KD_MODELS_LLAMA_H

#include "kd/model.h"
#include "kd/registry.h"

typedef struct kd_llama_cfg {
  int vocab, ctx, layers, dim, heads, kv_heads, ffn;
  double rope_theta, norm_eps;
  int tie;
  float dropout;
} kd_llama_cfg;

/* spec "vocab=V,ctx=T,layers=L,dim=D,heads=H,kv_heads=G,ffn=F[,rope_theta=X][,norm_eps=E][,tie=0|1]" (kv_heads
 * defaults to heads); D % H == 0, H % G == 0, D / H even. */
int kd_llama_parse_spec(kd_llama_cfg *cfg, const char *spec, kd_err *e);
/* The canonical text: every key, in the order above. */
void kd_llama_spec_text(char *buf, size_t n, const kd_llama_cfg *cfg);
/* frozen: inference only (an online teacher; 2: keep every layer's q/k/v and attention maps). */
int kd_llama_create(kd_model **m, const kd_llama_cfg *cfg, int max_batch, int frozen, kd_err *e);

extern const kd_family kd_llama_family;

#endif
