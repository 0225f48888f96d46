/* The doctor's findings and verdict from its measurements. The thresholds
 * are heuristics, each named beside its test; docs/results.md ("kd doctor
 * on these settings") records how they judge kd's own measured runs. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "doctor/doctor.h"

/* Capacity: below this share of the teacher's parameters the literature
 * expects a student to struggle (kd's own 1% student still gained). */
#define CAPACITY_NOTE 0.10
/* Margin: the teacher must beat the scratch baseline by this much on the
 * evaluation split (accuracy points for classes; relative NLL per token)
 * and by two standard errors. */
#define MARGIN_ACC 0.03
#define MARGIN_NLL_REL 0.03
/* Fit: the baseline overfits when its metric on the rows it learnt from is
 * this much better than on the evaluation split; it is too small when it
 * does not reach the teacher's evaluation accuracy on its own rows. */
#define OVERFIT_ACC 0.05
#define OVERFIT_NLL_REL 0.05
#define UNDERFIT_ACC 0.05
/* Dark knowledge: the suggested T is the lowest of 1, 2, 4, 8 at which the
 * teacher's entropy reaches this share of log C (nearly one-hot targets
 * below it); a teacher with less than OFF_NOTE of its mass off the target at
 * T = 1 hides its dark knowledge there. */
#define ENTROPY_SHARE 0.25
#define OFF_NOTE 0.2
/* Shift: teacher agreement with the labels, or confidence, apart by this much
 * between the transfer rows and the evaluation split. */
#define SHIFT_ACC 0.05
#define SHIFT_CONF 0.10
/* All-correct: this share of labelled transfer positions teacher-correct. */
#define ALL_CORRECT 0.999
/* Sparse: the K ids hold at least this much mass for top-k to be near-dense. */
#define CAPTURED_OK 0.99
/* Alpha: where the teacher's argmax is the label this often, the labels add
 * little beside its targets (0.1); else (or unknown) they carry what it
 * misses (0.25). */
#define AGREE_HIGH 0.7

static kd_finding *add(kd_doctor_report *r, const char *key, kd_find_level level, double value, double threshold) {
  kd_finding *f = &r->f[r->n_findings < KD_DOCTOR_MAX_FINDINGS ? r->n_findings++ : KD_DOCTOR_MAX_FINDINGS - 1];
  memset(f, 0, sizeof *f);
  snprintf(f->key, sizeof f->key, "%s", key);
  f->level = level;
  f->value = value;
  f->threshold = threshold;
  return f;
}

static double mean(double sum, double n) { return n > 0 ? sum / n : NAN; }

static void capacity(kd_doctor_report *r) {
  if (!r->student_params || !r->teacher_params) return;
  const double q = (double)r->student_params / (double)r->teacher_params;
  kd_finding *f = add(r, "capacity", q < CAPACITY_NOTE ? KD_FIND_NOTE : KD_FIND_OK, q, CAPACITY_NOTE);
  snprintf(f->what, sizeof f->what, "the student has %zu parameters, %.1f%% of the teacher's %zu", r->student_params,
           100 * q, r->teacher_params);
  snprintf(f->todo, sizeof f->todo, "%s",
           q < CAPACITY_NOTE ? "a large gap: if distillation disappoints, try a larger student or an intermediate "
                               "teacher (the margin and fit findings measure whether it can follow)"
                             : "none");
}

