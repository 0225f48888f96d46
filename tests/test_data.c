/* Reading rows stored as float16/float64/int64/uint8/int16, gzip/shuffle/
 * szip/fletcher32, contiguous or chunked, gives the same rows as float32/
 * int32; a filter this HDF5 lacks, a missing file, a file that is not HDF5
 * and a teacher file for other data give clear errors. Argument: the
 * directory written by make_fixtures.py. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "kd/data.h"
#include "kd/teacher.h"
#include "core/h5io.h"
#include "core/half.h"

static char dir[1024];

static const char *fx(const char *name) {
  static char buf[4][1200];
  static int k = 0;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
  return buf[k];
}

/* The rows [lo, hi) of a file as a source and its teacher logits. */
typedef struct rows {
  kd_source *src;
  kd_teacher *t;
  kd_batch b;
  const float *logits;
  float *buf;
} rows;

static int load(rows *r, const char *data, const char *teacher, int64_t lo, int64_t hi, kd_err *e) {
  memset(r, 0, sizeof *r);
  kd_split_info info;
  int classes = 0;
  if (kd_source_probe(data, "train", &info, e)) return e->code;
  if (teacher && info.present && kd_teacher_probe(teacher, "train", data, info.rows, 0, &classes, e)) return e->code;
  if (kd_source_open(&r->src, data, "train", lo, hi, e)) return e->code;
  if (teacher && kd_teacher_open(&r->t, teacher, "train", lo, hi, info.rows, KD_TEACH_LOGITS, e)) return e->code;
  if (kd_batch_init(&r->b, KD_INPUT_FEATURES, hi - lo > 0 ? (int)(hi - lo) : 1, info.width, e)) return e->code;
  if (kd_source_gather_range(r->src, 0, (int)(hi - lo), &r->b, e)) return e->code;
  if (r->t) {
    r->logits = r->buf = malloc(sizeof(float) * (size_t)(hi - lo + 1) * kd_teacher_classes(r->t));
    if (kd_teacher_gather_range(r->t, 0, (int)(hi - lo), r->buf, e)) return e->code;
  }
  return KD_OK;
}

static void drop(rows *r) {
  free(r->buf);
  kd_batch_free(&r->b);
  kd_teacher_free(r->t);
  kd_source_free(r->src);
}

static int validate(const rows *r, int classes, int allow_unlabelled, kd_err *e) {
  if (kd_source_validate(r->src, classes, allow_unlabelled, e)) return e->code;
  return r->t ? kd_teacher_validate(r->t, e) : KD_OK;
}

static void compare(const char *name, int64_t lo, int64_t hi) {
  kd_err e;
  kd_err_clear(&e);
  rows ref, got;
  int rc = load(&ref, fx("ref.h5"), fx("ref.h5"), lo, hi, &e);
  CHECK(rc == KD_OK, "ref: %s", e.msg);
  rc = load(&got, fx(name), fx(name), lo, hi, &e);
  CHECK(rc == KD_OK, "%s: %s", name, e.msg);
  if (rc) { drop(&ref); drop(&got); return; }
  const int64_t n = kd_source_rows(got.src);
  const int dim = kd_source_width(got.src), classes = kd_teacher_classes(got.t);
  CHECK(n == hi - lo && kd_source_row0(got.src) == lo && dim == kd_source_width(ref.src) &&
        classes == kd_teacher_classes(ref.t),
        "%s: shape n=%lld dim=%d classes=%d", name, (long long)n, dim, classes);
  CHECK(memcmp(got.b.x, ref.b.x, sizeof(float) * n * dim) == 0, "%s rows [%lld,%lld): x differs", name,
        (long long)lo, (long long)hi);
  CHECK(memcmp(got.b.y, ref.b.y, sizeof(int32_t) * n) == 0, "%s: y differs", name);
  CHECK(memcmp(got.logits, ref.logits, sizeof(float) * n * classes) == 0, "%s: logits differ", name);
  CHECK(validate(&got, 4, 0, &e) == KD_OK, "%s: validate: %s", name, e.msg);
  drop(&ref);
  drop(&got);
}

static void expect_error(const char *data, const char *teacher, const char *needle) {
  kd_err e;
  kd_err_clear(&e);
  rows s;
  int rc = load(&s, data, teacher, 0, 5, &e);
  CHECK(rc == KD_ERR_RUNTIME, "%s: expected a data error, got %d", data, rc);
  CHECK(strstr(e.msg, needle) != NULL, "message '%s' lacks '%s'", e.msg, needle);
  drop(&s);
}

/* Rows of 3-D and 4-D datasets (sequence data: tokens [N, T], logits
 * [N, T, V], attention [N, H, T, T]); 5-D is refused by name. */
