/* Per-kernel timing for model implementations (kd_model.prof). */
#ifndef KD_MODELS_PROFILE_H
#define KD_MODELS_PROFILE_H

#include "kd/model.h"

/* Monotonic seconds. */
double kd_prof_now(void);
/* Add one call of kernel `slot` (named `name`) that took `seconds`. */
void kd_prof_add(kd_profile *p, int slot, const char *name, double seconds, double flop);

/* Run STMT, charged to SLOT of model M's profile when one is set. */
#define KD_PROF_TIMED(M, SLOT, NAME, FLOP, STMT)                                    \
  do {                                                                              \
    const double kd_t0_ = (M)->prof ? kd_prof_now() : 0.0;                          \
    STMT;                                                                           \
    if ((M)->prof) kd_prof_add((M)->prof, (SLOT), (NAME), kd_prof_now() - kd_t0_, (FLOP)); \
  } while (0)

#endif
