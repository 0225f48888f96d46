/* Counter-based random numbers: every draw is a pure function of (key, counter),
 * so shuffles, dropout masks and initial weights depend only on the seed and on
 * where they are used, never on how many draws happened before. That keeps runs
 * deterministic and makes resuming need no generator state. */
#ifndef KD_RNG_H
#define KD_RNG_H

#include <stdint.h>

uint64_t kd_mix64(uint64_t x);
/* Hash of a tuple of words (seed, purpose, epoch, rank, ...). */
uint64_t kd_key(uint64_t seed, uint64_t a, uint64_t b, uint64_t c);
/* Uniform in [0, 1) from (key, counter). */
float kd_uniform(uint64_t key, uint64_t counter);
/* Standard normal from (key, counter) (Box-Muller on two derived uniforms). */
double kd_normal(uint64_t key, uint64_t counter);

/* Sequential generator for Fisher-Yates shuffles, seeded from a key. */
typedef struct kd_rng { uint64_t s; } kd_rng;
uint64_t kd_rng_next(kd_rng *r);
/* Uniform integer in [0, n). */
uint64_t kd_rng_below(kd_rng *r, uint64_t n);
/* perm[i] = a uniform random permutation of 0..n-1 drawn from key. */
void kd_permutation(int64_t *perm, int64_t n, uint64_t key);

/* Purposes, mixed into keys so streams never collide. */
enum { KD_RNG_INIT = 1, KD_RNG_SHUFFLE = 2, KD_RNG_DROPOUT = 3, KD_RNG_SYNTH = 4, KD_RNG_LABELS = 5, KD_RNG_SAMPLE = 6,
       KD_RNG_STREAM = 7, KD_RNG_ONPOLICY = 8 };

#endif
