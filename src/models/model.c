#include "kd/model.h"

#include <string.h>

void kd_model_bind(kd_model *m, float *params, float *grads) {
  m->params = params;
  m->grads = grads;
}

void kd_model_free(kd_model *m) {
  if (m && m->ops && m->ops->destroy) m->ops->destroy(m);
}

const char *kd_model_attr_get(const kd_model *m, const char *name) {
  for (int i = 0; i < m->n_attrs; i++)
    if (strcmp(m->attrs[i].name, name) == 0) return m->attrs[i].value;
  return NULL;
}

/* Its address is the signal; its value is never read. */
const float kd_dlogits_in_head[1] = {0.0f};
