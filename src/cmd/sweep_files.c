/* kd sweep's files: DIR/sweep.json (what the sweep is, for --resume DIR) and each setting's
 * DIR/NAME/result.json (its outcome, for the summary and for --resume, which skips finished settings). Both are
 * written atomically (core/atomic.h): a stop or a crash leaves the old file or the new one. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/sweep.h"
#include "core/atomic.h"
#include "core/fmt.h"
#include "core/json.h"

typedef int (*body_fn)(FILE *f, const void *what);

/* path written through its temporary file by body. */
static int write_atomic(const char *path, body_fn body, const void *what, kd_err *e) {
  kd_atomic a;
  if (kd_atomic_begin(&a, path, e)) return e->code;
  FILE *f = fopen(a.tmp, "w");
  if (!f) return kd_fail(e, KD_ERR_RUNTIME, "kd sweep: cannot create %s (%s)", a.tmp, strerror(errno));
  const int bad = body(f, what) != 0 || ferror(f);
  if (fclose(f) != 0 || bad) {
    kd_atomic_abort(&a);
    return kd_fail(e, KD_ERR_RUNTIME, "kd sweep: cannot write %s (%s)", path, strerror(errno));
  }
  return kd_atomic_commit(&a, e);
}

static int spec_body(FILE *f, const void *what) {
  const cmd_sweep_spec *s = what;
  int bad = fprintf(f, "{\n  \"kd_sweep\": 1,\n  \"grid\": ") < 0;
  bad |= kd_json_write_str(f, s->grid, strlen(s->grid));
  bad |= fprintf(f, ",\n  \"group_ranks\": %lld,\n  \"train_args\": [", (long long)s->group_ranks) < 0;
  for (int i = 0; i < s->n_args; i++) {
    bad |= fprintf(f, "%s", i ? ", " : "") < 0;
    bad |= kd_json_write_str(f, s->args[i], strlen(s->args[i]));
  }
  bad |= fprintf(f, "]\n}\n") < 0;
  return bad;
}

int cmd_sweep_spec_write(const cmd_sweep_spec *s, const char *dir, kd_err *e) {
  char path[KD_PATH_MAX];
  snprintf(path, sizeof path, "%s/sweep.json", dir);
  return write_atomic(path, spec_body, s, e);
}

void cmd_sweep_spec_free(cmd_sweep_spec *s) {
  for (int i = 0; i < s->n_args; i++) free(s->args[i]);
  free(s->args);
  s->args = NULL;
  s->n_args = 0;
}

static int spec_from_json(cmd_sweep_spec *s, const kd_json *root, const char *path, kd_err *e) {
  const char *grid = kd_json_get_str(root, "grid");
  const kd_json *args = kd_json_get(root, "train_args");
  if (!grid || !kd_json_get_int(root, "group_ranks", &s->group_ranks) || !args || args->type != KD_JSON_ARRAY)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: not a kd sweep file (grid, group_ranks, train_args)", path);
  if (strlen(grid) >= sizeof s->grid) return kd_fail(e, KD_ERR_RUNTIME, "%s: grid too long", path);
  snprintf(s->grid, sizeof s->grid, "%s", grid);
  s->args = kd_calloc(args->len + 1, sizeof *s->args, "sweep arguments", e);
  if (!s->args) return e->code;
  for (const kd_json *a = args->child; a; a = a->next) {
    if (a->type != KD_JSON_STRING) return kd_fail(e, KD_ERR_RUNTIME, "%s: train_args holds a non-string", path);
    s->args[s->n_args] = kd_malloc(a->len + 1, "sweep argument", e);
    if (!s->args[s->n_args]) return e->code;
    memcpy(s->args[s->n_args], a->str, a->len + 1);
    s->n_args++;
  }
  return KD_OK;
}

int cmd_sweep_spec_parse(cmd_sweep_spec *s, const char *text, size_t len, const char *dir, kd_err *e) {
  memset(s, 0, sizeof *s);
  char path[KD_PATH_MAX];
  snprintf(path, sizeof path, "%s/sweep.json", dir);
  kd_json_doc *doc = NULL;
  if (kd_json_parse(&doc, text, len, path, e)) return e->code;
  const int rc = spec_from_json(s, kd_json_root(doc), path, e);
  kd_json_free(doc);
  if (rc) cmd_sweep_spec_free(s);
  return rc;
}

