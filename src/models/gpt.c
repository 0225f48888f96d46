#include "models/gpt.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "nn/gemm.h"
#include "nn/attention.h"
#include "nn/kernels.h"
#include "nn/kvcache.h"
#include "nn/norm.h"
#include "nn/transformer.h"
#include "models/arena.h"
#include "models/profile.h"

/* Views: wte, wpe, then per block these twelve, then ln_f. */
enum { LN1W, LN1B, ATTW, ATTB, PROJW, PROJB, LN2W, LN2B, FCW, FCB, MPW, MPB, PER_BLOCK };
enum { WTE = 0, WPE = 1 };
static int vb(int l, int k) { return 2 + PER_BLOCK * l + k; }

typedef struct block_acts {
  float *ln1, *ln1_m, *ln1_r;  /* ln_1(x) [n, D] and its row statistics [n] */
  float *qkv;                  /* [n, 3D] */
  float *att, *att_drop;       /* [B, H, T, T] probabilities, and as dropped */
  uint8_t *att_mask;
  float *y;                    /* [n, D] attention output, heads side by side */
  uint8_t *m1, *m2;            /* residual dropout masks [n, D] */
  float *a;                    /* [n, D] x + the attention branch */
  float *ln2, *ln2_m, *ln2_r;
  float *fc_pre, *fc;          /* [n, 4D] before and after the GELU */
} block_acts;

typedef struct gpt_impl {
  kd_gpt_cfg cfg;
  char *arena;                 /* every activation and scratch buffer: one allocation */
  float **xs;                  /* [L + 1] the residual stream: xs[0] embedding, xs[l + 1] block l's output */
  block_acts *blk;             /* [L] */
  float *lnf, *lnf_m, *lnf_r;
  uint8_t *m0;                 /* embedding dropout mask */
  int64_t *pos_ids;            /* [n] row id * ctx + position: dropout masks per position */
  float *d_res, *d_br, *d_ln, *d_y, *d_qkv, *d_fc, *d_att;
  const int32_t *tokens;       /* of the last forward */
  int B, T, train;
  struct gpt_cache *cache;     /* incremental decoding, or NULL */
} gpt_impl;

/* Incremental decoding: the key/value cache and its step's scratch (one allocation). */
typedef struct gpt_cache {
  kd_kv_cache kv;
  char *mem;
  float *x, *ln, *qkv, *y, *br, *fc, *fc_pre, *ln_m, *ln_r;
} gpt_cache;

/* ---- the spec ---- */

static const char *const keys[5] = {"vocab", "ctx", "layers", "dim", "heads"};

static int set_key(kd_gpt_cfg *c, const char *spec, const char *k, size_t kl, const char *v, kd_err *e) {
  int *field[5] = {&c->vocab, &c->ctx, &c->layers, &c->dim, &c->heads};
  static const long hi[5] = {1 << 24, 1 << 16, 1024, 1 << 16, 1024};
  for (int i = 0; i < 5; i++) {
    if (strlen(keys[i]) != kl || strncmp(keys[i], k, kl) != 0) continue;
    char *end;
    errno = 0;
    const long x = strtol(v, &end, 10);
    if (end == v || (*end && *end != ',') || errno || x < 1 || x > hi[i])
      return kd_fail(e, KD_ERR_USAGE, "--student 'gpt:%s': %s must be an integer in [1, %ld]", spec, keys[i], hi[i]);
    if (*field[i]) return kd_fail(e, KD_ERR_USAGE, "--student 'gpt:%s': %s given twice", spec, keys[i]);
    *field[i] = (int)x;
    return KD_OK;
  }
  return kd_fail(e, KD_ERR_USAGE,
                 "--student 'gpt:%s': unknown key '%.*s' (gpt:vocab=V,ctx=T,layers=L,dim=D,heads=H)", spec, (int)kl, k);
}

int kd_gpt_parse_spec(kd_gpt_cfg *c, const char *spec, kd_err *e) {
  memset(c, 0, sizeof *c);
  for (const char *p = spec; *p;) {
    const char *eq = strchr(p, '='), *comma = strchr(p, ',');
    if (!eq || (comma && comma < eq))
      return kd_fail(e, KD_ERR_USAGE, "--student 'gpt:%s': expected key=value pairs, like "
                     "gpt:vocab=256,ctx=128,layers=4,dim=256,heads=4", spec);
    if (set_key(c, spec, p, (size_t)(eq - p), eq + 1, e)) return e->code;
    p = comma ? comma + 1 : p + strlen(p);
  }
  const int *field[5] = {&c->vocab, &c->ctx, &c->layers, &c->dim, &c->heads};
  for (int i = 0; i < 5; i++)
    if (!*field[i])
      return kd_fail(e, KD_ERR_USAGE, "--student 'gpt:%s': %s is missing (all of vocab, ctx, layers, dim, heads are needed)",
                     spec, keys[i]);
  if (c->vocab < 2) return kd_fail(e, KD_ERR_USAGE, "--student 'gpt:%s': vocab must be at least 2", spec);
  if (c->dim % c->heads)
    return kd_fail(e, KD_ERR_USAGE, "--student 'gpt:%s': heads=%d does not divide dim=%d", spec, c->heads, c->dim);
  return KD_OK;
}

void kd_gpt_spec_text(char *buf, size_t n, const kd_gpt_cfg *c) {
  snprintf(buf, n, "vocab=%d,ctx=%d,layers=%d,dim=%d,heads=%d", c->vocab, c->ctx, c->layers, c->dim, c->heads);
}

