/* kd sweep's summary: every setting's result.json, best first by the validation metric (accuracy, higher is
 * better; nll for language models, lower is better), as a table or JSON, and DIR/summary.json. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/sweep.h"
#include "core/atomic.h"

/* The value a setting is ranked by, higher better: the validation metric, else (no validation rows) test
 * accuracy. 0 when it has none. */
static int rank_value(const cmd_sweep_result *r, double *v) {
  if (r->status != SWEEP_DONE) return 0;
  if (r->best_is_nll && r->valid_nll >= 0) return *v = -r->valid_nll, 1;
  if (!r->best_is_nll && r->valid_accuracy >= 0) return *v = r->valid_accuracy, 1;
  if (!r->best_is_nll && r->test_accuracy >= 0) return *v = r->test_accuracy, 1;
  return 0;
}

/* Finished settings first, those with a metric first among them, best first; then grid order. */
static int better_first(const void *pa, const void *pb) {
  const cmd_sweep_result *a = pa, *b = pb;
  double va = 0, vb = 0;
  const int ha = rank_value(a, &va), hb = rank_value(b, &vb);
  if ((a->status == SWEEP_DONE) != (b->status == SWEEP_DONE)) return a->status == SWEEP_DONE ? -1 : 1;
  if (ha != hb) return ha ? -1 : 1;
  if (ha && va != vb) return va > vb ? -1 : 1;
  return a->index < b->index ? -1 : a->index > b->index;
}

static void cell(FILE *out, double v) {
  if (v >= 0) fprintf(out, " %10.4f", v);
  else fprintf(out, " %10s", "-");
}

static void print_table(FILE *out, const cmd_sweep_result *r, int64_t n, const char *dir) {
  int w = 7;
  for (int64_t i = 0; i < n; i++) w = (int)strlen(r[i].name) > w ? (int)strlen(r[i].name) : w;
  const int nll = n > 0 && r[0].best_is_nll;
  fprintf(out, "sweep %s: %lld settings, best first by validation %s\n", dir, (long long)n, nll ? "nll" : "accuracy");
  fprintf(out, "  %4s  %-*s %10s %10s %10s %10s %8s  %s\n", "#", w, "setting", "valid_acc", "valid_nll", "test_acc",
          "agreement", "steps", "status");
  for (int64_t i = 0; i < n; i++) {
    fprintf(out, "  %4lld  %-*s", (long long)i + 1, w, r[i].name);
    cell(out, r[i].valid_accuracy);
    cell(out, r[i].valid_nll);
    cell(out, r[i].test_accuracy);
    cell(out, r[i].test_agreement);
    if (r[i].status == SWEEP_DONE) fprintf(out, " %8lld", (long long)r[i].steps);
    else fprintf(out, " %8s", "-");
    fprintf(out, "  %s", cmd_sweep_status_name(r[i].status));
    if (r[i].error[0]) fprintf(out, ": %.200s", r[i].error);
    fprintf(out, "\n");
  }
}

static int print_json(FILE *out, const cmd_sweep_result *r, int64_t n) {
  int bad = fprintf(out, "{\n  \"metric\": \"%s\",\n  \"settings\": [", n > 0 && r[0].best_is_nll ? "nll" : "accuracy") < 0;
  for (int64_t i = 0; i < n; i++) {
    bad |= fprintf(out, "%s\n    {\"rank\": %lld,", i ? "," : "", (long long)i + 1) < 0;
    bad |= cmd_sweep_result_fields(out, &r[i], "\n     ");
    bad |= fprintf(out, "}") < 0;
  }
  return bad | (fprintf(out, "\n  ]\n}\n") < 0);
}

static int write_summary_file(const cmd_sweep_result *r, int64_t n, const char *dir, kd_err *e) {
  char path[KD_PATH_MAX];
  snprintf(path, sizeof path, "%s/summary.json", dir);
  kd_atomic a;
  if (kd_atomic_begin(&a, path, e)) return e->code;
  FILE *f = fopen(a.tmp, "w");
  if (!f) return kd_fail(e, KD_ERR_RUNTIME, "kd sweep: cannot create %s (%s)", a.tmp, strerror(errno));
  const int bad = print_json(f, r, n) || ferror(f);
  if (fclose(f) != 0 || bad) {
    kd_atomic_abort(&a);
    return kd_fail(e, KD_ERR_RUNTIME, "kd sweep: cannot write %s (%s)", path, strerror(errno));
  }
  return kd_atomic_commit(&a, e);
}

int cmd_sweep_summary(const cmd_sweep_grid *g, const char *dir, int json, FILE *out, int counts[3], kd_err *e) {
  cmd_sweep_result *r = kd_calloc((size_t)g->n_settings, sizeof *r, "sweep results", e);
  if (!r) return e->code;
  for (int64_t i = 0; i < g->n_settings; i++) {
    char name[SWEEP_NAME_MAX];
    cmd_sweep_setting_name(g, i, name, sizeof name);
    cmd_sweep_result_read(&r[i], dir, name, i);
    counts[r[i].status == SWEEP_DONE ? 0 : r[i].status == SWEEP_FAILED ? 1 : 2]++;
  }
  qsort(r, (size_t)g->n_settings, sizeof *r, better_first);
  if (json) print_json(out, r, g->n_settings);
  else print_table(out, r, g->n_settings, dir);
  fflush(out);
  const int rc = write_summary_file(r, g->n_settings, dir, e);
  free(r);
  return rc;
}
