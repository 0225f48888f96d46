/* kd sweep's grid: "KEY=V1,V2 KEY2=W1,W2", every value checked by kd train's own option parser before
 * anything runs, and each setting's folder name and configuration. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "cmd/sweep.h"
#include "train/config.h"

/* Options the sweep sets itself, or that name no property of a run. */
static int reserved(const char *key) {
  return strcmp(key, "out") == 0 || strcmp(key, "resume") == 0 || strcmp(key, "generation") == 0;
}

static char safe_char(char c) {
  return isalnum((unsigned char)c) || c == '.' || c == '_' || c == '+' || c == '-' ? c : '_';
}

static void sanitize(const char *v, char *buf, size_t n) {
  size_t i = 0;
  for (; v[i] && i + 1 < n; i++) buf[i] = safe_char(v[i]);
  buf[i] = '\0';
}

/* One value of key k: kd train's parser accepts it (on a copy of base), and no other value of k has the same
 * folder name. */
static int check_value(cmd_sweep_grid *g, int k, const kd_train_cfg *base, kd_err *e) {
  const int j = g->n_values[k];
  const char *v = g->value[k][j];
  if (!v[0]) return kd_fail(e, KD_ERR_USAGE, "kd sweep: --grid %s: an empty value", g->key[k]);
  const kd_opt_spec *s = &kd_train_opts[g->opt[k]];
  if (s->type == KD_OPT_FLAG && strcmp(v, "0") != 0 && strcmp(v, "1") != 0)
    return kd_fail(e, KD_ERR_USAGE, "kd sweep: --grid %s=%s: a flag takes 0 or 1", g->key[k], v);
  kd_train_cfg tmp = *base;
  if (kd_opts_set(kd_train_opts, KD_TRAIN_N_OPTS, &tmp, g->key[k], v, "kd sweep: --grid", e)) return e->code;
  char a[128], b[128];
  sanitize(v, a, sizeof a);
  for (int i = 0; i < j; i++) {
    sanitize(g->value[k][i], b, sizeof b);
    if (strcmp(a, b) == 0)
      return kd_fail(e, KD_ERR_USAGE, "kd sweep: --grid %s: the values '%s' and '%s' %s", g->key[k], g->value[k][i], v,
                     strcmp(g->value[k][i], v) == 0 ? "repeat" : "give the same folder name");
  }
  return KD_OK;
}

/* "KEY=V1,V2,..." of length len at text. */
static int parse_key(cmd_sweep_grid *g, const char *text, size_t len, const kd_train_cfg *base, kd_err *e) {
  const char *eq = memchr(text, '=', len);
  if (!eq) return kd_fail(e, KD_ERR_USAGE, "kd sweep: --grid: '%.*s' is not KEY=V1,V2,...", (int)len, text);
  if (g->n_keys == SWEEP_MAX_KEYS) return kd_fail(e, KD_ERR_USAGE, "kd sweep: --grid: more than %d keys", SWEEP_MAX_KEYS);
  const int k = g->n_keys;
  const size_t kl = (size_t)(eq - text);
  if (kl == 0 || kl >= sizeof g->key[k])
    return kd_fail(e, KD_ERR_USAGE, "kd sweep: --grid: '%.*s' is not KEY=V1,V2,...", (int)len, text);
  memcpy(g->key[k], text, kl);
  g->key[k][kl] = '\0';
  g->opt[k] = kd_opts_index(kd_train_opts, KD_TRAIN_N_OPTS, g->key[k]);
  if (g->opt[k] < 0 || reserved(g->key[k]))
    return kd_fail(e, KD_ERR_USAGE, "kd sweep: --grid: '%s' is not a kd train option a sweep can vary (keys are kd "
                   "train's long option names without --; see kd train --help)", g->key[k]);
  for (int i = 0; i < k; i++)
    if (strcmp(g->key[i], g->key[k]) == 0)
      return kd_fail(e, KD_ERR_USAGE, "kd sweep: --grid: key '%s' appears twice", g->key[k]);
  if (base->given[g->opt[k]])
    return kd_fail(e, KD_ERR_USAGE, "kd sweep: --%s is both a grid key and a train option: give it in one place",
                   g->key[k]);
  g->n_values[k] = 0;
  for (const char *p = eq + 1, *end = text + len;;) {
    const char *comma = memchr(p, ',', (size_t)(end - p));
    const size_t vl = (size_t)((comma ? comma : end) - p);
    if (g->n_values[k] == SWEEP_MAX_VALUES)
      return kd_fail(e, KD_ERR_USAGE, "kd sweep: --grid %s: more than %d values", g->key[k], SWEEP_MAX_VALUES);
    if (vl >= sizeof g->value[k][0])
      return kd_fail(e, KD_ERR_USAGE, "kd sweep: --grid %s: a value longer than %zu characters", g->key[k],
                     sizeof g->value[k][0] - 1);
    memcpy(g->value[k][g->n_values[k]], p, vl);
    g->value[k][g->n_values[k]][vl] = '\0';
    if (check_value(g, k, base, e)) return e->code;
    g->n_values[k]++;
    if (!comma) break;
    p = comma + 1;
  }
  g->n_keys++;
  return KD_OK;
}

