#include "core/provenance.h"

#include <inttypes.h>
#include <stdio.h>

#include "core/h5io.h"

#define KD_FILE_FORMAT_VERSION 1

kd_provenance kd_provenance_of(const char *kind) {
  kd_provenance p = {kind, NULL, NULL, NULL, NULL, 0, 0, {-1, -1, -1}, -1, -1};
  return p;
}

static int opt_str(hid_t f, const char *name, const char *v, kd_err *e) {
  return v ? kd_h5_attr_str(f, "/", name, v, e) : KD_OK;
}

static int opt_i64(hid_t f, const char *name, int64_t v, kd_err *e) {
  return v >= 0 ? kd_h5_attr_i64(f, "/", name, v, e) : KD_OK;
}

int kd_provenance_write(hid_t f, const char *path, const kd_provenance *p, kd_err *e) {
  (void)path; /* the attribute writers name the object; the file is the caller's */
  char hex[32];
  snprintf(hex, sizeof hex, "%016" PRIx64, p->data_fingerprint);
  if (kd_h5_attr_str(f, "/", "kd_format", p->kind, e) ||
      kd_h5_attr_i64(f, "/", "format_version", KD_FILE_FORMAT_VERSION, e) ||
      kd_h5_attr_str(f, "/", "kd_version", KD_VERSION, e) || opt_str(f, "generator", p->generator, e) ||
      opt_str(f, "source_checkpoint", p->source_checkpoint, e) || opt_str(f, "source_student", p->source_student, e) ||
      opt_str(f, "source_data", p->source_data, e) ||
      (p->has_fingerprint && kd_h5_attr_str(f, "/", "data_fingerprint", hex, e)) ||
      opt_i64(f, "rows_train", p->rows[0], e) || opt_i64(f, "rows_valid", p->rows[1], e) ||
      opt_i64(f, "rows_test", p->rows[2], e) || opt_i64(f, "features_layer", p->features_layer, e) ||
      opt_i64(f, "seed", p->seed, e))
    return e->code;
  return KD_OK;
}
