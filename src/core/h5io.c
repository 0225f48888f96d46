#include "core/h5io.h"
#include "core/half.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void kd_h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/* Debian's parallel HDF5 is built without its thread-safety lock: a
 * process with a reader thread serialises HDF5 calls on this one. */
static pthread_mutex_t h5_lock = PTHREAD_MUTEX_INITIALIZER;
void kd_h5_lock(void) { pthread_mutex_lock(&h5_lock); }
void kd_h5_unlock(void) { pthread_mutex_unlock(&h5_lock); }

static herr_t first_desc(unsigned n, const H5E_error2_t *err, void *data) {
  char *buf = data;
  if (n == 0 && err->desc) snprintf(buf, 256, "%s", err->desc);
  return 0;
}

/* The innermost HDF5 error message, for appending to ours. */
static const char *h5_reason(char *buf) {
  buf[0] = '\0';
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, first_desc, buf);
  H5Eclear2(H5E_DEFAULT);
  if (!buf[0]) snprintf(buf, 256, "unknown HDF5 error");
  return buf;
}

int64_t kd_h5_count(const int64_t dims[KD_H5_MAX_DIMS]) {
  int64_t n = 1;
  for (int i = 0; i < KD_H5_MAX_DIMS; i++) n *= dims[i];
  return n;
}

hid_t kd_h5_f16_type(void) {
  /* IEEE binary16, little-endian, as numpy's float16 (and h5py) store it */
  hid_t t = H5Tcopy(H5T_IEEE_F32LE);
  H5Tset_fields(t, 15, 10, 5, 0, 10);
  H5Tset_size(t, 2);
  H5Tset_ebias(t, 15);
  H5Tset_precision(t, 16);
  return t;
}

hid_t kd_h5_half_mem_type(hid_t f, const char *ds) {
  hid_t d = H5Dopen2(f, ds, H5P_DEFAULT), ft = d >= 0 ? H5Dget_type(d) : -1, mt = H5I_INVALID_HID;
  size_t spos, epos, esize, mpos, msize;
  if (ft >= 0 && H5Tget_class(ft) == H5T_FLOAT && H5Tget_size(ft) == 2 &&
      H5Tget_fields(ft, &spos, &epos, &esize, &mpos, &msize) >= 0 && spos == 15 && epos == 10 && esize == 5 &&
      mpos == 0 && msize == 10 && H5Tget_ebias(ft) == 15) {
    mt = H5Tcopy(ft);
    H5Tset_order(mt, H5T_ORDER_LE);
  }
  if (ft >= 0) H5Tclose(ft);
  if (d >= 0) H5Dclose(d);
  H5Eclear2(H5E_DEFAULT);
  return mt;
}

size_t kd_h5_type_size(hid_t f, const char *ds) {
  hid_t d = H5Dopen2(f, ds, H5P_DEFAULT), ft = d >= 0 ? H5Dget_type(d) : -1;
  const size_t n = ft >= 0 ? H5Tget_size(ft) : 0;
  if (ft >= 0) H5Tclose(ft);
  if (d >= 0) H5Dclose(d);
  H5Eclear2(H5E_DEFAULT);
  return n;
}

int kd_h5_create(hid_t *file, const char *path, kd_err *e) {
  *file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (*file < 0) {
    H5Eclear2(H5E_DEFAULT);
    return kd_fail(e, KD_ERR_RUNTIME, "%s: cannot create (does the directory exist and is it writable?)", path);
  }
  return KD_OK;
}

int kd_h5_close(hid_t file, const char *path, int rc, kd_err *e) {
  if (file >= 0 && H5Fclose(file) < 0 && !rc) rc = kd_fail(e, KD_ERR_RUNTIME, "%s: closing failed (disk full?)", path);
  return rc;
}

int kd_h5_open_ro(hid_t *file, const char *path, kd_err *e) {
  char why[256];
  *file = H5I_INVALID_HID;
  if (access(path, R_OK) != 0)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: cannot read the file (%s)", path,
                   access(path, F_OK) ? "no such file" : "permission denied");
  htri_t is = H5Fis_hdf5(path);
  if (is <= 0) {
    h5_reason(why);
    return kd_fail(e, KD_ERR_RUNTIME, "%s: not an HDF5 file", path);
  }
  *file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (*file < 0)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: cannot open as HDF5 (%s)", path, h5_reason(why));
  return KD_OK;
}

