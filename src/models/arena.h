/* Activation memory of a model: one allocation, carved into named views.
 * A family plans its views twice with the same code: first with base NULL
 * to measure (arena.used), then over the allocation. */
#ifndef KD_MODELS_ARENA_H
#define KD_MODELS_ARENA_H

#include <stddef.h>

typedef struct kd_arena {
  char *base; /* NULL: measuring */
  size_t used;
} kd_arena;

/* `bytes` at a 64-byte boundary (a cache line; the SIMD loads never split one). */
static inline void *kd_arena_take(kd_arena *a, size_t bytes) {
  const size_t o = (a->used + 63) & ~(size_t)63;
  a->used = o + bytes;
  return a->base ? a->base + o : NULL;
}

#define KD_TAKE_F(a, n) ((float *)kd_arena_take(a, sizeof(float) * (size_t)(n)))

#endif
