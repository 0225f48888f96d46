#include "core/options.h"

#include "core/fmt.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static const kd_opt_spec *find(const kd_opt_spec *specs, int n, const char *name, size_t len) {
  for (int i = 0; i < n; i++)
    if (strlen(specs[i].name) == len && strncmp(specs[i].name, name, len) == 0) return &specs[i];
  return NULL;
}

static int in_choices(const char *choices, const char *v) {
  size_t lv = strlen(v);
  for (const char *p = choices; *p;) {
    const char *bar = strchr(p, '|');
    size_t l = bar ? (size_t)(bar - p) : strlen(p);
    if (l == lv && strncmp(p, v, l) == 0) return 1;
    p += l + (bar ? 1 : 0);
  }
  return 0;
}

static int range_msg(const kd_opt_spec *s, const char *cmd, const char *val, kd_err *e) {
  char lo[32] = "", hi[32] = "";
  snprintf(lo, sizeof lo, "%g", s->lo);
  snprintf(hi, sizeof hi, "%g", s->hi);
  return kd_fail(e, KD_ERR_USAGE, "%s: --%s %s: out of range, must be in %s%s, %s%s", cmd, s->name, val,
                 s->lo_open ? "(" : "[", lo, hi, s->hi_open ? ")" : "]");
}

static int set_value(const kd_opt_spec *s, void *cfg, const char *val, const char *cmd, kd_err *e) {
  char *base = (char *)cfg + s->offset;
  switch (s->type) {
    case KD_OPT_STR:
    case KD_OPT_CHOICE:
      if (strlen(val) >= s->size)
        return kd_fail(e, KD_ERR_USAGE, "%s: --%s: value longer than %zu characters", cmd, s->name, s->size - 1);
      if (s->type == KD_OPT_CHOICE && !in_choices(s->choices, val))
        return kd_fail(e, KD_ERR_USAGE, "%s: --%s %s: unknown value, expected one of %s", cmd, s->name, val,
                       s->choices);
      strcpy(base, val);
      return KD_OK;
    case KD_OPT_INT: {
      char *end;
      errno = 0;
      long long v = strtoll(val, &end, 10);
      if (!*val || *end || errno)
        return kd_fail(e, KD_ERR_USAGE, "%s: --%s %s: expected an integer", cmd, s->name, val);
      if ((double)v < s->lo || (double)v > s->hi) return range_msg(s, cmd, val, e);
      *(int64_t *)base = v;
      return KD_OK;
    }
    case KD_OPT_REAL: {
      if (!*val && s->def && !s->def[0]) { /* an empty default: unset, the command decides */
        *(double *)base = NAN;
        return KD_OK;
      }
      char *end;
      errno = 0;
      double v = strtod(val, &end);
      if (!*val || *end || errno || !isfinite(v))
        return kd_fail(e, KD_ERR_USAGE, "%s: --%s %s: expected a finite number", cmd, s->name, val);
      if (v < s->lo || v > s->hi || (s->lo_open && v == s->lo) || (s->hi_open && v == s->hi))
        return range_msg(s, cmd, val, e);
      *(double *)base = v;
      return KD_OK;
    }
    case KD_OPT_FLAG:
      *(int *)base = (val[0] == '1');
      return KD_OK;
  }
  return KD_OK;
}

int kd_opts_equal(const kd_opt_spec *s, const void *a, const void *b) {
  const char *pa = (const char *)a + s->offset, *pb = (const char *)b + s->offset;
  switch (s->type) {
    case KD_OPT_STR:
    case KD_OPT_CHOICE: return strcmp(pa, pb) == 0;
    case KD_OPT_INT: return *(const int64_t *)pa == *(const int64_t *)pb;
    case KD_OPT_REAL: {
      const double x = *(const double *)pa, y = *(const double *)pb;
      return x == y || (isnan(x) && isnan(y));
    }
    case KD_OPT_FLAG: return !*(const int *)pa == !*(const int *)pb;
  }
  return 0;
}

int kd_opts_index(const kd_opt_spec *specs, int n, const char *name) {
  const kd_opt_spec *s = find(specs, n, name, strlen(name));
  return s ? (int)(s - specs) : -1;
}

int kd_opts_set(const kd_opt_spec *specs, int n, void *cfg, const char *name,
                const char *value, const char *cmd, kd_err *e) {
  const kd_opt_spec *s = find(specs, n, name, strlen(name));
  if (!s) return kd_fail(e, KD_ERR_USAGE, "%s: unknown option '--%s'", cmd, name);
  if (s->type == KD_OPT_FLAG) {
    *(int *)((char *)cfg + s->offset) = strcmp(value, "1") == 0;
    return KD_OK;
  }
  return set_value(s, cfg, value, cmd, e);
}

