/* kd import text: plain text files into token rows for sequence students.
 * Documents (a file, or each piece between --doc-sep lines) go to train,
 * valid or test by a hash of their bytes, so no held-out text is in a
 * training row and any later tokenizer gets the same held-out documents.
 * Each split's documents, joined by the separator line, form one token
 * stream, cut into rows of T tokens at stride T - 1: every token after a
 * stream's first is a target exactly once (the last row is padded, its
 * padding masked out).
 *
 * Tokenizers: "bytes" (one id per byte, vocabulary 256), "bpe:V" (byte-level BPE, data/bpe.h, with
 * V - 256 merges learnt from the training split's stream only, then applied to all three splits),
 * "hf:PATH" (a Hugging Face tokenizer.json, data/hftok.h, applied to all three) or "kd:FILE" (the
 * /tokenizer record of a kd data file, bytes or bpe, applied to all three).
 * /SPLIT/tokens is stored as the narrowest of uint8, uint16 and int32 that holds the vocabulary.
 *
 * A teacher with another tokenizer (--teacher-tokenizer, same forms, or kd:FILE for the /tokenizer record of a
 * kd data file): the same streams in its tokenization, and for each student row the teacher row of the
 * tokens that lie within the same bytes (/SPLIT/teacher_tokens [N, Tt], /SPLIT/teacher_mask), with the byte
 * offset, from the row's first byte, where each token of either row ends (/SPLIT/offsets [N, T],
 * /SPLIT/teacher_offsets [N, Tt]); the teacher's record in /teacher_tokenizer. Both tokenizers must give
 * back the text's bytes exactly (checked), so offsets are byte positions of the text. Tt: --teacher-ctx, or
 * the most teacher tokens any row needs. */
#ifndef KD_DATA_TEXT_H
#define KD_DATA_TEXT_H

#include <stdint.h>

#include "kd/error.h"

#define KD_TEXT_MAX_FILES 4096

typedef struct kd_text_cfg {
  const char *in[KD_TEXT_MAX_FILES];
  int n_in;
  char in_given[8];       /* the option parser's mark that --in was there */
  int64_t ctx;
  char doc_sep[256];      /* "" : every file is one document */
  double valid_frac, test_frac;
  char tokenizer[KD_PATH_MAX + 8]; /* bytes | bpe:V | hf:PATH */
  char teacher_tokenizer[KD_PATH_MAX + 8]; /* "" (none) | bytes | bpe:V | hf:PATH | kd:FILE */
  int64_t teacher_ctx;    /* Tt (0: the most a row needs) */
  char out[KD_PATH_MAX];
  int force;
} kd_text_cfg;

typedef struct kd_text_stats {
  int64_t docs[3], tokens[3], rows[3];  /* train, valid, test */
  int vocab;                            /* ids of the tokenizer written */
  int bpe_merges;                       /* bpe: merges learnt (fewer than asked when no pair repeats) */
  int64_t bpe_bytes;                    /* bpe: bytes of training text they were learnt on */
  double bpe_seconds;                   /* bpe: time taken to learn them */
  double load_seconds;                  /* hf: time taken to read tokenizer.json */
  double encode_seconds;                /* time taken to tokenize the three streams */
  int64_t encode_bytes;                 /* their bytes */
  int teacher_vocab;                    /* --teacher-tokenizer: its ids */
  int64_t teacher_tokens[3];            /* its tokens of each split's stream */
  int teacher_ctx;                      /* Tt */
  int64_t teacher_cut;                  /* teacher tokens left out of rows (rows needing more than Tt) */
  int64_t aligned[3];                   /* student targets whose position has a teacher position ending at the same byte */
} kd_text_stats;

#define KD_TEXT_HF (-1)
#define KD_TEXT_KD (-2)

/* "bytes" -> *V = 0; "bpe:V" -> V in [256, 1 << 20]; "hf:PATH" -> KD_TEXT_HF; "kd:FILE" (the /tokenizer
 * record of a kd data file) -> KD_TEXT_KD; anything else a usage error naming the option opt. */
int kd_text_tokenizer_parse(const char *spec, const char *opt, int *V, kd_err *e);

/* Serial. */
int kd_import_text(const kd_text_cfg *cfg, kd_text_stats *st, kd_err *e);

#endif
