/* Causal multi-head self-attention, for every Transformer family: H query
 * heads of width hd sharing G key/value heads (grouped-query attention;
 * H % G == 0, query head h reads key/value head h / (H / G); G = H is
 * plain multi-head attention, G = 1 multi-query). Queries, keys and values
 * are column blocks of one buffer of rows of ld floats, as the model's
 * projection writes them: query head h at column q_col + h * hd, key and
 * value head g at k_col + g * hd and v_col + g * hd (GPT-2's fused c_attn:
 * ld = 3D, q_col 0, k_col D, v_col 2D). Outputs first, then inputs, then
 * sizes; every clever kernel has a plain reference beside it for the tests. */
#ifndef KD_NN_ATTENTION_H
#define KD_NN_ATTENTION_H

#include <stddef.h>
#include <stdint.h>

typedef struct kd_attn_shape {
  int B, T;                  /* rows and positions */
  int H, G, hd;              /* query heads, key/value heads, head width */
  int ld, q_col, k_col, v_col;
} kd_attn_shape;

/* q | k | v side by side in rows of (H + 2 G) hd floats. */
static inline kd_attn_shape kd_attn_fused(int B, int T, int H, int G, int hd) {
  const kd_attn_shape s = {B, T, H, G, hd, (H + 2 * G) * hd, 0, H * hd, (H + G) * hd};
  return s;
}

/* out [B*T, H*hd] = softmax(q k^T / sqrt(hd)) v per row and head, causal.
 * att [B, H, T, T] receives the probabilities (zero above the diagonal);
 * with dropout p > 0 the probabilities that multiply v are att_drop, masked
 * by mask [B, H, T, T] keyed on (key, ids[b], head, i, j). Computed in
 * tiles of query and key positions; tiles wholly above the diagonal are
 * never computed. */
void kd_attention_forward(float *out, float *att, float *att_drop, uint8_t *mask, const float *qkv,
                          const int64_t *ids, uint64_t key, float p, const kd_attn_shape *s);
/* dqkv [B*T, ld] (overwritten: zero outside the q, k and v columns) from
 * dout [B*T, H*hd]; scratch [T*T]. Key/value gradients sum over the query
 * heads that share them. */
void kd_attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv, const float *att,
                           const float *att_drop, const uint8_t *mask, float p, const kd_attn_shape *s);
/* Query-key pairs per sequence and head that the tiles compute (for FLOP counts). */
double kd_attention_pairs(int T);
/* Plain loops in double with the same contracts (no dropout), for the tests. */
void kd_attention_forward_ref(float *out, float *att, const float *qkv, const kd_attn_shape *s);
void kd_attention_backward_ref(float *dqkv, const float *dout, const float *qkv, const float *att,
                               const kd_attn_shape *s);

/* One new query per sequence against cached keys and values (incremental
 * decoding): y [n, H*hd] from q [n, rows of ldq], each sequence i's keys
 * and values K, V [i * stride + j * width] (width = G*hd floats per
 * position) at positions 0..pos[i]; scores [max pos + 1] scratch. */
void kd_attention_cached(float *y, float *scores, const float *q, int ldq, const float *K, const float *V,
                         size_t stride, const int *pos, int n, int H, int G, int hd);

#endif
