#include "kd/infer.h"

#include "core/fmt.h"
#include "core/progress.h"

#include <mpi.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

void kd_eval_accumulate(kd_eval_sums *s, const float *logits, const int32_t *y,
                        const float *t_logits, int B, int C, double T) {
  for (int b = 0; b < B; b++) {
    if (y[b] == KD_Y_IGNORE) continue; /* a position that is no target */
    const float *z = logits + (size_t)b * C;
    int arg = 0;
    double mx = z[0];
    for (int c = 1; c < C; c++)
      if (z[c] > z[arg]) arg = c;
    mx = z[arg];
    double sum = 0;
    for (int c = 0; c < C; c++) sum += exp((double)z[c] - mx);
    const double lse = mx + log(sum);
    s->n += 1;
    if (y[b] >= 0) {
      const double conf = exp(mx - lse); /* probability of the predicted class */
      const int hit = arg == y[b];
      /* Guard the bin: non-finite logits (a diverging run) give a NaN confidence. */
      int bin = conf >= 0.0 && conf <= 1.0 ? (int)(conf * KD_ECE_BINS) : 0;
      if (bin >= KD_ECE_BINS) bin = KD_ECE_BINS - 1;
      s->labelled += 1;
      s->correct += hit;
      s->nll += lse - z[y[b]];
      s->bin_n[bin] += 1;
      s->bin_conf[bin] += conf;
      s->bin_correct[bin] += hit;
    }
    if (t_logits) {
      const float *zt = t_logits + (size_t)b * C;
      int ta = 0;
      for (int c = 1; c < C; c++)
        if (zt[c] > zt[ta]) ta = c;
      double ms = -INFINITY, mt = -INFINITY, ss = 0, st = 0;
      for (int c = 0; c < C; c++) {
        ms = fmax(ms, z[c] / T);
        mt = fmax(mt, zt[c] / T);
      }
      for (int c = 0; c < C; c++) {
        ss += exp(z[c] / T - ms);
        st += exp(zt[c] / T - mt);
      }
      const double ls = ms + log(ss), lt = mt + log(st);
      double kl = 0;
      for (int c = 0; c < C; c++) {
        const double lpt = zt[c] / T - lt, lps = z[c] / T - ls;
        kl += exp(lpt) * (lpt - lps);
      }
      s->teacher_rows += 1;
      s->agree += ta == arg;
      s->kl += kl;
    }
  }
}

void kd_eval_finish(kd_eval_result *r, const kd_eval_sums *s) {
  r->n = (int64_t)s->n;
  r->tokens = s->tokens ? (int64_t)s->n : 0;
  r->ppl = s->tokens && s->labelled > 0 ? exp(s->nll / s->labelled) : NAN;
  r->bpb = s->tokens && s->bytes > 0 ? s->nll / 0.69314718055994530942 / s->bytes : NAN;
  if (s->labelled > 0) {
    r->accuracy = s->correct / s->labelled;
    r->nll = s->nll / s->labelled;
    double ece = 0;
    for (int b = 0; b < KD_ECE_BINS; b++)
      if (s->bin_n[b] > 0) ece += fabs(s->bin_correct[b] - s->bin_conf[b]) / s->labelled;
    r->ece = ece;
  } else {
    r->accuracy = r->nll = r->ece = NAN;
  }
  if (s->teacher_rows > 0) {
    r->agreement = s->agree / s->teacher_rows;
    r->kl = s->kl / s->teacher_rows;
  } else {
    r->agreement = r->kl = NAN;
  }
}

/* Run the model over rows [r0, r0 + nb) of src into z (and hidden layer
 * `layer` into feats + r0 rows when asked). */
static int forward_chunk(float *z, float *feats, int layer, kd_model *m, const kd_source *src, kd_batch *b,
                         int64_t r0, int nb, kd_err *e) {
  const kd_fwd f = {0, 0};
  if (kd_source_gather_range(src, r0, nb, b, e) || kd_model_forward(m, z, b, &f, e)) return e->code;
  if (feats) {
    int H = 0;
    const float *h = m->ops->hidden(m, layer, &H);
    if (!h) return kd_fail(e, KD_ERR_RUNTIME, "the model has no hidden layer %d", layer);
    memcpy(feats + (size_t)r0 * H, h, sizeof(float) * (size_t)nb * H);
  }
  return KD_OK;
}

/* One chunk's targets, teacher logits and (token rows) target bytes into s. */
static int accumulate_chunk(kd_eval_sums *s, const float *z, const kd_batch *b, int32_t *y, float *tl,
                            const kd_source *src, const kd_teacher *teacher, int64_t r0, int C, double T, kd_err *e) {
  const int P = kd_batch_positions(b);
  kd_batch_targets(b, y);
  if (teacher && kd_teacher_gather_range(teacher, r0, b->rows, tl, e)) return e->code;
  kd_eval_accumulate(s, z, y, teacher ? tl : NULL, b->rows * P, C, T);
  if (P > 1) {
    const int32_t *len = kd_source_token_bytes(src);
    s->tokens = 1;
    for (int i = 0; i < b->rows * P; i++)
      if (y[i] >= 0) s->bytes += len ? len[y[i]] : 0;
  }
  return KD_OK;
}

