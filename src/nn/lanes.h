/* Row reductions in eight lanes, added in a fixed order: they vectorize,
 * and give the same result on every node and rank count (the element-wise
 * passes of the Transformer kernels share them). */
#ifndef KD_NN_LANES_H
#define KD_NN_LANES_H

static inline float kd_lane_sum(const float *x, int D) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int j = 0;
  for (; j + 8 <= D; j += 8)
    for (int k = 0; k < 8; k++) acc[k] += x[j + k];
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; j < D; j++) s += x[j];
  return s;
}

/* sum of (x - m)^2 */
static inline float kd_lane_sq_dev(const float *x, float m, int D) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int j = 0;
  for (; j + 8 <= D; j += 8)
    for (int k = 0; k < 8; k++) {
      const float d = x[j + k] - m;
      acc[k] += d * d;
    }
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; j < D; j++) s += (x[j] - m) * (x[j] - m);
  return s;
}

static inline float kd_lane_max(const float *x, int len) {
  float acc[8];
  for (int k = 0; k < 8; k++) acc[k] = x[0];
  int j = 0;
  for (; j + 8 <= len; j += 8)
    for (int k = 0; k < 8; k++) acc[k] = x[j + k] > acc[k] ? x[j + k] : acc[k];
  float mx = acc[0];
  for (int k = 1; k < 8; k++) mx = acc[k] > mx ? acc[k] : mx;
  for (; j < len; j++) mx = x[j] > mx ? x[j] : mx;
  return mx;
}

/* sum of a[j] * b[j] */
static inline float kd_lane_dot(const float *a, const float *b, int D) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int j = 0;
  for (; j + 8 <= D; j += 8)
    for (int k = 0; k < 8; k++) acc[k] += a[j + k] * b[j + k];
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; j < D; j++) s += a[j] * b[j];
  return s;
}

#endif
