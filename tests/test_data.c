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
#include "kd/h5io.h"

static char dir[1024];

static const char *fx(const char *name) {
  static char buf[4][1200];
  static int k = 0;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
  return buf[k];
}

static void compare(const char *name, int64_t lo, int64_t hi) {
  kd_err e;
  kd_err_clear(&e);
  kd_split ref, got;
  int rc = kd_split_load(&ref, fx("ref.h5"), fx("ref.h5"), "train", lo, hi, &e);
  CHECK(rc == KD_OK, "ref: %s", e.msg);
  rc = kd_split_load(&got, fx(name), fx(name), "train", lo, hi, &e);
  CHECK(rc == KD_OK, "%s: %s", name, e.msg);
  if (rc) { kd_split_free(&ref); return; }
  CHECK(got.n == hi - lo && got.row0 == lo && got.dim == ref.dim && got.classes == ref.classes,
        "%s: shape n=%lld dim=%d classes=%d", name, (long long)got.n, got.dim, got.classes);
  CHECK(memcmp(got.x, ref.x, sizeof(float) * got.n * got.dim) == 0, "%s rows [%lld,%lld): x differs", name,
        (long long)lo, (long long)hi);
  CHECK(memcmp(got.y, ref.y, sizeof(int32_t) * got.n) == 0, "%s: y differs", name);
  CHECK(memcmp(got.logits, ref.logits, sizeof(float) * got.n * got.classes) == 0, "%s: logits differ", name);
  CHECK(kd_split_validate(&got, 4, 0, fx(name), fx(name), &e) == KD_OK, "%s: validate: %s", name, e.msg);
  kd_split_free(&ref);
  kd_split_free(&got);
}

static void expect_error(const char *data, const char *teacher, const char *needle) {
  kd_err e;
  kd_err_clear(&e);
  kd_split s;
  int rc = kd_split_load(&s, data, teacher, "train", 0, 5, &e);
  CHECK(rc == KD_ERR_RUNTIME, "%s: expected a data error, got %d", data, rc);
  CHECK(strstr(e.msg, needle) != NULL, "message '%s' lacks '%s'", e.msg, needle);
  if (!rc) kd_split_free(&s);
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

  /* Validation names the file, dataset and global row. */
  kd_err e;
  kd_err_clear(&e);
  kd_split s;
  CHECK(kd_split_load(&s, fx("ref.h5"), NULL, "train", 10, 20, &e) == KD_OK, "%s", e.msg);
  s.y[3] = 9;
  CHECK(kd_split_validate(&s, 4, 0, fx("ref.h5"), NULL, &e) == KD_ERR_RUNTIME, "label 9 accepted");
  CHECK(strstr(e.msg, "row 13") && strstr(e.msg, "/train/y"), "message: %s", e.msg);
  kd_err_clear(&e);
  s.y[3] = -1;
  CHECK(kd_split_validate(&s, 4, 0, fx("ref.h5"), NULL, &e) == KD_ERR_RUNTIME, "-1 accepted without teacher");
  kd_err_clear(&e);
  CHECK(kd_split_validate(&s, 4, 1, fx("ref.h5"), NULL, &e) == KD_OK, "-1 refused with teacher: %s", e.msg);
  s.x[7] = NAN;
  CHECK(kd_split_validate(&s, 4, 1, fx("ref.h5"), NULL, &e) == KD_ERR_RUNTIME, "NaN accepted");
  CHECK(strstr(e.msg, "NaN") && strstr(e.msg, "row 11"), "message: %s", e.msg);
  kd_split_free(&s);
  return check_summary("test_data");
}
