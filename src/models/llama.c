#include "models/llama.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "models/arena.h"
#include "models/profile.h"
#include "nn/attention.h"
#include "nn/gemm.h"
#include "nn/kvcache.h"
#include "nn/norm.h"
#include "nn/rope.h"
#include "nn/swiglu.h"
#include "nn/transformer.h"

/* Views: the embedding, per block these nine (q, k, v adjacent: one [(H + 2G) hd, D] matrix; gate and up
 * adjacent: one [2F, D]), the final norm, and the head when untied. */
enum { LN1, WQ, WK, WV, WO, LN2, WGATE, WUP, WDOWN, PER_BLOCK };
enum { EMB = 0 };
static int vb(int l, int k) { return 1 + PER_BLOCK * l + k; }
static int is_norm(const char *name);

typedef struct block_acts {
  float *ln1, *r1;   /* input_layernorm(x) [n, D] and its rstd [n] */
  float *qkv;        /* [n, (H + 2G) hd]: q | k | v, q and k after RoPE */
  float *att, *att_drop;
  uint8_t *att_mask;
  float *y;          /* [n, H hd] attention output, heads side by side */
  float *a;          /* [n, D] x + the attention branch */
  float *ln2, *r2;   /* post_attention_layernorm(a) and its rstd */
  float *gu;         /* [n, 2F] gate | up */
  float *h;          /* [n, F] silu(gate) * up */
} block_acts;

typedef struct llama_impl {
  kd_llama_cfg cfg;
  int hd, wqkv;                /* head width; q, k and v columns (H + 2G) hd */
  char *arena;
  float **xs;                  /* [L + 1] the residual stream */
  block_acts *blk;             /* [L] */
  float *lnf, *rf;
  float *cos_t, *sin_t;        /* RoPE tables [ctx, hd / 2] */
  float *d_res, *d_br, *d_ln, *d_y, *d_qkv, *d_gu, *d_h, *d_att;
  const int32_t *tokens;
  int B, T, train;
  struct llama_cache *cache;
} llama_impl;

typedef struct llama_cache {
  kd_kv_cache kv;
  char *mem;
  float *x, *ln, *r, *qkv, *y, *br, *gu, *h;
} llama_cache;

/* ---- the spec ---- */

typedef struct spec_key {
  const char *name;
  int is_int;
  double lo, hi;
  int required;
} spec_key;

static const spec_key keys[] = {
  {"vocab", 1, 2, 1 << 24, 1},     {"ctx", 1, 1, 1 << 16, 1},      {"layers", 1, 1, 1024, 1},
  {"dim", 1, 1, 1 << 16, 1},       {"heads", 1, 1, 1024, 1},       {"kv_heads", 1, 1, 1024, 0},
  {"ffn", 1, 1, 1 << 20, 1},       {"rope_theta", 0, 1, 1e12, 0},  {"norm_eps", 0, 1e-12, 1, 0},
  {"tie", 1, 0, 1, 0},
};
enum { N_KEYS = (int)(sizeof keys / sizeof keys[0]) };
#define LLAMA_KEYS "vocab=V,ctx=T,layers=L,dim=D,heads=H,kv_heads=G,ffn=F[,rope_theta=X,norm_eps=E,tie=0|1]"
#define LLAMA_USAGE "llama:" LLAMA_KEYS

static void *field(kd_llama_cfg *c, int i) {
  void *f[N_KEYS] = {&c->vocab, &c->ctx,      &c->layers,     &c->dim,      &c->heads,
                     &c->kv_heads, &c->ffn,   &c->rope_theta, &c->norm_eps, &c->tie};
  return f[i];
}

static int set_key(kd_llama_cfg *c, const char *spec, const char *k, size_t kl, const char *v, int *seen, kd_err *e) {
  for (int i = 0; i < N_KEYS; i++) {
    if (strlen(keys[i].name) != kl || strncmp(keys[i].name, k, kl) != 0) continue;
    char *end;
    errno = 0;
    const double x = keys[i].is_int ? (double)strtol(v, &end, 10) : strtod(v, &end);
    if (end == v || (*end && *end != ',') || errno || !(x >= keys[i].lo && x <= keys[i].hi))
      return kd_fail(e, KD_ERR_USAGE, "--student 'llama:%s': %s must be %s in [%g, %g]", spec, keys[i].name,
                     keys[i].is_int ? "an integer" : "a number", keys[i].lo, keys[i].hi);
    if (seen[i]) return kd_fail(e, KD_ERR_USAGE, "--student 'llama:%s': %s given twice", spec, keys[i].name);
    seen[i] = 1;
    if (keys[i].is_int) *(int *)field(c, i) = (int)x;
    else *(double *)field(c, i) = x;
    return KD_OK;
  }
  return kd_fail(e, KD_ERR_USAGE, "--student 'llama:%s': unknown key '%.*s' (%s)", spec, (int)kl, k, LLAMA_USAGE);
}