/* ---- activations: one arena ---- */

/* A frozen model (an online teacher: forward only) shares a block's
 * buffers among its blocks, except what loss terms read of every layer:
 * the hidden states, and with keep_attn the q/k/v and attention
 * probabilities. */
static void carve_frozen(gpt_impl *im, kd_arena *a, size_t n, size_t D, size_t att, int keep_attn) {
  const kd_gpt_cfg *c = &im->cfg;
  for (int l = 0; l <= c->layers; l++) im->xs[l] = KD_TAKE_F(a, n * D);
  block_acts shared = {0};
  shared.ln1 = KD_TAKE_F(a, n * D);
  shared.ln1_m = KD_TAKE_F(a, n);
  shared.ln1_r = KD_TAKE_F(a, n);
  shared.y = KD_TAKE_F(a, n * D);
  shared.a = KD_TAKE_F(a, n * D);
  shared.ln2 = KD_TAKE_F(a, n * D);
  shared.ln2_m = KD_TAKE_F(a, n);
  shared.ln2_r = KD_TAKE_F(a, n);
  shared.fc_pre = KD_TAKE_F(a, 4 * n * D);
  shared.fc = KD_TAKE_F(a, 4 * n * D);
  for (int l = 0; l < c->layers; l++) {
    im->blk[l] = shared;
    im->blk[l].qkv = !keep_attn && l ? im->blk[0].qkv : KD_TAKE_F(a, 3 * n * D);
    im->blk[l].att = !keep_attn && l ? im->blk[0].att : KD_TAKE_F(a, att);
  }
  im->lnf = KD_TAKE_F(a, n * D);
  im->lnf_m = KD_TAKE_F(a, n);
  im->lnf_r = KD_TAKE_F(a, n);
  im->pos_ids = kd_arena_take(a, sizeof(int64_t) * n);
  im->d_br = KD_TAKE_F(a, n * D); /* the branch scratch of the forward pass */
}

static void carve(gpt_impl *im, kd_arena *a, int max_batch, int frozen) {
  const kd_gpt_cfg *c = &im->cfg;
  const size_t n = (size_t)max_batch * c->ctx, D = (size_t)c->dim, att = (size_t)max_batch * c->heads * c->ctx * c->ctx;
  const int drop = c->dropout > 0.0f;
  if (frozen) {
    carve_frozen(im, a, n, D, att, frozen > 1);
    return;
  }
  for (int l = 0; l <= c->layers; l++) im->xs[l] = KD_TAKE_F(a, n * D);
  for (int l = 0; l < c->layers; l++) {
    block_acts *b = &im->blk[l];
    b->ln1 = KD_TAKE_F(a, n * D);
    b->ln1_m = KD_TAKE_F(a, n);
    b->ln1_r = KD_TAKE_F(a, n);
    b->qkv = KD_TAKE_F(a, 3 * n * D);
    b->att = KD_TAKE_F(a, att);
    b->att_drop = drop ? KD_TAKE_F(a, att) : NULL;
    b->att_mask = drop ? kd_arena_take(a, att) : NULL;
    b->y = KD_TAKE_F(a, n * D);
    b->m1 = drop ? kd_arena_take(a, n * D) : NULL;
    b->m2 = drop ? kd_arena_take(a, n * D) : NULL;
    b->a = KD_TAKE_F(a, n * D);
    b->ln2 = KD_TAKE_F(a, n * D);
    b->ln2_m = KD_TAKE_F(a, n);
    b->ln2_r = KD_TAKE_F(a, n);
    b->fc_pre = KD_TAKE_F(a, 4 * n * D);
    b->fc = KD_TAKE_F(a, 4 * n * D);
  }
  im->lnf = KD_TAKE_F(a, n * D);
  im->lnf_m = KD_TAKE_F(a, n);
  im->lnf_r = KD_TAKE_F(a, n);
  im->m0 = drop ? kd_arena_take(a, n * D) : NULL;
  im->pos_ids = kd_arena_take(a, sizeof(int64_t) * n);
  im->d_res = KD_TAKE_F(a, n * D);
  im->d_br = KD_TAKE_F(a, n * D);
  im->d_ln = KD_TAKE_F(a, n * D);
  im->d_y = KD_TAKE_F(a, n * D);
  im->d_qkv = KD_TAKE_F(a, 3 * n * D);
  im->d_fc = KD_TAKE_F(a, 4 * n * D);
  im->d_att = KD_TAKE_F(a, (size_t)c->ctx * c->ctx);
}

/* ---- per-kernel timing (kd train --profile) ---- */

enum {
  PF_EMBED, PF_LN, PF_QKV, PF_ATT, PF_PROJ, PF_DROP, PF_FC, PF_GELU, PF_MPROJ, PF_HEAD,
  PB_ZERO, PB_HEAD, PB_LN, PB_DROP, PB_MPROJ, PB_GELU, PB_FC, PB_PROJ, PB_ATT, PB_QKV, PB_EMBED, PF_N
};
static const char *const prof_names[PF_N] = {
  "fwd embedding", "fwd residual + layernorm", "fwd c_attn gemm + bias", "fwd causal attention",
  "fwd attn.c_proj gemm", "fwd bias + dropout", "fwd c_fc gemm", "fwd bias + gelu", "fwd mlp.c_proj gemm",
  "fwd lm_head gemm",
  "bwd zeroing", "bwd lm_head gemms", "bwd layernorm", "bwd dropout", "bwd mlp.c_proj gemms + bias",
  "bwd gelu + bias", "bwd c_fc gemms", "bwd attn.c_proj gemms + bias", "bwd causal attention",
  "bwd c_attn gemms + bias", "bwd embedding"};

