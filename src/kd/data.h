/* Training data: splits of a data file (docs/format.md), one rank's shard
 * of a split held by a data source, and the batches the model reads.
 *
 * A split holds feature rows: /SPLIT/x [N, D] (any integer or float type,
 * read as float32) and /SPLIT/y [N] class labels (-1: unlabelled). Sequence
 * students will add token rows (/SPLIT/tokens [N, T]) as a second input kind.
 *
 * The trainer, evaluation and inference reach the rows only through the
 * kd_source calls below (probe, load a shard, gather rows into a batch,
 * prefetch, fingerprint), so a source that streams rows from disk can
 * replace the in-memory one without touching them. */
#ifndef KD_DATA_H
#define KD_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "kd/error.h"

typedef enum kd_input {
  KD_INPUT_FEATURES = 0, /* float rows [B, D] */
  KD_INPUT_TOKENS = 1    /* int32 token rows [B, L] (sequence students) */
} kd_input;

/* A batch of rows as the model reads it. A model produces
 * kd_batch_positions(b) rows of logits for it ([B * positions, C]). */
typedef struct kd_batch {
  kd_input kind;
  int rows;          /* B */
  int width;         /* features per row (D) or positions per row (L); token rows: after kd_batch_trim, the
                      * positions up to the batch's last target */
  int capacity;      /* rows allocated */
  float *x;          /* [B, D] features */
  int32_t *tokens;   /* [B, L] token ids */
  uint8_t *mask;     /* [B, L] 1: the token at this position is a target (position 0 never is) */
  int32_t *y;        /* [B] class labels of feature rows (-1: unlabelled); token rows: 0, or -1 for a row
                      * whose targets are unlabelled (their CE term is dropped) */
  int64_t *row_ids;  /* [B] global row index of each row (dropout masks, label draws) */
  int alloc_width;   /* the width the buffers were made for (the rows as gathered) */
} kd_batch;

int kd_batch_init(kd_batch *b, kd_input kind, int capacity, int width, kd_err *e);
void kd_batch_free(kd_batch *b);
/* Rows of logits per batch row: 1 for feature rows, L for token rows. */
int kd_batch_positions(const kd_batch *b);
/* The target of each position into y [B * positions]: a feature row's
 * label; for token rows, the next token where it is a target (the logits
 * at position p predict token p + 1 when mask[p + 1] is set), -1 in an
 * unlabelled row, KD_Y_IGNORE elsewhere (the last position, masked ones).
 * Returns the number of targets. */
int64_t kd_batch_targets(const kd_batch *b, int32_t *y);
/* Token rows: next[k] = the token after position k where k has a target, -1 elsewhere (the token the student
 * sampled there, on an on-policy step's rows). */
void kd_batch_next_tokens(const kd_batch *b, int32_t *next);
/* Token rows: drop the positions after the batch's last target (no
 * earlier position reads them, causal attention, and none is a target),
 * compacting tokens, mask and t_logits [rows, width, C] (nullable) in place
 * to rows of the new width (at least 1). kd_batch_untrim restores the width
 * for the next gather. Feature rows are left as they are. */
void kd_batch_trim(kd_batch *b, float *t_logits, int C);
void kd_batch_untrim(kd_batch *b);
/* Semi-supervised training (--labelled-fraction): drop the label of each
 * row whose draw, keyed on its global row index, is >= fraction, so the
 * subset depends on the seed and never on the number of ranks. */
void kd_batch_unlabel(kd_batch *b, uint64_t key, double fraction);

/* Rows of rank r of P over N rows: [floor(r*N/P), floor((r+1)*N/P)). */
void kd_shard_range(int64_t N, int P, int r, int64_t *lo, int64_t *hi);
/* Rows rank r of P contributes to a global batch of B. */
int kd_local_batch(int B, int P, int r);

/* What a split of a data file holds, without reading its rows. */
typedef struct kd_split_info {
  int present;     /* 0: the data file has no such split */
  kd_input kind;
  int64_t rows;    /* N */
  int width;       /* D */
} kd_split_info;

typedef struct kd_source kd_source;

/* The tokenizer record of a token data file (/tokenizer, docs/format.md):
 * what the ids mean, so a checkpoint alone can encode and decode text. */