void kd_opts_format(const kd_opt_spec *s, const void *cfg, char *buf, size_t n) {
  const char *base = (const char *)cfg + s->offset;
  switch (s->type) {
    case KD_OPT_STR:
    case KD_OPT_CHOICE: snprintf(buf, n, "%s", base); break;
    case KD_OPT_INT: snprintf(buf, n, "%lld", (long long)*(const int64_t *)base); break;
    case KD_OPT_REAL:
      if (isnan(*(const double *)base)) buf[0] = '\0'; /* unset */
      else kd_fmt_num(buf, n, *(const double *)base);
      break;
    case KD_OPT_FLAG: snprintf(buf, n, "%d", *(const int *)base ? 1 : 0); break;
  }
}

/* The option name closest to a mistyped one, or NULL when none is close:
 * within 2 edits (a third of the name's length for long names), or a
 * name the typed text is a prefix of. */
static const char *nearest(const kd_opt_spec *specs, int n, const char *name, size_t len) {
  char typed[64];
  if (len >= sizeof typed) return NULL;
  memcpy(typed, name, len);
  typed[len] = '\0';
  const char *best = NULL;
  int best_d = 1 << 30;
  for (int i = 0; i < n; i++) {
    int d = kd_edit_distance(typed, specs[i].name);
    if (len >= 3 && strncmp(specs[i].name, typed, len) == 0) d = 1;
    if (d < best_d) {
      best_d = d;
      best = specs[i].name;
    }
  }
  const int limit = len > 6 ? (int)len / 3 : 2;
  return best_d <= limit ? best : NULL;
}

/* One "--name[=value]" at argv[*i] (its value may be the next word). */
static int parse_one(const kd_opt_spec *specs, int n, void *cfg, int argc, char **argv, int *i, const char *cmd,
                     unsigned char *seen, kd_err *e) {
  const char *a = argv[*i];
  if (strncmp(a, "--", 2) != 0 || !a[2])
    return kd_fail(e, KD_ERR_USAGE, "%s: unexpected argument '%s' (options start with --; see %s --help)", cmd, a,
                   cmd);
  const char *name = a + 2, *eq = strchr(name, '=');
  size_t len = eq ? (size_t)(eq - name) : strlen(name);
  const kd_opt_spec *s = find(specs, n, name, len);
  if (!s) {
    const char *near = nearest(specs, n, name, len);
    return kd_fail(e, KD_ERR_USAGE, "%s: unknown option '--%.*s' (%s%s%ssee %s --help)", cmd, (int)len, name,
                   near ? "did you mean --" : "", near ? near : "", near ? "? " : "", cmd);
  }
  const char *val;
  if (s->type == KD_OPT_FLAG) {
    if (eq) return kd_fail(e, KD_ERR_USAGE, "%s: --%s takes no value", cmd, s->name);
    val = "1";
  } else if (eq) {
    val = eq + 1;
  } else {
    if (*i + 1 >= argc) return kd_fail(e, KD_ERR_USAGE, "%s: --%s needs a value", cmd, s->name);
    val = argv[++*i];
  }
  if (set_value(s, cfg, val, cmd, e)) return e->code;
  seen[s - specs] = 1;
  return KD_OK;
}

int kd_opts_parse(const kd_opt_spec *specs, int n, void *cfg, int argc,
                  char **argv, const char *cmd, unsigned char *given, kd_err *e) {
  unsigned char *seen = kd_calloc((size_t)n, 1, "option flags", e);
  if (!seen) return e->code;
  int rc = KD_OK;
  for (int i = 0; i < n && !rc; i++)
    if (specs[i].def) rc = set_value(&specs[i], cfg, specs[i].def, cmd, e);
  for (int i = 0; i < argc && !rc; i++) rc = parse_one(specs, n, cfg, argc, argv, &i, cmd, seen, e);
  for (int i = 0; i < n && !rc; i++)
    if (!specs[i].def && !seen[i])
      rc = kd_fail(e, KD_ERR_USAGE, "%s: --%s is required (see %s --help)", cmd, specs[i].name, cmd);
  if (!rc && given) memcpy(given, seen, (size_t)n);
  free(seen);
  return rc;
}

void kd_opts_help(const kd_opt_spec *specs, int n, FILE *f) {
  for (int i = 0; i < n; i++) {
    const kd_opt_spec *s = &specs[i];
    char left[64];
    const char *arg = s->type == KD_OPT_FLAG ? "" : s->type == KD_OPT_STR ? " VALUE"
                      : s->type == KD_OPT_CHOICE ? " CHOICE" : s->type == KD_OPT_INT ? " N" : " X";
    snprintf(left, sizeof left, "--%s%s", s->name, arg);
    fprintf(f, "  %-24s %s", left, s->help);
    if (s->type == KD_OPT_CHOICE) fprintf(f, " {%s}", s->choices);
    if (!s->def) fprintf(f, " (required)");
    else if (s->type == KD_OPT_FLAG) fprintf(f, " (default: off)");
    else if (!s->def[0] && s->type == KD_OPT_REAL) { /* unset: the help text says what decides */
    } else if (!s->def[0]) fprintf(f, " (default: none)");
    else fprintf(f, " (default: %s)", s->def);
    fputc('\n', f);
  }
}

