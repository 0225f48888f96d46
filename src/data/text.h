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
 * V - 256 merges learnt from the training split's stream only, then applied to all three splits) or
 * "hf:PATH" (a Hugging Face tokenizer.json, data/hftok.h, applied to all three).
 * /SPLIT/tokens is stored as the narrowest of uint8, uint16 and int32 that holds the vocabulary. */
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
} kd_text_stats;

#define KD_TEXT_HF (-1)

/* "bytes" -> *V = 0; "bpe:V" -> V in [256, 1 << 20]; "hf:PATH" -> KD_TEXT_HF; anything else a usage error. */
int kd_text_tokenizer_parse(const char *spec, int *V, kd_err *e);

/* Serial. */
int kd_import_text(const kd_text_cfg *cfg, kd_text_stats *st, kd_err *e);

#endif
