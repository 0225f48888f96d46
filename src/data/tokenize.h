/* kd tokenize: text to token ids, a line of ids per document, with any tokenizer kd holds (what
 * llama.cpp's llama-tokenize and Hugging Face's encode do, for checking one against the other and for
 * users' own pipelines). */
#ifndef KD_DATA_TOKENIZE_H
#define KD_DATA_TOKENIZE_H

#include <stdint.h>
#include <stdio.h>

#include "kd/data.h"

typedef struct kd_tokenize_cfg {
  char tokenizer[KD_PATH_MAX + 8]; /* bytes | hf:PATH | a kd file with a /tokenizer record */
  char in[KD_PATH_MAX];
  char doc_sep[256];               /* "": see lines */
  int lines;                       /* every line (without its newline) a document, empty ones too */
  char out[KD_PATH_MAX];           /* "-": standard output */
} kd_tokenize_cfg;

typedef struct kd_tokenize_stats {
  int64_t docs, tokens, bytes;
  double load_seconds, encode_seconds;
} kd_tokenize_stats;

/* The tokenizer a spec names: "bytes", "hf:PATH" (tokenizer.json) or a kd HDF5 file with /tokenizer. */
int kd_tokenizer_from_spec(kd_tokenizer *t, const char *spec, kd_err *e);

/* Documents of cfg->in as their ids: one line each, ids separated by spaces. Documents are cut as kd import
 * text cuts them (--doc-sep: at lines that are exactly the separator, empty documents skipped; none: the file
 * is one document), or each line is one (cfg->lines). */
int kd_tokenize_run(const kd_tokenize_cfg *cfg, kd_tokenize_stats *st, kd_err *e);

#endif