int kd_h5_exists(hid_t file, const char *dset) {
  /* Check each path component: H5Lexists fails on a missing parent. */
  char buf[512];
  snprintf(buf, sizeof buf, "%s", dset);
  for (char *p = buf + 1; ; p++) {
    if (*p == '/' || *p == '\0') {
      char c = *p;
      *p = '\0';
      if (H5Lexists(file, buf, H5P_DEFAULT) <= 0) { H5Eclear2(H5E_DEFAULT); return 0; }
      if (!c) break;
      *p = c;
    }
  }
  return 1;
}

static int open_dataset(hid_t file, const char *path, const char *dset, hid_t *d,
                        kd_err *e) {
  char why[256];
  if (!kd_h5_exists(file, dset))
    return kd_fail(e, KD_ERR_RUNTIME, "%s: dataset %s is missing", path, dset);
  *d = H5Dopen2(file, dset, H5P_DEFAULT);
  if (*d < 0) return kd_fail(e, KD_ERR_RUNTIME, "%s: cannot open dataset %s (%s)", path, dset, h5_reason(why));
  return KD_OK;
}

int kd_h5_shape(hid_t file, const char *path, const char *dset, int *ndims,
                int64_t dims[KD_H5_MAX_DIMS], kd_err *e) {
  hid_t d = H5I_INVALID_HID;
  if (open_dataset(file, path, dset, &d, e)) return e->code;
  hid_t s = H5Dget_space(d);
  hid_t t = H5Dget_type(d);
  int rc = KD_OK;
  H5T_class_t cls = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
  int nd = s >= 0 ? H5Sget_simple_extent_ndims(s) : -1;
  hsize_t hd[H5S_MAX_RANK];
  if (s < 0 || t < 0 || nd < 0) {
    char why[256];
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: cannot read the shape of %s (%s)", path, dset, h5_reason(why));
  } else if (cls != H5T_INTEGER && cls != H5T_FLOAT) {
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: dataset %s does not hold numbers (HDF5 type class %d)", path, dset, (int)cls);
  } else if (nd < 1 || nd > KD_H5_MAX_DIMS) {
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: dataset %s has %d dimensions; kd reads datasets of 1 to %d", path, dset, nd,
                 KD_H5_MAX_DIMS);
  } else {
    H5Sget_simple_extent_dims(s, hd, NULL);
    *ndims = nd;
    for (int i = 0; i < KD_H5_MAX_DIMS; i++) dims[i] = i < nd ? (int64_t)hd[i] : 1;
  }
  if (t >= 0) H5Tclose(t);
  if (s >= 0) H5Sclose(s);
  H5Dclose(d);
  return rc;
}

int kd_h5_is_float(hid_t file, const char *dset) {
  if (!kd_h5_exists(file, dset)) return 0;
  hid_t d = H5Dopen2(file, dset, H5P_DEFAULT);
  if (d < 0) {
    H5Eclear2(H5E_DEFAULT);
    return 0;
  }
  hid_t t = H5Dget_type(d);
  int f = t >= 0 && H5Tget_class(t) == H5T_FLOAT;
  if (t >= 0) H5Tclose(t);
  H5Dclose(d);
  return f;
}

static int check_filters(hid_t d, const char *path, const char *dset, kd_err *e) {
  hid_t pl = H5Dget_create_plist(d);
  if (pl < 0) return KD_OK;
  int nf = H5Pget_nfilters(pl);
  int rc = KD_OK;
  for (int i = 0; i < nf && rc == KD_OK; i++) {
    unsigned flags;
    size_t nelem = 0;
    char name[128] = "";
    unsigned cfg;
    H5Z_filter_t id = H5Pget_filter2(pl, (unsigned)i, &flags, &nelem, NULL, sizeof name, name, &cfg);
    if (id < 0) continue;
    if (H5Zfilter_avail(id) <= 0) {
      H5Eclear2(H5E_DEFAULT);
      rc = kd_fail(e, KD_ERR_RUNTIME,
                   "%s: dataset %s is compressed with HDF5 filter %d ('%s'), which this HDF5 "
                   "cannot load; point HDF5_PLUGIN_PATH at a directory holding its plugin",
                   path, dset, (int)id, name[0] ? name : "unnamed");
    }
  }
  H5Pclose(pl);
  return rc;
}

