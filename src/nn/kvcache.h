/* The key/value cache of incremental decoding, for every Transformer
 * family: per layer, the keys and values of each sequence's positions
 * (G key/value heads of hd floats: a grouped-query model caches G heads,
 * not H), the attention of one new query per sequence over them, and the
 * reorder of beam search. One allocation. */
#ifndef KD_NN_KVCACHE_H
#define KD_NN_KVCACHE_H

#include "kd/error.h"

typedef struct kd_kv_cache {
  int n, layers, ctx, width;  /* sequences, layers, positions, floats per position (G * hd) */
  float **k, **v;             /* [layers] each [n, ctx, width] */
  float *spare;               /* [n, ctx, width]: the reorder's target, which trades places with a layer's buffer */
  float *scores;              /* [ctx] scratch */
  char *mem;
} kd_kv_cache;

int kd_kv_cache_init(kd_kv_cache *c, int n, int layers, int ctx, int width, kd_err *e);
void kd_kv_cache_free(kd_kv_cache *c);
/* Keys and values of one new position per sequence at layer l: sequence
 * i's at pos[i], from row i of qkv (rows of ld floats, the key at column
 * k_col, the value at v_col). */
void kd_kv_cache_put(kd_kv_cache *c, int l, const float *qkv, int ld, int k_col, int v_col, const int *pos, int n);
/* y [n, H*hd]: sequence i's new query (row i of qkv at column q_col) over
 * its cached positions 0..pos[i] at layer l. */
void kd_kv_cache_attend(float *y, kd_kv_cache *c, int l, const float *qkv, int ld, int q_col, const int *pos, int n,
                        int H, int hd);
/* Sequence i continues from sequence src[i]'s positions 0..len-1. */
int kd_kv_cache_reorder(kd_kv_cache *c, const int *src, int n, int len, kd_err *e);

#endif