typedef struct kd_tokenizer {
  char kind[16];                    /* "bytes", "bpe", "symbols" */
  int32_t pad_id, sep_id, end_id;   /* -1: absent */
  int32_t unk_id;                   /* symbols: the id of a symbol unseen in training (-1: absent) */
  int32_t target_id0;               /* symbols: ids [target_id0, vocab) are target symbols, those below it
                                     * (after the specials) source characters (-1: absent) */
  int vocab;                        /* entries */
  int64_t *offsets;                 /* [vocab + 1]: token i is bytes[offsets[i], offsets[i + 1]) */
  uint8_t *bytes;
  int n_merges;                     /* bpe: merge rules, pairs of ids, in order */
  int32_t *merges;                  /* [n_merges, 2] */
  char pre[8];                      /* bpe: the pre-tokenizer, "gpt2", "kd1" or "regex" (data/bpe.h) */
  /* bpe records of Hugging Face tokenizers (kd import text --tokenizer hf:FILE, data/hftok.h); absent (NULL,
   * "", 0) in kd's own, whose merge i makes id 256 + i from the bytes 0..255 */
  char *pattern;                    /* pre "regex": the split pattern (matches and the text between them are chunks) */
  char normalizer[8];               /* "" or "nfc" */
  int ignore_merges;                /* a chunk that is itself a text token is that token, unmerged */
  int32_t *merge_ids;               /* [n_merges]: the id merge i makes (NULL: 256 + i) */
  uint8_t *token_kind;              /* [vocab] KD_TOKEN_*, NULL: every id text */
} kd_tokenizer;

/* What an id of a tokenizer is: text that encoding produces, a special token (control: Hugging Face's
 * special added tokens), an added token that is not special, or an id no token spells. Encoding plain text
 * produces only text ids. */
enum { KD_TOKEN_TEXT = 0, KD_TOKEN_SPECIAL = 1, KD_TOKEN_ADDED = 2, KD_TOKEN_UNUSED = 3 };

/* *present = 0 when the file has no /tokenizer. */
int kd_tokenizer_read(kd_tokenizer *t, const char *path, int *present, kd_err *e);
/* The same for the record at group g (kd_tokenizer_read: "/tokenizer"; a cross-tokenizer file's teacher record:
 * "/teacher_tokenizer"); *present = 0 when the file has no g. */
int kd_tokenizer_read_at(kd_tokenizer *t, const char *path, const char *g, int *present, kd_err *e);
/* The byte-level tokenizer: 256 ids, id i is the byte i. */
int kd_tokenizer_bytes(kd_tokenizer *t, kd_err *e);
void kd_tokenizer_free(kd_tokenizer *t);
/* Text to ids (byte tokenizers: one id per byte) into ids [cap]; *n ids. */
int kd_tokenizer_encode(const kd_tokenizer *t, const uint8_t *text, size_t len, int32_t *ids, int cap, int *n,
                        kd_err *e);
/* The bytes of ids[0..n) into out [cap] (truncated there); returns the byte count. */
size_t kd_tokenizer_decode(const kd_tokenizer *t, const int32_t *ids, int n, uint8_t *out, size_t cap);

/* Input normalisation (--normalize): x' = (x - offset) / scale per
 * feature, with statistics of the training rows; stored in checkpoints and
 * weights files under /preprocess and applied wherever the model reads. */
typedef enum kd_norm { KD_NORM_NONE = 0, KD_NORM_STANDARD = 1, KD_NORM_MINMAX = 2 } kd_norm;
typedef struct kd_preprocess {
  kd_norm kind;
  int dim;
  float *offset;  /* [dim] mean (standard) or minimum (minmax) */
  float *scale;   /* [dim] standard deviation or max - min, floored at 1e-6 */
} kd_preprocess;

/* "none" | "standard" | "minmax" and back. */
const char *kd_norm_name(kd_norm k);
int kd_norm_parse(const char *name, kd_norm *k);
/* From per-feature sums over n rows (sum, sum of squares) or extremes. */
int kd_preprocess_build(kd_preprocess *p, kd_norm kind, int dim, double n, const double *sum, const double *sumsq,
                        const double *lo, const double *hi, kd_err *e);
