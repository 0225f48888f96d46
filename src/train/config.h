/* kd train's option table: the command line's options and the schema of a
 * checkpoint's /config (resume reads the options back by name). */
#ifndef KD_TRAIN_CONFIG_H
#define KD_TRAIN_CONFIG_H

#include "core/options.h"
#include "kd/train.h"

extern const kd_opt_spec kd_train_opts[KD_TRAIN_N_OPTS];

#endif