int kd_h5_read_rows(hid_t file, const char *path, const char *dset,
                    int64_t row0, int64_t nrows, hid_t mem_type, void *buf,
                    kd_err *e) {
  int nd;
  int64_t dims[KD_H5_MAX_DIMS];
  if (kd_h5_shape(file, path, dset, &nd, dims, e)) return e->code;
  if (row0 < 0 || nrows < 0 || row0 + nrows > dims[0])
    return kd_fail(e, KD_ERR_RUNTIME, "%s: rows [%lld, %lld) are outside dataset %s of %lld rows", path,
                   (long long)row0, (long long)(row0 + nrows), dset, (long long)dims[0]);
  if (nrows == 0) return KD_OK;
  hid_t d = H5I_INVALID_HID;
  if (open_dataset(file, path, dset, &d, e)) return e->code;
  if (check_filters(d, path, dset, e)) { H5Dclose(d); return e->code; }
  hsize_t start[KD_H5_MAX_DIMS] = {(hsize_t)row0, 0, 0, 0}, count[KD_H5_MAX_DIMS];
  count[0] = (hsize_t)nrows;
  for (int i = 1; i < KD_H5_MAX_DIMS; i++) count[i] = (hsize_t)dims[i];
  hid_t fs = H5Dget_space(d);
  hid_t ms = H5Screate_simple(nd, count, NULL);
  int rc = KD_OK;
  char why[256];
  if (fs < 0 || ms < 0 || H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0)
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: cannot select rows of %s (%s)", path, dset, h5_reason(why));
  else if (H5Dread(d, mem_type, ms, fs, H5P_DEFAULT, buf) < 0)
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: reading rows [%lld, %lld) of %s failed (%s)", path,
                 (long long)row0, (long long)(row0 + nrows), dset, h5_reason(why));
  if (ms >= 0) H5Sclose(ms);
  if (fs >= 0) H5Sclose(fs);
  H5Dclose(d);
  return rc;
}