#define TIMED(M, SLOT, FLOP, STMT) KD_PROF_TIMED(M, SLOT, prof_names[SLOT], FLOP, STMT)

/* ---- forward ---- */

static const float *P(const kd_model *m, int v) { return m->params + m->views[v].offset; }
static float *G(const kd_model *m, int v) { return m->grads + m->views[v].offset; }

/* The dropout key of site k of layer l (rank-independent: masks use the rows' ids). */
static uint64_t site_key(const kd_fwd *f, int l, int k) { return kd_mix64(f->dropout_key ^ (0x67707400u + 8u * l + k)); }

/* out [n, N] = in [n, K] W^T + b, W [N, K]. */
static void linear(float *out, const float *in, const float *W, const float *b, int n, int N, int K) {
  kd_gemm(out, N, in, K, 0, W, K, 1, n, N, K, 1.0f, 0.0f);
  kd_bias_act_forward(out, NULL, b, KD_ACT_NONE, n, N);
}

/* Block l up to its last residual add, which the caller fuses with the
 * LayerNorm that follows (the next block's ln_1, or ln_f). On entry the
 * block's ln1 holds ln_1(x). */
static void block_forward(kd_model *m, gpt_impl *im, int l, const kd_batch *bt, const kd_fwd *f, float p) {
  const kd_gpt_cfg *c = &im->cfg;
  const int n = im->B * im->T, D = c->dim;
  const double nd = (double)n * D;
  block_acts *b = &im->blk[l];
  float *br = im->d_br; /* the branch before the residual add (d_br is free in forward) */
  TIMED(m, PF_QKV, 6.0 * nd * D, linear(b->qkv, b->ln1, P(m, vb(l, ATTW)), P(m, vb(l, ATTB)), n, 3 * D, D));
  const kd_attn_shape as = kd_attn_fused(im->B, im->T, c->heads, c->heads, D / c->heads);
  TIMED(m, PF_ATT, 4.0 * D * im->B * kd_attention_pairs(im->T),
        kd_attention_forward(b->y, b->att, b->att_drop, b->att_mask, b->qkv, bt->row_ids, site_key(f, l, 0), p, &as));
  TIMED(m, PF_PROJ, 2.0 * nd * D, kd_gemm(br, D, b->y, D, 0, P(m, vb(l, PROJW)), D, 1, n, D, D, 1.0f, 0.0f));
  const float *bias = P(m, vb(l, PROJB));
  if (p > 0.0f) {
    TIMED(m, PF_DROP, 0, kd_bias_dropout_forward(br, b->m1, bias, im->pos_ids, site_key(f, l, 1), p, n, D));
    bias = NULL;
  }
  TIMED(m, PF_LN, 0,
        kd_residual_layernorm_forward(b->a, b->ln2, b->ln2_m, b->ln2_r, im->xs[l], br, bias, P(m, vb(l, LN2W)),
                                      P(m, vb(l, LN2B)), n, D));
  TIMED(m, PF_FC, 8.0 * nd * D,
        kd_gemm(b->fc, 4 * D, b->ln2, D, 0, P(m, vb(l, FCW)), D, 1, n, 4 * D, D, 1.0f, 0.0f));
  TIMED(m, PF_GELU, 0, kd_bias_gelu_forward(b->fc, b->fc_pre, P(m, vb(l, FCB)), n, 4 * D));
  TIMED(m, PF_MPROJ, 8.0 * nd * D,
        kd_gemm(br, D, b->fc, 4 * D, 0, P(m, vb(l, MPW)), 4 * D, 1, n, D, 4 * D, 1.0f, 0.0f));
}

/* xs[l + 1] = a + drop(br + c_proj bias), and the LayerNorm that reads it. */
static void block_residual(kd_model *m, gpt_impl *im, int l, const kd_fwd *f, float p, float *ln, float *ln_m,
                           float *ln_r, int ln_view) {
  const int n = im->B * im->T, D = im->cfg.dim;
  const float *bias = P(m, vb(l, MPB));
  if (p > 0.0f) {
    TIMED(m, PF_DROP, 0,
          kd_bias_dropout_forward(im->d_br, im->blk[l].m2, bias, im->pos_ids, site_key(f, l, 2), p, n, D));
    bias = NULL;
  }
  TIMED(m, PF_LN, 0,
        kd_residual_layernorm_forward(im->xs[l + 1], ln, ln_m, ln_r, im->blk[l].a, im->d_br, bias, P(m, ln_view),
                                      P(m, ln_view + 1), n, D));
}

static int check_batch(const kd_model *m, const kd_batch *b, kd_err *e) {
  if (b->kind != KD_INPUT_TOKENS)
    return kd_fail(e, KD_ERR_RUNTIME, "gpt forward: the student reads token rows, not feature rows");
  if (b->rows < 0 || b->rows > m->max_batch)
    return kd_fail(e, KD_ERR_RUNTIME, "gpt forward: batch %d exceeds the %d rows allocated", b->rows, m->max_batch);
  if (b->width < 1 || b->width > m->ctx)
    return kd_fail(e, KD_ERR_RUNTIME, "gpt forward: rows of %d positions, the student's ctx is %d", b->width, m->ctx);
  return KD_OK;
}

