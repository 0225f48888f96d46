/* Auxiliary loss terms: losses beside the KD loss on the logits that read
 * the student's hidden states: FitNets hints (hint.c), and a Transformer's
 * attention relations and maps (attn.c) and hidden states (hidden.c). A term owns
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
#define KD_TERM_MAX_INJECT 32

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
   * gradients for the model's hidden states left in t->inject[0 .. n_inject). */
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
  int alone_only;          /* 1: after those epochs the term is off (TinyBERT's two stages) */
  int loss_is_mean;        /* 1: forward_backward gives this rank's share of the batch mean (not a sum over rows) */
  int layer;               /* the highest student layer it reads (what training it alone updates) */
  int n_views;
  kd_param_view views[KD_TERM_MAX_VIEWS];  /* offsets into the one buffer once placed */
  size_t n_params;
  kd_inject inject[KD_TERM_MAX_INJECT];    /* set by forward_backward */
  int n_inject;
  void *impl;
};

/* Place the term's parameters at offset `base` of the one buffer. */
void kd_term_place(kd_term *t, size_t base);
void kd_term_free(kd_term *t);

#endif
