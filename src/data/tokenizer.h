/* Writing the tokenizer record (reading it is in kd/data.h). */
#ifndef KD_DATA_TOKENIZER_H
#define KD_DATA_TOKENIZER_H

#include <hdf5.h>

#include "kd/data.h"

/* /tokenizer with attributes kind, pad_id, sep_id, end_id and the datasets
 * vocab [V] (variable-length byte strings: vlen uint8) and, for bpe,
 * merges [M, 2]. */
int kd_tokenizer_write(hid_t f, const char *path, const kd_tokenizer *t, kd_err *e);

#endif