static int gpt_forward(kd_model *m, float *logits, const kd_batch *bt, const kd_fwd *f, kd_err *e) {
  gpt_impl *im = m->impl;
  const kd_gpt_cfg *c = &im->cfg;
  if (check_batch(m, bt, e)) return e->code;
  im->B = bt->rows;
  im->T = bt->width;
  im->train = f && f->train;
  im->tokens = bt->tokens;
  const int n = im->B * im->T, D = c->dim;
  if (im->train && m->frozen) return kd_fail(e, KD_ERR_RUNTIME, "gpt forward: a frozen model runs inference only");
  const float p = im->train ? c->dropout : 0.0f;
  for (int b = 0; b < im->B; b++)
    for (int t = 0; t < im->T; t++) im->pos_ids[(size_t)b * im->T + t] = bt->row_ids[b] * c->ctx + t;
  TIMED(m, PF_EMBED, 0, kd_embed_forward(im->xs[0], bt->tokens, P(m, WTE), P(m, WPE), im->B, im->T, D));
  if (p > 0.0f)
    TIMED(m, PF_DROP, 0, kd_dropout_forward(im->xs[0], im->m0, im->pos_ids, site_key(f, c->layers, 7), p, n, D));
  /* layers >= 1 (the spec checks it) */
  TIMED(m, PF_LN, 0,
        kd_layernorm_forward(im->blk[0].ln1, im->blk[0].ln1_m, im->blk[0].ln1_r, im->xs[0], P(m, vb(0, LN1W)),
                             P(m, vb(0, LN1B)), n, D));
  for (int l = 0; l < c->layers; l++) {
    block_forward(m, im, l, bt, f, p);
    if (l + 1 < c->layers) {
      block_acts *nx = &im->blk[l + 1];
      block_residual(m, im, l, f, p, nx->ln1, nx->ln1_m, nx->ln1_r, vb(l + 1, LN1W));
    } else {
      block_residual(m, im, l, f, p, im->lnf, im->lnf_m, im->lnf_r, vb(c->layers, 0));
    }
  }
  /* the head tied to wte: logits [n, V] = ln_f(x) wte^T (without logits: the chunked loss does it) */
  if (logits)
    TIMED(m, PF_HEAD, 2.0 * n * D * c->vocab,
          kd_gemm(logits, c->vocab, im->lnf, D, 0, P(m, WTE), D, 1, n, c->vocab, D, 1.0f, 0.0f));
  else if (!im->train)
    return kd_fail(e, KD_ERR_RUNTIME, "gpt forward: logits are needed outside training");
  return KD_OK;
}

/* ---- backward ---- */

/* d_br = dy through a residual branch's dropout (or dy itself). */
static const float *through_dropout(float *d_br, const float *dy, const uint8_t *mask, float p, size_t n) {
  if (!(p > 0.0f)) return dy;
  const float s = 1.0f / (1.0f - p);
  for (size_t i = 0; i < n; i++) d_br[i] = mask[i] ? dy[i] * s : 0.0f;
  return d_br;
}

/* d += every injection of this kind at this layer. */
static void add_injection(float *d, const kd_inject *inj, int n_inj, int kind, int layer, size_t n) {
  for (int k = 0; k < n_inj; k++) {
    if (inj[k].kind != kind || inj[k].layer != layer) continue;
    const float *dh = inj[k].dh;
    for (size_t i = 0; i < n; i++) d[i] += dh[i];
  }
}

