#include "kd/infer.h"

#include "core/fmt.h"
#include "core/progress.h"
#include "data/rows.h"

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

/* One batch's targets, teacher logits and (token rows) target bytes into s. */
static void accumulate_batch(kd_eval_sums *s, const float *z, const kd_batch *b, int32_t *y, const float *tl, int C,
                             const kd_eval_pass *p) {
  const int P = kd_batch_positions(b);
  kd_batch_targets(b, y);
  kd_eval_accumulate(s, z, y, tl, b->rows * P, C, p->T);
  if (P > 1) {
    s->tokens = 1;
    for (int i = 0; i < b->rows * P; i++)
      if (y[i] >= 0) s->bytes += p->token_bytes ? p->token_bytes[y[i]] : 0;
  }
}

/* The pass's buffers: a batch of the model's max_batch rows, its logits, teacher logits and targets. */
typedef struct pass_bufs {
  kd_batch b;
  float *z, *tl;
  int32_t *y;
} pass_bufs;

static void pass_free(pass_bufs *q) {
  free(q->z);
  free(q->tl);
  free(q->y);
  kd_batch_free(&q->b);
}

static int pass_alloc(pass_bufs *q, const kd_model *m, const kd_eval_pass *p, kd_err *e) {
  memset(q, 0, sizeof *q);
  if (kd_batch_init(&q->b, p->kind, m->max_batch, p->width, e)) return e->code;
  const size_t cells = (size_t)m->max_batch * kd_batch_positions(&q->b);
  q->z = kd_malloc(sizeof(float) * cells * m->out_dim, "evaluation logits", e);
  if (p->teacher) q->tl = kd_malloc(sizeof(float) * cells * m->out_dim, "evaluation teacher logits", e);
  q->y = kd_malloc(sizeof(int32_t) * cells, "evaluation targets", e);
  if (e->code) pass_free(q);
  return e->code;
}

int kd_eval_rows(kd_eval_sums *s, kd_model *m, kd_rows *rows, const kd_eval_pass *p, kd_err *e) {
  pass_bufs q;
  if (pass_alloc(&q, m, p, e)) return e->code;
  if (s) memset(s, 0, sizeof *s);
  const kd_fwd inference = {0, 0};
  const int64_t steps = kd_rows_steps(rows);
  int rc = kd_rows_seek(rows, 0, 0, e);
  for (int64_t k = 0, r0 = 0; k < steps && !rc; k++) {
    kd_teacher_batch tb = {q.tl, NULL};
    const kd_rows_out out = {&q.b, &tb, NULL};
    rc = kd_rows_next(rows, &out, e);
    if (!rc) rc = kd_model_forward(m, q.z, &q.b, &inference, e);
    if (!rc && s) accumulate_batch(s, q.z, &q.b, q.y, q.tl, m->out_dim, p);
    if (!rc && p->sink) rc = p->sink(p->ctx, q.z, r0, q.b.rows, e);
    r0 += q.b.rows;
    if (p->prog) kd_progress_add(p->prog, q.b.rows, MPI_Wtime());
  }
  pass_free(&q);
  return rc;
}

/* kd_eval_model's sink: each batch's logits at their rows of one array. */
typedef struct into_array {
  float *logits;
  size_t row_floats;
} into_array;

static int copy_logits(void *ctx, const float *z, int64_t r0, int rows, kd_err *e) {
  (void)e;
  const into_array *a = ctx;
  memcpy(a->logits + (size_t)r0 * a->row_floats, z, sizeof(float) * a->row_floats * (size_t)rows);
  return KD_OK;
}

int kd_eval_model(kd_eval_result *r, float *logits_out, kd_model *m, const kd_source *src,
                  const kd_teacher *teacher, double T, kd_progress *prog, kd_err *e) {
  kd_rows *rows;
  if (kd_rows_memory_in_order(&rows, src, teacher, m->max_batch, e)) return e->code;
  const int P = kd_source_kind(src) == KD_INPUT_TOKENS ? kd_source_width(src) : 1;
  into_array a = {logits_out, (size_t)P * m->out_dim};
  const kd_eval_pass p = {kd_source_kind(src), kd_source_width(src), teacher != NULL, kd_source_token_bytes(src), T,
                          logits_out ? copy_logits : NULL, &a, prog};
  kd_eval_sums s;
  const int rc = kd_eval_rows(&s, m, rows, &p, e);
  kd_rows_free(rows);
  if (!rc) kd_eval_finish(r, &s);
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
