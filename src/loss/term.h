/* Auxiliary loss terms: losses beside the KD loss on the logits that read
 * the student's hidden states (FitNets hints today; attention-map and
 * hidden-state losses of Transformers later). A term owns
 *   - its parameter views (a regressor), placed inside the one parameter
 *     buffer after the student's, so they are allreduced, updated,
 *     checkpointed (/aux/<view name>) and resumed like the student;
 *   - its statistic: the sum of its loss over the rows, logged in the
 *     metrics.csv column named after it;
 *   - the gradient it adds to the model's hidden state (an injection into
 *     the model's backward pass). */
#ifndef KD_LOSS_TERM_H
#define KD_LOSS_TERM_H

#include <stddef.h>
#include <stdint.h>

#include "kd/data.h"
#include "kd/error.h"
#include "kd/model.h"
#include "kd/teacher.h"

#define KD_TERM_MAX_VIEWS 4

/* What a term sees of one training step. */
typedef struct kd_term_step {
  kd_model *model;         /* after its training forward of the batch */
  const kd_batch *batch;
  const kd_targets *tg;
  const float *params;     /* the one parameter buffer ... */
  float *grads;            /* ... and its gradient */
  int global_rows;         /* rows of the global batch: the loss is a mean over them */
} kd_term_step;

typedef struct kd_term kd_term;

typedef struct kd_term_ops {
  /* This rank's share of the loss (its rows' sum, weighted) into *loss;
   * the gradient of the term's parameters accumulated into s->grads; the
   * gradient for the model's hidden state left in t->inject. */
  int (*forward_backward)(kd_term *t, const kd_term_step *s, double *loss, kd_err *e);
  /* Initial parameters from the run's seed (rank-independent). */
  void (*init_params)(kd_term *t, float *params, uint64_t seed);
  void (*destroy)(kd_term *t);
} kd_term_ops;

struct kd_term {
  const kd_term_ops *ops;
  char name[16];           /* metrics column and /aux/<name>/ group */
  char summary[160];       /* the term as the banner's loss line shows it */
  const char *alone_note;  /* the epoch line's note while the term trains alone */
  int alone_epochs;        /* the first E epochs train the term alone (and the layers below it) */
  int layer;               /* the student's hidden layer it reads */
  int n_views;
  kd_param_view views[KD_TERM_MAX_VIEWS];  /* offsets into the one buffer once placed */
  size_t n_params;
  kd_inject inject;        /* set by forward_backward */
  void *impl;
};

/* Place the term's parameters at offset `base` of the one buffer. */
void kd_term_place(kd_term *t, size_t base);
void kd_term_free(kd_term *t);

#endif