void kd_preprocess_free(kd_preprocess *p);

/* Shapes of a split, checked (x 2-D, y 1-D with as many rows, non-empty).
 * info->present = 0 when the split is absent (nothing else checked). */
int kd_source_probe(const char *path, const char *split, kd_split_info *info, kd_err *e);
/* Load rows [lo, hi) of a split (a rank's shard, or a whole split). */
int kd_source_open(kd_source **s, const char *path, const char *split, int64_t lo, int64_t hi, kd_err *e);
/* The same without the file's tokenizer record (a streamed block of rows:
 * kd_source_token_bytes and kd_source_vocab are then NULL and 0). */
int kd_source_open_rows(kd_source **s, const char *path, const char *split, int64_t lo, int64_t hi, kd_err *e);
void kd_source_free(kd_source *s);

const char *kd_source_path(const kd_source *s);
const char *kd_source_split(const kd_source *s);
kd_input kd_source_kind(const kd_source *s);
int64_t kd_source_rows(const kd_source *s);   /* rows of this shard */
int64_t kd_source_row0(const kd_source *s);   /* its first global row */
int64_t kd_source_total(const kd_source *s);  /* rows of the split in the file */
int kd_source_width(const kd_source *s);
/* Bytes of rows this source holds in memory (0 for NULL). */
size_t kd_source_bytes(const kd_source *s);
/* Token rows: the byte length of each id [vocab] from the file's tokenizer
 * record (NULL without one). */
const int32_t *kd_source_token_bytes(const kd_source *s);
/* Token rows: the ids of the file's tokenizer record (0: the file has none). */
int kd_source_vocab(const kd_source *s);
/* Targets of the shard: token rows, the positions after the first whose
 * mask is set; feature rows, the labelled rows (y >= 0). */
int64_t kd_source_targets(const kd_source *s);

/* Local checks: labels in [0, C) (or -1 when allow_unlabelled), finite
 * inputs. The message names the file, dataset and global row. */
int kd_source_validate(const kd_source *s, int n_classes, int allow_unlabelled, kd_err *e);
/* Copy shard rows idx[0..count) into b (count <= b->capacity). */
int kd_source_gather(const kd_source *s, const int64_t *idx, int count, kd_batch *b, kd_err *e);
/* Rows [r0, r0 + count) of the shard, in order. */
int kd_source_gather_range(const kd_source *s, int64_t r0, int count, kd_batch *b, kd_err *e);
/* Ask the CPU to start loading the rows a later gather will copy: issued a
 * step ahead (after the backward pass), it takes the random-row cache misses
 * off the next step's gather. */
void kd_source_prefetch(const kd_source *s, const int64_t *idx, int count);

/* Per-feature statistics of the shard's rows, added into sum, sumsq
 * [width] and folded into lo, hi [width] (start them at +inf / -inf);
 * *absmax = the largest |x|. */
void kd_source_stats(const kd_source *s, double *sum, double *sumsq, double *lo, double *hi, double *absmax);
/* x' = (x - offset) / scale of n feature rows of width p->dim (nothing for NULL or none). */
void kd_preprocess_apply(const kd_preprocess *p, float *x, int n);
/* Apply p to every row gathered from now on (NULL: none); p stays the caller's. */
int kd_source_set_preprocess(kd_source *s, const kd_preprocess *p, kd_err *e);

/* Fingerprint of the shard's rows (x as float32, y as int32), each row
 * hashed with its global row index and the rows summed mod 2^64: summing the
 * parts of all ranks gives the same value for any rank count, dtype or
 * chunking. */
uint64_t kd_source_fingerprint(const kd_source *s);
/* The same for n rows held in memory: x [n, D], y [n], first global row row0. */
uint64_t kd_fingerprint_rows(int64_t row0, int64_t n, const float *x, int D, const int32_t *y);
/* The same for rows [lo, hi) of a split read from the file in bounded
 * chunks (rows a run does not hold in memory). */
int kd_source_fingerprint_file(const char *path, const char *split, int64_t lo, int64_t hi, uint64_t *fp,
                               kd_err *e);

#endif
