#include "train/metrics.h"

#include "core/atomic.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void set_header(kd_metrics *m, const char *dir, const char *const *extra, int n_extra) {
  snprintf(m->path, sizeof m->path, "%s/metrics.csv", dir);
  snprintf(m->header, sizeof m->header, "%s", KD_METRICS_BASE);
  m->n_extra = n_extra < KD_METRICS_MAX_EXTRA ? n_extra : KD_METRICS_MAX_EXTRA;
  for (int i = 0; i < m->n_extra; i++)
    snprintf(m->header + strlen(m->header), sizeof m->header - strlen(m->header), ",%s", extra[i]);
}

int kd_metrics_open(kd_metrics *m, const char *dir, const char *const *extra, int n_extra, kd_err *e) {
  set_header(m, dir, extra, n_extra);
  m->csv = fopen(m->path, "w");
  if (!m->csv) return kd_fail(e, KD_ERR_RUNTIME, "%s: cannot create (%s)", m->path, strerror(errno));
  if (fprintf(m->csv, "%s\n", m->header) < 0 || fflush(m->csv) != 0)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: write failed (%s)", m->path, strerror(errno));
  return KD_OK;
}

static void cell(char *buf, size_t n, int present, double v, const char *fmt) {
  if (present && !isnan(v)) snprintf(buf, n, fmt, v);
  else buf[0] = '\0';
}

int kd_metrics_write(kd_metrics *m, const kd_metrics_row *r, kd_err *e) {
  if (!m->csv) return KD_OK;
  char c[13 + KD_METRICS_MAX_EXTRA][40], line[1024];
  const int t = r->has_train, v = r->has_eval;
  cell(c[0], 40, t, r->loss, "%.6g");
  cell(c[1], 40, t && r->has_ce, r->ce, "%.6g");
  cell(c[2], 40, t && r->has_kd, r->kd, "%.6g");
  cell(c[3], 40, t, r->acc, "%.6g");
  cell(c[4], 40, t, r->lr, "%.6g");
  cell(c[5], 40, t, r->grad_norm, "%.6g");
  cell(c[6], 40, t, r->samples_per_s, "%.1f");
  cell(c[7], 40, t, r->elapsed_s, "%.3f");
  cell(c[8], 40, v, r->eval_accuracy, "%.6g");
  cell(c[9], 40, v, r->eval_nll, "%.6g");
  cell(c[10], 40, v, r->eval_ece, "%.6g");
  cell(c[11], 40, v, r->eval_agreement, "%.6g");
  cell(c[12], 40, v, r->eval_kl, "%.6g");
  for (int i = 0; i < m->n_extra; i++) cell(c[13 + i], 40, r->has_extra[i], r->extra[i], "%.6g");
  snprintf(line, sizeof line, "%lld,%lld", (long long)r->step, (long long)r->epoch);
  for (int i = 0; i < 13 + m->n_extra; i++) snprintf(line + strlen(line), sizeof line - strlen(line), ",%s", c[i]);
  if (fprintf(m->csv, "%s\n", line) < 0 || fflush(m->csv) != 0)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: write failed (%s)", m->path, strerror(errno));
  return KD_OK;
}

/* Copy the rows of `in` up to `step` (the interrupted tail goes) under the header. */
static int copy_rows(FILE *in, FILE *out, const char *header, int64_t step) {
  char line[8192];
  int first = 1, bad = fputs(header, out) < 0 || fputc('\n', out) == EOF;
  while (fgets(line, sizeof line, in)) {
    if (first) { /* the old header */
      first = 0;
      continue;
    }
    if (strtoll(line, NULL, 10) <= step && strchr(line, '\n')) bad |= fputs(line, out) < 0;
  }
  return bad;
}

int kd_metrics_open_resume(kd_metrics *m, const char *dir, int64_t step, const char *const *extra, int n_extra,
                           kd_err *e) {
  set_header(m, dir, extra, n_extra);
  FILE *in = fopen(m->path, "r");
  if (!in) return kd_metrics_open(m, dir, extra, n_extra, e); /* lost: start a new one */
  kd_atomic a;
  if (kd_atomic_begin(&a, m->path, e)) {
    fclose(in);
    return e->code;
  }
  FILE *out = fopen(a.tmp, "w");
  if (!out) {
    fclose(in);
    return kd_fail(e, KD_ERR_RUNTIME, "%s: cannot create (%s)", a.tmp, strerror(errno));
  }
  int bad = copy_rows(in, out, m->header, step);
  fclose(in);
  bad |= fclose(out) != 0;
  if (bad) {
    kd_atomic_abort(&a);
    return kd_fail(e, KD_ERR_RUNTIME, "%s: rewriting for resume failed (%s)", m->path, strerror(errno));
  }
  if (kd_atomic_commit(&a, e)) return e->code;
  m->csv = fopen(m->path, "a");
  if (!m->csv) return kd_fail(e, KD_ERR_RUNTIME, "%s: cannot append (%s)", m->path, strerror(errno));
  return KD_OK;
}

int kd_metrics_close(kd_metrics *m, kd_err *e) {
  if (!m->csv) return KD_OK;
  int rc = fclose(m->csv);
  m->csv = NULL;
  if (rc != 0) return kd_fail(e, KD_ERR_RUNTIME, "%s: close failed (%s)", m->path, strerror(errno));
  return KD_OK;
}