int kd_llama_parse_spec(kd_llama_cfg *c, const char *spec, kd_err *e) {
  memset(c, 0, sizeof *c);
  c->rope_theta = 10000.0;
  c->norm_eps = 1e-5;
  int seen[N_KEYS] = {0};
  for (const char *p = spec; *p;) {
    const char *eq = strchr(p, '='), *comma = strchr(p, ',');
    if (!eq || (comma && comma < eq))
      return kd_fail(e, KD_ERR_USAGE, "--student 'llama:%s': expected key=value pairs, like "
                     "llama:vocab=256,ctx=128,layers=4,dim=256,heads=4,kv_heads=2,ffn=704", spec);
    if (set_key(c, spec, p, (size_t)(eq - p), eq + 1, seen, e)) return e->code;
    p = comma ? comma + 1 : p + strlen(p);
  }
  for (int i = 0; i < N_KEYS; i++)
    if (keys[i].required && !seen[i])
      return kd_fail(e, KD_ERR_USAGE, "--student 'llama:%s': %s is missing (%s)", spec, keys[i].name, LLAMA_USAGE);
  if (!seen[5]) c->kv_heads = c->heads;
  if (c->dim % c->heads)
    return kd_fail(e, KD_ERR_USAGE, "--student 'llama:%s': heads=%d does not divide dim=%d", spec, c->heads, c->dim);
  if (c->heads % c->kv_heads)
    return kd_fail(e, KD_ERR_USAGE,
                   "--student 'llama:%s': kv_heads=%d does not divide heads=%d (each key/value head serves heads / "
                   "kv_heads query heads)", spec, c->kv_heads, c->heads);
  if ((c->dim / c->heads) % 2)
    return kd_fail(e, KD_ERR_USAGE,
                   "--student 'llama:%s': the head width dim / heads = %d is odd; rotary embeddings turn pairs of "
                   "dimensions (i with i + hd/2), so it must be even", spec, c->dim / c->heads);
  return KD_OK;
}

void kd_llama_spec_text(char *buf, size_t n, const kd_llama_cfg *c) {
  snprintf(buf, n, "vocab=%d,ctx=%d,layers=%d,dim=%d,heads=%d,kv_heads=%d,ffn=%d,rope_theta=%.17g,norm_eps=%.17g,tie=%d",
           c->vocab, c->ctx, c->layers, c->dim, c->heads, c->kv_heads, c->ffn, c->rope_theta, c->norm_eps, c->tie);
}

/* ---- activations: one arena ---- */

static void take_block(block_acts *b, kd_arena *a, size_t n, const llama_impl *im, size_t att, int drop) {
  const kd_llama_cfg *c = &im->cfg;
  const size_t D = (size_t)c->dim, F = (size_t)c->ffn;
  b->ln1 = KD_TAKE_F(a, n * D);
  b->r1 = KD_TAKE_F(a, n);
  b->qkv = KD_TAKE_F(a, n * im->wqkv);
  b->att = KD_TAKE_F(a, att);
  b->att_drop = drop ? KD_TAKE_F(a, att) : NULL;
  b->att_mask = drop ? kd_arena_take(a, att) : NULL;
  b->y = KD_TAKE_F(a, n * c->heads * im->hd);
  b->a = KD_TAKE_F(a, n * D);
  b->ln2 = KD_TAKE_F(a, n * D);
  b->r2 = KD_TAKE_F(a, n);
  b->gu = KD_TAKE_F(a, 2 * n * F);
  b->h = KD_TAKE_F(a, n * F);
}

/* A frozen model (an online teacher) shares one block's buffers among its blocks, except the hidden states
 * and, with keep_attn, every layer's q/k/v and attention probabilities (what loss terms read). */
static void carve(llama_impl *im, kd_arena *a, int max_batch, int frozen) {
  const kd_llama_cfg *c = &im->cfg;
  const size_t n = (size_t)max_batch * c->ctx, D = (size_t)c->dim, F = (size_t)c->ffn;
  const size_t att = (size_t)max_batch * c->heads * c->ctx * c->ctx, half = (size_t)im->hd / 2;
  const int drop = c->dropout > 0.0f && !frozen;
  for (int l = 0; l <= c->layers; l++) im->xs[l] = KD_TAKE_F(a, n * D);
  for (int l = 0; l < c->layers; l++) {
    if (!frozen || l == 0) {
      take_block(&im->blk[l], a, n, im, att, drop);
      continue;
    }
    im->blk[l] = im->blk[0];
    if (frozen > 1) {
      im->blk[l].qkv = KD_TAKE_F(a, n * im->wqkv);
      im->blk[l].att = KD_TAKE_F(a, att);
    }
  }
  im->lnf = KD_TAKE_F(a, n * D);
  im->rf = KD_TAKE_F(a, n);
  im->cos_t = KD_TAKE_F(a, (size_t)c->ctx * half);
  im->sin_t = KD_TAKE_F(a, (size_t)c->ctx * half);
  im->d_br = KD_TAKE_F(a, n * D); /* the forward's branch scratch too */
  if (frozen) return;
  im->d_res = KD_TAKE_F(a, n * D);
  im->d_ln = KD_TAKE_F(a, n * D);
  im->d_y = KD_TAKE_F(a, n * c->heads * im->hd);
  im->d_qkv = KD_TAKE_F(a, n * im->wqkv);
  im->d_gu = KD_TAKE_F(a, 2 * n * F);
  im->d_h = KD_TAKE_F(a, n * F);
  im->d_att = KD_TAKE_F(a, (size_t)c->ctx * c->ctx);
}