/* The teacher's margin over the scratch baseline; returns 1 when it is too small. */
static int margin(kd_doctor_report *r) {
  if (isnan(r->margin)) return 0;
  const double need = r->tokens ? MARGIN_NLL_REL * r->base_metric : MARGIN_ACC;
  const double bar = fmax(need, 2 * r->margin_se);
  const int low = r->margin < bar;
  kd_finding *f = add(r, "margin", low ? KD_FIND_WARN : KD_FIND_OK, r->margin, bar);
  if (r->tokens)
    snprintf(f->what, sizeof f->what,
             "teacher NLL %.4f against %.4f for the student from scratch after %lld steps: %.4f nats per token "
             "better (+/- %.4f)",
             r->teacher_metric, r->base_metric, (long long)r->baseline_steps, r->margin, r->margin_se);
  else
    snprintf(f->what, sizeof f->what,
             "teacher accuracy %.2f%% against %.2f%% for the student from scratch after %lld steps: %+.2f points "
             "(+/- %.2f)",
             100 * r->teacher_metric, 100 * r->base_metric, (long long)r->baseline_steps, 100 * r->margin,
             100 * r->margin_se);
  snprintf(f->todo, sizeof f->todo, "%s",
           low ? "the teacher is barely better than the student on its own (and a longer run narrows the gap "
                 "further): distillation is unlikely to help; train from scratch, or distil with alpha >= 0.9"
               : "none: the teacher has something to teach");
  return low;
}

/* Whether the baseline fits its rows: returns 1 when it cannot (too small), 2 when it overfits. */
static int fit(kd_doctor_report *r) {
  if (isnan(r->base_train_metric) || isnan(r->base_metric)) return 0;
  const double gap = r->tokens ? (r->base_metric - r->base_train_metric) / r->base_train_metric
                               : r->base_train_metric - r->base_metric;
  const double over = r->tokens ? OVERFIT_NLL_REL : OVERFIT_ACC;
  const int small = !r->tokens && !isnan(r->teacher_metric) && r->base_train_metric < r->teacher_metric - UNDERFIT_ACC;
  const int overfits = gap >= over;
  kd_finding *f = add(r, "fit", small ? KD_FIND_WARN : overfits ? KD_FIND_NOTE : KD_FIND_OK,
                      small ? r->base_train_metric : gap, small ? r->teacher_metric - UNDERFIT_ACC : over);
  if (r->tokens)
    snprintf(f->what, sizeof f->what, "the baseline's NLL is %.4f on the rows it learnt from, %.4f on %s (%+.1f%%)",
             r->base_train_metric, r->base_metric, r->eval_name, 100 * gap);
  else
    snprintf(f->what, sizeof f->what, "the baseline's accuracy is %.2f%% on the rows it learnt from, %.2f%% on %s",
             100 * r->base_train_metric, 100 * r->base_metric, r->eval_name);
  snprintf(f->todo, sizeof f->todo, "%s",
           small ? "the student cannot fit its own labelled rows as well as the teacher predicts new ones: it is too "
                   "small to follow; use a larger student"
           : overfits ? "the student overfits its labelled rows: the teacher's soft targets regularise it and carry "
                        "what the few labels lack (distillation tends to help here; a low alpha)"
                      : "none: the student is not short of labelled rows");
  return small ? 1 : overfits ? 2 : 0;
}

/* The lowest T whose entropy reaches ENTROPY_SHARE of log C. */
static double suggest_t(const kd_doctor_report *r) {
  const kd_doctor_sums *s = &r->transfer;
  for (int t = 0; t < KD_DOCTOR_NT; t++)
    if (mean(s->ent[t], s->n) >= ENTROPY_SHARE * log((double)r->classes)) return kd_doctor_temps[t];
  return kd_doctor_temps[KD_DOCTOR_NT - 1];
}

static void dark_knowledge(kd_doctor_report *r) {
  const kd_doctor_sums *s = &r->transfer;
  if (s->n <= 0) return;
  const double off1 = mean(s->off[0], s->n), T = suggest_t(r);
  kd_finding *f = add(r, "dark-knowledge", off1 < OFF_NOTE ? KD_FIND_NOTE : KD_FIND_OK, off1, OFF_NOTE);
  int n = snprintf(f->what, sizeof f->what,
                   "the teacher's probability off its argmax / off the %s / entropy (nats, of log C = %.2f):",
                   s->labelled > 0 ? "label" : "argmax", log((double)r->classes));
  for (int t = 0; t < KD_DOCTOR_NT && n < (int)sizeof f->what; t++)
    n += snprintf(f->what + n, sizeof f->what - n, " T=%g %.3f / %.3f / %.3f%s", kd_doctor_temps[t],
                  mean(s->off[t], s->n), mean(s->nontarget[t], s->n), mean(s->ent[t], s->n),
                  t + 1 < KD_DOCTOR_NT ? ";" : "");
  if (off1 < OFF_NOTE)
    snprintf(f->todo, sizeof f->todo, "a confident teacher: at T = 1 its targets are nearly one-hot and hide the "
                                      "dark knowledge; use T = %g (its entropy reaches %.0f%% of log C there)",
             T, 100 * ENTROPY_SHARE);
  else
    snprintf(f->todo, sizeof f->todo, "the targets are soft already; T = %g (higher flattens them towards classes "
                                      "the teacher rules out)", T);
}