const char *cmd_sweep_status_name(cmd_sweep_status s) {
  static const char *const names[] = {"pending", "done", "failed", "stopped"};
  return names[s];
}

/* ,IND"name": value, or null for a metric that is not there (-1). */
static int put_metric(FILE *f, const char *ind, const char *name, double v) {
  char buf[48];
  return fprintf(f, ",%s\"%s\": %s", ind, name, v < 0 || !isfinite(v) ? "null" : kd_fmt_num(buf, sizeof buf, v)) < 0;
}

int cmd_sweep_result_fields(FILE *f, const cmd_sweep_result *r, const char *ind) {
  int bad = fprintf(f, "%s\"index\": %lld,%s\"setting\": ", ind, (long long)r->index, ind) < 0;
  bad |= kd_json_write_str(f, r->name, strlen(r->name));
  bad |= fprintf(f, ",%s\"status\": \"%s\",%s\"steps\": %lld,%s\"completed\": %s,%s\"metric\": \"%s\"", ind,
                 cmd_sweep_status_name(r->status), ind, (long long)r->steps, ind, r->completed ? "true" : "false", ind,
                 r->best_is_nll ? "nll" : "accuracy") < 0;
  bad |= put_metric(f, ind, "valid_accuracy", r->valid_accuracy) | put_metric(f, ind, "valid_nll", r->valid_nll);
  bad |= put_metric(f, ind, "test_accuracy", r->test_accuracy) | put_metric(f, ind, "test_agreement", r->test_agreement);
  bad |= put_metric(f, ind, "seconds", r->seconds);
  bad |= fprintf(f, ",%s\"error\": ", ind) < 0;
  bad |= kd_json_write_str(f, r->error, strlen(r->error));
  return bad;
}

static int result_body(FILE *f, const void *what) {
  int bad = fprintf(f, "{") < 0;
  bad |= cmd_sweep_result_fields(f, what, "\n  ");
  return bad | (fprintf(f, "\n}\n") < 0);
}

int cmd_sweep_result_write(const cmd_sweep_result *r, const char *dir, kd_err *e) {
  char path[KD_PATH_MAX + SWEEP_NAME_MAX];
  snprintf(path, sizeof path, "%s/%s/result.json", dir, r->name);
  return write_atomic(path, result_body, r, e);
}

static double metric_of(const kd_json *o, const char *key) {
  double v;
  return kd_json_get_num(o, key, &v) ? v : -1;
}

void cmd_sweep_result_read(cmd_sweep_result *r, const char *dir, const char *name, int64_t index) {
  memset(r, 0, sizeof *r);
  r->index = index;
  snprintf(r->name, sizeof r->name, "%s", name);
  r->valid_accuracy = r->valid_nll = r->test_accuracy = r->test_agreement = r->seconds = -1;
  char path[KD_PATH_MAX + SWEEP_NAME_MAX];
  snprintf(path, sizeof path, "%s/%s/result.json", dir, name);
  kd_json_doc *doc = NULL;
  kd_err e;
  kd_err_clear(&e);
  if (kd_json_parse_file(&doc, path, &e)) return; /* none yet: pending */
  const kd_json *o = kd_json_root(doc);
  const char *status = kd_json_get_str(o, "status"), *metric = kd_json_get_str(o, "metric");
  const char *err = kd_json_get_str(o, "error");
  for (int s = SWEEP_DONE; s <= SWEEP_STOPPED; s++)
    if (status && strcmp(status, cmd_sweep_status_name((cmd_sweep_status)s)) == 0) r->status = (cmd_sweep_status)s;
  kd_json_get_int(o, "steps", &r->steps);
  r->completed = kd_json_is_true(o, "completed");
  r->best_is_nll = metric && strcmp(metric, "nll") == 0;
  r->valid_accuracy = metric_of(o, "valid_accuracy");
  r->valid_nll = metric_of(o, "valid_nll");
  r->test_accuracy = metric_of(o, "test_accuracy");
  r->test_agreement = metric_of(o, "test_agreement");
  r->seconds = metric_of(o, "seconds");
  snprintf(r->error, sizeof r->error, "%s", err ? err : "");
  kd_json_free(doc);
}