/* ---- per-kernel timing (kd train --profile) ---- */

enum {
  PF_EMBED, PF_NORM, PF_QKV, PF_ROPE, PF_ATT, PF_O, PF_GU, PF_SWIGLU, PF_DOWN, PF_HEAD,
  PB_ZERO, PB_HEAD, PB_NORM, PB_DOWN, PB_SWIGLU, PB_GU, PB_O, PB_ATT, PB_ROPE, PB_QKV, PB_EMBED, PF_N
};
static const char *const prof_names[PF_N] = {
  "fwd embedding", "fwd residual + rmsnorm", "fwd q/k/v_proj gemm", "fwd rope", "fwd causal attention (gqa)",
  "fwd o_proj gemm", "fwd gate/up_proj gemm", "fwd swiglu", "fwd down_proj gemm", "fwd lm_head gemm",
  "bwd zeroing", "bwd lm_head gemms", "bwd rmsnorm", "bwd down_proj gemms", "bwd swiglu", "bwd gate/up_proj gemms",
  "bwd o_proj gemms", "bwd causal attention (gqa)", "bwd rope", "bwd q/k/v_proj gemms", "bwd embedding"};

#define TIMED(M, SLOT, FLOP, STMT) KD_PROF_TIMED(M, SLOT, prof_names[SLOT], FLOP, STMT)

static const float *P(const kd_model *m, int v) { return m->params + m->views[v].offset; }
static float *G(const kd_model *m, int v) { return m->grads + m->views[v].offset; }
static int head_view(const kd_model *m, const kd_llama_cfg *c) { return c->tie ? EMB : m->n_views - 1; }

static kd_attn_shape attn_shape(const llama_impl *im, int B, int T) {
  return kd_attn_fused(B, T, im->cfg.heads, im->cfg.kv_heads, im->hd);
}

/* ---- forward ---- */

/* Block l up to its last residual add, which the caller fuses with the norm that follows. On entry the
 * block's ln1 holds input_layernorm(x). */
static void block_forward(kd_model *m, llama_impl *im, int l, const kd_batch *bt, const kd_fwd *f, float p) {
  const kd_llama_cfg *c = &im->cfg;
  const int n = im->B * im->T, D = c->dim, F = c->ffn, H = c->heads, KV = c->kv_heads, hd = im->hd, W = im->wqkv;
  const double nd = (double)n * D;
  block_acts *b = &im->blk[l];
  float *br = im->d_br;
  const kd_attn_shape as = attn_shape(im, im->B, im->T);
  TIMED(m, PF_QKV, 2.0 * nd * W, kd_gemm(b->qkv, W, b->ln1, D, 0, P(m, vb(l, WQ)), D, 1, n, W, D, 1.0f, 0.0f));
  TIMED(m, PF_ROPE, 0, {
    kd_rope_forward(b->qkv, W, as.q_col, H, hd, im->cos_t, im->sin_t, NULL, n, im->T);
    kd_rope_forward(b->qkv, W, as.k_col, KV, hd, im->cos_t, im->sin_t, NULL, n, im->T);
  });
  const uint64_t key = f ? kd_mix64(f->dropout_key ^ (0x6c6c6100u + 8u * l)) : 0; /* attention dropout of block l */
  TIMED(m, PF_ATT, 4.0 * H * hd * im->B * kd_attention_pairs(im->T),
        kd_attention_forward(b->y, b->att, b->att_drop, b->att_mask, b->qkv, bt->row_ids, key, p, &as));
  TIMED(m, PF_O, 2.0 * n * H * hd * D, kd_gemm(br, D, b->y, H * hd, 0, P(m, vb(l, WO)), H * hd, 1, n, D, H * hd, 1.0f, 0.0f));
  TIMED(m, PF_NORM, 0,
        kd_residual_rmsnorm_forward(b->a, b->ln2, b->r2, im->xs[l], br, P(m, vb(l, LN2)), (float)c->norm_eps, n, D));
  TIMED(m, PF_GU, 4.0 * nd * F, kd_gemm(b->gu, 2 * F, b->ln2, D, 0, P(m, vb(l, WGATE)), D, 1, n, 2 * F, D, 1.0f, 0.0f));
  TIMED(m, PF_SWIGLU, 0, kd_swiglu_forward(b->h, b->gu, n, F));
  TIMED(m, PF_DOWN, 2.0 * nd * F, kd_gemm(br, D, b->h, F, 0, P(m, vb(l, WDOWN)), F, 1, n, D, F, 1.0f, 0.0f));
}

static int check_batch(const kd_model *m, const kd_batch *b, kd_err *e) {
  if (b->kind != KD_INPUT_TOKENS)
    return kd_fail(e, KD_ERR_RUNTIME, "llama forward: the student reads token rows, not feature rows");
  if (b->rows < 0 || b->rows > m->max_batch)
    return kd_fail(e, KD_ERR_RUNTIME, "llama forward: batch %d exceeds the %d rows allocated", b->rows, m->max_batch);
  if (b->width < 1 || b->width > m->ctx)
    return kd_fail(e, KD_ERR_RUNTIME, "llama forward: rows of %d positions, the student's ctx is %d", b->width, m->ctx);
  return KD_OK;
}

