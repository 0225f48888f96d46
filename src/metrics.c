#include "kd/metrics.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int kd_metrics_open(kd_metrics *m, const char *dir, kd_err *e) {
  snprintf(m->path, sizeof m->path, "%s/metrics.csv", dir);
  m->csv = fopen(m->path, "w");
  if (!m->csv) return kd_fail(e, KD_ERR_RUNTIME, "%s: cannot create (%s)", m->path, strerror(errno));
  if (fprintf(m->csv, "%s\n", KD_METRICS_HEADER) < 0 || fflush(m->csv) != 0)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: write failed (%s)", m->path, strerror(errno));
  return KD_OK;
}

int kd_metrics_write(kd_metrics *m, const kd_metrics_row *r, kd_err *e) {
  if (!m->csv) return KD_OK;
  char ce[32] = "", kd[32] = "";
  if (r->has_ce) snprintf(ce, sizeof ce, "%.6g", r->ce);
  if (r->has_kd) snprintf(kd, sizeof kd, "%.6g", r->kd);
  /* Five trailing empty columns: evaluation, filled by later features. */
  int n = fprintf(m->csv, "%lld,%lld,%.6g,%s,%s,%.6g,%.6g,%.6g,%.1f,%.3f,,,,,\n", (long long)r->step,
                  (long long)r->epoch, r->loss, ce, kd, r->acc, r->lr, r->grad_norm, r->samples_per_s,
                  r->elapsed_s);
  if (n < 0 || fflush(m->csv) != 0)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: write failed (%s)", m->path, strerror(errno));
  return KD_OK;
}

int kd_metrics_close(kd_metrics *m, kd_err *e) {
  if (!m->csv) return KD_OK;
  int rc = fclose(m->csv);
  m->csv = NULL;
  if (rc != 0) return kd_fail(e, KD_ERR_RUNTIME, "%s: close failed (%s)", m->path, strerror(errno));
  return KD_OK;
}

void kd_format_duration(char *buf, size_t n, double s) {
  if (!(s >= 0) || s > 1e8) { snprintf(buf, n, "?"); return; }
  long t = (long)(s + 0.5);
  if (t >= 3600) snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  else snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

void kd_progress_init(kd_progress *p, const char *mode) {
  p->last = -1e30;
  if (strcmp(mode, "on") == 0) p->enabled = 1;
  else if (strcmp(mode, "off") == 0) p->enabled = 0;
  else {
    /* auto: Open MPI hands its ranks a pseudo-terminal even when mpirun's
     * own output goes to a file, so under a launcher only trust KD_TTY,
     * which launch/local.sh sets when its stdout is a terminal. Batch jobs
     * and CI never get the live line. */
    const char *kt = getenv("KD_TTY");
    int launched = getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
    int tty = launched ? (kt && strcmp(kt, "1") == 0) : isatty(STDOUT_FILENO);
    p->enabled = tty && !getenv("SLURM_JOB_ID") && !getenv("PBS_JOBID") && !getenv("LSB_JOBID") && !getenv("CI");
  }
}

void kd_progress_update(kd_progress *p, double now, int64_t epoch,
                        int64_t epochs, int64_t step_in_epoch,
                        int64_t steps_per_epoch, double loss, double sps,
                        double eta_s) {
  if (!p->enabled || now - p->last < 2.0) return;
  p->last = now;
  char eta[32];
  kd_format_duration(eta, sizeof eta, eta_s);
  printf("\r  epoch %lld/%lld  step %lld/%lld  loss %.4f  %.0f samples/s  ETA %s   ", (long long)epoch,
         (long long)epochs, (long long)step_in_epoch, (long long)steps_per_epoch, loss, sps, eta);
  fflush(stdout);
}

void kd_progress_clear(kd_progress *p) {
  if (!p->enabled || p->last < 0) return;
  printf("\r%78s\r", "");
  fflush(stdout);
  p->last = -1e30;
}
