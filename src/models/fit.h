/* The one check of data against the model that reads it. Every command
 * that runs a model over the rows of a data file (kd train and its online
 * teacher, eval, predict, logits, generate --data, eval --decode) calls
 * these, each rank on the rows it holds, and agrees on the result at its
 * collective validation point, so all ranks fail together with the same
 * line. `who` names the model in messages, e.g. "--student gpt:vocab=...",
 * "the student gpt:... of run/ckpt-00000100.h5", "--teacher-model run". */
#ifndef KD_MODELS_FIT_H
#define KD_MODELS_FIT_H

#include <stdint.h>

#include "kd/data.h"
#include "kd/model.h"

/* The split's shape fits the model: the kind of rows it reads, as many
 * features as its input (feature rows), no more positions than its
 * context (token rows). */
int kd_fit_split(const kd_model *m, const char *who, const char *data, const char *split, const kd_split_info *info,
                 kd_err *e);

/* The rows of src fit the model: kd_fit_split; the file's tokenizer record
 * names no more ids than the model's vocabulary; every token id inside
 * both (a vocabulary larger than the tokenizer's is padding no row may
 * use); labels in [0, classes) (or -1 when allow_unlabelled), finite
 * features. Messages name the file, dataset, row, position and value. */
int kd_fit_rows(const kd_model *m, const char *who, const kd_source *src, int allow_unlabelled, kd_err *e);

/* Rows [lo, hi) of a split read in bounded pieces and checked as
 * kd_fit_rows does (for commands that read their rows later, in rounds);
 * *targets (nullable) gets their target count. */
int kd_fit_file(const kd_model *m, const char *who, const char *data, const char *split, int64_t lo, int64_t hi,
                int allow_unlabelled, int64_t *targets, kd_err *e);

/* A split used for a loss or a metric has targets: `total` is its target
 * count over every rank's rows (kd_source_targets summed). */
int kd_fit_targets(int64_t total, const char *data, const char *split, kd_input kind, kd_err *e);

/* The model of checkpoint `ckpt` reads the ids of data file `data` as the
 * same tokens: where both carry a /tokenizer record, the two records are
 * the same (kind, entries, merges). A model trained on one BPE and run on
 * rows of another with as many ids would read every id as another token. */
int kd_fit_tokenizers(const char *who, const char *ckpt, const char *data, kd_err *e);
/* The same against the data file's record at `group` (a cross-tokenizer file's "/teacher_tokenizer"). */
int kd_fit_tokenizer_at(const char *who, const char *ckpt, const char *data, const char *group, kd_err *e);
/* Two records that read every id as the same token. */
int kd_tokenizer_same(const kd_tokenizer *a, const kd_tokenizer *b);

/* The ids a decoder may emit: the tokenizer's when it has fewer than the
 * model's vocabulary (the rest are padding), else the vocabulary. */
int kd_fit_emit_ids(const kd_model *m, const kd_tokenizer *tok);

#endif