int kd_eval_model(kd_eval_result *r, float *logits_out, kd_model *m, const kd_source *src,
                  const kd_teacher *teacher, double T, kd_progress *prog, kd_err *e) {
  const int C = m->out_dim, chunk = m->max_batch;
  kd_batch b;
  if (kd_batch_init(&b, kd_source_kind(src), chunk, kd_source_width(src), e)) return e->code;
  const size_t cells = (size_t)chunk * kd_batch_positions(&b);
  float *buf = logits_out ? NULL : kd_malloc(sizeof(float) * cells * C, "evaluation logits", e);
  float *tl = teacher ? kd_malloc(sizeof(float) * cells * C, "evaluation teacher logits", e) : NULL;
  int32_t *y = kd_malloc(sizeof(int32_t) * cells, "evaluation targets", e);
  kd_eval_sums s;
  memset(&s, 0, sizeof s);
  int rc = e->code;
  const int64_t n = kd_source_rows(src);
  for (int64_t r0 = 0; r0 < n && !rc; r0 += chunk) {
    const int nb = (int)(n - r0 < chunk ? n - r0 : chunk);
    float *z = logits_out ? logits_out + (size_t)r0 * kd_batch_positions(&b) * C : buf;
    rc = forward_chunk(z, NULL, 0, m, src, &b, r0, nb, e);
    if (!rc) rc = accumulate_chunk(&s, z, &b, y, tl, src, teacher, r0, C, T, e);
    if (prog) kd_progress_add(prog, nb, MPI_Wtime());
  }
  free(buf);
  free(tl);
  free(y);
  kd_batch_free(&b);
  if (!rc) kd_eval_finish(r, &s);
  return rc;
}

int kd_infer_rows(float *logits, float *features, int layer, kd_model *m, const kd_source *src, kd_progress *prog,
                  kd_err *e) {
  const int C = m->out_dim, chunk = m->max_batch;
  kd_batch b;
  if (kd_batch_init(&b, kd_source_kind(src), chunk, kd_source_width(src), e)) return e->code;
  int rc = KD_OK;
  const int64_t n = kd_source_rows(src);
  for (int64_t r0 = 0; r0 < n && !rc; r0 += chunk) {
    const int nb = (int)(n - r0 < chunk ? n - r0 : chunk);
    rc = forward_chunk(logits + (size_t)r0 * kd_batch_positions(&b) * C, features, layer, m, src, &b, r0, nb, e);
    if (prog) kd_progress_add(prog, nb, MPI_Wtime());
  }
  kd_batch_free(&b);
  return rc;
}

void kd_eval_print(FILE *f, const char *label, const kd_eval_result *r) {
  if (r->tokens) { /* a language model: per target token */
    fprintf(f, "%s: nll %.4f  ppl %.3f", label, r->nll, r->ppl);
    if (!isnan(r->bpb)) fprintf(f, "  bpb %.4f", r->bpb);
    fprintf(f, "  accuracy %.4f  ece %.4f", r->accuracy, r->ece);
  } else {
    fprintf(f, "%s: accuracy %.4f  nll %.4f  ece %.4f", label, r->accuracy, r->nll, r->ece);
  }
  if (!isnan(r->agreement)) fprintf(f, "  teacher agreement %.4f  kl %.4f", r->agreement, r->kl);
  fprintf(f, "  (%lld %s)\n", (long long)r->n, r->tokens ? "tokens" : "rows");
}

static void json_num(FILE *f, const char *key, double v, int last) {
  if (!isfinite(v)) fprintf(f, "\"%s\": null%s", key, last ? "" : ", ");
  else {
    char num[40];
    fprintf(f, "\"%s\": %s%s", key, kd_fmt_num(num, sizeof num, v), last ? "" : ", ");
  }
}

void kd_eval_json(FILE *f, const kd_eval_result *r) {
  fputc('{', f);
  json_num(f, "accuracy", r->accuracy, 0);
  json_num(f, "nll", r->nll, 0);
  json_num(f, "ece", r->ece, 0);
  json_num(f, "agreement", r->agreement, 0);
  json_num(f, "kl", r->kl, 0);
  if (r->tokens) {
    json_num(f, "ppl", r->ppl, 0);
    json_num(f, "bpb", r->bpb, 0);
    fprintf(f, "\"tokens\": %lld, ", (long long)r->tokens);
  }
  fprintf(f, "\"n\": %lld}\n", (long long)r->n);
}
