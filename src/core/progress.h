/* Progress of a long loop on rank 0's console (kd train's steps, kd logits,
 * kd eval and kd generate --data over large splits): at most one line every
 * `every` seconds, redrawn in place on a terminal, or appended as a plain
 * line to a log (a file, a Slurm job's output), so a run of hours is never
 * silent and a log gets a bounded number of lines. */
#ifndef KD_CORE_PROGRESS_H
#define KD_CORE_PROGRESS_H

#include <stdint.h>

#include "kd/error.h"

typedef enum { KD_PROGRESS_OFF = 0, KD_PROGRESS_INPLACE = 1, KD_PROGRESS_LINES = 2 } kd_progress_mode;

typedef struct kd_progress {
  kd_progress_mode mode;
  double every;      /* seconds between lines */
  double t0, last;   /* start; time of the last line */
  int shown;         /* an in-place line is on the screen */
  /* counting loops (kd_progress_begin / kd_progress_add) */
  char what[96];     /* "kd logits /train (rank 0's rows)" */
  const char *unit;  /* "rows" */
  int64_t total, done;
  double per_unit;   /* tokens per unit, for a tokens/s rate (0: units/s) */
} kd_progress;

/* mode "auto" (in place on a terminal, plain lines otherwise; under an MPI
 * launcher, whose ranks always see a pseudo-terminal, in place only with
 * KD_TTY=1, which launch/local.sh sets when its output is a terminal),
 * "on" (in place), "lines" or "off"; every > 0 seconds (rank 0 only: other
 * ranks pass "off"). */
int kd_progress_init(kd_progress *p, const char *mode, double every, kd_err *e);
/* The same on every rank of a job (each checks the same arguments alike), then off except where shown != 0. */
int kd_progress_init_on(kd_progress *p, const char *mode, double every, int shown, kd_err *e);
/* 1 when a line is due at time `now` (seconds, MPI_Wtime's clock). */
int kd_progress_due(kd_progress *p, double now);
/* The line (printf-style, no newline): "\r...", or "... \n". */
void kd_progress_show(kd_progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Clear an in-place line before other output (nothing for plain lines). */
void kd_progress_clear(kd_progress *p);

/* A counted loop: `total` units of work (per_unit tokens each, 0: none). */
void kd_progress_begin(kd_progress *p, const char *what, const char *unit, int64_t total, double per_unit, double now);
/* n more units done; shows "what: done/total unit (x%), rate, ETA" when due. */
void kd_progress_add(kd_progress *p, int64_t n, double now);
/* The loop is over: clear an in-place line. */
void kd_progress_end(kd_progress *p);

/* "1:02:03" / "2:03". */
void kd_format_duration(char *buf, size_t n, double seconds);

#endif
