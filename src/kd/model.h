/* The student model interface. The trainer, loss, optimizer, allreduce,
 * checkpoint and inference code only see this: sizes, named parameter views
 * into one contiguous buffer, forward from a batch to logits and backward
 * from their gradient. A student family (src/models: mlp) implements
 * kd_model_ops and registers a constructor (kd/registry.h); nothing here
 * knows the families. */
#ifndef KD_MODEL_H
#define KD_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "kd/data.h"
#include "kd/error.h"

/* One named tensor inside the parameter buffer, row-major [rows, cols]
 * (a bias is [rows, 1]). Gradients and optimizer moments use the same offsets. */
typedef struct kd_param_view {
  char name[64];  /* "layer0/weight": also its checkpoint dataset path */
  size_t offset;  /* in floats, into params / grads / moments */
  int rows, cols;
  int decay;      /* 1: weight decay applies (weights), 0: it does not (biases) */
} kd_param_view;

/* Per-call forward settings. */
typedef struct kd_fwd {
  int train;             /* 1: dropout on, keep activations for backward */
  uint64_t dropout_key;  /* kd_key(seed, KD_RNG_DROPOUT, step, 0); masks also use the batch's row ids */
} kd_fwd;

/* A gradient added during backward (feature and attention distillation):
 * KD_INJ_HIDDEN: dh [B (* positions), width] at hidden layer `layer` (as
 * kd_model_ops.hidden numbers them); KD_INJ_QKV: dh [B * T, ld] at the
 * queries, keys and values of attention layer `layer` (1-based, as
 * kd_model_ops.tap), laid out as the Q, K and V taps lay them out (each
 * tensor at its tap's column `col` of rows of `ld` floats; other columns
 * zero). Injections at the same place add up. */
enum { KD_INJ_HIDDEN = 0, KD_INJ_QKV = 1 };
typedef struct kd_inject {
  int layer;
  const float *dh;
  int kind;
} kd_inject;

/* Intermediate tensors of a Transformer's last forward (kd_model_ops.tap):
 * KD_TAP_HIDDEN: hidden state `layer` [B * T, D] (0: the embedding output,
 * l: the output of block l, before the final norm); KD_TAP_Q, KD_TAP_K,
 * KD_TAP_V: the queries [B * T, H * hd], keys and values [B * T, G * hd]
 * of attention layer `layer` (block `layer`, 1-based) as attention reads
 * them (after rotary embeddings where the family has them), head h at
 * columns h * hd, in rows of ld floats; KD_TAP_ATTN: the attention
 * probabilities of its H query heads before dropout [B, H, T, T] (row i
 * zero past column i). With G < H (grouped-query attention) query head h
 * reads key/value head h / (H / G). */
enum { KD_TAP_HIDDEN = 0, KD_TAP_Q = 1, KD_TAP_K = 2, KD_TAP_V = 3, KD_TAP_ATTN = 4 };
typedef struct kd_tap_shape {
  int B, T;          /* rows and positions of the last forward */
  int dim, heads;    /* width D and query heads H */
  int kv_heads;      /* key/value heads G (H % G == 0) */
  int head_dim;      /* hd */
  int ld, col;       /* Q, K, V taps: the row stride of the tensor and its column in the model's buffer of q, k and v
                      * (KD_INJ_QKV gradients use that layout) */
} kd_tap_shape;

/* A setting of the family stored beside `family` and `student` as a root
 * attribute of checkpoints and weights files (the MLP's "activation"). */
typedef struct kd_model_attr {
  char name[32];
  char value[64];
} kd_model_attr;

#define KD_MODEL_MAX_ATTRS 4

/* Where a model's time goes (kd train --profile): while a model's `prof`
 * is set, its family adds each kernel's seconds and floating-point
 * operations to the slot of that kernel. */
#define KD_PROF_SLOTS 32
typedef struct kd_prof_slot {
  const char *name; /* NULL: unused */
  double seconds, flop;
  int64_t calls;
} kd_prof_slot;
typedef struct kd_profile {
  kd_prof_slot slot[KD_PROF_SLOTS];
} kd_profile;

typedef struct kd_model kd_model;

/* The output head, logits = x W^T, for a loss that computes the logits
 * itself in chunks of positions (kd_loss_chunked): the model's training
 * forward with logits NULL stops before the head; the loss writes dL/dx
 * into dx and adds its part of dL/dW into dw, and the model's backward is
 * then called with dlogits = KD_DLOGITS_IN_HEAD. */
typedef struct kd_head {
  const float *x;   /* [n, dim] the head's input of the last training forward (n = rows * positions) */
  const float *w;   /* [vocab, dim] */
  float *dw;        /* [vocab, dim] */
  float *dx;        /* [n, dim] */
  int n, dim, vocab;
} kd_head;
extern const float kd_dlogits_in_head[1];
#define KD_DLOGITS_IN_HEAD kd_dlogits_in_head