static void nd_datasets(void) {
  kd_err e;
  kd_err_clear(&e);
  hid_t f;
  CHECK(kd_h5_open_ro(&f, fx("nd.h5"), &e) == KD_OK, "%s", e.msg);
  int nd;
  int64_t dims[KD_H5_MAX_DIMS];
  CHECK(kd_h5_shape(f, fx("nd.h5"), "/t3", &nd, dims, &e) == KD_OK && nd == 3 && dims[0] == 5 && dims[1] == 3 &&
            dims[2] == 4 && dims[3] == 1 && kd_h5_count(dims) == 60,
        "t3 shape: %s", e.msg);
  int32_t t3[2 * 12];
  CHECK(kd_h5_read_rows(f, fx("nd.h5"), "/t3", 2, 2, H5T_NATIVE_INT32, t3, &e) == KD_OK, "t3 rows: %s", e.msg);
  int ok = 1;
  for (int i = 0; i < 24; i++) ok &= t3[i] == 24 + i;
  CHECK(ok, "t3 rows [2, 4) hold 24..47");
  float t4[3 * 12];
  CHECK(kd_h5_read_rows(f, fx("nd.h5"), "/t4", 1, 3, H5T_NATIVE_FLOAT, t4, &e) == KD_OK, "t4 rows: %s", e.msg);
  ok = 1;
  for (int i = 0; i < 36; i++) ok &= t4[i] == (float)(12 + i);
  CHECK(ok, "t4 rows [1, 4) hold 12..47");
  CHECK(kd_h5_shape(f, fx("nd.h5"), "/t5", &nd, dims, &e) == KD_ERR_RUNTIME && strstr(e.msg, "/t5 has 5 dimensions"),
        "5-D: %s", e.msg);
  H5Fclose(f);
}

/* float16 both ways: kd's conversions against numpy's bits. */
static void half_conversions(void) {
  kd_err e;
  kd_err_clear(&e);
  hid_t f;
  CHECK(kd_h5_open_ro(&f, fx("half.h5"), &e) == KD_OK, "%s", e.msg);
  int nd;
  int64_t d[KD_H5_MAX_DIMS];
  CHECK(kd_h5_shape(f, fx("half.h5"), "/f32", &nd, d, &e) == KD_OK, "%s", e.msg);
  float *v = malloc(sizeof(float) * (size_t)d[0]);
  int32_t *bits = malloc(sizeof(int32_t) * (size_t)d[0]);
  kd_h5_read_rows(f, fx("half.h5"), "/f32", 0, d[0], H5T_NATIVE_FLOAT, v, &e);
  kd_h5_read_rows(f, fx("half.h5"), "/f16_bits", 0, d[0], H5T_NATIVE_INT32, bits, &e);
  H5Fclose(f);
  int down = 0, up = 0;
  for (int64_t i = 0; i < d[0]; i++) {
    down += kd_float_to_half(v[i]) != (uint16_t)bits[i];
    const float back = kd_half_to_float((uint16_t)bits[i]), want = v[i];
    (void)want;
    up += kd_float_to_half(back) != (uint16_t)bits[i]; /* half -> float -> half is the identity */
  }
  CHECK(down == 0, "float -> half differs from numpy for %d of %lld values", down, (long long)d[0]);
  CHECK(up == 0, "half -> float -> half differs for %d values", up);
  CHECK(kd_half_to_float(0x3c00) == 1.0f && kd_half_to_float(0x0001) == 5.9604644775390625e-8f &&
            kd_half_to_float(0x7bff) == 65504.0f && isinf(kd_half_to_float(0x7c00)) && isnan(kd_half_to_float(0x7e00)),
        "half -> float of 1, the smallest subnormal, the largest normal, inf, NaN");
  free(v);
  free(bits);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: test_data FIXTURE_DIR\n");
    return 2;
  }
  snprintf(dir, sizeof dir, "%s", argv[1]);
  kd_h5_quiet();
  const char *variants[] = {"f16_gzip.h5", "f64_gzip_shuffle.h5", "u8.h5", "i16_chunked.h5", "f32_small_chunks.h5",
                            "szip.h5", "y_float_whole.h5"};
  for (size_t i = 0; i < sizeof variants / sizeof *variants; i++) {
    if (access(fx(variants[i]), F_OK) != 0) {
      printf("skipped %s: fixture not written (h5py without that filter)\n", variants[i]);
      continue;
    }
    compare(variants[i], 0, 37);
    compare(variants[i], 3, 20);
    compare(variants[i], 36, 37);
    compare(variants[i], 18, 18);
  }
  expect_error(fx("lzf.h5"), NULL, "32000");
  expect_error(fx("missing.h5"), NULL, "no such file");
  expect_error(fx("y_float_fraction.h5"), NULL, "not a whole-number class label");
  expect_error(fx("not_hdf5.h5"), NULL, "not an HDF5 file");
  expect_error(fx("ref.h5"), fx("short_logits.h5"), "made for other data");

  /* Validation names the file, dataset and global row: files with a bad
   * label or a NaN at row 13 / 11 of rows [10, 20). */
  kd_err e;
  kd_err_clear(&e);
  rows s;
  CHECK(load(&s, fx("label9.h5"), NULL, 10, 20, &e) == KD_OK, "%s", e.msg);
  CHECK(validate(&s, 4, 0, &e) == KD_ERR_RUNTIME, "label 9 accepted");
  CHECK(strstr(e.msg, "row 13") && strstr(e.msg, "/train/y"), "message: %s", e.msg);
  drop(&s);
  kd_err_clear(&e);
  CHECK(load(&s, fx("unlabelled.h5"), NULL, 10, 20, &e) == KD_OK, "%s", e.msg);
  CHECK(validate(&s, 4, 0, &e) == KD_ERR_RUNTIME, "-1 accepted without teacher");
  kd_err_clear(&e);
  CHECK(validate(&s, 4, 1, &e) == KD_OK, "-1 refused with teacher: %s", e.msg);
  drop(&s);
  CHECK(load(&s, fx("nan.h5"), NULL, 10, 20, &e) == KD_OK, "%s", e.msg);
  CHECK(validate(&s, 4, 1, &e) == KD_ERR_RUNTIME, "NaN accepted");
  CHECK(strstr(e.msg, "NaN") && strstr(e.msg, "row 11"), "message: %s", e.msg);
  drop(&s);
  nd_datasets();
  half_conversions();
  return check_summary("test_data");
}
