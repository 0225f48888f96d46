#include "nn/rope.h"

#include <math.h>
#include <stddef.h>

#include "nn/simd.h"

/* The angles in float32 exactly as Hugging Face computes them (inv_freq = 1 / theta^(2i/hd) in float32, then
 * position * inv_freq rounded to float32): at positions in the thousands an angle's float rounding moves cos
 * and sin by about 1e-4, so computing them more exactly than the reference would differ from it. */
void kd_rope_table(float *cos_t, float *sin_t, int ctx, int hd, double theta) {
  const int half = hd / 2;
  for (int i = 0; i < half; i++) {
    const float inv = 1.0f / powf((float)theta, (float)(2 * i) / (float)hd);
    for (int p = 0; p < ctx; p++) {
      const float a = (float)p * inv;
      cos_t[(size_t)p * half + i] = (float)cos((double)a);
      sin_t[(size_t)p * half + i] = (float)sin((double)a);
    }
  }
}

/* dir +1: the rotation; -1: its inverse (the transpose), for gradients. */
static void rotate(float *x, int ld, int col, int heads, int hd, const float *cos_t, const float *sin_t,
                   const int *pos, int n, int T, float dir) {
  const int half = hd / 2;
  for (int r = 0; r < n; r++) {
    const int p = pos ? pos[r] : r % T;
    const float *restrict c = cos_t + (size_t)p * half, *restrict s = sin_t + (size_t)p * half;
    for (int h = 0; h < heads; h++) {
      float *restrict a = x + (size_t)r * ld + col + (size_t)h * hd, *restrict b = a + half;
      for (int i = 0; i < half; i++) {
        const float ai = a[i], bi = b[i], si = dir * s[i];
        a[i] = ai * c[i] - bi * si;
        b[i] = bi * c[i] + ai * si;
      }
    }
  }
}

KD_HOT void kd_rope_forward(float *x, int ld, int col, int heads, int hd, const float *cos_t, const float *sin_t,
                            const int *pos, int n, int T) {
  rotate(x, ld, col, heads, hd, cos_t, sin_t, pos, n, T, 1.0f);
}

KD_HOT void kd_rope_backward(float *dx, int ld, int col, int heads, int hd, const float *cos_t, const float *sin_t,
                             const int *pos, int n, int T) {
  rotate(dx, ld, col, heads, hd, cos_t, sin_t, pos, n, T, -1.0f);
}

void kd_rope_forward_ref(float *x, int ld, int col, int heads, int hd, double theta, int n, int T) {
  const int half = hd / 2;
  for (int r = 0; r < n; r++)
    for (int h = 0; h < heads; h++) {
      float *a = x + (size_t)r * ld + col + (size_t)h * hd, *b = a + half;
      for (int i = 0; i < half; i++) {
        const double ang = (double)(r % T) * pow(theta, -2.0 * i / hd), ai = a[i], bi = b[i];
        a[i] = (float)(ai * cos(ang) - bi * sin(ang));
        b[i] = (float)(bi * cos(ang) + ai * sin(ang));
      }
    }
}