typedef struct kd_model_ops {
  /* logits [B * positions, out_dim] from batch b (B <= max_batch); logits NULL: a training forward that
   * stops before the head (families with a head op). */
  int (*forward)(kd_model *m, float *logits, const kd_batch *b, const kd_fwd *f, kd_err *e);
  /* Accumulate parameter gradients from dlogits of the last training
   * forward (the same batch), plus the injected hidden-state gradients. With
   * dlogits NULL the backward pass starts at the highest injected layer and
   * the layers above it get no gradient. */
  int (*backward)(kd_model *m, const float *dlogits, const kd_batch *b, const kd_inject *inj, int n_inj,
                  kd_err *e);
  /* Output of hidden layer `layer` (1-based) of the last forward [B, *width],
   * or NULL when the model has no such layer. */
  const float *(*hidden)(const kd_model *m, int layer, int *width);
  /* A tensor of the last forward (NULL when the family has none, or
   * `layer` is out of range), its shape into *shape (nullable). NULL op:
   * a family without attention layers. */
  const float *(*tap)(const kd_model *m, int what, int layer, kd_tap_shape *shape);
  /* Number of hidden layers (valid `layer` values are 1..n). */
  int (*n_hidden)(const kd_model *m);
  /* How many of the first views hidden layer `layer` depends on (the views
   * are ordered from the input up): what training up to that layer updates. */
  int (*views_through)(const kd_model *m, int layer);
  /* Fill params from a seed (deterministic, independent of ranks). */
  void (*init_params)(kd_model *m, uint64_t seed);
  void (*destroy)(kd_model *m);
  /* Incremental decoding, for autoregressive families (NULL otherwise): a
   * key/value cache for n sequences; each step feeds one token per sequence
   * at its position pos[i] (0-based, < the context) and gives the logits
   * there, [n, out_dim], as a full forward over the prefix would. NULL
   * logits: the step only stores the tokens' keys and values (a prompt's
   * tokens before its last), skipping the last layer's attention and MLP
   * and the head. */
  int (*decode_begin)(kd_model *m, int n, kd_err *e);
  int (*decode_step)(kd_model *m, float *logits, const int32_t *tokens, const int *pos, int n, kd_err *e);
  /* Sequence i continues from sequence src[i]'s cache, positions
   * 0..len-1 (beam search, dropping finished sequences). */
  int (*decode_reorder)(kd_model *m, const int *src, int n, int len, kd_err *e);
  void (*decode_end)(kd_model *m);
  /* The head of the last training forward (NULL op: the family has no separable head). */
  int (*head)(kd_model *m, kd_head *h, kd_err *e);
} kd_model_ops;

struct kd_model {
  const kd_model_ops *ops;
  const char *family;     /* its registry name */
  char spec[256];         /* canonical spec text, e.g. "784-800-800-10": the `student` attribute */
  kd_input input;         /* the batches it reads */
  int in_dim, out_dim;    /* input features, classes */
  int ctx;                /* token models: the longest row (positions) it reads; 0 for feature rows */
  int max_batch;
  int frozen;             /* built for inference only: no backward, forward buffers shared where they can be
                           * (1: hidden states kept; 2: also every layer's q/k/v and attention maps) */
  size_t act_bytes;       /* activation buffers allocated for max_batch rows (memory reports) */
  size_t n_params;
  float *params;          /* bound by kd_model_bind: [n_params] */
  float *grads;           /* bound by kd_model_bind: [n_params] */
  int n_views;
  kd_param_view *views;
  int n_attrs;            /* the family's settings, for files */
  kd_model_attr attrs[KD_MODEL_MAX_ATTRS];
  /* Weights written by other tools (--init of a bare /model file): a dataset
   * that must equal one of the views (a tied head: {"lm_head/weight",
   * "transformer/wte/weight"}), and the name endings of buffers to skip. */
  const char *tied[2];
  const char *const *skip_suffixes;
  /* Optional, set by the trainer: backward calls it whenever
   * grads[from, n_params) are final, and between its GEMMs, so gradient
   * communication can start and progress during the backward pass. */
  void (*grads_ready)(void *ctx, size_t from);
  void *grads_ready_ctx;
  kd_profile *prof;       /* optional, set by the caller: per-kernel timing */
  void *impl;
};

/* For model implementations: report grads[from, n_params) final. */
static inline void kd_model_grads_ready(kd_model *m, size_t from) {
  if (m->grads_ready) m->grads_ready(m->grads_ready_ctx, from);
}

/* Point the model at caller-owned parameter and gradient buffers. */
void kd_model_bind(kd_model *m, float *params, float *grads);
void kd_model_free(kd_model *m);
/* The value of family attribute `name`, or NULL. */
const char *kd_model_attr_get(const kd_model *m, const char *name);

static inline int kd_model_forward(kd_model *m, float *logits, const kd_batch *b, const kd_fwd *f, kd_err *e) {
  return m->ops->forward(m, logits, b, f, e);
}
static inline int kd_model_backward(kd_model *m, const float *dlogits, const kd_batch *b, kd_err *e) {
  return m->ops->backward(m, dlogits, b, NULL, 0, e);
}
static inline int kd_model_backward_inject(kd_model *m, const float *dlogits, const kd_batch *b,
                                           const kd_inject *inj, int n_inj, kd_err *e) {
  return m->ops->backward(m, dlogits, b, inj, n_inj, e);
}

#endif
