#include "core/rng.h"

#include <math.h>

/* splitmix64 finaliser: a bijective 64-bit mixer. */
uint64_t kd_mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t kd_key(uint64_t seed, uint64_t a, uint64_t b, uint64_t c) {
  uint64_t h = kd_mix64(seed ^ 0x6b64u);
  h = kd_mix64(h ^ a);
  h = kd_mix64(h ^ b);
  return kd_mix64(h ^ c);
}

float kd_uniform(uint64_t key, uint64_t counter) {
  uint64_t r = kd_mix64(key ^ kd_mix64(counter));
  return (float)(r >> 40) * (1.0f / 16777216.0f); /* 24 bits: exact in float */
}

double kd_normal(uint64_t key, uint64_t counter) {
  uint64_t a = kd_mix64(key ^ kd_mix64(2 * counter));
  uint64_t b = kd_mix64(key ^ kd_mix64(2 * counter + 1));
  double u1 = ((double)(a >> 11) + 0.5) * (1.0 / 9007199254740992.0); /* (0,1) */
  double u2 = (double)(b >> 11) * (1.0 / 9007199254740992.0);
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

uint64_t kd_rng_next(kd_rng *r) {
  r->s += 0x9e3779b97f4a7c15ULL;
  uint64_t z = r->s;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t kd_rng_below(kd_rng *r, uint64_t n) {
  /* Lemire's multiply-shift with rejection: unbiased. */
  uint64_t x = kd_rng_next(r);
  __uint128_t m = (__uint128_t)x * n;
  uint64_t l = (uint64_t)m;
  if (l < n) {
    uint64_t t = -n % n;
    while (l < t) {
      x = kd_rng_next(r);
      m = (__uint128_t)x * n;
      l = (uint64_t)m;
    }
  }
  return (uint64_t)(m >> 64);
}

void kd_permutation(int64_t *perm, int64_t n, uint64_t key) {
  kd_rng r = {key};
  for (int64_t i = 0; i < n; i++) perm[i] = i;
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = (int64_t)kd_rng_below(&r, (uint64_t)i + 1);
    int64_t t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
}
