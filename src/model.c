#include "kd/model.h"

void kd_model_bind(kd_model *m, float *params, float *grads) {
  m->params = params;
  m->grads = grads;
}

void kd_model_free(kd_model *m) {
  if (m && m->ops && m->ops->destroy) m->ops->destroy(m);
}