static void shift(kd_doctor_report *r) {
  const kd_doctor_sums *a = &r->transfer, *b = &r->eval;
  if (a->n <= 0 || b->n <= 0) return;
  const double acc_a = mean(a->correct, a->labelled), acc_b = mean(b->correct, b->labelled);
  const double conf_a = mean(a->conf, a->n), conf_b = mean(b->conf, b->n);
  const double d_acc = acc_a - acc_b, d_conf = conf_a - conf_b;
  const int off = d_acc < -SHIFT_ACC || d_conf < -SHIFT_CONF, sharper = d_acc > SHIFT_ACC || d_conf > SHIFT_CONF;
  kd_finding *f = add(r, "shift", off ? KD_FIND_WARN : sharper ? KD_FIND_NOTE : KD_FIND_OK,
                      fabs(d_acc) / SHIFT_ACC > fabs(d_conf) / SHIFT_CONF ? d_acc : d_conf,
                      fabs(d_acc) / SHIFT_ACC > fabs(d_conf) / SHIFT_CONF ? SHIFT_ACC : SHIFT_CONF);
  snprintf(f->what, sizeof f->what,
           "the teacher on the transfer rows / on %s: agreement with the labels %.2f%% / %.2f%%, confidence %.3f / "
           "%.3f, entropy %.3f / %.3f nats",
           r->eval_name, 100 * acc_a, 100 * acc_b, conf_a, conf_b, mean(a->ent[0], a->n), mean(b->ent[0], b->n));
  snprintf(f->todo, sizeof f->todo, "%s",
           off ? "the transfer rows are off the teacher's distribution (it is less right or less sure there than "
                 "on the evaluation split): its targets there teach less; use transfer rows like the evaluation data"
           : sharper ? "the teacher fits the transfer rows better than new rows (they are likely its own training "
                       "rows): its targets there are sharper than on unseen data; a higher T, or held-out transfer "
                       "rows, carry more"
                     : "none");
}

static void all_correct(kd_doctor_report *r) {
  const kd_doctor_sums *s = &r->transfer;
  if (s->labelled < 100) return;
  const double q = s->correct / s->labelled;
  const int all = q >= ALL_CORRECT;
  kd_finding *f = add(r, "all-correct", all ? KD_FIND_WARN : KD_FIND_OK, q, ALL_CORRECT);
  snprintf(f->what, sizeof f->what, "the teacher's argmax is the label at %.2f%% of the %.0f labelled transfer %s",
           100 * q, s->labelled, r->tokens ? "tokens" : "rows");
  snprintf(f->todo, sizeof f->todo, "%s",
           all ? "the transfer set holds only what the teacher gets right (filtered?): its targets repeat the labels "
                 "and never show its doubts; keep the rows it gets wrong"
               : "none");
}

