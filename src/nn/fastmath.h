/* exp in float, written so the compiler vectorizes the loops that call it
 * (no libm call, no branch): the hot element-wise passes of the Transformer
 * (GELU, softmax) spend their time here. Within 2 ulp of expf; x must lie
 * in [-87, 88] (exp(-87) is still a normal float, exp(88) finite), which
 * the caller ensures with a clamp suited to its use. Why not clamp here:
 * the compiler evaluates both sides of a vectorized clamp for every lane,
 * and a caller's z * exp(-87) there is a denormal, which costs a microcode
 * assist per vector on x86 (three times slower GELU, measured). The test
 * checks it against exp in double. */
#ifndef KD_NN_FASTMATH_H
#define KD_NN_FASTMATH_H

#include <stdint.h>

static inline float kd_exp_fast(float x) {
  /* x = k ln2 + r, |r| <= ln2 / 2; k rounded to nearest by the 1.5 * 2^23 shift */
  const float k = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = (x - k * 0.693359375f) + k * 2.12194440e-4f; /* ln2 in two parts */
  /* the minimax polynomial of Cephes' expf */
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  union {
    uint32_t i;
    float f;
  } s;
  s.i = (uint32_t)((int32_t)k + 127) << 23; /* 2^k, k in [-126, 127]; a NaN x gives a NaN p */
  return p * s.f;
}

#endif