static int llama_forward(kd_model *m, float *logits, const kd_batch *bt, const kd_fwd *f, kd_err *e) {
  llama_impl *im = m->impl;
  const kd_llama_cfg *c = &im->cfg;
  if (check_batch(m, bt, e)) return e->code;
  im->B = bt->rows;
  im->T = bt->width;
  im->train = f && f->train;
  im->tokens = bt->tokens;
  if (im->train && m->frozen) return kd_fail(e, KD_ERR_RUNTIME, "llama forward: a frozen model runs inference only");
  const int n = im->B * im->T, D = c->dim;
  const float p = im->train ? c->dropout : 0.0f, eps = (float)c->norm_eps;
  TIMED(m, PF_EMBED, 0, kd_embed_forward(im->xs[0], bt->tokens, P(m, EMB), NULL, im->B, im->T, D));
  TIMED(m, PF_NORM, 0, kd_rmsnorm_forward(im->blk[0].ln1, im->blk[0].r1, im->xs[0], P(m, vb(0, LN1)), eps, n, D));
  for (int l = 0; l < c->layers; l++) {
    block_forward(m, im, l, bt, f, p);
    const int last = l + 1 == c->layers;
    block_acts *nx = last ? NULL : &im->blk[l + 1];
    TIMED(m, PF_NORM, 0,
          kd_residual_rmsnorm_forward(im->xs[l + 1], last ? im->lnf : nx->ln1, last ? im->rf : nx->r1, im->blk[l].a,
                                      im->d_br, P(m, last ? vb(c->layers, 0) : vb(l + 1, LN1)), eps, n, D));
  }
  if (logits)
    TIMED(m, PF_HEAD, 2.0 * n * D * c->vocab,
          kd_gemm(logits, c->vocab, im->lnf, D, 0, P(m, head_view(m, c)), D, 1, n, c->vocab, D, 1.0f, 0.0f));
  else if (!im->train)
    return kd_fail(e, KD_ERR_RUNTIME, "llama forward: logits are needed outside training");
  return KD_OK;
}

/* ---- backward ---- */

static void add_injection(float *d, const kd_inject *inj, int n_inj, int kind, int layer, size_t n) {
  for (int k = 0; k < n_inj; k++) {
    if (inj[k].kind != kind || inj[k].layer != layer) continue;
    const float *dh = inj[k].dh;
    for (size_t i = 0; i < n; i++) d[i] += dh[i];
  }
}

/* d_res: dL/d xs[l + 1] on entry, dL/d xs[l] on return. */
static void block_backward(kd_model *m, llama_impl *im, int l, const kd_inject *inj, int n_inj) {
  const kd_llama_cfg *c = &im->cfg;
  const int n = im->B * im->T, D = c->dim, F = c->ffn, H = c->heads, KV = c->kv_heads, hd = im->hd, W = im->wqkv;
  const double nd = (double)n * D;
  block_acts *b = &im->blk[l];
  const size_t ready = m->views[vb(l + 1, 0)].offset; /* the blocks above (and the final norm and head) */
  /* x_next = a + down(swiglu(gate_up(ln2(a)))) */
  TIMED(m, PB_DOWN, 4.0 * nd * F, {
    kd_gemm(G(m, vb(l, WDOWN)), F, im->d_res, D, 1, b->h, F, 0, D, F, n, 1.0f, 1.0f);
    kd_gemm(im->d_h, F, im->d_res, D, 0, P(m, vb(l, WDOWN)), F, 0, n, F, D, 1.0f, 0.0f);
  });
  kd_model_grads_ready(m, ready);
  TIMED(m, PB_SWIGLU, 0, kd_swiglu_backward(im->d_gu, im->d_h, b->gu, n, F));
  TIMED(m, PB_GU, 8.0 * nd * F, {
    kd_gemm(G(m, vb(l, WGATE)), D, im->d_gu, 2 * F, 1, b->ln2, D, 0, 2 * F, D, n, 1.0f, 1.0f);
    kd_gemm(im->d_ln, D, im->d_gu, 2 * F, 0, P(m, vb(l, WGATE)), D, 0, n, D, 2 * F, 1.0f, 0.0f);
  });
  TIMED(m, PB_NORM, 0,
        kd_rmsnorm_backward(im->d_res, G(m, vb(l, LN2)), im->d_ln, b->a, P(m, vb(l, LN2)), b->r2, n, D));
  /* a = x + o(attn(rope(qkv(ln1(x))))) */
  TIMED(m, PB_O, 4.0 * n * H * hd * D, {
    kd_gemm(G(m, vb(l, WO)), H * hd, im->d_res, D, 1, b->y, H * hd, 0, D, H * hd, n, 1.0f, 1.0f);
    kd_gemm(im->d_y, H * hd, im->d_res, D, 0, P(m, vb(l, WO)), H * hd, 0, n, H * hd, D, 1.0f, 0.0f);
  });
  const kd_attn_shape as = attn_shape(im, im->B, im->T);
  TIMED(m, PB_ATT, 8.0 * H * hd * im->B * kd_attention_pairs(im->T),
        kd_attention_backward(im->d_qkv, im->d_att, im->d_y, b->qkv, b->att, b->att_drop, b->att_mask, c->dropout,
                              &as));
  add_injection(im->d_qkv, inj, n_inj, KD_INJ_QKV, l + 1, (size_t)n * W); /* attention distillation */
  TIMED(m, PB_ROPE, 0, {
    kd_rope_backward(im->d_qkv, W, as.q_col, H, hd, im->cos_t, im->sin_t, NULL, n, im->T);
    kd_rope_backward(im->d_qkv, W, as.k_col, KV, hd, im->cos_t, im->sin_t, NULL, n, im->T);
  });
  kd_model_grads_ready(m, ready);
  TIMED(m, PB_QKV, 4.0 * nd * W, {
    kd_gemm(G(m, vb(l, WQ)), D, im->d_qkv, W, 1, b->ln1, D, 0, W, D, n, 1.0f, 1.0f);
    kd_gemm(im->d_ln, D, im->d_qkv, W, 0, P(m, vb(l, WQ)), D, 0, n, D, W, 1.0f, 0.0f);
  });
  TIMED(m, PB_NORM, 0,
        kd_rmsnorm_backward(im->d_res, G(m, vb(l, LN1)), im->d_ln, im->xs[l], P(m, vb(l, LN1)), b->r1, n, D));
}

