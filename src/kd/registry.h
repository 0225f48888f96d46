/* The student families kd can build (src/models/registry.c: a table of
 * name, spec parser and constructor). `--student [family:]spec` names one;
 * a bare spec means the first family of the table, the MLP. */
#ifndef KD_REGISTRY_H
#define KD_REGISTRY_H

#include <stddef.h>

#include "kd/error.h"
#include "kd/model.h"

/* What a student is, as the command line and files give it. */
typedef struct kd_model_spec {
  char family[16];      /* registry name */
  char text[256];       /* the family's own spec text, e.g. "784-800-800-10" */
  char options[256];    /* family settings "key=value,...", e.g. "activation=relu,init=he" ("": defaults) */
  float dropout;        /* common to all families; training only */
  int frozen;           /* inference only (a teacher): no backward, the least activation memory; 2: also
                         * keep every layer's q/k/v and attention probabilities (kd_model_ops.tap) */
} kd_model_spec;

typedef struct kd_family {
  const char *name;
  const char *usage;              /* what its spec text looks like, for messages */
  const char *const *file_attrs;  /* root attributes of its files that complete the spec (NULL-terminated) */
  /* Check spec (text and options) and write the canonical text. */
  int (*parse)(const kd_model_spec *spec, char *canonical, size_t n, kd_err *e);
  /* Build the model, with activation buffers for max_batch rows (parameters are bound separately). */
  int (*create)(kd_model **m, const kd_model_spec *spec, int max_batch, kd_err *e);
  /* Rows a trainer's model holds at least (for evaluation's chunks): cheap
   * buffers for a classifier, 0 where a row's activations are large. */
  int min_train_rows;
  /* Settings the spec may carry after its own text as ",key=value" ("activation|init" for the MLP: --student
   * mlp:784-800-10,activation=gelu), moved into options by kd_model_spec_parse; NULL: none (a family whose text
   * is key=value pairs itself). */
  const char *spec_keys;
} kd_family;

/* NULL when unknown. */
const kd_family *kd_family_find(const char *name);
/* "[family:]text[,key=value...]" into spec->family, spec->text and, for the family's spec_keys, spec->options
 * (dropout untouched). */
int kd_model_spec_parse(kd_model_spec *spec, const char *student, kd_err *e);
/* Parse (check) the spec and build its model. */
int kd_model_create(kd_model **m, const kd_model_spec *spec, int max_batch, kd_err *e);
/* Option `key` of spec->options into val (1: found, 0: absent). */
int kd_spec_option(const kd_model_spec *spec, const char *key, char *val, size_t n);
/* Every key of spec->options is in keys ("a|b"); names the first that is not. */
int kd_spec_check_keys(const kd_model_spec *spec, const char *keys, kd_err *e);

#endif
