/* Intermediate-layer distillation of Transformers: loss terms that match a
 * student's attention layers and hidden states to a teacher's, through the
 * model's taps (kd_model_ops.tap) and the teacher's kd_inter tensors.
 *
 *   relation (MiniLM / MiniLMv2): the queries, keys or values A [T, W] of a
 *     layer (W = H hd for queries, G hd for the keys and values of
 *     grouped-query attention), split into R relation heads of W / R columns, give per row and
 *     head the relation softmax(A_r A_r^T / sqrt(D / R)) under the causal
 *     mask; the loss is KL(teacher relation || student relation), averaged
 *     over rows, relation heads and query positions, summed over the chosen
 *     relations (q-q, k-k, v-v) and layer pairs. Widths and head counts of
 *     teacher and student may differ (R divides every width used).
 *   attn (TinyBERT): mean squared error between the attention probabilities
 *     [H, T, T] of mapped layers (the same count of query heads), or between
 *     their pre-softmax scores q k^T / sqrt(d_head) (k: the key head each
 *     query head reads) with the masked entries zeroed;
 *     averaged over rows, heads and all T x T entries, summed over pairs.
 *   hidden (TinyBERT): mean squared error between the student's hidden state
 *     times a learned projection W [D_t, D_s] (one, shared by all pairs) and
 *     the teacher's, averaged over rows, positions and D_t, summed over pairs.
 * Each is weighted; all are means over the rows of the global batch. */
#ifndef KD_LOSS_ATTN_H
#define KD_LOSS_ATTN_H

#include "kd/model.h"
#include "loss/term.h"

#define KD_MAX_PAIRS KD_TERM_MAX_INJECT

typedef struct kd_layer_pair {
  int s, t; /* student layer, teacher layer (kd_model_ops.tap numbering) */
} kd_layer_pair;

enum { KD_REL_Q = 1, KD_REL_K = 2, KD_REL_V = 4 };
typedef enum { KD_ATTN_PROBS = 1, KD_ATTN_SCORES = 2 } kd_attn_kind;

typedef struct kd_inter_cfg {
  int n_pairs;
  kd_layer_pair pairs[KD_MAX_PAIRS];
  float weight;
  int alone_epochs, alone_only;   /* the first E epochs train the intermediate terms alone, then (alone_only) they stop */
  int t_layers, t_dim, t_heads;   /* the teacher's shape */
  int t_kv_heads, t_head_dim;     /* its key/value heads and head width (queries, keys and values: online teachers) */
  int t_layers_known;             /* 0: t_layers is only the highest stored layer (no uniform map) */
  unsigned relations;             /* relation term: KD_REL_* bits */
  int relation_heads;             /* R */
  kd_attn_kind attn;              /* attn term */
} kd_inter_cfg;

/* "S:T,S:T,..." of cfg's pairs (cut short to fit n), for the banner. */
void kd_pairs_text(char *buf, size_t n, const kd_inter_cfg *c);

/* The three terms for student m (max_batch rows, its ctx positions). */
int kd_relation_term_create(kd_term **t, const kd_model *m, const kd_inter_cfg *cfg, kd_err *e);
int kd_attn_term_create(kd_term **t, const kd_model *m, const kd_inter_cfg *cfg, kd_err *e);
int kd_hidden_term_create(kd_term **t, const kd_model *m, const kd_inter_cfg *cfg, kd_err *e);

/* Kernels of one row (and relation or attention head), for the terms and
 * the gradient checks. Each returns its unscaled loss and accumulates
 * scale * its gradient (+=). scratch: 3 T^2 + 2 T floats. */

/* sum over query positions i of KL(rel_t[i] || rel_s[i]); A_s [T, d_s] with
 * row stride ld_s, its gradient dA_s with the same stride. */
double kd_relation_kl(float *dA_s, const float *A_s, int ld_s, int d_s, const float *A_t, int ld_t, int d_t, int T,
                      float scale, float *scratch);
/* sum over the T x T entries of (P_s - P_t)^2 for one head: P [T, T] causal
 * probabilities of q, k [T, d] (row stride ld), gradient into dq, dk. */
double kd_attn_probs_mse(float *dq, float *dk, const float *P_s, const float *P_t, const float *q, const float *k,
                         int ld, int d, int T, float scale, float *scratch);
/* the same on the scores q k^T / sqrt(d) (zero above the diagonal) of
 * student and teacher heads. */
double kd_attn_scores_mse(float *dq, float *dk, const float *q_s, const float *k_s, int ld_s, int d_s,
                          const float *q_t, const float *k_t, int ld_t, int d_t, int T, float scale, float *scratch);

#endif
