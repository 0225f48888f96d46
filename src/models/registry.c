#include "kd/registry.h"

#include <stdio.h>
#include <string.h>

#include "models/gpt.h"
#include "models/llama.h"
#include "models/mlp.h"

/* The first family is the one a bare --student spec means. */
static const kd_family *const families[] = {&kd_mlp_family, &kd_gpt_family, &kd_llama_family};
static const int n_families = (int)(sizeof families / sizeof families[0]);

const kd_family *kd_family_find(const char *name) {
  for (int i = 0; i < n_families; i++)
    if (strcmp(families[i]->name, name) == 0) return families[i];
  return NULL;
}

static void known(char *buf, size_t n) {
  buf[0] = '\0';
  for (int i = 0; i < n_families; i++)
    snprintf(buf + strlen(buf), n - strlen(buf), "%s%s", i ? ", " : "", families[i]->name);
}

/* ",key=value" settings after the family's text (the keys of f->spec_keys) into spec->options, appended. */
static int spec_settings(kd_model_spec *spec, const kd_family *f, const char *student, kd_err *e) {
  char *comma = strchr(spec->text, ',');
  if (!comma) return KD_OK;
  *comma = '\0';
  for (char *item = comma + 1; item && *item;) {
    char *next = strchr(item, ',');
    if (next) *next++ = '\0';
    const char *eq = strchr(item, '=');
    const size_t kl = eq ? (size_t)(eq - item) : 0;
    int known_key = 0;
    for (const char *k = f->spec_keys; eq && kl && *k;) {
      const char *bar = strchr(k, '|');
      const size_t n = bar ? (size_t)(bar - k) : strlen(k);
      known_key |= n == kl && strncmp(k, item, kl) == 0;
      k += n + (bar != NULL);
    }
    if (!known_key || !eq[1])
      return kd_fail(e, KD_ERR_USAGE, "--student '%s': '%s' is not a setting of the %s family (key=value, keys %s)",
                     student, item, f->name, f->spec_keys);
    const size_t l = strlen(spec->options), n = strlen(item);
    if (l + n + 2 > sizeof spec->options) return kd_fail(e, KD_ERR_USAGE, "--student '%s': too many settings", student);
    if (l) spec->options[l] = ',';
    memcpy(spec->options + l + (l > 0), item, n + 1);
    item = next;
  }
  return KD_OK;
}

int kd_model_spec_parse(kd_model_spec *spec, const char *student, kd_err *e) {
  const char *colon = strchr(student, ':');
  const char *text = colon ? colon + 1 : student;
  const size_t fl = colon ? (size_t)(colon - student) : strlen(families[0]->name);
  if (fl >= sizeof spec->family || strlen(text) >= sizeof spec->text)
    return kd_fail(e, KD_ERR_USAGE, "--student '%s': too long", student);
  memcpy(spec->family, colon ? student : families[0]->name, fl);
  spec->family[fl] = '\0';
  memcpy(spec->text, text, strlen(text) + 1);
  const kd_family *f = kd_family_find(spec->family);
  if (!f) {
    char names[128];
    known(names, sizeof names);
    return kd_fail(e, KD_ERR_USAGE, "--student '%s': unknown student family '%s' (kd %s knows: %s)", student,
                   spec->family, KD_VERSION, names);
  }
  return f->spec_keys ? spec_settings(spec, f, student, e) : KD_OK;
}

int kd_model_create(kd_model **m, const kd_model_spec *spec, int max_batch, kd_err *e) {
  *m = NULL;
  const kd_family *f = kd_family_find(spec->family);
  if (!f) return kd_fail(e, KD_ERR_USAGE, "student family '%s' is not known to kd %s", spec->family, KD_VERSION);
  char canonical[256];
  if (f->parse(spec, canonical, sizeof canonical, e)) return e->code;
  return f->create(m, spec, max_batch, e);
}

int kd_spec_option(const kd_model_spec *spec, const char *key, char *val, size_t n) {
  const size_t kl = strlen(key);
  for (const char *p = spec->options; *p;) {
    const char *comma = strchr(p, ',');
    const size_t len = comma ? (size_t)(comma - p) : strlen(p);
    if (len > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
      snprintf(val, n, "%.*s", (int)(len - kl - 1), p + kl + 1);
      return 1;
    }
    p += len + (comma ? 1 : 0);
  }
  return 0;
}

int kd_spec_check_keys(const kd_model_spec *spec, const char *keys, kd_err *e) {
  for (const char *p = spec->options; *p;) {
    const char *comma = strchr(p, ','), *eq = strchr(p, '=');
    const size_t len = comma ? (size_t)(comma - p) : strlen(p);
    const size_t kl = eq && eq < p + len ? (size_t)(eq - p) : len;
    int ok = 0;
    for (const char *k = keys; *k;) {
      const char *bar = strchr(k, '|');
      const size_t l = bar ? (size_t)(bar - k) : strlen(k);
      if (l == kl && strncmp(k, p, l) == 0) ok = 1;
      k += l + (bar ? 1 : 0);
    }
    if (!ok) return kd_fail(e, KD_ERR_USAGE, "student family %s has no setting '%.*s'", spec->family, (int)kl, p);
    p += len + (comma ? 1 : 0);
  }
  return KD_OK;
}
