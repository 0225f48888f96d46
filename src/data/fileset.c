#define _POSIX_C_SOURCE 200809L /* strdup, strtok_r, glob */
#include "data/fileset.h"

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/h5io.h"
#include "core/rng.h"

int kd_fileset_is_set(const char *spec) { return strpbrk(spec, ",*?[") != NULL; }

static int add(kd_fileset *fs, const char *path, kd_err *e) {
  char **p = realloc(fs->paths, sizeof(char *) * (size_t)(fs->n + 1));
  if (!p) return kd_fail(e, KD_ERR_RUNTIME, "out of memory (shard file list)");
  fs->paths = p;
  if (!(fs->paths[fs->n] = strdup(path))) return kd_fail(e, KD_ERR_RUNTIME, "out of memory (shard file list)");
  fs->n++;
  return KD_OK;
}

static int by_path(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* One comma-separated part: a glob, or a file. */
static int expand_part(kd_fileset *fs, const char *spec, const char *part, kd_err *e) {
  if (!strpbrk(part, "*?[")) {
    if (access(part, F_OK) != 0) return kd_fail(e, KD_ERR_RUNTIME, "%s: no such shard file (of %s)", part, spec);
    return add(fs, part, e);
  }
  glob_t g;
  const int rc = glob(part, GLOB_ERR, NULL, &g);
  if (rc != 0) globfree(&g);
  if (rc == GLOB_NOMATCH) return kd_fail(e, KD_ERR_RUNTIME, "%s: the pattern matches no file", part);
  if (rc != 0) return kd_fail(e, KD_ERR_RUNTIME, "%s: the pattern cannot be expanded (a directory unreadable)", part);
  for (size_t i = 0; i < g.gl_pathc && !e->code; i++) add(fs, g.gl_pathv[i], e);
  globfree(&g);
  return e->code;
}

int kd_fileset_single(kd_fileset *fs, const char *path, kd_err *e) {
  memset(fs, 0, sizeof *fs);
  fs->row0 = calloc(2, sizeof(int64_t));
  if (!fs->row0 || add(fs, path, e)) {
    kd_fileset_free(fs);
    return e->code ? e->code : kd_fail(e, KD_ERR_RUNTIME, "out of memory (shard file list)");
  }
  return KD_OK;
}

int kd_fileset_expand(kd_fileset *fs, const char *spec, kd_err *e) {
  memset(fs, 0, sizeof *fs);
  char *copy = strdup(spec);
  if (!copy) return kd_fail(e, KD_ERR_RUNTIME, "out of memory (shard file list)");
  int rc = KD_OK;
  char *save = NULL;
  for (char *part = strtok_r(copy, ",", &save); part && !rc; part = strtok_r(NULL, ",", &save))
    if (*part) rc = expand_part(fs, spec, part, e);
  free(copy);
  if (!rc && fs->n == 0) rc = kd_fail(e, KD_ERR_RUNTIME, "'%s' names no file", spec);
  if (!rc) {
    qsort(fs->paths, (size_t)fs->n, sizeof(char *), by_path);
    for (int i = 1; i < fs->n && !rc; i++)
      if (strcmp(fs->paths[i - 1], fs->paths[i]) == 0)
        rc = kd_fail(e, KD_ERR_RUNTIME, "%s: named twice in '%s'", fs->paths[i], spec);
  }
  if (!rc) fs->row0 = calloc((size_t)fs->n + 1, sizeof(int64_t));
  if (!rc && !fs->row0) rc = kd_fail(e, KD_ERR_RUNTIME, "out of memory (shard file list)");
  if (rc) kd_fileset_free(fs);
  return rc;
}

void kd_fileset_free(kd_fileset *fs) {
  for (int i = 0; i < fs->n; i++) free(fs->paths[i]);
  free(fs->paths);
  free(fs->row0);
  memset(fs, 0, sizeof *fs);
}

/* The stored type of a file's rows dataset: its class and size. */
static int row_type(const char *path, const char *split, kd_input kind, int *is_float, size_t *size, kd_err *e) {
  char ds[64];
  snprintf(ds, sizeof ds, kind == KD_INPUT_TOKENS ? "/%s/tokens" : "/%s/x", split);
  hid_t f;
  if (kd_h5_open_ro(&f, path, e)) return e->code;
  *is_float = kd_h5_is_float(f, ds);
  *size = kd_h5_type_size(f, ds);
  H5Fclose(f);
  return KD_OK;
}

int kd_fileset_probe(kd_fileset *fs, const char *split, kd_split_info *info, kd_err *e) {
  memset(info, 0, sizeof *info);
  kd_split_info first = {0};
  int fl0 = 0;
  size_t sz0 = 0;
  for (int i = 0; i < fs->n; i++) {
    kd_split_info s;
    if (kd_source_probe(fs->paths[i], split, &s, e)) return e->code;
    fs->row0[i + 1] = fs->row0[i] + (s.present ? s.rows : 0);
    if (i == 0) first = s;
    if (s.present != first.present)
      return kd_fail(e, KD_ERR_RUNTIME, "%s: %s /%s but the set's first shard %s %s", fs->paths[i],
                     s.present ? "has" : "has no", split, fs->paths[0], first.present ? "has it" : "has none");
    if (!s.present) continue;
    if (s.kind != first.kind || s.width != first.width)
      return kd_fail(e, KD_ERR_RUNTIME, "%s: /%s holds %s rows of width %d but the set's first shard %s holds %s rows of "
                     "width %d", fs->paths[i], split, s.kind == KD_INPUT_TOKENS ? "token" : "feature", s.width,
                     fs->paths[0], first.kind == KD_INPUT_TOKENS ? "token" : "feature", first.width);
    int fl = 0;
    size_t sz = 0;
    if (row_type(fs->paths[i], split, s.kind, &fl, &sz, e)) return e->code;
    if (i == 0) fl0 = fl, sz0 = sz;
    if (fl != fl0 || sz != sz0)
      return kd_fail(e, KD_ERR_RUNTIME, "%s: /%s/%s is stored as a %zu-byte %s but in the set's first shard %s as a "
                     "%zu-byte %s", fs->paths[i], split, s.kind == KD_INPUT_TOKENS ? "tokens" : "x", sz,
                     fl ? "float" : "integer", fs->paths[0], sz0, fl0 ? "float" : "integer");
  }
  if (first.present) {
    *info = first;
    info->rows = fs->row0[fs->n];
  }
  return KD_OK;
}

int kd_fileset_first_rows(const kd_fileset *fs) {
  int i = 0;
  while (i + 1 < fs->n && fs->row0[i + 1] == fs->row0[i]) i++;
  return i;
}

uint64_t kd_fileset_hash(const kd_fileset *fs) {
  uint64_t h = kd_mix64((uint64_t)fs->n + 1);
  for (int i = 0; i < fs->n; i++) {
    for (const char *p = fs->paths[i]; *p; p++) h = kd_mix64(h ^ (uint8_t)*p);
    h = kd_mix64(h ^ (uint64_t)fs->row0[i + 1]);
  }
  return h;
}

int kd_fileset_locate(const kd_fileset *fs, int64_t r, int64_t *local) {
  int lo = 0, hi = fs->n - 1; /* the last file whose first row is <= r */
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (fs->row0[mid] <= r) lo = mid;
    else hi = mid - 1;
  }
  *local = r - fs->row0[lo];
  return lo;
}

void kd_fileset_join(const kd_fileset *fs, char *buf, size_t n) {
  size_t used = 0;
  buf[0] = '\0';
  for (int i = 0; i < fs->n && used < n; i++) {
    const int w = snprintf(buf + used, n - used, "%s%s", i ? "," : "", fs->paths[i]);
    if (w < 0 || (size_t)w >= n - used) {
      if (n > 4) snprintf(buf + n - 4, 4, "...");
      return;
    }
    used += (size_t)w;
  }
}