/* d_res: dL/d xs[l + 1] on entry, dL/d xs[l] on return. */
static void block_backward(kd_model *m, gpt_impl *im, int l, float p, const kd_inject *inj, int n_inj) {
  const kd_gpt_cfg *c = &im->cfg;
  const int n = im->B * im->T, D = c->dim;
  const size_t nd = (size_t)n * D;
  const double fd = (double)nd * D;
  block_acts *b = &im->blk[l];
  /* what is already final while block l runs: the blocks above it (and ln_f) */
  const size_t ready = m->views[vb(l + 1, 0)].offset;
  /* x_next = a + drop(c_proj(gelu(c_fc(ln_2(a))))) */
  const float *db;
  TIMED(m, PB_DROP, 0, db = through_dropout(im->d_br, im->d_res, b->m2, p, nd));
  TIMED(m, PB_MPROJ, 16.0 * fd, {
    kd_gemm(G(m, vb(l, MPW)), 4 * D, db, D, 1, b->fc, 4 * D, 0, D, 4 * D, n, 1.0f, 1.0f);
    kd_bias_backward(G(m, vb(l, MPB)), db, n, D);
    kd_gemm(im->d_fc, 4 * D, db, D, 0, P(m, vb(l, MPW)), 4 * D, 0, n, 4 * D, D, 1.0f, 0.0f);
  });
  kd_model_grads_ready(m, ready); /* progress the started buckets */
  TIMED(m, PB_GELU, 0, kd_bias_gelu_backward(im->d_fc, G(m, vb(l, FCB)), im->d_fc, b->fc_pre, n, 4 * D));
  TIMED(m, PB_FC, 16.0 * fd, {
    kd_gemm(G(m, vb(l, FCW)), D, im->d_fc, 4 * D, 1, b->ln2, D, 0, 4 * D, D, n, 1.0f, 1.0f);
    kd_gemm(im->d_ln, D, im->d_fc, 4 * D, 0, P(m, vb(l, FCW)), D, 0, n, D, 4 * D, 1.0f, 0.0f);
  });
  TIMED(m, PB_LN, 0,
        kd_layernorm_backward(im->d_res, G(m, vb(l, LN2W)), G(m, vb(l, LN2B)), im->d_ln, b->a, P(m, vb(l, LN2W)),
                              b->ln2_m, b->ln2_r, n, D));
  /* a = x + drop(c_proj(attn(ln_1(x)))) */
  TIMED(m, PB_DROP, 0, db = through_dropout(im->d_br, im->d_res, b->m1, p, nd));
  TIMED(m, PB_PROJ, 4.0 * fd, {
    kd_gemm(G(m, vb(l, PROJW)), D, db, D, 1, b->y, D, 0, D, D, n, 1.0f, 1.0f);
    kd_bias_backward(G(m, vb(l, PROJB)), db, n, D);
    kd_gemm(im->d_y, D, db, D, 0, P(m, vb(l, PROJW)), D, 0, n, D, D, 1.0f, 0.0f);
  });
  const kd_attn_shape as = kd_attn_fused(im->B, im->T, c->heads, c->heads, D / c->heads);
  TIMED(m, PB_ATT, 8.0 * D * im->B * kd_attention_pairs(im->T),
        kd_attention_backward(im->d_qkv, im->d_att, im->d_y, b->qkv, b->att, b->att_drop, b->att_mask, p, &as));
  add_injection(im->d_qkv, inj, n_inj, KD_INJ_QKV, l + 1, (size_t)3 * nd); /* attention distillation */
  kd_model_grads_ready(m, ready);
  TIMED(m, PB_QKV, 12.0 * fd, {
    kd_gemm(G(m, vb(l, ATTW)), D, im->d_qkv, 3 * D, 1, b->ln1, D, 0, 3 * D, D, n, 1.0f, 1.0f);
    kd_bias_backward(G(m, vb(l, ATTB)), im->d_qkv, n, 3 * D);
    kd_gemm(im->d_ln, D, im->d_qkv, 3 * D, 0, P(m, vb(l, ATTW)), D, 0, n, D, 3 * D, 1.0f, 0.0f);
  });
  TIMED(m, PB_LN, 0,
        kd_layernorm_backward(im->d_res, G(m, vb(l, LN1W)), G(m, vb(l, LN1B)), im->d_ln, im->xs[l],
                              P(m, vb(l, LN1W)), b->ln1_m, b->ln1_r, n, D));
}


/* The head and ln_f: d_res = dL/d xs[L]. With KD_DLOGITS_IN_HEAD the loss has done the head's part
 * (d_ln and wte's gradient, kd_loss_chunked). */
static void head_backward(kd_model *m, gpt_impl *im, const float *dlogits) {
  const kd_gpt_cfg *c = &im->cfg;
  const int n = im->B * im->T, D = c->dim, lnf = vb(c->layers, 0);
  if (dlogits != KD_DLOGITS_IN_HEAD)
    TIMED(m, PB_HEAD, 4.0 * n * D * c->vocab, {
      kd_gemm(im->d_ln, D, dlogits, c->vocab, 0, P(m, WTE), D, 0, n, D, c->vocab, 1.0f, 0.0f);
      kd_gemm(G(m, WTE), D, dlogits, c->vocab, 1, im->lnf, D, 0, c->vocab, D, n, 1.0f, 1.0f);
    });
  TIMED(m, PB_LN, 0,
        kd_layernorm_backward(im->d_res, G(m, lnf), G(m, lnf + 1), im->d_ln, im->xs[c->layers], P(m, lnf),
                              im->lnf_m, im->lnf_r, n, D));
  kd_model_grads_ready(m, m->views[lnf].offset);
}

static int gpt_backward(kd_model *m, const float *dlogits, const kd_batch *bt, const kd_inject *inj, int n_inj,
                        kd_err *e) {
  gpt_impl *im = m->impl;
  const kd_gpt_cfg *c = &im->cfg;
  if (!im->train || bt->rows != im->B || bt->width != im->T)
    return kd_fail(e, KD_ERR_RUNTIME, "gpt backward: needs the training forward of the same batch");
  if (m->frozen) return kd_fail(e, KD_ERR_RUNTIME, "gpt backward: a frozen model runs inference only");
  int top = 0;
  for (int i = 0; i < n_inj; i++) {
    const int lo = inj[i].kind == KD_INJ_QKV ? 1 : 0;
    if (inj[i].layer < lo || inj[i].layer > c->layers)
      return kd_fail(e, KD_ERR_RUNTIME, "gpt backward: no %s %d (the student has %d blocks)",
                     lo ? "attention layer" : "hidden state", inj[i].layer, c->layers);
    if (inj[i].layer > top) top = inj[i].layer;
  }
  if (!dlogits && !n_inj) return kd_fail(e, KD_ERR_RUNTIME, "gpt backward: no gradient to propagate");
  const size_t nd = (size_t)im->B * im->T * c->dim;
  const float p = c->dropout;
  TIMED(m, PB_ZERO, 0, memset(im->d_res, 0, sizeof(float) * nd));
  if (dlogits) head_backward(m, im, dlogits);
  const int start = dlogits ? c->layers : top;
  add_injection(im->d_res, inj, n_inj, KD_INJ_HIDDEN, start, nd);
  for (int l = start - 1; l >= 0; l--) {
    block_backward(m, im, l, p, inj, n_inj);
    add_injection(im->d_res, inj, n_inj, KD_INJ_HIDDEN, l, nd);
    kd_model_grads_ready(m, m->views[vb(l, 0)].offset); /* blocks l.. are done */
  }
  const float *dx;
  TIMED(m, PB_DROP, 0, dx = through_dropout(im->d_br, im->d_res, im->m0, p, nd));
  TIMED(m, PB_EMBED, 0, kd_embed_backward(G(m, WTE), G(m, WPE), dx, im->tokens, im->B, im->T, c->dim));
  kd_model_grads_ready(m, 0);
  return KD_OK;
}

