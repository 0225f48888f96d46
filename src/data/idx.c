#include "data/idx.h"

#include <errno.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "core/atomic.h"
#include "core/h5io.h"
#include "core/provenance.h"

static int read_exact(gzFile f, void *buf, size_t n, const char *path, const char *what, kd_err *e) {
  size_t got = 0;
  while (got < n) {
    unsigned want = (unsigned)(n - got > (1u << 30) ? (1u << 30) : n - got);
    int r = gzread(f, (char *)buf + got, want);
    if (r < 0) {
      int zerr;
      const char *msg = gzerror(f, &zerr);
      return kd_fail(e, KD_ERR_RUNTIME, "%s: reading the %s failed (%s)", path, what, msg);
    }
    if (r == 0)
      return kd_fail(e, KD_ERR_RUNTIME, "%s: file ends inside the %s (%zu of %zu bytes): truncated IDX file", path,
                     what, got, n);
    got += (size_t)r;
  }
  return KD_OK;
}

int kd_idx_read(kd_idx *out, const char *path, kd_err *e) {
  memset(out, 0, sizeof *out);
  if (access(path, R_OK) != 0)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: cannot read the file (%s)", path, strerror(errno));
  gzFile f = gzopen(path, "rb"); /* reads plain files as they are */
  if (!f) return kd_fail(e, KD_ERR_RUNTIME, "%s: cannot open (%s)", path, strerror(errno));
  unsigned char h[4];
  int rc = read_exact(f, h, 4, path, "IDX header", e);
  if (!rc && (h[0] != 0 || h[1] != 0))
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: not an IDX file (magic %02x%02x%02x%02x does not start with 0000)", path, h[0],
                 h[1], h[2], h[3]);
  if (!rc && h[2] != 0x08)
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: IDX element type 0x%02x is not supported (kd reads unsigned bytes, 0x08)", path,
                 h[2]);
  if (!rc && (h[3] < 1 || h[3] > 4))
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: IDX file with %d dimensions (kd reads 1 to 4)", path, h[3]);
  if (!rc) {
    out->ndims = h[3];
    out->count = 1;
    for (int i = 0; i < out->ndims && !rc; i++) {
      unsigned char d[4];
      rc = read_exact(f, d, 4, path, "IDX header", e);
      if (rc) break;
      out->dims[i] = ((int64_t)d[0] << 24) | ((int64_t)d[1] << 16) | ((int64_t)d[2] << 8) | d[3];
      if (out->dims[i] < 1 || out->dims[i] > (1 << 30))
        rc = kd_fail(e, KD_ERR_RUNTIME, "%s: IDX dimension %d is %lld", path, i, (long long)out->dims[i]);
      else
        out->count *= out->dims[i];
    }
  }
  if (!rc && out->count > ((int64_t)1 << 36))
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: IDX file claims %lld values", path, (long long)out->count);
  if (!rc) {
    out->data = kd_malloc((size_t)out->count, path, e);
    rc = out->data ? read_exact(f, out->data, (size_t)out->count, path, "IDX data", e) : e->code;
  }
  if (!rc) {
    char extra;
    if (gzread(f, &extra, 1) > 0)
      rc = kd_fail(e, KD_ERR_RUNTIME, "%s: data continues past the %lld values the IDX header declares", path,
                   (long long)out->count);
  }
  gzclose(f);
  if (rc) kd_idx_free(out);
  return rc;
}

void kd_idx_free(kd_idx *x) {
  free(x->data);
  x->data = NULL;
}

static int import_split(hid_t f, const char *out, const char *split, const char *img_path, const char *lab_path,
                        int64_t *rows, int *dim, kd_err *e) {
  kd_idx img, lab;
  if (kd_idx_read(&img, img_path, e)) return e->code;
  if (kd_idx_read(&lab, lab_path, e)) {
    kd_idx_free(&img);
    return e->code;
  }
  int rc = KD_OK;
  if (img.ndims < 2)
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: an images file needs at least 2 dimensions (count, pixels...), it has %d",
                 img_path, img.ndims);
  else if (lab.ndims != 1)
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: a labels file has 1 dimension, it has %d", lab_path, lab.ndims);
  else if (img.dims[0] != lab.dims[0])
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s has %lld images but %s has %lld labels", img_path, (long long)img.dims[0],
                 lab_path, (long long)lab.dims[0]);
  float *x = NULL;
  int32_t *y = NULL;
  const int64_t n = img.dims[0], d = n ? img.count / n : 0;
  if (!rc) {
    x = kd_malloc(sizeof(float) * (size_t)img.count, "imported images", e);
    y = kd_malloc(sizeof(int32_t) * (size_t)n, "imported labels", e);
    rc = e->code;
  }
  if (!rc) {
    for (int64_t i = 0; i < img.count; i++) x[i] = (float)img.data[i] / 255.0f; /* correctly rounded, as numpy computes x / 255 */
    for (int64_t i = 0; i < n; i++) y[i] = lab.data[i];
    char ds[64];
    int64_t dims[2] = {n, d};
    snprintf(ds, sizeof ds, "/%s/x", split);
    rc = kd_h5_write_f32(f, out, ds, 2, dims, x, e);
    snprintf(ds, sizeof ds, "/%s/y", split);
    if (!rc) rc = kd_h5_write_i32(f, out, ds, 1, dims, y, e);
    char grp[32];
    snprintf(grp, sizeof grp, "/%s", split);
    if (!rc && (kd_h5_attr_str(f, grp, "source_images", img_path, e) ||
                kd_h5_attr_str(f, grp, "source_labels", lab_path, e)))
      rc = e->code;
    *rows = n;
    *dim = (int)d;
  }
  free(x);
  free(y);
  kd_idx_free(&img);
  kd_idx_free(&lab);
  return rc;
}

int kd_import_idx(const kd_import_cfg *c, int64_t rows[2], int *dim, kd_err *e) {
  kd_h5_quiet();
  rows[0] = rows[1] = 0;
  if (!!c->test_images[0] != !!c->test_labels[0])
    return kd_fail(e, KD_ERR_USAGE, "kd import idx: --test-images and --test-labels go together");
  kd_atomic a;
  hid_t f = H5I_INVALID_HID;
  if (kd_atomic_begin(&a, c->out, e) || kd_h5_create(&f, a.tmp, e)) return e->code;
  int rc = import_split(f, a.tmp, "train", c->images, c->labels, &rows[0], dim, e);
  int tdim = 0;
  if (!rc && c->test_images[0]) rc = import_split(f, a.tmp, "test", c->test_images, c->test_labels, &rows[1], &tdim, e);
  if (!rc && c->test_images[0] && tdim != *dim)
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s has %d values per image but %s has %d", c->test_images, tdim, c->images, *dim);
  kd_provenance p = kd_provenance_of("data");
  p.generator = "kd import idx (inputs scaled to [0, 1])";
  if (!rc) rc = kd_provenance_write(f, a.tmp, &p, e);
  rc = kd_h5_close(f, a.tmp, rc, e);
  if (!rc) rc = kd_atomic_commit(&a, e);
  if (rc) kd_atomic_abort(&a);
  return rc;
}