static int write_ds(hid_t file, const char *path, const char *dset, int ndims,
                    const int64_t *dims, hid_t file_type, hid_t mem_type,
                    const void *data, kd_err *e) {
  char why[256];
  hsize_t hd[KD_H5_MAX_DIMS];
  if (ndims < 1 || ndims > KD_H5_MAX_DIMS)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: dataset %s: %d dimensions (kd writes 1 to %d)", path, dset, ndims, KD_H5_MAX_DIMS);
  for (int i = 0; i < ndims; i++) hd[i] = (hsize_t)dims[i];
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  if (lcpl >= 0) H5Pset_create_intermediate_group(lcpl, 1);
  hid_t s = H5Screate_simple(ndims, hd, NULL);
  hid_t d = (s >= 0 && lcpl >= 0) ? H5Dcreate2(file, dset, file_type, s, lcpl, H5P_DEFAULT, H5P_DEFAULT) : -1;
  int rc = KD_OK;
  if (d < 0)
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: cannot create dataset %s (%s)", path, dset, h5_reason(why));
  else if (H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: writing dataset %s failed (%s)", path, dset, h5_reason(why));
  if (d >= 0) H5Dclose(d);
  if (s >= 0) H5Sclose(s);
  if (lcpl >= 0) H5Pclose(lcpl);
  return rc;
}

int kd_h5_write(hid_t file, const char *path, const char *dset, int ndims, const int64_t *dims, hid_t file_type,
                hid_t mem_type, const void *data, kd_err *e) {
  return write_ds(file, path, dset, ndims, dims, file_type, mem_type, data, e);
}

int kd_h5_write_f32(hid_t file, const char *path, const char *dset, int ndims,
                    const int64_t *dims, const float *data, kd_err *e) {
  return write_ds(file, path, dset, ndims, dims, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, data, e);
}

int kd_h5_write_i32(hid_t file, const char *path, const char *dset, int ndims,
                    const int64_t *dims, const int32_t *data, kd_err *e) {
  return write_ds(file, path, dset, ndims, dims, H5T_STD_I32LE, H5T_NATIVE_INT32, data, e);
}

/* Attribute `name` on the object at opath: a scalar (n = 0) or a 1-D array
 * of n values, stored as ftype from memory of mtype. */
static int write_attr(hid_t obj, const char *opath, const char *name, hid_t ftype, hid_t mtype, const void *val,
                      int n, kd_err *e) {
  char why[256];
  hsize_t d = (hsize_t)n;
  hid_t s = n > 0 ? H5Screate_simple(1, &d, NULL) : H5Screate(H5S_SCALAR);
  hid_t a = s >= 0 ? H5Acreate_by_name(obj, opath, name, ftype, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : -1;
  int rc = KD_OK;
  if (a < 0 || H5Awrite(a, mtype, val) < 0)
    rc = kd_fail(e, KD_ERR_RUNTIME, "cannot write attribute %s on %s (%s)", name, opath, h5_reason(why));
  if (a >= 0) H5Aclose(a);
  if (s >= 0) H5Sclose(s);
  return rc;
}

int kd_h5_attr_str(hid_t obj, const char *path, const char *name,
                   const char *value, kd_err *e) {
  /* Variable-length UTF-8: h5py reads it back as a Python str. */
  hid_t t = H5Tcopy(H5T_C_S1);
  if (t < 0) return kd_fail(e, KD_ERR_RUNTIME, "cannot make a string type for attribute %s", name);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  int rc = write_attr(obj, path, name, t, t, &value, 0, e);
  H5Tclose(t);
  return rc;
}

int kd_h5_attr_i64(hid_t obj, const char *path, const char *name, int64_t value,
                   kd_err *e) {
  return write_attr(obj, path, name, H5T_NATIVE_INT64, H5T_NATIVE_INT64, &value, 0, e);
}

int kd_h5_attr_f64(hid_t obj, const char *path, const char *name, double value,
                   kd_err *e) {
  return write_attr(obj, path, name, H5T_NATIVE_DOUBLE, H5T_NATIVE_DOUBLE, &value, 0, e);
}

static hid_t open_attr(hid_t file, const char *path, const char *obj, const char *name, kd_err *e) {
  if (H5Aexists_by_name(file, obj, name, H5P_DEFAULT) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    kd_fail(e, KD_ERR_RUNTIME, "%s: attribute %s of %s is missing", path, name, obj);
    return H5I_INVALID_HID;
  }
  hid_t a = H5Aopen_by_name(file, obj, name, H5P_DEFAULT, H5P_DEFAULT);
  if (a < 0) {
    char why[256];
    kd_fail(e, KD_ERR_RUNTIME, "%s: cannot open attribute %s of %s (%s)", path, name, obj, h5_reason(why));
  }
  return a;
}

int kd_h5_get_attr_str(hid_t file, const char *path, const char *obj,
                       const char *name, char *buf, size_t size, kd_err *e) {
  hid_t a = open_attr(file, path, obj, name, e);
  if (a < 0) return e->code;
  hid_t ft = H5Aget_type(a);
  int rc = KD_OK;
  buf[0] = '\0';
  if (ft < 0 || H5Tget_class(ft) != H5T_STRING) {
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: attribute %s of %s is not a string", path, name, obj);
  } else if (H5Tis_variable_str(ft) > 0) {
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, H5T_VARIABLE);
    H5Tset_cset(mt, H5Tget_cset(ft));
    char *v = NULL;
    if (H5Aread(a, mt, &v) < 0 || !v) {
      rc = kd_fail(e, KD_ERR_RUNTIME, "%s: cannot read attribute %s of %s", path, name, obj);
    } else {
      snprintf(buf, size, "%s", v);
      hid_t sp = H5Aget_space(a);
      H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, &v);
      H5Sclose(sp);
    }
    H5Tclose(mt);
  } else {
    size_t n = H5Tget_size(ft);
    char *tmp = malloc(n + 1);
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, n + 1);
    if (!tmp || H5Aread(a, mt, tmp) < 0) {
      rc = kd_fail(e, KD_ERR_RUNTIME, "%s: cannot read attribute %s of %s", path, name, obj);
    } else {
      tmp[n] = '\0';
      snprintf(buf, size, "%s", tmp);
    }
    free(tmp);
    H5Tclose(mt);
  }
  if (ft >= 0) H5Tclose(ft);
  H5Aclose(a);
  return rc;
}

