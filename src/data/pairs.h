/* kd import pairs: source -> target pairs (a word and its phonemes) into
 * prompt-completion token rows `source, <sep>, target, <end>`, padded, with
 * /SPLIT/mask on the target and end tokens only.
 *
 * Formats: "tsv" (SOURCE<TAB>space-separated target symbols) and
 * "cmudict-festival" (Festival's lexicon lines, `("word" pos (((ph ph) 1)
 * ((ph) 0)))`, each syllable's vowel given the syllable's stress digit).
 * One vocabulary from the training split: <pad> 0, <sep> 1, <end> 2,
 * <unk> 3, the source characters (UTF-8) sorted by bytes, then the target
 * symbols sorted by bytes (a letter and a phoneme spelt alike are two ids);
 * a held-out symbol unseen in training becomes <unk>. Pairs go to
 * /train, /valid or /test by a hash of their source, so all of a word's
 * pronunciations land in one split; within a split the rows of one source
 * are consecutive (evaluation reads them as one word's references). */
#ifndef KD_DATA_PAIRS_H
#define KD_DATA_PAIRS_H

#include <stdint.h>

#include "kd/error.h"

typedef struct kd_pairs_cfg {
  char in[KD_PATH_MAX];
  char out[KD_PATH_MAX];
  char format[24];          /* tsv | cmudict-festival */
  int64_t ctx;              /* 0: rows as long as the longest */
  double valid_frac, test_frac;
  int force;
} kd_pairs_cfg;

typedef struct kd_pairs_stats {
  int64_t words[3], rows[3];  /* train, valid, test */
  int64_t unk[3];             /* held-out symbols unseen in training */
  int64_t unstressed;         /* festival syllables without a vowel (their digit dropped) */
  int vocab, n_source, n_target, width;
} kd_pairs_stats;

/* Serial. */
int kd_import_pairs(const kd_pairs_cfg *cfg, kd_pairs_stats *st, kd_err *e);

#endif
