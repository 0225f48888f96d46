/* kd generate: autoregressive decoding from a checkpoint with the model's
 * key/value cache. */
#ifndef KD_INFER_GENERATE_H
#define KD_INFER_GENERATE_H

#include <stdint.h>

#include "kd/error.h"
#include "kd/model.h"

typedef struct kd_decode_cfg {
  int greedy;           /* 1: argmax; 0: sample */
  double temperature;   /* sampling: softmax(z / temperature) */
  int top_k;            /* sampling: only the k most likely (0: all) */
  uint64_t seed;
  int n_ids;            /* ids that may be emitted: [0, n_ids) (0: the whole vocabulary) */
} kd_decode_cfg;

/* Continue ids[0..n_prompt) by max_new tokens into ids (capacity
 * n_prompt + max_new), stopping early at stop_id (>= 0). When the context
 * fills, decoding goes on from its last three quarters (recomputed).
 * margins [max_new] (nullable): at each new token, its largest logit minus
 * the second largest (how close a greedy choice was). */
int kd_generate(kd_model *m, int32_t *ids, int n_prompt, int max_new, int stop_id, const kd_decode_cfg *cfg, int *n_out,
                float *margins, kd_err *e);
/* Padding ids (a vocabulary larger than the tokenizer's, as nanoGPT and
 * Qwen pad theirs): logits [rows, V] at ids >= n_ids set to -inf, so no
 * decoder emits an id the tokenizer cannot spell (n_ids 0 or >= V: none). */
void kd_mask_padding(float *z, int rows, int V, int n_ids);
/* One token from logits z [V]: argmax, or a draw (keyed on seed and step). lse (nullable) receives
 * log sum_v exp(z_v) where the draw computed it on the way (temperature 1, no top-k), else NAN. */
int32_t kd_pick_token(const float *z, int V, const kd_decode_cfg *cfg, uint64_t step, float *scratch, double *lse);

#endif
