/* IEEE binary16 (float16) to float32, exactly (subnormals, infinities and
 * NaNs included): teacher logits stored as float16 stay 2 bytes in memory
 * and become float32 only when a batch is gathered. And float32 to float16,
 * rounded to nearest even as numpy rounds: kd converts itself because
 * HDF5 1.10's conversion was seen to lose the carry when rounding up
 * (3.9999976 became 2.0). */
#ifndef KD_CORE_HALF_H
#define KD_CORE_HALF_H

#include <stdint.h>
#include <string.h>

static inline float kd_half_to_float(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (man << 13); /* inf, NaN */
  } else if (exp != 0) {
    bits = sign | ((exp + 112u) << 23) | (man << 13); /* 112 = 127 - 15 */
  } else if (man == 0) {
    bits = sign; /* +-0 */
  } else { /* subnormal: normalise */
    uint32_t e = 113, m = man;
    while (!(m & 0x400u)) {
      m <<= 1;
      e--;
    }
    bits = sign | (e << 23) | ((m & 0x3ffu) << 13);
  }
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

static inline uint16_t kd_float_to_half(float f) {
  uint32_t x;
  memcpy(&x, &f, sizeof x);
  const uint32_t sign = (x >> 16) & 0x8000u, e = (x >> 23) & 0xffu, m = x & 0x7fffffu;
  if (e == 0xff) return (uint16_t)(sign | 0x7c00u | (m ? 0x200u | (m >> 13) : 0)); /* inf, NaN (quiet) */
  const int32_t E = (int32_t)e - 127 + 15;
  if (E >= 0x1f) return (uint16_t)(sign | 0x7c00u); /* overflow: inf */
  if (E <= 0) {                                      /* subnormal or zero */
    if (E < -10) return (uint16_t)sign;
    const uint32_t mm = m | 0x800000u, shift = (uint32_t)(14 - E), half = 1u << (shift - 1);
    uint32_t hm = mm >> shift;
    const uint32_t rem = mm & ((1u << shift) - 1);
    if (rem > half || (rem == half && (hm & 1))) hm++; /* a carry makes the smallest normal, as it should */
    return (uint16_t)(sign | hm);
  }
  uint32_t h = sign | ((uint32_t)E << 10) | (m >> 13);
  const uint32_t rem = m & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++; /* the carry may run into the exponent (or to inf) */
  return (uint16_t)h;
}

#endif
