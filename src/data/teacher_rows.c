#define _GNU_SOURCE /* realpath */
/* The teacher rows of a two-tokenization file as a data file of their own (data/align.h): a small file of
 * external links to the rows and a copy of the teacher's record, so kd logits reads the teacher's tokens through
 * the same readers as any data file. */
#include <limits.h>
#include <stdio.h>
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

/* The view at `view` from the open data file d (path abs). */
static int write_view(const char *view, hid_t d, const char *abs, const char *data, kd_err *e) {
  if (!kd_h5_exists(d, "/train/teacher_tokens") || !kd_h5_exists(d, "/teacher_tokenizer"))
    return kd_fail(e, KD_ERR_USAGE, "kd logits --rows teacher: %s has no teacher rows (/train/teacher_tokens and "
                   "/teacher_tokenizer): import it with kd import text --teacher-tokenizer B", data);
  hid_t v;
  if (kd_h5_create(&v, view, e)) return e->code;
  const char *splits[3] = {"train", "valid", "test"};
  int rc = KD_OK;
  for (int s = 0; s < 3 && !rc; s++) rc = split_links(v, d, view, abs, splits[s], e);
  /* the record is copied, not linked: its variable-length attributes do not read through an external link */
  kd_tokenizer t;
  int has = 0;
  if (!rc && !(rc = kd_tokenizer_read_at(&t, abs, "/teacher_tokenizer", &has, e))) {
    rc = kd_tokenizer_write(v, view, &t, e);
    kd_tokenizer_free(&t);
  }
  return kd_h5_close(v, view, rc, e);
}

int kd_teacher_rows_view(const char *view, const char *data, kd_err *e) {
  char abs[PATH_MAX];
  hid_t d = H5I_INVALID_HID;
  int rc = realpath(data, abs) ? KD_OK : kd_fail(e, KD_ERR_RUNTIME, "%s: cannot resolve its path", data);
  if (!rc) rc = kd_h5_open_ro(&d, abs, e);
  if (!rc) rc = write_view(view, d, abs, data, e);
  if (d >= 0) H5Fclose(d);
  if (rc) remove(view);
  return rc;
}
