#include "core/progress.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int on_terminal(void) {
  const char *kt = getenv("KD_TTY");
  const int launched = getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
  return launched ? kt && strcmp(kt, "1") == 0 : isatty(STDOUT_FILENO);
}

int kd_progress_init(kd_progress *p, const char *mode, double every, kd_err *e) {
  memset(p, 0, sizeof *p);
  p->every = every;
  p->last = -1e30;
  if (!(every > 0)) return kd_fail(e, KD_ERR_USAGE, "--progress-every %g: must be a positive number of seconds", every);
  if (strcmp(mode, "off") == 0) p->mode = KD_PROGRESS_OFF;
  else if (strcmp(mode, "on") == 0) p->mode = KD_PROGRESS_INPLACE;
  else if (strcmp(mode, "lines") == 0) p->mode = KD_PROGRESS_LINES;
  else if (strcmp(mode, "auto") == 0) p->mode = on_terminal() ? KD_PROGRESS_INPLACE : KD_PROGRESS_LINES;
  else return kd_fail(e, KD_ERR_USAGE, "--progress %s: expected auto, on, lines or off", mode);
  return KD_OK;
}

int kd_progress_init_on(kd_progress *p, const char *mode, double every, int shown, kd_err *e) {
  if (kd_progress_init(p, mode, every, e)) return e->code;
  if (!shown) p->mode = KD_PROGRESS_OFF;
  return KD_OK;
}

int kd_progress_due(kd_progress *p, double now) {
  if (p->mode == KD_PROGRESS_OFF) return 0;
  if (p->last < -1e29) p->last = now; /* the first check starts the clock: a line one interval in */
  if (now - p->last < p->every) return 0;
  p->last = now;
  return 1;
}

void kd_progress_show(kd_progress *p, const char *fmt, ...) {
  if (p->mode == KD_PROGRESS_OFF) return;
  char line[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (p->mode == KD_PROGRESS_INPLACE) {
    printf("\r%-78s", line);
    p->shown = 1;
  } else {
    printf("%s\n", line);
  }
  fflush(stdout);
}

void kd_progress_clear(kd_progress *p) {
  if (p->mode != KD_PROGRESS_INPLACE || !p->shown) return;
  printf("\r%78s\r", "");
  fflush(stdout);
  p->shown = 0;
}

void kd_progress_begin(kd_progress *p, const char *what, const char *unit, int64_t total, double per_unit, double now) {
  snprintf(p->what, sizeof p->what, "%s", what);
  p->unit = unit;
  p->total = total;
  p->done = 0;
  p->per_unit = per_unit;
  p->t0 = now;
  p->last = now; /* the first line comes one interval in: a short loop prints none */
}

void kd_progress_add(kd_progress *p, int64_t n, double now) {
  p->done += n;
  if (!kd_progress_due(p, now)) return;
  const double dt = now - p->t0, rate = dt > 0 ? (double)p->done / dt : 0;
  char eta[32];
  kd_format_duration(eta, sizeof eta, rate > 0 ? (double)(p->total - p->done) / rate : -1);
  if (p->per_unit > 0)
    kd_progress_show(p, "  %s: %lld/%lld %s (%.0f%%), %.0f tokens/s, ETA %s", p->what, (long long)p->done,
                     (long long)p->total, p->unit, 100.0 * (double)p->done / (double)(p->total ? p->total : 1),
                     rate * p->per_unit, eta);
  else
    kd_progress_show(p, "  %s: %lld/%lld %s (%.0f%%), %.1f %s/s, ETA %s", p->what, (long long)p->done,
                     (long long)p->total, p->unit, 100.0 * (double)p->done / (double)(p->total ? p->total : 1), rate,
                     p->unit, eta);
}

void kd_progress_end(kd_progress *p) { kd_progress_clear(p); }

void kd_format_duration(char *buf, size_t n, double s) {
  if (!(s >= 0) || s > 1e8) {
    snprintf(buf, n, "?");
    return;
  }
  long t = (long)(s + 0.5);
  if (t >= 3600)
    snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  else
    snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}
