#define _POSIX_C_SOURCE 199309L
#include "models/profile.h"

#include <time.h>

double kd_prof_now(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) return 0.0; /* cannot fail for CLOCK_MONOTONIC on Linux */
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void kd_prof_add(kd_profile *p, int slot, const char *name, double seconds, double flop) {
  if (slot < 0 || slot >= KD_PROF_SLOTS) return;
  kd_prof_slot *s = &p->slot[slot];
  s->name = name;
  s->seconds += seconds;
  s->flop += flop;
  s->calls++;
}
