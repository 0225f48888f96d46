/* What the row provider's backends share (data/rows.c, data/stream.c). */
#ifndef KD_DATA_ROWS_IMPL_H
#define KD_DATA_ROWS_IMPL_H

#include "data/rows.h"

typedef struct kd_rows_ops {
  int64_t (*steps)(const kd_rows *r);
  int (*seek)(kd_rows *r, int64_t epoch, int64_t step, kd_err *e);
  int (*next)(kd_rows *r, const kd_rows_out *o, kd_err *e);
  void (*prefetch)(const kd_rows *r, int teacher_logits);
  void (*stop)(kd_rows *r);
  void (*free)(kd_rows *r);
} kd_rows_ops;

/* The first member of each backend's state. */
struct kd_rows {
  const kd_rows_ops *ops;
  const kd_preprocess *pre;  /* streamed: applied as rows are taken */
  kd_rows_stats st;
  int streamed;
};

#endif
