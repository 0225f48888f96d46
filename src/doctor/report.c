/* The doctor's report: a few lines for a person, or one JSON object. */
#include <math.h>
#include <string.h>

#include "core/fmt.h"
#include "core/json.h"
#include "doctor/doctor.h"

static const char *level_name(kd_find_level l) { return l == KD_FIND_WARN ? "WARN" : l == KD_FIND_NOTE ? "note" : "ok"; }

void kd_doctor_print(FILE *f, const kd_doctor_report *r) {
  fprintf(f, "kd doctor: %lld transfer rows, evaluation split %s (%lld rows); teacher: %s, %d %s%s\n",
          (long long)r->transfer_rows, r->eval_name, (long long)r->eval_rows, r->teacher_kind, r->classes,
          r->tokens ? "tokens, statistics per target token" : "classes",
          r->labelled_fraction < 1 ? "; labels on a fraction of the transfer rows" : "");
  for (int i = 0; i < r->n_findings; i++) {
    const kd_finding *x = &r->f[i];
    fprintf(f, "  %-4s  %-15s %s\n", level_name(x->level), x->key, x->what);
    if (x->level != KD_FIND_OK) fprintf(f, "        %-15s -> %s\n", "", x->todo);
  }
  if (r->use_kd)
    fprintf(f, "verdict: distil, T = %g, alpha = %g: %s\n", r->temperature, r->alpha, r->why);
  else
    fprintf(f, "verdict: do not distil (alpha = 1): %s\n", r->why);
}

/* JSON members, each after `sep` ("" for the first of an object, else ", "); a non-finite number is null. */
static void num(FILE *f, const char *sep, const char *key, double v) {
  char b[40];
  fprintf(f, "%s\"%s\": %s", sep, key, isfinite(v) ? kd_fmt_num(b, sizeof b, v) : "null");
}

static void str(FILE *f, const char *sep, const char *key, const char *v) {
  fprintf(f, "%s\"%s\": ", sep, key);
  kd_json_write_str(f, v, strlen(v));
}

/* The per-temperature sums v[t] / n as an array (nulls when n is 0). */
static void means(FILE *f, const char *key, const double *v, double n) {
  fprintf(f, ", \"%s\": [", key);
  for (int t = 0; t < KD_DOCTOR_NT; t++) {
    char b[40];
    fprintf(f, "%s%s", t ? ", " : "", n > 0 ? kd_fmt_num(b, sizeof b, v[t] / n) : "null");
  }
  fputc(']', f);
}

static void sums(FILE *f, const char *key, const kd_doctor_sums *s) {
  fprintf(f, ", \"%s\": {", key);
  num(f, "", "positions", s->n);
  num(f, ", ", "agreement", s->labelled > 0 ? s->correct / s->labelled : NAN);
  num(f, ", ", "confidence", s->n > 0 ? s->conf / s->n : NAN);
  means(f, "off_target", s->off, s->n);
  means(f, "non_target", s->nontarget, s->n);
  means(f, "entropy", s->ent, s->n);
  num(f, ", ", "captured_mass", s->sparse_n > 0 ? s->captured / s->sparse_n : NAN);
  fputc('}', f);
}

void kd_doctor_json(FILE *f, const kd_doctor_report *r) {
  str(f, "{", "teacher", r->teacher_kind);
  fprintf(f, ", \"tokens\": %s, \"classes\": %d, \"transfer_rows\": %lld", r->tokens ? "true" : "false", r->classes,
          (long long)r->transfer_rows);
  str(f, ", ", "eval_split", r->eval_name);
  fprintf(f, ", \"eval_rows\": %lld", (long long)r->eval_rows);
  num(f, ", ", "student_params", r->student_params ? (double)r->student_params : NAN);
  num(f, ", ", "teacher_params", r->teacher_params ? (double)r->teacher_params : NAN);
  fputs(", \"temperatures\": [1, 2, 4, 8]", f);
  sums(f, "transfer", &r->transfer);
  sums(f, "eval", &r->eval);
  fprintf(f, ", \"baseline\": {\"steps\": %lld, \"metric\": \"%s\"", (long long)r->baseline_steps,
          r->tokens ? "nll" : "accuracy");
  num(f, ", ", "student", r->base_metric);
  num(f, ", ", "student_train", r->base_train_metric);
  num(f, ", ", "teacher", r->teacher_metric);
  num(f, ", ", "margin", r->margin);
  num(f, ", ", "margin_se", r->margin_se);
  fputs("}, \"findings\": [", f);
  for (int i = 0; i < r->n_findings; i++) {
    const kd_finding *x = &r->f[i];
    fprintf(f, "%s{\"key\": \"%s\", \"level\": \"%s\"", i ? ", " : "", x->key, level_name(x->level));
    num(f, ", ", "value", x->value);
    num(f, ", ", "threshold", x->threshold);
    str(f, ", ", "what", x->what);
    str(f, ", ", "todo", x->todo);
    fputc('}', f);
  }
  fprintf(f, "], \"verdict\": {\"use_kd\": %s", r->use_kd ? "true" : "false");
  num(f, ", ", "temperature", r->temperature);
  num(f, ", ", "alpha", r->alpha);
  str(f, ", ", "why", r->why);
  fputs("}}\n", f);
}
