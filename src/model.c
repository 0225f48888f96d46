#include "kd/model.h"

#include <string.h>

#include "kd/mlp.h"

int kd_model_create(kd_model **m, const kd_model_spec *spec, int max_batch, kd_err *e) {
  *m = NULL;
  if (strcmp(spec->family, "mlp") == 0) {
    kd_mlp_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    if (kd_mlp_parse_spec(&cfg, spec->sizes, e)) return e->code;
    cfg.act = strcmp(spec->activation, "gelu") == 0 ? KD_ACT_GELU : KD_ACT_RELU;
    cfg.dropout = spec->dropout;
    cfg.init_xavier = spec->init_xavier;
    return kd_mlp_create(m, &cfg, max_batch, e);
  }
  return kd_fail(e, KD_ERR_USAGE, "student family '%s' is not known to kd %s", spec->family, KD_VERSION);
}
void kd_model_bind(kd_model *m, float *params, float *grads) {
  m->params = params;
  m->grads = grads;
}

void kd_model_free(kd_model *m) {
  if (m && m->ops && m->ops->destroy) m->ops->destroy(m);
}