/* ---- the rest of the interface ---- */

static const float *gpt_hidden(const kd_model *m, int layer, int *width) {
  const gpt_impl *im = m->impl;
  if (layer < 0 || layer > im->cfg.layers) return NULL;
  if (width) *width = im->cfg.dim;
  return im->xs[layer];
}

/* q | k | v in rows of 3D (c_attn's output): each at column 0, D, 2D. */
static const float *gpt_tap(const kd_model *m, int what, int layer, kd_tap_shape *shape) {
  const gpt_impl *im = m->impl;
  const kd_gpt_cfg *c = &im->cfg;
  const int D = c->dim, col = what == KD_TAP_K ? D : what == KD_TAP_V ? 2 * D : 0;
  if (shape) *shape = (kd_tap_shape){im->B, im->T, D, c->heads, c->heads, D / c->heads, 3 * D, col};
  if (what == KD_TAP_HIDDEN) return layer >= 0 && layer <= c->layers ? im->xs[layer] : NULL;
  if (layer < 1 || layer > c->layers || m->frozen == 1) return NULL; /* frozen == 1 shares them among blocks */
  if (what == KD_TAP_Q || what == KD_TAP_K || what == KD_TAP_V) return im->blk[layer - 1].qkv + col;
  if (what == KD_TAP_ATTN) return im->blk[layer - 1].att;
  return NULL;
}

static int gpt_n_hidden(const kd_model *m) { return ((const gpt_impl *)m->impl)->cfg.layers; }

/* Hidden state l depends on the embeddings and blocks 0..l-1. */
static int gpt_views_through(const kd_model *m, int layer) {
  (void)m;
  return vb(layer, 0);
}

/* nanoGPT's initialisation: normal(0, 0.02), the residual projections
 * scaled by 1/sqrt(2 L); biases zero, LayerNorm weights one. */
static void gpt_init_params(kd_model *m, uint64_t seed) {
  const gpt_impl *im = m->impl;
  const double sd = 0.02, sd_proj = 0.02 / sqrt(2.0 * im->cfg.layers);
  for (int v = 0; v < m->n_views; v++) {
    const kd_param_view *pv = &m->views[v];
    float *w = m->params + pv->offset;
    const size_t n = (size_t)pv->rows * pv->cols;
    const char *leaf = strrchr(pv->name, '/');
    const int is_ln = strstr(pv->name, "ln_") != NULL, is_bias = strcmp(leaf, "/bias") == 0;
    if (is_ln || is_bias) {
      for (size_t i = 0; i < n; i++) w[i] = is_ln && !is_bias ? 1.0f : 0.0f;
      continue;
    }
    const double s = strstr(pv->name, "c_proj") ? sd_proj : sd;
    const uint64_t key = kd_key(seed, KD_RNG_INIT, (uint64_t)v, 0);
    for (size_t i = 0; i < n; i++) w[i] = (float)(s * kd_normal(key, i));
  }
}

static void gpt_decode_end(kd_model *m) {
  gpt_impl *im = m->impl;
  if (!im->cache) return;
  kd_kv_cache_free(&im->cache->kv);
  free(im->cache->mem);
  free(im->cache);
  im->cache = NULL;
}

static void carve_cache(gpt_cache *c, int n, const kd_gpt_cfg *g, kd_arena *a) {
  const size_t D = (size_t)g->dim;
  c->x = KD_TAKE_F(a, n * D);
  c->ln = KD_TAKE_F(a, n * D);
  c->qkv = KD_TAKE_F(a, 3 * n * D);
  c->y = KD_TAKE_F(a, n * D);
  c->br = KD_TAKE_F(a, n * D);
  c->fc = KD_TAKE_F(a, 4 * n * D);
  c->fc_pre = KD_TAKE_F(a, 4 * n * D);
  c->ln_m = KD_TAKE_F(a, n);
  c->ln_r = KD_TAKE_F(a, n);
}

static int gpt_decode_begin(kd_model *m, int n, kd_err *e) {
  gpt_impl *im = m->impl;
  /* A cache as large is reused as it is: every position is written before it is read, and keeping it spares
   * a batch-by-batch decoder the page faults of a fresh allocation per batch. */
  if (im->cache && im->cache->kv.n == n) return KD_OK;
  gpt_decode_end(m);
  gpt_cache *c = kd_calloc(1, sizeof *c, "decode cache", e);
  if (!c) return e->code;
  im->cache = c; /* freed by gpt_decode_end, also on failure */
  kd_arena a = {NULL, 0};
  carve_cache(c, n, &im->cfg, &a);
  if (kd_kv_cache_init(&c->kv, n, im->cfg.layers, im->cfg.ctx, im->cfg.dim, e) ||
      !(c->mem = kd_malloc(a.used, "decode scratch", e))) {
    gpt_decode_end(m);
    return e->code;
  }
  a.base = c->mem;
  a.used = 0;
  carve_cache(c, n, &im->cfg, &a);
  return KD_OK;
}