/* The head and the final norm: d_res = dL/d xs[L]. With KD_DLOGITS_IN_HEAD the loss did the head's part. */
static void head_backward(kd_model *m, llama_impl *im, const float *dlogits) {
  const kd_llama_cfg *c = &im->cfg;
  const int n = im->B * im->T, D = c->dim, norm = vb(c->layers, 0), hv = head_view(m, c);
  if (dlogits != KD_DLOGITS_IN_HEAD)
    TIMED(m, PB_HEAD, 4.0 * n * D * c->vocab, {
      kd_gemm(im->d_ln, D, dlogits, c->vocab, 0, P(m, hv), D, 0, n, D, c->vocab, 1.0f, 0.0f);
      kd_gemm(G(m, hv), D, dlogits, c->vocab, 1, im->lnf, D, 0, c->vocab, D, n, 1.0f, 1.0f);
    });
  TIMED(m, PB_NORM, 0,
        kd_rmsnorm_backward(im->d_res, G(m, norm), im->d_ln, im->xs[c->layers], P(m, norm), im->rf, n, D));
  kd_model_grads_ready(m, m->views[norm].offset); /* a tied head's gradient is the embedding's, at offset 0 */
}

static int llama_backward(kd_model *m, const float *dlogits, const kd_batch *bt, const kd_inject *inj, int n_inj,
                          kd_err *e) {
  llama_impl *im = m->impl;
  const kd_llama_cfg *c = &im->cfg;
  if (!im->train || bt->rows != im->B || bt->width != im->T)
    return kd_fail(e, KD_ERR_RUNTIME, "llama backward: needs the training forward of the same batch");
  if (m->frozen) return kd_fail(e, KD_ERR_RUNTIME, "llama backward: a frozen model runs inference only");
  int top = 0;
  for (int i = 0; i < n_inj; i++) {
    const int lo = inj[i].kind == KD_INJ_QKV ? 1 : 0;
    if (inj[i].layer < lo || inj[i].layer > c->layers)
      return kd_fail(e, KD_ERR_RUNTIME, "llama backward: no %s %d (the student has %d blocks)",
                     lo ? "attention layer" : "hidden state", inj[i].layer, c->layers);
    if (inj[i].layer > top) top = inj[i].layer;
  }
  if (!dlogits && !n_inj) return kd_fail(e, KD_ERR_RUNTIME, "llama backward: no gradient to propagate");
  const size_t nd = (size_t)im->B * im->T * c->dim;
  TIMED(m, PB_ZERO, 0, memset(im->d_res, 0, sizeof(float) * nd));
  if (dlogits) head_backward(m, im, dlogits);
  const int start = dlogits ? c->layers : top;
  add_injection(im->d_res, inj, n_inj, KD_INJ_HIDDEN, start, nd);
  for (int l = start - 1; l >= 0; l--) {
    block_backward(m, im, l, inj, n_inj);
    add_injection(im->d_res, inj, n_inj, KD_INJ_HIDDEN, l, nd);
    kd_model_grads_ready(m, m->views[vb(l, 0)].offset); /* blocks l.. are done */
  }
  TIMED(m, PB_EMBED, 0, kd_embed_backward(G(m, EMB), NULL, im->d_res, im->tokens, im->B, im->T, c->dim));
  kd_model_grads_ready(m, 0);
  return KD_OK;
}

/* ---- the rest of the interface ---- */

static const float *llama_hidden(const kd_model *m, int layer, int *width) {
  const llama_impl *im = m->impl;
  if (layer < 0 || layer > im->cfg.layers) return NULL;
  if (width) *width = im->cfg.dim;
  return im->xs[layer];
}

