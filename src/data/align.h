/* Two tokenizations of one text (a teacher and a student with different tokenizers, issue 33):
 *  - the shared vocabulary: the pairs (student id, teacher id) whose tokens spell the same bytes;
 *  - the aligned positions: the pairs (student position i, teacher position a) whose tokens end at the
 *    same byte of the text. At such a pair both contexts end at the same byte, so the two next-token
 *    distributions predict the same continuation and can be compared (loss/xtok.h).
 * Both are computed once, at import or load time, never per step. */
#ifndef KD_DATA_ALIGN_H
#define KD_DATA_ALIGN_H

#include <stdint.h>

#include "kd/data.h"
#include "kd/error.h"

typedef struct kd_vocab_map {
  int n;              /* shared ids */
  int32_t *s_ids;     /* [n] student ids, ascending */
  int32_t *t_ids;     /* [n] the teacher id of the same bytes */
  int Vs, Vt;         /* the two vocabularies (logit widths; ids past a tokenizer's vocab are never shared) */
} kd_vocab_map;

/* The shared ids of two tokenizer records: text tokens (not special, added or unused) with identical byte
 * strings. Where one side spells the same bytes twice, its lowest id is taken, so the map is one to one.
 * Vs, Vt: the models' vocabularies (at least the records' sizes). */
int kd_vocab_map_build(kd_vocab_map *m, const kd_tokenizer *student, int Vs, const kd_tokenizer *teacher, int Vt,
                       kd_err *e);
/* The identity map of a vocabulary of V ids (one tokenizer on both sides). */
int kd_vocab_map_identity(kd_vocab_map *m, int V, kd_err *e);
void kd_vocab_map_free(kd_vocab_map *m);

/* Aligned positions of two tokenizations of the same bytes: s_end[i] (i < ns) and t_end[a] (a < nt) are the
 * byte offsets where each token ends, strictly increasing. Writes the pairs with s_end[i] == t_end[a] into
 * pi[k], pa[k] (room for min(ns, nt)) in order, and returns their count. */
int kd_align_positions(int32_t *pi, int32_t *pa, const int32_t *s_end, int ns, const int32_t *t_end, int nt);

/* The teacher rows of a two-tokenization file as a data file of their own (kd logits --rows teacher): writes,
 * at `view`, /SPLIT/tokens and /SPLIT/mask as HDF5 external links to data's /SPLIT/teacher_tokens and
 * /SPLIT/teacher_mask for each split that has them, and a copy of its /teacher_tokenizer as /tokenizer, so
 * every reader of data files reads the teacher's tokens. KD_ERR_USAGE when data has no /train/teacher_tokens;
 * on any failure the file at `view` is removed. */
int kd_teacher_rows_view(const char *view, const char *data, kd_err *e);

#endif
