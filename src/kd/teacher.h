/* Teacher targets: what the loss and the auxiliary loss terms learn from.
 * A teacher store holds the teacher's outputs for one shard of a split, read
 * from a teacher file (docs/format.md): dense logits /SPLIT/logits, [N, C]
 * for feature rows or [N, T, V] for token rows (exactly what a PyTorch
 * model(tokens).logits gives), and FitNets features /SPLIT/features [N, H];
 * any float type, held in memory as float32 except float16, which stays 2
 * bytes a value until a batch is gathered. Or it is filled by the trainer
 * (a self-distillation snapshot). Sparse teacher logits (top-k, sampled)
 * are held by a kd_sparse_store. */
#ifndef KD_TEACHER_H
#define KD_TEACHER_H

#include <stddef.h>
#include <stdint.h>

#include "kd/error.h"

/* y of a position that is no target (the last position of a token row, a
 * masked or padded one): the loss skips it. */
#define KD_Y_IGNORE (-2)

/* A Transformer teacher's intermediate tensors for one batch of B rows of
 * T positions, indexed by layer as kd_model_ops.tap numbers them: from an
 * online teacher's forward of the batch, or gathered from a teacher file
 * (/SPLIT/hidden/{l}, /SPLIT/attn/{l}). A NULL entry: not available. */
typedef struct kd_inter {
  int layers, dim, heads;    /* the teacher's blocks L, width D and query heads H */
  int kv_heads, head_dim;    /* its key/value heads G and head width hd (0: unknown, stored targets) */
  int ld;                    /* the row stride of q, k and v */
  const float **hidden;      /* [L + 1]: hidden state l [B * T, D] */
  const float **q, **k, **v; /* [L + 1]: entry l >= 1, block l's queries [B * T, H * hd], keys and values
                              * [B * T, G * hd], rows of ld floats */
  const float **attn;        /* [L + 1]: entry l >= 1, attention probabilities of block l [B, H, T, T] */
} kd_inter;

#define KD_INTER_ARRAYS 5 /* hidden, q, k, v, attn */
/* Point the layer arrays of `in` (L blocks) into ptrs [KD_INTER_ARRAYS * (L + 1)], zeroed by the caller. */
static inline void kd_inter_bind(kd_inter *in, const float **ptrs, int L) {
  in->layers = L;
  in->hidden = ptrs;
  in->q = ptrs + (L + 1);
  in->k = ptrs + 2 * (L + 1);
  in->v = ptrs + 3 * (L + 1);
  in->attn = ptrs + 4 * (L + 1);
}

/* Sparse teacher logits (large vocabularies, docs/format.md): K slots per
 * position instead of V logits.
 *   topk     the teacher's K largest logits, renormalised over those ids;
 *   tail     the same K plus one bin holding the rest of the teacher's mass
 *            (needs the full log-sum-exp /SPLIT/topk/lse);
 *   sampled  ids drawn from the teacher's softmax at T with their counts
 *            (RS-KD): an unbiased estimate of the dense gradient. */
typedef enum { KD_SPARSE_DENSE = 0, KD_SPARSE_TOPK, KD_SPARSE_TAIL, KD_SPARSE_SAMPLED } kd_sparse_mode;

/* One batch's sparse targets: K slots for each of P positions. */
typedef struct kd_sparse_targets {
  kd_sparse_mode mode;       /* TOPK, TAIL or SAMPLED */
  int K;
  const int32_t *ids;        /* [P, K] vocabulary ids, distinct within a position (sampled: where count > 0) */
  const float *vals;         /* [P, K] raw teacher logits (topk, tail) or draw counts (sampled) */
  const float *lse;          /* [P] log-sum-exp of the teacher's full logits at T = 1 (tail), or NULL */
} kd_sparse_targets;

/* One batch's targets, as the loss and the terms read them. */
typedef struct kd_targets {
  const int32_t *y;          /* [P] class of each position (-1: unlabelled, KD_Y_IGNORE: no target) */
  const float *t_logits;     /* [P, C] raw teacher logits, or NULL */
  const float *features;     /* [B, H] teacher hidden states (FitNets), or NULL */
  const kd_inter *inter;     /* a Transformer teacher's intermediate tensors, or NULL */
  const kd_sparse_targets *sparse; /* sparse teacher logits instead of t_logits, or NULL */
  const int32_t *sampled;    /* [P] the class the student sampled at each position (-1: none), or NULL: read by
                              * --divergence reverse-sampled on an on-policy step's rows */
} kd_targets;