static int gpt_decode_step(kd_model *m, float *logits, const int32_t *tokens, const int *pos, int n, kd_err *e) {
  gpt_impl *im = m->impl;
  const kd_gpt_cfg *g = &im->cfg;
  gpt_cache *c = im->cache;
  const int D = g->dim;
  if (!c || n > c->kv.n)
    return kd_fail(e, KD_ERR_RUNTIME, "gpt decode: %d sequences, the cache holds %d", n, c ? c->kv.n : 0);
  for (int i = 0; i < n; i++) {
    if (pos[i] < 0 || pos[i] >= g->ctx || tokens[i] < 0 || tokens[i] >= g->vocab)
      return kd_fail(e, KD_ERR_RUNTIME, "gpt decode: token %d at position %d (vocab %d, ctx %d)", tokens[i], pos[i],
                     g->vocab, g->ctx);
    const float *te = P(m, WTE) + (size_t)tokens[i] * D, *pe = P(m, WPE) + (size_t)pos[i] * D;
    for (int k = 0; k < D; k++) c->x[(size_t)i * D + k] = te[k] + pe[k];
  }
  for (int l = 0; l < g->layers; l++) {
    kd_layernorm_forward(c->ln, c->ln_m, c->ln_r, c->x, P(m, vb(l, LN1W)), P(m, vb(l, LN1B)), n, D);
    linear(c->qkv, c->ln, P(m, vb(l, ATTW)), P(m, vb(l, ATTB)), n, 3 * D, D);
    kd_kv_cache_put(&c->kv, l, c->qkv, 3 * D, D, 2 * D, pos, n); /* this position's key and value */
    if (!logits && l == g->layers - 1) return KD_OK; /* nothing after them is wanted */
    kd_kv_cache_attend(c->y, &c->kv, l, c->qkv, 3 * D, 0, pos, n, g->heads, D / g->heads);
    linear(c->br, c->y, P(m, vb(l, PROJW)), P(m, vb(l, PROJB)), n, D, D);
    for (size_t k = 0; k < (size_t)n * D; k++) c->x[k] += c->br[k];
    kd_layernorm_forward(c->ln, c->ln_m, c->ln_r, c->x, P(m, vb(l, LN2W)), P(m, vb(l, LN2B)), n, D);
    kd_gemm(c->fc, 4 * D, c->ln, D, 0, P(m, vb(l, FCW)), D, 1, n, 4 * D, D, 1.0f, 0.0f);
    kd_bias_gelu_forward(c->fc, c->fc_pre, P(m, vb(l, FCB)), n, 4 * D);
    linear(c->br, c->fc, P(m, vb(l, MPW)), P(m, vb(l, MPB)), n, D, 4 * D);
    for (size_t k = 0; k < (size_t)n * D; k++) c->x[k] += c->br[k];
  }
  const int lnf = vb(g->layers, 0);
  kd_layernorm_forward(c->ln, c->ln_m, c->ln_r, c->x, P(m, lnf), P(m, lnf + 1), n, D);
  kd_gemm(logits, g->vocab, c->ln, D, 0, P(m, WTE), D, 1, n, g->vocab, D, 1.0f, 0.0f);
  return KD_OK;
}

static int gpt_decode_reorder(kd_model *m, const int *src, int n, int len, kd_err *e) {
  gpt_impl *im = m->impl;
  if (!im->cache) return kd_fail(e, KD_ERR_RUNTIME, "gpt decode: reorder without a cache");
  return kd_kv_cache_reorder(&im->cache->kv, src, n, len, e);
}

static void gpt_destroy(kd_model *m) {
  gpt_impl *im = m->impl;
  if (im) gpt_decode_end(m);
  if (im) {
    free(im->arena);
    free(im->xs);
    free(im->blk);
    free(im);
  }
  free(m->views);
  free(m);
}

static int gpt_head(kd_model *m, kd_head *h, kd_err *e) {
  gpt_impl *im = m->impl;
  if (!im->train || m->frozen) return kd_fail(e, KD_ERR_RUNTIME, "gpt head: needs a training forward");
  h->x = im->lnf;
  h->w = P(m, WTE);
  h->dw = G(m, WTE);
  h->dx = im->d_ln;
  h->n = im->B * im->T;
  h->dim = im->cfg.dim;
  h->vocab = im->cfg.vocab;
  return KD_OK;
}

static const kd_model_ops gpt_ops = {gpt_forward,      gpt_backward,     gpt_hidden,         gpt_tap,  gpt_n_hidden,
                                     gpt_views_through, gpt_init_params, gpt_destroy,        gpt_decode_begin,
                                     gpt_decode_step,   gpt_decode_reorder, gpt_decode_end, gpt_head};

static void set_view(kd_param_view *v, size_t *pos, const char *name, int rows, int cols, int decay) {
  snprintf(v->name, sizeof v->name, "%s", name);
  v->offset = *pos;
  v->rows = rows;
  v->cols = cols;
  v->decay = decay;
  *pos += (size_t)rows * cols;
}

