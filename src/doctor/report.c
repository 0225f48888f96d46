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

static void num(FILE *f, const char *key, double v) {
  char b[40];
  fprintf(f, "\"%s\": %s", key, isfinite(v) ? kd_fmt_num(b, sizeof b, v) : "null");
}

static void str(FILE *f, const char *key, const char *v) {
  fprintf(f, "\"%s\": ", key);
  kd_json_write_str(f, v, strlen(v));
}

static void sums(FILE *f, const char *key, const kd_doctor_sums *s) {
  fprintf(f, "\"%s\": {", key);
  num(f, "positions", s->n);
  fputs(", ", f);
  num(f, "agreement", s->labelled > 0 ? s->correct / s->labelled : NAN);
  fputs(", ", f);
  num(f, "confidence", s->n > 0 ? s->conf / s->n : NAN);
  fputs(", \"off_target\": [", f);
  for (int t = 0; t < KD_DOCTOR_NT; t++) {
    char b[40];
    fprintf(f, "%s%s", t ? ", " : "", s->n > 0 ? kd_fmt_num(b, sizeof b, s->off[t] / s->n) : "null");
  }
  fputs("], \"non_target\": [", f);
  for (int t = 0; t < KD_DOCTOR_NT; t++) {
    char b[40];
    fprintf(f, "%s%s", t ? ", " : "", s->n > 0 ? kd_fmt_num(b, sizeof b, s->nontarget[t] / s->n) : "null");
  }
  fputs("], \"entropy\": [", f);
  for (int t = 0; t < KD_DOCTOR_NT; t++) {
    char b[40];
    fprintf(f, "%s%s", t ? ", " : "", s->n > 0 ? kd_fmt_num(b, sizeof b, s->ent[t] / s->n) : "null");
  }
  fputs("], ", f);
  num(f, "captured_mass", s->sparse_n > 0 ? s->captured / s->sparse_n : NAN);
  fputc('}', f);
}

void kd_doctor_json(FILE *f, const kd_doctor_report *r) {
  fputc('{', f);
  str(f, "teacher", r->teacher_kind);
  fprintf(f, ", \"tokens\": %s, \"classes\": %d, \"transfer_rows\": %lld, ", r->tokens ? "true" : "false", r->classes,
          (long long)r->transfer_rows);
  str(f, "eval_split", r->eval_name);
  fprintf(f, ", \"eval_rows\": %lld, ", (long long)r->eval_rows);
  num(f, "student_params", r->student_params ? (double)r->student_params : NAN);
  fputs(", ", f);
  num(f, "teacher_params", r->teacher_params ? (double)r->teacher_params : NAN);
  fputs(", \"temperatures\": [1, 2, 4, 8], ", f);
  sums(f, "transfer", &r->transfer);
  fputs(", ", f);
  sums(f, "eval", &r->eval);
  fprintf(f, ", \"baseline\": {\"steps\": %lld, \"metric\": \"%s\", ", (long long)r->baseline_steps,
          r->tokens ? "nll" : "accuracy");
  num(f, "student", r->base_metric);
  fputs(", ", f);
  num(f, "student_train", r->base_train_metric);
  fputs(", ", f);
  num(f, "teacher", r->teacher_metric);
  fputs(", ", f);
  num(f, "margin", r->margin);
  fputs(", ", f);
  num(f, "margin_se", r->margin_se);
  fputs("}, \"findings\": [", f);
  for (int i = 0; i < r->n_findings; i++) {
    const kd_finding *x = &r->f[i];
    fprintf(f, "%s{\"key\": \"%s\", \"level\": \"%s\", ", i ? ", " : "", x->key, level_name(x->level));
    num(f, "value", x->value);
    fputs(", ", f);
    num(f, "threshold", x->threshold);
    fputs(", ", f);
    str(f, "what", x->what);
    fputs(", ", f);
    str(f, "todo", x->todo);
    fputc('}', f);
  }
  fprintf(f, "], \"verdict\": {\"use_kd\": %s, ", r->use_kd ? "true" : "false");
  num(f, "temperature", r->temperature);
  fputs(", ", f);
  num(f, "alpha", r->alpha);
  fputs(", ", f);
  str(f, "why", r->why);
  fputs("}}\n", f);
}
