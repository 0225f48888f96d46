/* Decoding the targets of prompt rows (sequence-level distillation, kd eval
 * --decode): greedy, sampling and beam search, batched over rows with the
 * model's key/value cache.
 *
 * A batch's prompts are fed right-aligned in time (the longest starts first,
 * each at its own positions from 0), so every row's first target is chosen
 * at the same step and the rows then advance together; rows whose
 * hypotheses have all finished leave the batch (the cache is compacted).
 * Scores are the model's own log-probabilities (softmax at temperature 1)
 * summed in double; hypotheses are ranked by logp / len^A, len counting the
 * end token. The result of a row depends on the rows decoded beside it only
 * through the floating-point sums of the batch's GEMMs, so callers that need
 * results independent of the number of ranks fix the batches' composition. */
#ifndef KD_INFER_SEQDECODE_H
#define KD_INFER_SEQDECODE_H

#include <stddef.h>
#include <stdint.h>

#include "kd/error.h"
#include "kd/model.h"

typedef enum kd_decode_mode { KD_DECODE_GREEDY = 0, KD_DECODE_SAMPLE = 1, KD_DECODE_BEAM = 2 } kd_decode_mode;

typedef struct kd_seq_cfg {
  kd_decode_mode mode;
  int beam;               /* K (beam search); 1 otherwise */
  int nbest;              /* hypotheses kept per row, 1..K */
  double length_penalty;  /* A >= 0 */
  double temperature;     /* sampling: softmax(z / temperature) */
  int top_k;              /* sampling: among the k most likely (0: all) */
  uint64_t seed;          /* sampling: draws keyed on (seed, global row, step) */
  int end_id;             /* the token that ends a hypothesis */
  int n_ids;              /* ids that may be emitted: [0, n_ids) (0: the whole vocabulary; kd_mask_padding) */
} kd_seq_cfg;

/* "greedy" | "sample" | "beam:K" (1 <= K <= 1024) into c->mode and c->beam. */
int kd_decode_parse(const char *spec, kd_seq_cfg *c, kd_err *e);

/* Up to nbest hypotheses of each of `rows` rows, best first. */
typedef struct kd_hyps {
  int rows, nbest, max_len;
  int32_t *tokens;  /* [rows, nbest, max_len] target tokens (the end token included when reached) */
  int *len;         /* [rows, nbest] tokens of each hypothesis; 0 where a row has fewer */
  double *logp;     /* [rows, nbest] summed log-probability (-inf where absent) */
  double *score;    /* [rows, nbest] logp / len^A */
} kd_hyps;

int kd_hyps_init(kd_hyps *h, int rows, int nbest, int max_len, kd_err *e);
void kd_hyps_free(kd_hyps *h);

/* Decode the B rows prompts[b * stride .. + plen[b]) (1 <= plen[b] <= the
 * model's context): row b's hypotheses take at most max_len[b] tokens
 * (<= h->max_len and <= ctx - plen[b] + 1) and end at c->end_id. row_ids
 * [B]: the rows' global indices (keys of the sampling draws). Results into
 * rows [0, B) of h. Serial; uses m's decode cache, which stays allocated
 * for the next call of the same size (decode_end or kd_model_free release it). */
int kd_decode_rows(kd_model *m, const int32_t *prompts, int stride, const int *plen, const int *max_len, int B,
                   const int64_t *row_ids, const kd_seq_cfg *c, kd_hyps *h, kd_err *e);

/* Levenshtein distance between token strings a [na] and b [nb] (unit costs);
 * scratch holds nb + 1 ints. */
int kd_token_edit_distance(const int32_t *a, int na, const int32_t *b, int nb, int *scratch);

#endif