/* The longest folder name of any setting must fit a file name. */
static int check_name_length(const cmd_sweep_grid *g, kd_err *e) {
  size_t longest = 0;
  for (int k = 0; k < g->n_keys; k++) {
    size_t v = 0;
    for (int j = 0; j < g->n_values[k]; j++) v = strlen(g->value[k][j]) > v ? strlen(g->value[k][j]) : v;
    longest += strlen(g->key[k]) + 2 + v;
  }
  if (longest >= SWEEP_NAME_MAX - 1)
    return kd_fail(e, KD_ERR_USAGE, "kd sweep: --grid: a setting's folder name would be %zu characters, over %d",
                   longest, SWEEP_NAME_MAX - 2);
  return KD_OK;
}

int cmd_sweep_grid_parse(cmd_sweep_grid *g, const char *text, const kd_train_cfg *base, kd_err *e) {
  memset(g, 0, sizeof *g);
  for (const char *p = text; *p;) {
    while (*p && isspace((unsigned char)*p)) p++;
    const char *q = p;
    while (*q && !isspace((unsigned char)*q)) q++;
    if (q > p && parse_key(g, p, (size_t)(q - p), base, e)) return e->code;
    p = q;
  }
  if (g->n_keys == 0) return kd_fail(e, KD_ERR_USAGE, "kd sweep: --grid has no KEY=V1,V2,... (e.g. --grid \"alpha=0,0.5\")");
  g->n_settings = 1;
  for (int k = 0; k < g->n_keys; k++) {
    g->n_settings *= g->n_values[k];
    if (g->n_settings > 100000) return kd_fail(e, KD_ERR_USAGE, "kd sweep: --grid has over 100000 settings");
  }
  return check_name_length(g, e);
}

/* Setting i's value index of key k (the last key varies fastest). */
static int value_of(const cmd_sweep_grid *g, int64_t i, int k) {
  for (int j = g->n_keys - 1; j > k; j--) i /= g->n_values[j];
  return (int)(i % g->n_values[k]);
}

void cmd_sweep_setting_name(const cmd_sweep_grid *g, int64_t i, char *buf, size_t n) {
  size_t at = 0;
  buf[0] = '\0';
  for (int k = 0; k < g->n_keys && at < n; k++) {
    char v[128];
    sanitize(g->value[k][value_of(g, i, k)], v, sizeof v);
    const int w = snprintf(buf + at, n - at, "%s%s=%s", k ? "," : "", g->key[k], v);
    at += w > 0 ? (size_t)w : 0;
  }
}

int cmd_sweep_setting_cfg(const cmd_sweep_grid *g, int64_t i, const kd_train_cfg *base, const char *dir,
                          kd_train_cfg *out, kd_err *e) {
  *out = *base;
  char name[SWEEP_NAME_MAX];
  cmd_sweep_setting_name(g, i, name, sizeof name);
  for (int k = 0; k < g->n_keys; k++) {
    if (kd_opts_set(kd_train_opts, KD_TRAIN_N_OPTS, out, g->key[k], g->value[k][value_of(g, i, k)], "kd sweep", e))
      return e->code;
    out->given[g->opt[k]] = 1;
  }
  if ((size_t)snprintf(out->out, sizeof out->out, "%s/%s", dir, name) >= sizeof out->out)
    return kd_fail(e, KD_ERR_USAGE, "kd sweep: --out %s: path too long", dir);
  if (kd_train_cfg_check(out, e)) {
    char why[sizeof e->msg];
    snprintf(why, sizeof why, "%s", e->msg);
    kd_err_clear(e);
    return kd_fail(e, KD_ERR_USAGE, "kd sweep: setting %s: %.900s", name, why);
  }
  return KD_OK;
}
