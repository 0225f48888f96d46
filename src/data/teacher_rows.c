#define _GNU_SOURCE /* realpath */
/* The teacher rows of a two-tokenization file as a data file of their own (data/align.h): a small file of
 * external links to the rows and a copy of the teacher's record, so kd logits reads the teacher's tokens through
 * the same readers as any data file. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/h5io.h"
#include "data/align.h"
#include "data/tokenizer.h"

static int link_to(hid_t v, const char *view, const char *target_file, const char *target, const char *name,
                   kd_err *e) {
  if (H5Lcreate_external(target_file, target, v, name, H5P_DEFAULT, H5P_DEFAULT) < 0)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: cannot link %s to %s:%s", view, name, target_file, target);
  return KD_OK;
}

static int split_links(hid_t v, hid_t d, const char *view, const char *abs, const char *split, kd_err *e) {
  char tt[64], tm[64], g[32], tk[64], mk[64];
  snprintf(tt, sizeof tt, "/%s/teacher_tokens", split);
  snprintf(tm, sizeof tm, "/%s/teacher_mask", split);
  if (!kd_h5_exists(d, tt)) return KD_OK;
  if (!kd_h5_exists(d, tm)) return kd_fail(e, KD_ERR_RUNTIME, "%s has %s but no %s (re-import it)", abs, tt, tm);
  snprintf(g, sizeof g, "/%s", split);
  snprintf(tk, sizeof tk, "/%s/tokens", split);
  snprintf(mk, sizeof mk, "/%s/mask", split);
  hid_t grp = H5Gcreate2(v, g, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (grp < 0) return kd_fail(e, KD_ERR_RUNTIME, "%s: cannot create %s", view, g);
  H5Gclose(grp);
  if (link_to(v, view, abs, tt, tk, e) || link_to(v, view, abs, tm, mk, e)) return e->code;
  return KD_OK;
}

int kd_teacher_rows_view(const char *view, const char *data, kd_err *e) {
  char abs[PATH_MAX];
  if (!realpath(data, abs)) return kd_fail(e, KD_ERR_RUNTIME, "%s: cannot resolve its path", data);
  hid_t d;
  if (kd_h5_open_ro(&d, abs, e)) return e->code;
  int rc = KD_OK;
  if (!kd_h5_exists(d, "/train/teacher_tokens") || !kd_h5_exists(d, "/teacher_tokenizer"))
    rc = kd_fail(e, KD_ERR_USAGE, "kd logits --rows teacher: %s has no teacher rows (/train/teacher_tokens and "
                 "/teacher_tokenizer): import it with kd import text --teacher-tokenizer B", data);
  hid_t v = H5I_INVALID_HID;
  if (!rc) rc = kd_h5_create(&v, view, e);
  const char *splits[3] = {"train", "valid", "test"};
  for (int s = 0; s < 3 && !rc; s++) rc = split_links(v, d, view, abs, splits[s], e);
  H5Fclose(d);
  /* the record is copied, not linked: its variable-length attributes do not read through an external link */
  kd_tokenizer t;
  int has = 0;
  if (!rc && !(rc = kd_tokenizer_read_at(&t, abs, "/teacher_tokenizer", &has, e))) {
    rc = kd_tokenizer_write(v, view, &t, e);
    kd_tokenizer_free(&t);
  }
  if (v >= 0) rc = kd_h5_close(v, view, rc, e);
  return rc;
}