static int get_num_attr(hid_t file, const char *path, const char *obj, const char *name, hid_t mt, void *v,
                        int n, kd_err *e) {
  hid_t a = open_attr(file, path, obj, name, e);
  if (a < 0) return e->code;
  hid_t sp = H5Aget_space(a);
  hssize_t cnt = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
  int rc = KD_OK;
  if (cnt != n)
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: attribute %s of %s holds %lld values, expected %d", path, name, obj,
                 (long long)cnt, n);
  else if (H5Aread(a, mt, v) < 0)
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: cannot read attribute %s of %s as a number", path, name, obj);
  if (sp >= 0) H5Sclose(sp);
  H5Aclose(a);
  return rc;
}

int kd_h5_get_attr_i64(hid_t file, const char *path, const char *obj,
                       const char *name, int64_t *value, kd_err *e) {
  return get_num_attr(file, path, obj, name, H5T_NATIVE_INT64, value, 1, e);
}

int kd_h5_get_attr_f64(hid_t file, const char *path, const char *obj,
                       const char *name, double *value, kd_err *e) {
  return get_num_attr(file, path, obj, name, H5T_NATIVE_DOUBLE, value, 1, e);
}

int kd_h5_get_attr_f64_array(hid_t file, const char *path, const char *obj,
                             const char *name, double *values, int n, kd_err *e) {
  return get_num_attr(file, path, obj, name, H5T_NATIVE_DOUBLE, values, n, e);
}

int kd_h5_attr_f64_array(hid_t obj, const char *path, const char *name,
                         const double *values, int n, kd_err *e) {
  return write_attr(obj, path, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, values, n, e);
}

typedef struct each_ctx {
  hid_t file;
  const char *path, *obj;
  kd_h5_attr_fn fn;
  void *ctx;
  kd_err *e;
  int rc;
} each_ctx;

static herr_t each_attr(hid_t loc, const char *name, const H5A_info_t *info, void *data) {
  (void)loc;
  (void)info;
  each_ctx *c = data;
  char val[4096];
  if (kd_h5_get_attr_str(c->file, c->path, c->obj, name, val, sizeof val, c->e)) {
    c->rc = c->e->code;
    return 1;
  }
  c->rc = c->fn(name, val, c->ctx);
  return c->rc ? 1 : 0;
}

int kd_h5_each_str_attr(hid_t file, const char *path, const char *obj,
                        kd_h5_attr_fn fn, void *ctx, kd_err *e) {
  hid_t o = H5Oopen(file, obj, H5P_DEFAULT);
  if (o < 0) {
    char why[256];
    return kd_fail(e, KD_ERR_RUNTIME, "%s: cannot open %s (%s)", path, obj, h5_reason(why));
  }
  each_ctx c = {file, path, obj, fn, ctx, e, KD_OK};
  hsize_t idx = 0;
  herr_t r = H5Aiterate2(o, H5_INDEX_NAME, H5_ITER_INC, &idx, each_attr, &c);
  H5Oclose(o);
  if (c.rc) return c.rc;
  if (r < 0) return kd_fail(e, KD_ERR_RUNTIME, "%s: cannot list the attributes of %s", path, obj);
  return KD_OK;
}

