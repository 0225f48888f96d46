#include "infer/seqdecode.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "infer/generate.h"

int kd_decode_parse(const char *spec, kd_seq_cfg *c, kd_err *e) {
  c->beam = 1;
  if (strcmp(spec, "greedy") == 0) c->mode = KD_DECODE_GREEDY;
  else if (strcmp(spec, "sample") == 0) c->mode = KD_DECODE_SAMPLE;
  else if (strncmp(spec, "beam:", 5) == 0) {
    char *end = NULL;
    const long k = strtol(spec + 5, &end, 10);
    if (end == spec + 5 || *end || k < 1 || k > 1024)
      return kd_fail(e, KD_ERR_USAGE, "--decode %s: the beam width K of beam:K must be an integer in [1, 1024]", spec);
    c->mode = KD_DECODE_BEAM;
    c->beam = (int)k;
  } else {
    return kd_fail(e, KD_ERR_USAGE, "--decode %s: expected greedy, sample or beam:K", spec);
  }
  return KD_OK;
}

int kd_hyps_init(kd_hyps *h, int rows, int nbest, int max_len, kd_err *e) {
  memset(h, 0, sizeof *h);
  h->rows = rows;
  h->nbest = nbest;
  h->max_len = max_len;
  const size_t n = (size_t)rows * nbest;
  h->tokens = kd_malloc(sizeof(int32_t) * n * (size_t)(max_len ? max_len : 1), "hypotheses", e);
  h->len = kd_calloc(n, sizeof(int), "hypotheses", e);
  h->logp = kd_malloc(sizeof(double) * n, "hypotheses", e);
  h->score = kd_malloc(sizeof(double) * n, "hypotheses", e);
  if (e->code) {
    kd_hyps_free(h);
    return e->code;
  }
  for (size_t i = 0; i < n; i++) h->logp[i] = h->score[i] = -INFINITY;
  return KD_OK;
}

void kd_hyps_free(kd_hyps *h) {
  free(h->tokens);
  free(h->len);
  free(h->logp);
  free(h->score);
  memset(h, 0, sizeof *h);
}

int kd_token_edit_distance(const int32_t *a, int na, const int32_t *b, int nb, int *d) {
  for (int j = 0; j <= nb; j++) d[j] = j;
  for (int i = 1; i <= na; i++) {
    int diag = d[0]; /* d[i-1][j-1] */
    d[0] = i;
    for (int j = 1; j <= nb; j++) {
      const int up = d[j], best = diag + (a[i - 1] != b[j - 1]);
      const int ins = d[j - 1] + 1, del = up + 1;
      d[j] = best < ins ? (best < del ? best : del) : (ins < del ? ins : del);
      diag = up;
    }
  }
  return d[nb];
}

/* ---- the decoder's state: one slot per live hypothesis, a row's slots adjacent ---- */

typedef struct cand {
  double logp;
  int parent;
  int32_t token;
} cand;

typedef struct dec {
  kd_model *m;
  const kd_seq_cfg *c;
  kd_hyps *h;
  const int *plen, *max_len;
  int V, B, K, S, L, maxP, ctx;
  float *z;                 /* [S, V] logits of each slot's next token */
  float *scratch;           /* [V] sampling */
  int *row, *row2;          /* [S] the row of each slot's hypothesis */
  int32_t *hist, *hist2;    /* [S, L] the hypothesis' tokens */
  double *lp, *lp2;         /* [S] its summed log-probability */
  int *src;                 /* [S] the slot each new slot continues */
  int32_t *tok;             /* [S] tokens fed */
  int *pos;                 /* [S] their positions */
  cand *cands;              /* [K * min(K, V)] one row's extensions */
  int *top;                 /* [K] one slot's best tokens */
  int *n_done;              /* [B] finished hypotheses of each row */
  int32_t *fin;             /* [L] a hypothesis being finished */
} dec;

static void dec_free(dec *d) {
  free(d->z);
  free(d->scratch);
  free(d->row);
  free(d->row2);
  free(d->hist);
  free(d->hist2);
  free(d->lp);
  free(d->lp2);
  free(d->src);
  free(d->tok);
  free(d->pos);
  free(d->cands);
  free(d->top);
  free(d->n_done);
  free(d->fin);
}