static const float *llama_tap(const kd_model *m, int what, int layer, kd_tap_shape *shape) {
  const llama_impl *im = m->impl;
  const kd_llama_cfg *c = &im->cfg;
  const kd_attn_shape as = attn_shape(im, im->B, im->T);
  const int col = what == KD_TAP_K ? as.k_col : what == KD_TAP_V ? as.v_col : as.q_col;
  if (shape) *shape = (kd_tap_shape){im->B, im->T, c->dim, c->heads, c->kv_heads, im->hd, im->wqkv, col};
  if (what == KD_TAP_HIDDEN) return layer >= 0 && layer <= c->layers ? im->xs[layer] : NULL;
  if (layer < 1 || layer > c->layers || m->frozen == 1) return NULL; /* frozen == 1 shares them among blocks */
  if (what == KD_TAP_Q || what == KD_TAP_K || what == KD_TAP_V) return im->blk[layer - 1].qkv + col;
  if (what == KD_TAP_ATTN) return im->blk[layer - 1].att;
  return NULL;
}

static int llama_n_hidden(const kd_model *m) { return ((const llama_impl *)m->impl)->cfg.layers; }

static int llama_views_through(const kd_model *m, int layer) {
  (void)m;
  return vb(layer, 0);
}

/* normal(0, 0.02), o_proj and down_proj scaled by 1/sqrt(2 L) (the residual projections, as GPT-2); norms 1. */
static void llama_init_params(kd_model *m, uint64_t seed) {
  const llama_impl *im = m->impl;
  const double sd = 0.02, sd_proj = 0.02 / sqrt(2.0 * im->cfg.layers);
  for (int v = 0; v < m->n_views; v++) {
    const kd_param_view *pv = &m->views[v];
    float *w = m->params + pv->offset;
    const size_t n = (size_t)pv->rows * pv->cols;
    if (is_norm(pv->name)) {
      for (size_t i = 0; i < n; i++) w[i] = 1.0f;
      continue;
    }
    const double s = strstr(pv->name, "o_proj") || strstr(pv->name, "down_proj") ? sd_proj : sd;
    const uint64_t key = kd_key(seed, KD_RNG_INIT, (uint64_t)v, 0);
    for (size_t i = 0; i < n; i++) w[i] = (float)(s * kd_normal(key, i));
  }
}

/* ---- incremental decoding ---- */

static void llama_decode_end(kd_model *m) {
  llama_impl *im = m->impl;
  if (!im->cache) return;
  kd_kv_cache_free(&im->cache->kv);
  free(im->cache->mem);
  free(im->cache);
  im->cache = NULL;
}

static void carve_cache(llama_cache *c, int n, const llama_impl *im, kd_arena *a) {
  const size_t D = (size_t)im->cfg.dim, F = (size_t)im->cfg.ffn;
  c->x = KD_TAKE_F(a, n * D);
  c->ln = KD_TAKE_F(a, n * D);
  c->r = KD_TAKE_F(a, n);
  c->qkv = KD_TAKE_F(a, (size_t)n * im->wqkv);
  c->y = KD_TAKE_F(a, (size_t)n * im->cfg.heads * im->hd);
  c->br = KD_TAKE_F(a, n * D);
  c->gu = KD_TAKE_F(a, 2 * n * F);
  c->h = KD_TAKE_F(a, n * F);
}

static int llama_decode_begin(kd_model *m, int n, kd_err *e) {
  llama_impl *im = m->impl;
  if (im->cache && im->cache->kv.n == n) return KD_OK; /* reused as it is (every position is written first) */
  llama_decode_end(m);
  llama_cache *c = kd_calloc(1, sizeof *c, "decode cache", e);
  if (!c) return e->code;
  im->cache = c;
  kd_arena a = {NULL, 0};
  carve_cache(c, n, im, &a);
  /* G key/value heads cached per position, not H */
  if (kd_kv_cache_init(&c->kv, n, im->cfg.layers, im->cfg.ctx, im->cfg.kv_heads * im->hd, e) ||
      !(c->mem = kd_malloc(a.used, "decode scratch", e))) {
    llama_decode_end(m);
    return e->code;
  }
  a.base = c->mem;
  a.used = 0;
  carve_cache(c, n, im, &a);
  return KD_OK;
}

