#include "kd/weights.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kd/h5io.h"

int kd_fsync_path(const char *path, kd_err *e) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return kd_fail(e, KD_ERR_RUNTIME, "%s: cannot open for fsync (%s)", path, strerror(errno));
  int rc = fsync(fd);
  int err = errno;
  close(fd);
  /* Some file systems refuse fsync on directories (EINVAL): not an error. */
  if (rc != 0 && err != EINVAL)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: fsync failed (%s)", path, strerror(err));
  return KD_OK;
}

int kd_write_views(hid_t f, const char *path, const char *group, const kd_param_view *views, int n,
                   const float *base, kd_err *e) {
  for (int i = 0; i < n; i++) {
    const kd_param_view *v = &views[i];
    char ds[128];
    snprintf(ds, sizeof ds, "%s/%s", group, v->name);
    int64_t dims[2] = {v->rows, v->cols};
    if (kd_h5_write_f32(f, path, ds, v->cols == 1 ? 1 : 2, dims, base + v->offset, e)) return e->code;
  }
  return KD_OK;
}

int kd_weights_write(const char *path, const kd_model *m, const char *activation,
                     kd_err *e) {
  char tmp[4300];
  snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
  hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0) return kd_fail(e, KD_ERR_RUNTIME, "%s: cannot create (check the directory is writable)", tmp);
  int rc = KD_OK;
  rc = kd_h5_attr_str(f, "/", "kd_format", "weights", e);
  if (!rc) rc = kd_h5_attr_i64(f, "/", "format_version", KD_FORMAT_VERSION, e);
  if (!rc) rc = kd_h5_attr_str(f, "/", "kd_version", KD_VERSION, e);
  if (!rc) rc = kd_h5_attr_str(f, "/", "family", m->family, e);
  if (!rc) rc = kd_h5_attr_str(f, "/", "student", m->spec, e);
  if (!rc) rc = kd_h5_attr_str(f, "/", "activation", activation, e);
  if (!rc) rc = kd_write_views(f, tmp, "/model", m->views, m->n_views, m->params, e);
  if (H5Fclose(f) < 0 && !rc) rc = kd_fail(e, KD_ERR_RUNTIME, "%s: closing failed (disk full?)", tmp);
  if (!rc) rc = kd_fsync_path(tmp, e);
  if (!rc && rename(tmp, path) != 0)
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: rename to %s failed (%s)", tmp, path, strerror(errno));
  if (rc) {
    unlink(tmp);
    return rc;
  }
  char dir[4300];
  snprintf(dir, sizeof dir, "%s", path);
  return kd_fsync_path(dirname(dir), e);
}

int kd_weights_read(const char *path, kd_model *m, kd_err *e) {
  hid_t f;
  if (kd_h5_open_ro(&f, path, e)) return e->code;
  int rc = KD_OK;
  for (int i = 0; i < m->n_views && !rc; i++) {
    const kd_param_view *v = &m->views[i];
    char ds[96];
    snprintf(ds, sizeof ds, "/model/%s", v->name);
    int nd;
    int64_t dims[2];
    rc = kd_h5_shape(f, path, ds, &nd, dims, e);
    if (!rc && (dims[0] != v->rows || dims[1] != v->cols))
      rc = kd_fail(e, KD_ERR_RUNTIME, "%s: %s is [%lld, %lld], the student %s needs [%d, %d]", path, ds,
                   (long long)dims[0], (long long)dims[1], m->spec, v->rows, v->cols);
    if (!rc) rc = kd_h5_read_rows(f, path, ds, 0, v->rows, H5T_NATIVE_FLOAT, m->params + v->offset, e);
  }
  H5Fclose(f);
  return rc;
}