/* Buffers one batch's teacher outputs are gathered into. */
typedef struct kd_teacher_batch {
  float *logits;    /* [capacity, C] or NULL */
  float *features;  /* [capacity, H] or NULL */
} kd_teacher_batch;

enum { KD_TEACH_LOGITS = 1, KD_TEACH_FEATURES = 2 };

typedef struct kd_teacher kd_teacher;

/* Shape of /SPLIT/logits of a teacher file: [rows, C] for feature rows
 * (positions 0), [rows, positions, C] for token rows, with the data split's
 * row count (data_path and rows name the split it must match). */
int kd_teacher_probe(const char *path, const char *split, const char *data_path, int64_t rows, int positions,
                     int *classes, kd_err *e);
/* Does the teacher file hold /SPLIT/<what> ("logits", "features")? */
int kd_teacher_has(const char *path, const char *split, const char *what, int *has, kd_err *e);
/* Rows [lo, hi) of a split of `total` rows: what = KD_TEACH_LOGITS and/or
 * KD_TEACH_FEATURES (each checked for shape). */
int kd_teacher_open(kd_teacher **t, const char *path, const char *split, int64_t lo, int64_t hi, int64_t total,
                    unsigned what, kd_err *e);
/* Add /SPLIT/features of the same rows from the store's file. */
int kd_teacher_load_features(kd_teacher *t, kd_err *e);
/* A store of dense float32 logits [rows, positions, classes] for the
 * trainer to fill (zeros), rows [row0, row0 + rows) of split. */
int kd_teacher_new(kd_teacher **t, const char *split, int64_t row0, int64_t rows, int positions, int classes,
                   kd_err *e);
void kd_teacher_free(kd_teacher *t);

int kd_teacher_classes(const kd_teacher *t);   /* 0: no logits */
size_t kd_teacher_bytes(const kd_teacher *t);  /* held in memory (0 for NULL) */
int kd_teacher_positions(const kd_teacher *t); /* logits rows per data row */
int kd_teacher_feat_dim(const kd_teacher *t);  /* 0: no features */
int kd_teacher_is_f16(const kd_teacher *t);    /* logits held as float16 */
/* The dense float32 logits of a store from kd_teacher_new, writable (a
 * snapshot fills them); NULL for a file's float16 store. */
float *kd_teacher_logits(kd_teacher *t);

/* Finite values; the message names the file, dataset, row and column. */
int kd_teacher_validate(const kd_teacher *t, kd_err *e);

int kd_teacher_batch_init(kd_teacher_batch *b, int capacity, int classes, int feat_dim, kd_err *e);
void kd_teacher_batch_free(kd_teacher_batch *b);
/* Copy the outputs of shard rows idx[0..count) into b: logits when b has a
 * logits buffer, features when it has a features buffer. */
int kd_teacher_gather(const kd_teacher *t, const int64_t *idx, int count, kd_teacher_batch *b, kd_err *e);
void kd_teacher_prefetch(const kd_teacher *t, const int64_t *idx, int count);
/* Row r's logits as the store holds them (float16 or float32: kd_teacher_is_f16), into out
 * [kd_teacher_stored_row_bytes]: a streamed window keeps them so, and converts as a step takes them. */
size_t kd_teacher_stored_row_bytes(const kd_teacher *t);
int kd_teacher_copy_stored(const kd_teacher *t, int64_t r, void *out, kd_err *e);
/* n stored logits (float16 when f16, else float32) to float32. */
void kd_logits_to_float(float *out, const void *stored, size_t n, int f16);
/* Rows [r0, r0 + count) of the logits as float32 into out
 * [count * positions, classes]. */
int kd_teacher_gather_range(const kd_teacher *t, int64_t r0, int count, float *out, kd_err *e);

/* Stored intermediate targets of a Transformer teacher, read a batch at a
 * time (they are large: T x D or H x T x T values per row):
 * /SPLIT/hidden/{l} [N, T, D] and /SPLIT/attn/{l} [N, H, T, T]
 * (probabilities), any float type; optional attribute `layers` (the
 * teacher's block count) on the groups /SPLIT/hidden and /SPLIT/attn. */