static int llama_decode_step(kd_model *m, float *logits, const int32_t *tokens, const int *pos, int n, kd_err *e) {
  llama_impl *im = m->impl;
  const kd_llama_cfg *g = &im->cfg;
  llama_cache *c = im->cache;
  const int D = g->dim, F = g->ffn, H = g->heads, hd = im->hd, W = im->wqkv;
  const float eps = (float)g->norm_eps;
  if (!c || n > c->kv.n)
    return kd_fail(e, KD_ERR_RUNTIME, "llama decode: %d sequences, the cache holds %d", n, c ? c->kv.n : 0);
  for (int i = 0; i < n; i++) {
    if (pos[i] < 0 || pos[i] >= g->ctx || tokens[i] < 0 || tokens[i] >= g->vocab)
      return kd_fail(e, KD_ERR_RUNTIME, "llama decode: token %d at position %d (vocab %d, ctx %d)", tokens[i], pos[i],
                     g->vocab, g->ctx);
    memcpy(c->x + (size_t)i * D, P(m, EMB) + (size_t)tokens[i] * D, sizeof(float) * D);
  }
  const kd_attn_shape as = attn_shape(im, n, 1);
  for (int l = 0; l < g->layers; l++) {
    kd_rmsnorm_forward(c->ln, c->r, c->x, P(m, vb(l, LN1)), eps, n, D);
    kd_gemm(c->qkv, W, c->ln, D, 0, P(m, vb(l, WQ)), D, 1, n, W, D, 1.0f, 0.0f);
    kd_rope_forward(c->qkv, W, as.q_col, H, hd, im->cos_t, im->sin_t, pos, n, 1);
    kd_rope_forward(c->qkv, W, as.k_col, g->kv_heads, hd, im->cos_t, im->sin_t, pos, n, 1);
    kd_kv_cache_put(&c->kv, l, c->qkv, W, as.k_col, as.v_col, pos, n);
    if (!logits && l == g->layers - 1) return KD_OK; /* nothing after them is wanted */
    kd_kv_cache_attend(c->y, &c->kv, l, c->qkv, W, as.q_col, pos, n, H, hd);
    kd_gemm(c->br, D, c->y, H * hd, 0, P(m, vb(l, WO)), H * hd, 1, n, D, H * hd, 1.0f, 0.0f);
    for (size_t k = 0; k < (size_t)n * D; k++) c->x[k] += c->br[k];
    kd_rmsnorm_forward(c->ln, c->r, c->x, P(m, vb(l, LN2)), eps, n, D);
    kd_gemm(c->gu, 2 * F, c->ln, D, 0, P(m, vb(l, WGATE)), D, 1, n, 2 * F, D, 1.0f, 0.0f);
    kd_swiglu_forward(c->h, c->gu, n, F);
    kd_gemm(c->br, D, c->h, F, 0, P(m, vb(l, WDOWN)), F, 1, n, D, F, 1.0f, 0.0f);
    for (size_t k = 0; k < (size_t)n * D; k++) c->x[k] += c->br[k];
  }
  kd_rmsnorm_forward(c->ln, c->r, c->x, P(m, vb(g->layers, 0)), eps, n, D);
  kd_gemm(logits, g->vocab, c->ln, D, 0, P(m, head_view(m, g)), D, 1, n, g->vocab, D, 1.0f, 0.0f);
  return KD_OK;
}

static int llama_decode_reorder(kd_model *m, const int *src, int n, int len, kd_err *e) {
  llama_impl *im = m->impl;
  if (!im->cache) return kd_fail(e, KD_ERR_RUNTIME, "llama decode: reorder without a cache");
  return kd_kv_cache_reorder(&im->cache->kv, src, n, len, e);
}

static void llama_destroy(kd_model *m) {
  llama_impl *im = m->impl;
  if (im) {
    llama_decode_end(m);
    free(im->arena);
    free(im->xs);
    free(im->blk);
    free(im);
  }
  free(m->views);
  free(m);
}

static int llama_head(kd_model *m, kd_head *h, kd_err *e) {
  llama_impl *im = m->impl;
  if (!im->train || m->frozen) return kd_fail(e, KD_ERR_RUNTIME, "llama head: needs a training forward");
  const int hv = head_view(m, &im->cfg);
  h->x = im->lnf;
  h->w = P(m, hv);
  h->dw = G(m, hv);
  h->dx = im->d_ln;
  h->n = im->B * im->T;
  h->dim = im->cfg.dim;
  h->vocab = im->cfg.vocab;
  return KD_OK;
}

static const kd_model_ops llama_ops = {llama_forward,       llama_backward,       llama_hidden,       llama_tap,
                                       llama_n_hidden,      llama_views_through, llama_init_params,  llama_destroy,
                                       llama_decode_begin,  llama_decode_step,   llama_decode_reorder, llama_decode_end,
                                       llama_head};

/* ---- views: Hugging Face's names ---- */

/* The RMSNorm weights: "input_layernorm/weight", "post_attention_layernorm/weight", "model/norm/weight". */
static int is_norm(const char *name) {
  const size_t n = strlen(name);
  return n >= 11 && strcmp(name + n - 11, "norm/weight") == 0;
}

static void set_view(kd_param_view *v, size_t *pos, const char *name, int rows, int cols) {
  snprintf(v->name, sizeof v->name, "%s", name);
  v->offset = *pos;
  v->rows = rows;
  v->cols = cols;
  v->decay = !is_norm(name); /* weight decay on the 2-D tensors only */
  *pos += (size_t)rows * cols;
}