static int dec_alloc(dec *d, kd_err *e) {
  const size_t S = (size_t)d->S, L = (size_t)d->L, kk = (size_t)d->K * (size_t)(d->K < d->V ? d->K : d->V);
  d->z = kd_malloc(sizeof(float) * S * d->V, "decode logits", e);
  d->scratch = kd_malloc(sizeof(float) * d->V, "decode scratch", e);
  d->row = kd_malloc(sizeof(int) * S, "decode slots", e);
  d->row2 = kd_malloc(sizeof(int) * S, "decode slots", e);
  d->hist = kd_malloc(sizeof(int32_t) * S * L, "decode hypotheses", e);
  d->hist2 = kd_malloc(sizeof(int32_t) * S * L, "decode hypotheses", e);
  d->lp = kd_malloc(sizeof(double) * S, "decode scores", e);
  d->lp2 = kd_malloc(sizeof(double) * S, "decode scores", e);
  d->src = kd_malloc(sizeof(int) * S, "decode slots", e);
  d->tok = kd_malloc(sizeof(int32_t) * S, "decode tokens", e);
  d->pos = kd_malloc(sizeof(int) * S, "decode positions", e);
  d->cands = kd_malloc(sizeof(cand) * kk, "beam candidates", e);
  d->top = kd_malloc(sizeof(int) * (size_t)d->K, "beam candidates", e);
  d->n_done = kd_calloc((size_t)d->B, sizeof(int), "decode rows", e);
  d->fin = kd_malloc(sizeof(int32_t) * L, "decode hypotheses", e);
  return e->code;
}

static double log_sum_exp(const float *z, int V) {
  float mx = z[0];
  for (int v = 1; v < V; v++) mx = z[v] > mx ? z[v] : mx;
  double s = 0;
  for (int v = 0; v < V; v++) s += exp((double)z[v] - mx);
  return mx + log(s);
}

/* A finished hypothesis of row r into its n-best list (sorted by score; a
 * tie keeps the one found first). */
static void finish(dec *d, int r, const int32_t *toks, int len, double logp) {
  kd_hyps *h = d->h;
  const int N = h->nbest;
  const double score = logp / pow((double)len, d->c->length_penalty);
  d->n_done[r]++;
  int at = N;
  while (at > 0 && score > h->score[(size_t)r * N + at - 1]) at--;
  if (at == N) return;
  for (int k = N - 1; k > at; k--) {
    const size_t to = (size_t)r * N + k, from = to - 1;
    h->score[to] = h->score[from];
    h->logp[to] = h->logp[from];
    h->len[to] = h->len[from];
    memcpy(h->tokens + to * h->max_len, h->tokens + from * h->max_len, sizeof(int32_t) * h->max_len);
  }
  const size_t k = (size_t)r * N + at;
  h->score[k] = score;
  h->logp[k] = logp;
  h->len[k] = len;
  memcpy(h->tokens + k * h->max_len, toks, sizeof(int32_t) * len);
}

/* Feed the prompts right-aligned in time: the rows sorted by prompt length
 * (longest first) occupy slots 0..B-1, and at step s the rows whose prompt
 * has begun, a prefix of the slots, each take their next prompt token. The
 * last step feeds every row's last prompt token: z then holds the logits of
 * each row's first target. */
static int prefill(dec *d, const int32_t *prompts, int stride, const int *order, kd_err *e) {
  for (int s = 0; s < d->maxP; s++) {
    int n = 0;
    while (n < d->B && d->plen[order[n]] >= d->maxP - s) n++;
    for (int i = 0; i < n; i++) {
      const int r = order[i], p = s - (d->maxP - d->plen[r]);
      d->tok[i] = prompts[(size_t)r * stride + p];
      d->pos[i] = p;
    }
    const int last = s + 1 == d->maxP; /* only the last step's logits are read */
    if (d->m->ops->decode_step(d->m, last ? d->z : NULL, d->tok, d->pos, n, e)) return e->code;
    if (last) kd_mask_padding(d->z, n, d->V, d->c->n_ids);
  }
  return KD_OK;
}

/* Feed each live slot's newest token (its t-th) and get the next logits. */
static int advance(dec *d, int n, int t, kd_err *e) {
  for (int j = 0; j < n; j++) {
    d->tok[j] = d->hist[(size_t)j * d->L + t];
    d->pos[j] = d->plen[d->row[j]] + t;
  }
  if (d->m->ops->decode_step(d->m, d->z, d->tok, d->pos, n, e)) return e->code;
  kd_mask_padding(d->z, n, d->V, d->c->n_ids);
  return KD_OK;
}

/* Positions that hold keys and values after t target tokens were fed. */
static int cached_len(const dec *d, int t) { return d->maxP + t < d->ctx ? d->maxP + t : d->ctx; }

