/* KD_HOT marks the element-wise loops that run over whole buffers every
 * step (optimizer, gradient norm, bias + activation). On x86-64 with GCC or
 * Clang they are compiled twice, for AVX2 and for the baseline ISA, and the
 * loader picks one per CPU (function multiversioning), so one binary runs on
 * any x86-64 node and uses 256-bit vectors where it can. FMA is deliberately
 * not enabled: without it every element rounds exactly as the baseline code
 * does, so nodes with and without AVX2 stay bitwise in step. */
#ifndef KD_SIMD_H
#define KD_SIMD_H

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(KD_NO_CLONES)
#define KD_HOT __attribute__((target_clones("avx2", "default")))
#else
#define KD_HOT
#endif

#endif