typedef struct kd_inter_store kd_inter_store;
/* The teacher's shape from what a file stores: layers (0 when no group has
 * the attribute), the highest layer stored, width D (0 without hidden
 * states), heads H (0 without attention maps). */
int kd_inter_store_probe(const char *path, const char *split, int *layers, int *stored, int *dim, int *heads,
                         kd_err *e);
/* Rows [lo, hi) of a split of `total` rows of T positions, the hidden
 * states and attention maps of the listed teacher layers, for batches of up
 * to capacity rows; every dataset's shape is checked. */
int kd_inter_store_open(kd_inter_store **s, const char *path, const char *split, int64_t lo, int64_t hi, int64_t total,
                        int T, int capacity, const int *hidden, int n_hidden, const int *attn, int n_attn, kd_err *e);
/* Read shard rows idx[0..count) (finite values checked). */
int kd_inter_store_gather(kd_inter_store *s, const int64_t *idx, int count, kd_err *e);
/* The gathered batch. */
const kd_inter *kd_inter_store_batch(const kd_inter_store *s);
void kd_inter_store_free(kd_inter_store *s);

/* Sparse teacher files: what /SPLIT/topk and /SPLIT/sampled hold. */
typedef struct kd_sparse_info {
  int dense;                 /* /SPLIT/logits is there */
  int topk_k;                /* K of /SPLIT/topk/{ids,logits} (0: none) */
  int has_lse;               /* /SPLIT/topk/lse is there */
  int sampled_s;             /* S of /SPLIT/sampled/{ids,counts} (0: none) */
  double sample_temperature; /* attribute of /SPLIT/sampled */
} kd_sparse_info;

/* What the teacher file holds for split (rows of `positions` positions, as
 * the data file's: every dataset's shape is checked); K must be the same in
 * every split the file has. */
int kd_sparse_probe(const char *path, const char *split, int64_t rows, int positions, kd_sparse_info *info, kd_err *e);
/* --sparse-kd auto|topk|tail|sampled against what the file holds: auto takes
 * dense, then sampled, then tail (with lse), then topk; a mode the file
 * cannot serve is an error; sampled needs sample_temperature == T. */
int kd_sparse_resolve(const char *opt, const kd_sparse_info *info, const char *path, double temperature,
                      kd_sparse_mode *mode, kd_err *e);
const char *kd_sparse_mode_name(kd_sparse_mode m);

/* Rows [lo, hi) of a split's sparse teacher logits of the given mode, held
 * as int32 ids and float16 or float32 values; validated against a
 * vocabulary of V (ids in range and distinct within a position, finite
 * logits and lse, counts >= 0), messages naming file, dataset, row,
 * position and slot. */
typedef struct kd_sparse_store kd_sparse_store;
int kd_sparse_open(kd_sparse_store **s, const char *path, const char *split, int64_t lo, int64_t hi, int64_t total,
                   kd_sparse_mode mode, int V, kd_err *e);
void kd_sparse_free(kd_sparse_store *s);
int kd_sparse_k(const kd_sparse_store *s);
int kd_sparse_positions(const kd_sparse_store *s);
size_t kd_sparse_bytes(const kd_sparse_store *s);   /* held in memory */
/* Bytes per position in the file (ids, values, lse as stored). */
double kd_sparse_file_bytes(const kd_sparse_store *s);
uint64_t kd_sparse_fingerprint(const kd_sparse_store *s);

/* Buffers one batch's sparse targets are gathered into. */
typedef struct kd_sparse_batch {
  kd_sparse_targets t;       /* points into the buffers below */
  int32_t *ids;
  float *vals, *lse;
} kd_sparse_batch;
int kd_sparse_batch_init(kd_sparse_batch *b, const kd_sparse_store *s, int capacity_positions, kd_err *e);
void kd_sparse_batch_free(kd_sparse_batch *b);
/* Shard rows idx[0..count) into b, positions at stride `width` (the batch's). */
int kd_sparse_gather(const kd_sparse_store *s, const int64_t *idx, int count, kd_sparse_batch *b, kd_err *e);
/* Rows of `from` positions move down to stride `to` < from (a trimmed batch). */
void kd_sparse_batch_restride(kd_sparse_batch *b, int rows, int from, int to);

/* Fingerprint of the logits (as float32), each row hashed with its global
 * row index, rows summed mod 2^64 (see kd_source_fingerprint). */
uint64_t kd_teacher_fingerprint(const kd_teacher *t);

#endif