/* The row's next token; *lse: log sum exp of z (from the draw where it computed it). */
static int32_t pick(const dec *d, const float *z, int r, int t, const int64_t *row_ids, double *lse) {
  kd_decode_cfg pc = {d->c->mode == KD_DECODE_GREEDY, d->c->temperature, d->c->top_k, 0, d->c->n_ids};
  if (!pc.greedy) pc.seed = kd_key(d->c->seed, KD_RNG_SAMPLE, (uint64_t)row_ids[r], 0);
  const int32_t next = kd_pick_token(z, d->V, &pc, (uint64_t)t, d->scratch, lse);
  if (isnan(*lse)) *lse = log_sum_exp(z, d->V);
  return next;
}

/* Greedy and sampling: one hypothesis per row; finished rows leave the
 * batch (the slots after them move down, so each source is at or after its
 * destination and the moves can be done in place). */
static int run_single(dec *d, const int64_t *row_ids, kd_err *e) {
  int n = d->B;
  for (int t = 0; n > 0; t++) {
    int live = 0;
    for (int i = 0; i < n; i++) {
      const int r = d->row[i];
      const float *z = d->z + (size_t)i * d->V;
      double lse;
      const int32_t next = pick(d, z, r, t, row_ids, &lse);
      int32_t *hs = d->hist + (size_t)i * d->L;
      hs[t] = next;
      d->lp[i] += (double)z[next] - lse;
      if (next == d->c->end_id || t + 1 >= d->max_len[r]) finish(d, r, hs, t + 1, d->lp[i]);
      else d->src[live++] = i;
    }
    if (live == 0) break;
    if (live < n) {
      if (d->m->ops->decode_reorder(d->m, d->src, live, cached_len(d, t), e)) return e->code;
      for (int j = 0; j < live; j++) {
        const int s = d->src[j];
        d->row[j] = d->row[s];
        d->lp[j] = d->lp[s];
        if (s != j) memcpy(d->hist + (size_t)j * d->L, d->hist + (size_t)s * d->L, sizeof(int32_t) * (t + 1));
      }
    }
    n = live;
    if (advance(d, n, t, e)) return e->code;
  }
  return KD_OK;
}

static int cand_cmp(const void *pa, const void *pb) {
  const cand *a = pa, *b = pb;
  if (a->logp != b->logp) return a->logp > b->logp ? -1 : 1;
  if (a->parent != b->parent) return a->parent < b->parent ? -1 : 1;
  return a->token < b->token ? -1 : a->token > b->token;
}

/* The k largest logits of z, largest first (a tie: the smaller id first). */
static int top_tokens(const float *z, int V, int k, int *top) {
  int n = 0;
  for (int v = 0; v < V; v++) {
    if (n == k && !(z[v] > z[top[n - 1]])) continue;
    int at = n < k ? n++ : k - 1;
    while (at > 0 && z[v] > z[top[at - 1]]) {
      top[at] = top[at - 1];
      at--;
    }
    top[at] = v;
  }
  return n;
}

/* Row r's extensions from its live slots [i0, i1), best first. */
static int extensions(dec *d, int i0, int i1) {
  const int k = d->K < d->V ? d->K : d->V;
  int nc = 0;
  for (int s = i0; s < i1; s++) {
    const float *z = d->z + (size_t)s * d->V;
    const double lse = log_sum_exp(z, d->V);
    const int n = top_tokens(z, d->V, k, d->top);
    for (int q = 0; q < n; q++) d->cands[nc++] = (cand){d->lp[s] + ((double)z[d->top[q]] - lse), s, d->top[q]};
  }
  qsort(d->cands, (size_t)nc, sizeof(cand), cand_cmp);
  return nc;
}

/* Can row r stop? K hypotheses finished, or none of its live ones (best
 * summed log-probability best_lp) can still enter its n-best: a longer
 * continuation has logp <= best_lp and len <= max_len. */
static int row_done(const dec *d, int r, int kept, double best_lp) {
  if (kept == 0 || d->n_done[r] >= d->K) return 1;
  const int N = d->h->nbest;
  if (d->n_done[r] < N) return 0;
  const double bound = best_lp / pow((double)d->max_len[r], d->c->length_penalty);
  return bound <= d->h->score[(size_t)r * N + N - 1];
}

/* One beam step of row r (slots [i0, i1)): the best extensions in order; an
 * end token among the K best finishes a hypothesis, the first K others are
 * the row's next live hypotheses (at the length limit all K best finish). */