static size_t make_views(kd_model *m, const kd_llama_cfg *c, int hd) {
  size_t pos = 0;
  const int D = c->dim, F = c->ffn, qw = c->heads * hd, kw = c->kv_heads * hd;
  char name[64];
  set_view(&m->views[EMB], &pos, "model/embed_tokens/weight", c->vocab, D);
  static const char *const leaf[PER_BLOCK] = {
    "input_layernorm/weight", "self_attn/q_proj/weight", "self_attn/k_proj/weight", "self_attn/v_proj/weight",
    "self_attn/o_proj/weight", "post_attention_layernorm/weight", "mlp/gate_proj/weight", "mlp/up_proj/weight",
    "mlp/down_proj/weight"};
  const int rows[PER_BLOCK] = {D, qw, kw, kw, D, D, F, F, D};
  const int cols[PER_BLOCK] = {1, D, D, D, qw, 1, D, D, F};
  for (int l = 0; l < c->layers; l++)
    for (int k = 0; k < PER_BLOCK; k++) {
      snprintf(name, sizeof name, "model/layers/%d/%s", l, leaf[k]);
      set_view(&m->views[vb(l, k)], &pos, name, rows[k], cols[k]);
    }
  set_view(&m->views[vb(c->layers, 0)], &pos, "model/norm/weight", D, 1);
  if (!c->tie) set_view(&m->views[vb(c->layers, 1)], &pos, "lm_head/weight", c->vocab, D);
  return pos;
}

int kd_llama_create(kd_model **out, const kd_llama_cfg *cfg, int max_batch, int frozen, kd_err *e) {
  *out = NULL;
  if (max_batch < 1) return kd_fail(e, KD_ERR_USAGE, "llama: max batch %d < 1", max_batch);
  kd_model *m = kd_calloc(1, sizeof *m, "model", e);
  llama_impl *im = m ? kd_calloc(1, sizeof *im, "model state", e) : NULL;
  if (!im) {
    free(m);
    return e->code;
  }
  m->impl = im;
  m->ops = &llama_ops;
  m->family = kd_llama_family.name;
  m->input = KD_INPUT_TOKENS;
  m->in_dim = 0;
  m->ctx = cfg->ctx;
  m->out_dim = cfg->vocab;
  m->max_batch = max_batch;
  m->frozen = frozen;
  /* HF's rotary buffers (model/rotary_emb/inv_freq, or per layer in older files) are recomputed, not read */
  static const char *const skip[] = {"rotary_emb/inv_freq", NULL};
  m->skip_suffixes = skip;
  if (cfg->tie) {
    m->tied[0] = "lm_head/weight";
    m->tied[1] = "model/embed_tokens/weight";
  }
  im->cfg = *cfg;
  im->hd = cfg->dim / cfg->heads;
  im->wqkv = (cfg->heads + 2 * cfg->kv_heads) * im->hd;
  kd_llama_spec_text(m->spec, sizeof m->spec, cfg);
  m->n_views = 1 + PER_BLOCK * cfg->layers + 1 + (cfg->tie ? 0 : 1);
  m->views = kd_calloc((size_t)m->n_views, sizeof *m->views, "parameter views", e);
  im->xs = kd_calloc((size_t)cfg->layers + 1, sizeof *im->xs, "activation views", e);
  im->blk = kd_calloc((size_t)cfg->layers, sizeof *im->blk, "activation views", e);
  if (e->code) {
    llama_destroy(m);
    return e->code;
  }
  m->n_params = make_views(m, cfg, im->hd);
  kd_arena a = {NULL, 0};
  carve(im, &a, max_batch, frozen);
  im->arena = kd_malloc(a.used, "activations", e);
  m->act_bytes = a.used;
  if (!im->arena) {
    llama_destroy(m);
    return e->code;
  }
  a.base = im->arena;
  a.used = 0;
  carve(im, &a, max_batch, frozen);
  kd_rope_table(im->cos_t, im->sin_t, cfg->ctx, im->hd, cfg->rope_theta);
  *out = m;
  return KD_OK;
}

/* ---- the registry entry ---- */

static int spec_cfg(kd_llama_cfg *cfg, const kd_model_spec *spec, kd_err *e) {
  char v[32];
  if (kd_spec_option(spec, "activation", v, sizeof v) || kd_spec_option(spec, "init", v, sizeof v))
    return kd_fail(e, KD_ERR_USAGE, "--activation and --weight-init are for mlp students (a llama student uses SwiGLU "
                   "and normal(0, 0.02) initialisation)");
  if (kd_spec_check_keys(spec, "", e) || kd_llama_parse_spec(cfg, spec->text, e)) return e->code;
  cfg->dropout = spec->dropout;
  return KD_OK;
}

static int family_parse(const kd_model_spec *spec, char *canonical, size_t n, kd_err *e) {
  kd_llama_cfg cfg;
  if (spec_cfg(&cfg, spec, e)) return e->code;
  kd_llama_spec_text(canonical, n, &cfg);
  return KD_OK;
}

static int family_create(kd_model **m, const kd_model_spec *spec, int max_batch, kd_err *e) {
  kd_llama_cfg cfg;
  if (spec_cfg(&cfg, spec, e)) return e->code;
  return kd_llama_create(m, &cfg, max_batch, spec->frozen, e);
}

static const char *const llama_file_attrs[] = {NULL};

const kd_family kd_llama_family = {"llama", LLAMA_KEYS, llama_file_attrs, family_parse, family_create, 0, NULL};