/* nanoGPT's state_dict names with "." -> "/"; weight decay on 2-D tensors only. */
static size_t make_views(kd_model *m, const kd_gpt_cfg *c) {
  size_t pos = 0;
  const int D = c->dim;
  char name[64];
  set_view(&m->views[WTE], &pos, "transformer/wte/weight", c->vocab, D, 1);
  set_view(&m->views[WPE], &pos, "transformer/wpe/weight", c->ctx, D, 1);
  static const char *const leaf[PER_BLOCK] = {"ln_1/weight", "ln_1/bias", "attn/c_attn/weight", "attn/c_attn/bias",
                                              "attn/c_proj/weight", "attn/c_proj/bias", "ln_2/weight", "ln_2/bias",
                                              "mlp/c_fc/weight", "mlp/c_fc/bias", "mlp/c_proj/weight", "mlp/c_proj/bias"};
  const int rows[PER_BLOCK] = {D, D, 3 * D, 3 * D, D, D, D, D, 4 * D, 4 * D, D, D};
  const int cols[PER_BLOCK] = {1, 1, D, 1, D, 1, 1, 1, D, 1, 4 * D, 1};
  for (int l = 0; l < c->layers; l++)
    for (int k = 0; k < PER_BLOCK; k++) {
      snprintf(name, sizeof name, "transformer/h/%d/%s", l, leaf[k]);
      set_view(&m->views[vb(l, k)], &pos, name, rows[k], cols[k], cols[k] > 1);
    }
  set_view(&m->views[vb(c->layers, 0)], &pos, "transformer/ln_f/weight", D, 1, 0);
  set_view(&m->views[vb(c->layers, 1)], &pos, "transformer/ln_f/bias", D, 1, 0);
  return pos;
}

int kd_gpt_create(kd_model **out, const kd_gpt_cfg *cfg, int max_batch, int frozen, kd_err *e) {
  *out = NULL;
  if (max_batch < 1) return kd_fail(e, KD_ERR_USAGE, "gpt: max batch %d < 1", max_batch);
  kd_model *m = kd_calloc(1, sizeof *m, "model", e);
  gpt_impl *im = m ? kd_calloc(1, sizeof *im, "model state", e) : NULL;
  if (!im) {
    free(m);
    return e->code;
  }
  m->impl = im;
  m->ops = &gpt_ops;
  m->family = kd_gpt_family.name;
  m->input = KD_INPUT_TOKENS;
  m->in_dim = 0; /* token rows: the context bounds them */
  m->ctx = cfg->ctx;
  m->out_dim = cfg->vocab;
  m->max_batch = max_batch;
  m->frozen = frozen;
  static const char *const skip[] = {"attn/bias", "attn/masked_bias", NULL}; /* nanoGPT's causal-mask buffers */
  m->tied[0] = "lm_head/weight";
  m->tied[1] = "transformer/wte/weight";
  m->skip_suffixes = skip;
  im->cfg = *cfg;
  kd_gpt_spec_text(m->spec, sizeof m->spec, cfg);
  m->n_views = 2 + PER_BLOCK * cfg->layers + 2;
  m->views = kd_calloc((size_t)m->n_views, sizeof *m->views, "parameter views", e);
  im->xs = kd_calloc((size_t)cfg->layers + 1, sizeof *im->xs, "activation views", e);
  im->blk = kd_calloc((size_t)cfg->layers, sizeof *im->blk, "activation views", e);
  if (e->code) {
    gpt_destroy(m);
    return e->code;
  }
  m->n_params = make_views(m, cfg);
  kd_arena a = {NULL, 0};
  carve(im, &a, max_batch, m->frozen);
  im->arena = kd_malloc(a.used, "activations", e);
  m->act_bytes = a.used;
  if (!im->arena) {
    gpt_destroy(m);
    return e->code;
  }
  a.base = im->arena;
  a.used = 0;
  carve(im, &a, max_batch, m->frozen);
  *out = m;
  return KD_OK;
}

/* ---- the registry entry ---- */

static int spec_cfg(kd_gpt_cfg *cfg, const kd_model_spec *spec, kd_err *e) {
  char v[32];
  if (kd_spec_option(spec, "activation", v, sizeof v) || kd_spec_option(spec, "init", v, sizeof v))
    return kd_fail(e, KD_ERR_USAGE, "--activation and --weight-init are for mlp students (a gpt student uses GELU in "
                   "its tanh form and nanoGPT's initialisation)");
  if (kd_spec_check_keys(spec, "", e) || kd_gpt_parse_spec(cfg, spec->text, e)) return e->code;
  cfg->dropout = spec->dropout;
  return KD_OK;
}

static int family_parse(const kd_model_spec *spec, char *canonical, size_t n, kd_err *e) {
  kd_gpt_cfg cfg;
  if (spec_cfg(&cfg, spec, e)) return e->code;
  kd_gpt_spec_text(canonical, n, &cfg);
  return KD_OK;
}

static int family_create(kd_model **m, const kd_model_spec *spec, int max_batch, kd_err *e) {
  kd_gpt_cfg cfg;
  if (spec_cfg(&cfg, spec, e)) return e->code;
  return kd_gpt_create(m, &cfg, max_batch, spec->frozen, e);
}

static const char *const gpt_file_attrs[] = {NULL};

const kd_family kd_gpt_family = {"gpt", "vocab=V,ctx=T,layers=L,dim=D,heads=H", gpt_file_attrs, family_parse,
                                 family_create, 0, NULL};