static int beam_row(dec *d, int r, int i0, int i1, int t, int *n_new) {
  const int nc = extensions(d, i0, i1), last = t + 1 >= d->max_len[r], first = *n_new;
  int kept = 0;
  for (int q = 0; q < nc && kept < d->K; q++) {
    const cand *c = &d->cands[q];
    const int32_t *ph = d->hist + (size_t)c->parent * d->L;
    if (c->token == d->c->end_id || last) {
      if (q >= d->K) continue;
      memcpy(d->fin, ph, sizeof(int32_t) * t);
      d->fin[t] = c->token;
      finish(d, r, d->fin, t + 1, c->logp);
      continue;
    }
    const int j = (*n_new)++;
    d->src[j] = c->parent;
    d->row2[j] = r;
    d->lp2[j] = c->logp;
    int32_t *nh = d->hist2 + (size_t)j * d->L;
    memcpy(nh, ph, sizeof(int32_t) * t);
    nh[t] = c->token;
    kept++;
  }
  if (row_done(d, r, kept, kept ? d->lp2[first] : 0)) *n_new = first;
  return KD_OK;
}

static void swap_state(dec *d) {
  int *ri = d->row;
  d->row = d->row2;
  d->row2 = ri;
  int32_t *hi = d->hist;
  d->hist = d->hist2;
  d->hist2 = hi;
  double *li = d->lp;
  d->lp = d->lp2;
  d->lp2 = li;
}

static int run_beam(dec *d, kd_err *e) {
  int n = d->B;
  for (int t = 0; n > 0; t++) {
    int n_new = 0;
    for (int i = 0; i < n;) {
      int j = i;
      while (j < n && d->row[j] == d->row[i]) j++;
      beam_row(d, d->row[i], i, j, t, &n_new);
      i = j;
    }
    if (n_new == 0) break;
    if (d->m->ops->decode_reorder(d->m, d->src, n_new, cached_len(d, t), e)) return e->code;
    swap_state(d);
    n = n_new;
    if (advance(d, n, t, e)) return e->code;
  }
  return KD_OK;
}

static int check_rows(const dec *d, const kd_hyps *h, kd_err *e) {
  for (int b = 0; b < d->B; b++) {
    if (d->plen[b] < 1 || d->plen[b] > d->ctx)
      return kd_fail(e, KD_ERR_RUNTIME, "decode: row %d's prompt has %d tokens; the model's context is %d", b,
                     d->plen[b], d->ctx);
    if (d->max_len[b] < 1 || d->max_len[b] > h->max_len || d->max_len[b] > d->ctx - d->plen[b] + 1)
      return kd_fail(e, KD_ERR_RUNTIME, "decode: row %d may take %d tokens after a prompt of %d (context %d)", b,
                     d->max_len[b], d->plen[b], d->ctx);
  }
  if (d->B > h->rows) return kd_fail(e, KD_ERR_RUNTIME, "decode: %d rows into %d", d->B, h->rows);
  return KD_OK;
}

int kd_decode_rows(kd_model *m, const int32_t *prompts, int stride, const int *plen, const int *max_len, int B,
                   const int64_t *row_ids, const kd_seq_cfg *c, kd_hyps *h, kd_err *e) {
  if (!m->ops->decode_step || !m->ops->decode_reorder)
    return kd_fail(e, KD_ERR_USAGE, "the model %s %s cannot decode (no autoregressive decoding)", m->family, m->spec);
  const int K = c->mode == KD_DECODE_BEAM ? c->beam : 1;
  if (c->nbest < 1 || c->nbest > K || c->nbest > h->nbest)
    return kd_fail(e, KD_ERR_USAGE, "decode: %d best hypotheses of a beam of %d", c->nbest, K);
  if (B == 0) return KD_OK;
  dec d;
  memset(&d, 0, sizeof d);
  d.m = m, d.c = c, d.h = h, d.plen = plen, d.max_len = max_len;
  d.V = m->out_dim, d.B = B, d.K = K, d.S = B * K, d.L = h->max_len, d.ctx = m->ctx;
  int *order = kd_malloc(sizeof(int) * (size_t)B, "decode order", e);
  if (!order || check_rows(&d, h, e) || dec_alloc(&d, e)) goto out;
  for (int b = 0; b < B; b++) { /* stable sort by prompt length, longest first */
    int at = b;
    while (at > 0 && plen[order[at - 1]] < plen[b]) {
      order[at] = order[at - 1];
      at--;
    }
    order[at] = b;
    d.maxP = plen[b] > d.maxP ? plen[b] : d.maxP;
  }
  for (int i = 0; i < B; i++) {
    d.row[i] = order[i];
    d.lp[i] = 0;
  }
  if (m->ops->decode_begin(m, d.S, e) == KD_OK && prefill(&d, prompts, stride, order, e) == KD_OK)
    c->mode == KD_DECODE_BEAM ? run_beam(&d, e) : run_single(&d, row_ids, e);
  if (e->code) m->ops->decode_end(m);
out:
  free(order);
  dec_free(&d);
  return e->code;
}