int kd_h5_create_dataset(hid_t f, const char *path, const char *ds, int ndims, const int64_t *dims, hid_t ty,
                           kd_err *e) {
  if (ndims < 1 || ndims > KD_H5_MAX_DIMS)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: dataset %s cannot have %d dimensions", path, ds, ndims);
  hsize_t d[KD_H5_MAX_DIMS];
  for (int i = 0; i < ndims; i++) d[i] = (hsize_t)dims[i];
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  const int inter = lcpl >= 0 && H5Pset_create_intermediate_group(lcpl, 1) >= 0;
  hid_t s = H5Screate_simple(ndims, d, NULL);
  hid_t ds_id = inter && s >= 0 && ty >= 0 ? H5Dcreate2(f, ds, ty, s, lcpl, H5P_DEFAULT, H5P_DEFAULT) : -1;
  if (s >= 0) H5Sclose(s);
  if (lcpl >= 0) H5Pclose(lcpl);
  if (ds_id < 0) return kd_fail(e, KD_ERR_RUNTIME, "%s: cannot create dataset %s", path, ds);
  H5Dclose(ds_id);
  return KD_OK;
}

/* Rows [row0, row0 + n) of an open dataset from memory of type mt. */
static int write_rows_of(hid_t d, hid_t mt, int64_t row0, int64_t n, const void *v) {
  hid_t fs = H5Dget_space(d);
  hsize_t dims[KD_H5_MAX_DIMS], start[KD_H5_MAX_DIMS] = {0}, count[KD_H5_MAX_DIMS];
  const int nd = fs >= 0 ? H5Sget_simple_extent_dims(fs, dims, NULL) : -1;
  for (int i = 0; i < nd; i++) count[i] = dims[i];
  start[0] = (hsize_t)row0;
  count[0] = (hsize_t)n;
  hid_t ms = nd > 0 ? H5Screate_simple(nd, count, NULL) : -1;
  const int ok = fs >= 0 && ms >= 0 && H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) >= 0 &&
                 H5Dwrite(d, mt, ms, fs, H5P_DEFAULT, v) >= 0;
  if (ms >= 0) H5Sclose(ms);
  if (fs >= 0) H5Sclose(fs);
  return ok;
}

int kd_h5_write_rows_typed(hid_t f, const char *path, const char *ds, int64_t row0, int64_t n, hid_t mem_type,
                           const void *v, kd_err *e) {
  if (n == 0) return KD_OK;
  hid_t d = H5Dopen2(f, ds, H5P_DEFAULT);
  const int ok = d >= 0 && write_rows_of(d, mem_type, row0, n, v);
  if (d >= 0) H5Dclose(d);
  if (!ok)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: writing rows [%lld, %lld) of %s failed (disk full?)", path, (long long)row0,
                   (long long)(row0 + n), ds);
  return KD_OK;
}

int kd_h5_write_rows(hid_t f, const char *path, const char *ds, int64_t row0, int64_t n, const float *v, kd_err *e) {
  if (n == 0) return KD_OK;
  hid_t d = H5Dopen2(f, ds, H5P_DEFAULT);
  hid_t ft = d >= 0 ? H5Dget_type(d) : -1;
  const int half = ft >= 0 && H5Tget_class(ft) == H5T_FLOAT && H5Tget_size(ft) == 2;
  if (ft >= 0) H5Tclose(ft);
  size_t cells = (size_t)n;
  if (d >= 0) { /* values in the rows */
    hid_t fs = H5Dget_space(d);
    hsize_t dims[KD_H5_MAX_DIMS];
    const int nd = fs >= 0 ? H5Sget_simple_extent_dims(fs, dims, NULL) : 0;
    for (int i = 1; i < nd; i++) cells *= (size_t)dims[i];
    if (fs >= 0) H5Sclose(fs);
  }
  uint16_t *h = half ? kd_malloc(sizeof(uint16_t) * cells, "float16 logits", e) : NULL;
  for (size_t i = 0; h && i < cells; i++) h[i] = kd_float_to_half(v[i]);
  hid_t mt = half ? kd_h5_f16_type() : H5Tcopy(H5T_NATIVE_FLOAT);
  const int ok = d >= 0 && (!half || h) && write_rows_of(d, mt, row0, n, half ? (const void *)h : (const void *)v);
  free(h);
  H5Tclose(mt);
  if (d >= 0) H5Dclose(d);
  if (!ok && !e->code)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: writing rows [%lld, %lld) of %s failed (disk full?)", path, (long long)row0,
                   (long long)(row0 + n), ds);
  return e->code;
}
