/* Rotary position embeddings (RoPE) as Hugging Face's Llama applies them
 * (`rotate_half`): in each head of width hd, dimension i < hd/2 pairs with
 * i + hd/2 and turns by the angle pos * theta^(-2i/hd):
 *   x'[i]        = x[i] cos - x[i + hd/2] sin
 *   x'[i + hd/2] = x[i + hd/2] cos + x[i] sin. */
#ifndef KD_NN_ROPE_H
#define KD_NN_ROPE_H

/* cos, sin [ctx, hd/2] for positions 0..ctx-1, the angles rounded to float32 as Hugging Face's are (its
 * default rope type: no rope_scaling). */
void kd_rope_table(float *cos_t, float *sin_t, int ctx, int hd, double theta);
/* In place, `heads` heads of rows [n, ld] starting at column col; row r is
 * at position pos[r], or r % T when pos is NULL (rows of T positions). */
void kd_rope_forward(float *x, int ld, int col, int heads, int hd, const float *cos_t, const float *sin_t,
                     const int *pos, int n, int T);
/* The gradient through it, in place: the inverse rotation of dx. */
void kd_rope_backward(float *dx, int ld, int col, int heads, int hd, const float *cos_t, const float *sin_t,
                      const int *pos, int n, int T);
/* In double from the angles themselves, for the tests. */
void kd_rope_forward_ref(float *x, int ld, int col, int heads, int hd, double theta, int n, int T);

#endif