/* Sparse files; returns 1 when distilling from this file is expected to hurt. */
static int sparse(kd_doctor_report *r, double *T) {
  if (!strstr(r->teacher_kind, "top-k") && !strstr(r->teacher_kind, "sampled")) return 0;
  const kd_doctor_sums *s = &r->transfer;
  const double held = s->sparse_n > 0 ? s->captured / s->sparse_n : NAN;
  if (strstr(r->teacher_kind, "sampled")) {
    kd_finding *f = add(r, "sparse", KD_FIND_OK, r->sparse_k, 0);
    snprintf(f->what, sizeof f->what, "%d draws per position from the teacher's softmax at T = %g", r->sparse_k,
             r->sample_temperature);
    snprintf(f->todo, sizeof f->todo, "none: sampled targets are unbiased; train at T = %g", r->sample_temperature);
    *T = r->sample_temperature;
    return 0;
  }
  const int tail = strstr(r->teacher_kind, "tail") != NULL, exact = !isnan(held) && held >= CAPTURED_OK;
  kd_finding *f = add(r, "sparse", exact ? KD_FIND_OK : KD_FIND_WARN, held, CAPTURED_OK);
  if (isnan(held))
    snprintf(f->what, sizeof f->what, "%d ids per position, renormalised; the file holds no lse, so the mass "
                                      "outside them is unknown", r->sparse_k);
  else
    snprintf(f->what, sizeof f->what, "the %d stored ids hold %.1f%% of the teacher's mass at T = 1; %s", r->sparse_k,
             100 * held, tail ? "the rest is one tail bin" : "renormalised over them (no tail)");
  if (exact)
    snprintf(f->todo, sizeof f->todo, "none: the ids hold nearly all the mass; train at T = 1 (above it the rest "
                                      "weighs more)");
  else if (tail)
    snprintf(f->todo, sizeof f->todo, "the tail bin is exact at T = 1 only (measured at T = 2: top-32 + tail worse "
                                      "than no teacher); train at T = 1, or write sampled targets (kd logits "
                                      "--sample 12..32)");
  else
    snprintf(f->todo, sizeof f->todo, "renormalised top-k pushes the student's mass off every other id (measured "
                                      "worse than no teacher at K up to 128); write sampled targets (kd logits "
                                      "--sample 12..32)%s",
             r->sparse_has_lse ? " or use --sparse-kd tail at T = 1" : "");
  *T = 1; /* the mass is measured at T = 1; a higher T raises the share of what the file does not hold */
  return !exact && !tail;
}

void kd_doctor_judge(kd_doctor_report *r) {
  r->n_findings = 0;
  capacity(r);
  const int weak = margin(r);
  const int fits = fit(r);
  dark_knowledge(r);
  shift(r);
  all_correct(r);
  double T = r->transfer.n > 0 ? suggest_t(r) : NAN;
  const int bad_file = sparse(r, &T);
  const double agree = mean(r->transfer.correct, r->transfer.labelled);
  r->temperature = T;
  r->use_kd = !weak && fits != 1 && !bad_file;
  /* agreement unknown (a sampled file is not scanned): the labels keep the larger share */
  r->alpha = !r->use_kd ? 1 : isnan(agree) || agree < AGREE_HIGH ? 0.25 : 0.1;
  if (bad_file)
    snprintf(r->why, sizeof r->why, "not with this file: its renormalised top-k targets are expected to make the "
                                    "student worse than training from scratch (see the sparse finding)");
  else if (fits == 1)
    snprintf(r->why, sizeof r->why, "train from scratch or enlarge the student: it cannot follow the teacher; "
                                    "distillation is expected to lower its metric");
  else if (weak)
    snprintf(r->why, sizeof r->why, "train from scratch (or alpha >= 0.9): the teacher barely beats the student; "
                                    "distillation is expected to change its metric little, or lower it");
  else if (isnan(r->margin) && isnan(r->base_metric))
    snprintf(r->why, sizeof r->why, "distil (no baseline ran: --baseline-steps N measures whether the teacher beats "
                                    "the student enough to pay)");
  else if (isnan(r->margin))
    snprintf(r->why, sizeof r->why, "distil (the teacher file holds no dense logits of %s, so the teacher's margin "
                                    "over the baseline's %.4f was not measured; --teacher-model CKPT measures it)",
             r->eval_name, r->base_metric);
  else
    snprintf(r->why, sizeof r->why, "distil: the teacher beats the student on its own by a clear margin%s; expected "
                                    "to improve the student's evaluation metric",
             fits == 2 ? " and the student overfits its few labelled rows" : "");
}
