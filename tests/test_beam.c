/* The sequence decoder (infer/seqdecode.h) on tiny models set by the test: a
 * "model" whose logits are a fixed function of the tokens fed so far, kept
 * per sequence in its own cache (so reorders and compaction are exercised as
 * with a real key/value cache). Checks: beam 1 == greedy; a case where greedy
 * misses the best sequence and beam 2 finds it; beam search with K above the
 * number of live hypotheses == exhaustive search (the n-best lists, at
 * length penalties 0 and 1); batched rows == rows decoded alone; n-best
 * scores == the model's summed log-probabilities; edit distances by hand. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "infer/seqdecode.h"
#include "infer/seqtask.h"

#define CTX 16
#define END 2

typedef struct toy {
  int n;
  int32_t hist[2048][CTX]; /* each sequence's tokens by position */
  int kind;                /* 0: hand-made (greedy misses); 1: pseudo-random logits */
  int V;
} toy;

static uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  return x ^ (x >> 33);
}

/* The logits after tokens h[0..p]. */
static void toy_logits(const toy *t, const int32_t *h, int p, float *z) {
  if (t->kind == 0) { /* prompt "1" (sep); then a: 0.6 / b: 0.4; after a: end 0.4; after b: end 0.9 */
    int32_t last = h[p];
    double pr[5] = {1e-9, 1e-9, 1e-9, 1e-9, 1e-9};
    if (p == 0) pr[3] = 0.6, pr[4] = 0.4 - 3e-9;
    else if (last == 3) pr[END] = 0.4, pr[3] = 0.3, pr[4] = 0.3 - 3e-9;
    else pr[END] = 0.9, pr[3] = 0.05, pr[4] = 0.05 - 3e-9;
    for (int v = 0; v < 5; v++) z[v] = (float)log(pr[v]);
    return;
  }
  uint64_t key = 1469598103934665603ULL;
  for (int i = 0; i <= p; i++) key = mix(key ^ (uint64_t)(h[i] + 7) * 0x9e3779b97f4a7c15ULL);
  for (int v = 0; v < t->V; v++) z[v] = (float)((double)(mix(key + (uint64_t)v) >> 11) / 9007199254740992.0 * 4.0);
}

static int toy_begin(kd_model *m, int n, kd_err *e) {
  toy *t = m->impl;
  if (n > 2048) return kd_fail(e, KD_ERR_RUNTIME, "toy: %d sequences", n);
  t->n = n;
  return KD_OK;
}

static int toy_step(kd_model *m, float *logits, const int32_t *tokens, const int *pos, int n, kd_err *e) {
  toy *t = m->impl;
  if (n > t->n) return kd_fail(e, KD_ERR_RUNTIME, "toy: step of %d", n);
  for (int i = 0; i < n; i++) {
    if (pos[i] < 0 || pos[i] >= CTX) return kd_fail(e, KD_ERR_RUNTIME, "toy: position %d", pos[i]);
    t->hist[i][pos[i]] = tokens[i];
    if (logits) toy_logits(t, t->hist[i], pos[i], logits + (size_t)i * m->out_dim); /* NULL: keys only */
  }
  return KD_OK;
}

static int toy_reorder(kd_model *m, const int *src, int n, int len, kd_err *e) {
  toy *t = m->impl;
  (void)e;
  static int32_t tmp[2048][CTX];
  for (int i = 0; i < n; i++) memcpy(tmp[i], t->hist[src[i]], sizeof(int32_t) * len);
  for (int i = 0; i < n; i++) memcpy(t->hist[i], tmp[i], sizeof(int32_t) * len);
  for (int i = 0; i < n; i++) /* what a real cache holds past len is stale: poison it */
    for (int p = len; p < CTX; p++) t->hist[i][p] = -1;
  return KD_OK;
}

static void toy_end(kd_model *m) { (void)m; }

static const kd_model_ops toy_ops = {.decode_begin = toy_begin, .decode_step = toy_step,
                                     .decode_reorder = toy_reorder, .decode_end = toy_end};

static toy g_toy;

static kd_model make_toy(int kind, int V) {
  kd_model m;
  memset(&m, 0, sizeof m);
  m.ops = &toy_ops;
  m.family = "toy";
  m.ctx = CTX;
  m.out_dim = V;
  g_toy.kind = kind;
  g_toy.V = V;
  m.impl = &g_toy;
  return m;
}

/* The model's log-probability of target tgt[0..n) after prompt[0..np). */
static double toy_logp(kd_model *m, const int32_t *prompt, int np, const int32_t *tgt, int n) {
  int32_t h[CTX];
  float z[64];
  memcpy(h, prompt, sizeof(int32_t) * np);
  double lp = 0;
  for (int i = 0; i < n; i++) {
    toy_logits(m->impl, h, np + i - 1, z);
    double mx = z[0], s = 0;
    for (int v = 1; v < m->out_dim; v++) mx = z[v] > mx ? z[v] : mx;
    for (int v = 0; v < m->out_dim; v++) s += exp((double)z[v] - mx);
    lp += (double)z[tgt[i]] - (mx + log(s));
    h[np + i] = tgt[i];
  }
  return lp;
}

static int decode(kd_model *m, const int32_t *prompts, int stride, const int *plen, const int *maxl, int B,
                  const char *spec, int nbest, double A, kd_hyps *h) {
  kd_seq_cfg c = {0};
  kd_err e = {0};
  c.nbest = nbest;
  c.length_penalty = A;
  c.temperature = 1;
  c.end_id = END;
  int64_t ids[64];
  for (int b = 0; b < B; b++) ids[b] = b;
  int L = 0;
  for (int b = 0; b < B; b++) L = maxl[b] > L ? maxl[b] : L;
  if (kd_decode_parse(spec, &c, &e) || kd_hyps_init(h, B, nbest, L, &e) ||
      kd_decode_rows(m, prompts, stride, plen, maxl, B, ids, &c, h, &e)) {
    fprintf(stderr, "decode %s: %s\n", spec, e.msg);
    return 1;
  }
  return 0;
}

static void test_greedy_misses(void) {
  kd_model m = make_toy(0, 5);
  const int32_t prompt[1] = {1};
  const int plen[1] = {1}, maxl[1] = {4};
  kd_hyps g, b1, b2;
  CHECK(!decode(&m, prompt, 1, plen, maxl, 1, "greedy", 1, 0, &g), "greedy decodes");
  CHECK(!decode(&m, prompt, 1, plen, maxl, 1, "beam:1", 1, 0, &b1), "beam 1 decodes");
  CHECK(!decode(&m, prompt, 1, plen, maxl, 1, "beam:2", 2, 0, &b2), "beam 2 decodes");
  CHECK(g.len[0] == 2 && g.tokens[0] == 3 && g.tokens[1] == END, "greedy takes a, end (len %d, %d %d)", g.len[0],
        g.tokens[0], g.tokens[1]);
  CHECK(check_close(g.logp[0], log(0.6 * 0.4), 1e-6, 1e-6), "greedy logp %g", g.logp[0]);
  CHECK(b1.len[0] == g.len[0] && b1.tokens[0] == g.tokens[0] && b1.logp[0] == g.logp[0], "beam 1 == greedy");
  CHECK(b2.len[0] == 2 && b2.tokens[0] == 4 && b2.tokens[1] == END, "beam 2 finds b, end (len %d, %d %d)", b2.len[0],
        b2.tokens[0], b2.tokens[1]);
  CHECK(check_close(b2.logp[0], log(0.4 * 0.9), 1e-6, 1e-6), "beam 2 logp %g, wanted %g", b2.logp[0], log(0.36));
  CHECK(b2.logp[0] > g.logp[0], "beam 2 beats greedy");
  CHECK(b2.len[1] == 2 && b2.tokens[b2.max_len] == 3 && check_close(b2.logp[1], log(0.24), 1e-6, 1e-6),
        "second best is a, end (%g)", b2.logp[1]);
  kd_hyps_free(&g);
  kd_hyps_free(&b1);
  kd_hyps_free(&b2);
}

/* Every target of at most L tokens (end only last; length L may end without it), best N by logp / len^A. */
typedef struct exh {
  double score[8], logp[8];
  int len[8];
  int32_t tok[8][CTX];
  int n, N;
} exh;

static void exh_add(exh *x, const int32_t *t, int n, double lp, double A) {
  const double s = lp / pow((double)n, A);
  int at = x->n < x->N ? x->n++ : x->N;
  if (at == x->N && !(s > x->score[x->N - 1])) return;
  if (at == x->N) at = x->N - 1;
  while (at > 0 && s > x->score[at - 1]) {
    x->score[at] = x->score[at - 1];
    x->logp[at] = x->logp[at - 1];
    x->len[at] = x->len[at - 1];
    memcpy(x->tok[at], x->tok[at - 1], sizeof x->tok[0]);
    at--;
  }
  x->score[at] = s;
  x->logp[at] = lp;
  x->len[at] = n;
  memcpy(x->tok[at], t, sizeof(int32_t) * n);
}

static void exhaustive(kd_model *m, const int32_t *prompt, int np, int32_t *t, int n, int L, double A, exh *x) {
  for (int v = 0; v < m->out_dim; v++) {
    t[n] = v;
    const double lp = toy_logp(m, prompt, np, t, n + 1);
    if (v == END || n + 1 == L) exh_add(x, t, n + 1, lp, A);
    else exhaustive(m, prompt, np, t, n + 1, L, A, x);
  }
}

static void test_exhaustive(double A) {
  const int V = 4, L = 4, N = 5;
  kd_model m = make_toy(1, V);
  const int32_t prompts[3 * 4] = {1, 3, 0, 1, 3, 1, 0, 0, 0, 3, 3, 1};
  const int plen[3] = {2, 2, 4}, maxl[3] = {L, 3, L};
  kd_hyps b;
  CHECK(!decode(&m, prompts, 4, plen, maxl, 3, "beam:200", N, A, &b), "beam 200 decodes");
  for (int r = 0; r < 3; r++) {
    exh x = {.N = N};
    int32_t t[CTX];
    exhaustive(&m, prompts + 4 * r, plen[r], t, 0, maxl[r], A, &x);
    for (int k = 0; k < N; k++) {
      const size_t i = (size_t)r * N + k;
      int same = b.len[i] == x.len[k];
      for (int p = 0; same && p < x.len[k]; p++) same = b.tokens[i * b.max_len + p] == x.tok[k][p];
      CHECK(same && check_close(b.score[i], x.score[k], 1e-9, 1e-12),
            "A %g row %d hypothesis %d: beam len %d score %.9f, exhaustive len %d score %.9f", A, r, k, b.len[i],
            b.score[i], x.len[k], x.score[k]);
      CHECK(check_close(b.logp[i], toy_logp(&m, prompts + 4 * r, plen[r], b.tokens + i * b.max_len, b.len[i]), 1e-9,
                        1e-12),
            "row %d hypothesis %d: logp equals the model's", r, k);
    }
  }
  kd_hyps_free(&b);
}

/* Random models and prompts of different lengths: beam 1 == greedy, and a batch == each row alone. */
static void test_batches(void) {
  const int V = 6, B = 12, W = 5;
  kd_model m = make_toy(1, V);
  int32_t prompts[12 * 5];
  int plen[12], maxl[12];
  for (int b = 0; b < B; b++) {
    plen[b] = 1 + (int)(mix((uint64_t)b) % W);
    maxl[b] = 2 + (int)(mix((uint64_t)b + 99) % 8);
    for (int p = 0; p < W; p++) prompts[b * W + p] = (int32_t)(mix((uint64_t)(b * 31 + p)) % V);
  }
  const char *specs[4] = {"greedy", "beam:1", "beam:3", "sample"};
  kd_hyps all[4];
  for (int s = 0; s < 4; s++) CHECK(!decode(&m, prompts, W, plen, maxl, B, specs[s], s == 2 ? 3 : 1, 0.7, &all[s]), "%s", specs[s]);
  int same = 1, ends = 0;
  for (int b = 0; b < B; b++) {
    same &= all[0].len[b] == all[1].len[b] && all[0].logp[b] == all[1].logp[b] &&
            !memcmp(all[0].tokens + (size_t)b * all[0].max_len, all[1].tokens + (size_t)b * all[1].max_len,
                    sizeof(int32_t) * all[0].len[b]);
    ends += all[0].tokens[(size_t)b * all[0].max_len + all[0].len[b] - 1] == END;
  }
  CHECK(same, "beam 1 == greedy on %d rows", B);
  CHECK(ends > 0 && ends < B, "some rows end, some hit their limit (%d of %d end)", ends, B);
  for (int s = 0; s < 4; s++) {
    int alone_same = 1;
    const int N = s == 2 ? 3 : 1;
    for (int b = 0; b < B; b++) {
      kd_hyps one;
      if (decode(&m, prompts + b * W, W, &plen[b], &maxl[b], 1, specs[s], N, 0.7, &one)) {
        alone_same = 0;
        continue;
      }
      if (s == 3) { /* draws are keyed on the global row: decode row b as row id b */
        kd_hyps_free(&one);
        continue;
      }
      for (int k = 0; k < N; k++) {
        const size_t i = (size_t)b * N + k;
        alone_same &= one.len[k] == all[s].len[i] && one.logp[k] == all[s].logp[i];
        for (int p = 0; p < one.len[k]; p++) alone_same &= one.tokens[(size_t)k * one.max_len + p] == all[s].tokens[i * all[s].max_len + p];
      }
      kd_hyps_free(&one);
    }
    CHECK(alone_same, "%s: the batch of %d rows == each row decoded alone", specs[s], B);
  }
  for (int b = 0; b < B; b++) { /* every hypothesis' logp is the model's, the n-best sorted by score */
    for (int k = 0; k < 3; k++) {
      const size_t i = (size_t)b * 3 + k;
      if (!all[2].len[i]) continue;
      CHECK(check_close(all[2].logp[i], toy_logp(&m, prompts + b * W, plen[b], all[2].tokens + i * all[2].max_len, all[2].len[i]), 1e-9, 1e-12),
            "beam 3 row %d hypothesis %d: logp", b, k);
      CHECK(k == 0 || all[2].score[i] <= all[2].score[i - 1], "beam 3 row %d: sorted", b);
      CHECK(check_close(all[2].score[i], all[2].logp[i] / pow(all[2].len[i], 0.7), 1e-12, 0), "score = logp / len^A");
    }
    CHECK(all[2].score[(size_t)b * 3] >= all[0].score[b] - 1e-12, "beam 3 row %d scores at least greedy", b);
  }
  for (int s = 0; s < 4; s++) kd_hyps_free(&all[s]);
}

static void test_sampling(void) {
  kd_model m = make_toy(1, 6);
  int32_t prompts[2] = {1, 1};
  int plen[2] = {1, 1}, maxl[2] = {8, 8};
  kd_hyps a, b;
  CHECK(!decode(&m, prompts, 1, plen, maxl, 2, "sample", 1, 0, &a), "sample");
  CHECK(!decode(&m, prompts, 1, plen, maxl, 2, "sample", 1, 0, &b), "sample again");
  CHECK(a.len[0] == b.len[0] && !memcmp(a.tokens, b.tokens, sizeof(int32_t) * a.len[0]), "same seed, same draws");
  int differ = a.len[0] != a.len[1] || memcmp(a.tokens, a.tokens + a.max_len, sizeof(int32_t) * a.len[0]);
  CHECK(differ, "two rows with the same prompt draw differently (keyed on the row)");
  kd_hyps_free(&a);
  kd_hyps_free(&b);
}

static void test_edit_distance(void) {
  int d[32];
  const int32_t kitten[] = {'k', 'i', 't', 't', 'e', 'n'}, sitting[] = {'s', 'i', 't', 't', 'i', 'n', 'g'};
  const int32_t flaw[] = {'f', 'l', 'a', 'w'}, lawn[] = {'l', 'a', 'w', 'n'}, abc[] = {1, 2, 3}, acb[] = {1, 3, 2};
  CHECK(kd_token_edit_distance(kitten, 6, sitting, 7, d) == 3, "kitten/sitting");
  CHECK(kd_token_edit_distance(sitting, 7, kitten, 6, d) == 3, "sitting/kitten");
  CHECK(kd_token_edit_distance(flaw, 4, lawn, 4, d) == 2, "flaw/lawn");
  CHECK(kd_token_edit_distance(abc, 3, acb, 3, d) == 2, "abc/acb");
  CHECK(kd_token_edit_distance(abc, 3, abc, 3, d) == 0, "equal");
  CHECK(kd_token_edit_distance(abc, 0, abc, 3, d) == 3 && kd_token_edit_distance(abc, 3, abc, 0, d) == 3, "against empty");
  CHECK(kd_token_edit_distance(abc, 0, abc, 0, d) == 0, "empty/empty");
}

/* PER and WER by hand: three words, one with two references. */
static void test_rates(void) {
  int d[32];
  kd_seq_stats st;
  memset(&st, 0, sizeof st);
  const int32_t h1[] = {1, 2, 3}, r1[] = {1, 2, 3};               /* right: 0 edits over 3 */
  const int32_t h2[] = {1, 5, 3, 4}, r2a[] = {1, 2, 3, 4, 6}, r2b[] = {1, 5, 3}; /* 2 vs 1: closest r2b, 1 over 3 */
  const int32_t h3[] = {7}, r3[] = {8, 9};                         /* 2 edits over 2 */
  const int32_t *refs1[] = {r1}, *refs2[] = {r2a, r2b}, *refs3[] = {r3};
  const int l1[] = {3}, l2[] = {5, 3}, l3[] = {2};
  kd_seq_score(&st, h1, 3, refs1, l1, 1, d);
  kd_seq_score(&st, h2, 4, refs2, l2, 2, d);
  kd_seq_score(&st, h3, 1, refs3, l3, 1, d);
  kd_seq_rates(&st);
  CHECK(st.rows == 3 && st.refs == 4 && st.edits == 3 && st.ref_tokens == 8 && st.wrong == 2,
        "sums: words %lld refs %lld edits %g ref tokens %g wrong %g", (long long)st.rows, (long long)st.refs, st.edits,
        st.ref_tokens, st.wrong);
  CHECK(check_close(st.per, 3.0 / 8.0, 1e-15, 0) && check_close(st.wer, 2.0 / 3.0, 1e-15, 0), "per %g wer %g", st.per,
        st.wer);
  kd_seq_stats tie;
  memset(&tie, 0, sizeof tie);
  const int32_t ha[] = {1, 2}, ra[] = {1, 3}, rb[] = {1, 2, 4, 5}; /* ra is 1 edit away, rb 2 */
  const int32_t *rr[] = {rb, ra};
  const int lr[] = {4, 2};
  kd_seq_score(&tie, ha, 2, rr, lr, 2, d);
  CHECK(tie.edits == 1 && tie.ref_tokens == 2, "closest reference is the 1-edit one (edits %g over %g)", tie.edits,
        tie.ref_tokens);
  const int32_t rc[] = {1, 4}, *rt[] = {ra, rc};
  const int lt[] = {2, 2};
  kd_seq_stats t2;
  memset(&t2, 0, sizeof t2);
  kd_seq_score(&t2, ha, 2, rt, lt, 2, d);
  CHECK(t2.edits == 1 && t2.ref_tokens == 2 && t2.wrong == 1, "a tie takes the first reference");
}

static void test_parse(void) {
  kd_seq_cfg c;
  kd_err e = {0};
  CHECK(kd_decode_parse("beam:5", &c, &e) == KD_OK && c.mode == KD_DECODE_BEAM && c.beam == 5, "beam:5");
  CHECK(kd_decode_parse("greedy", &c, &e) == KD_OK && c.mode == KD_DECODE_GREEDY && c.beam == 1, "greedy");
  const char *bad[4] = {"beam:", "beam:0", "beam:2x", "viterbi"};
  for (int i = 0; i < 4; i++) {
    kd_err_clear(&e);
    CHECK(kd_decode_parse(bad[i], &c, &e) == KD_ERR_USAGE && strstr(e.msg, bad[i]), "'%s' refused: %s", bad[i], e.msg);
  }
}

int main(void) {
  test_greedy_misses();
  test_exhaustive(0.0);
  test_exhaustive(1.0);
  test_batches();
  test_sampling();
  test_edit_distance();
  test_parse();
  test_rates();
  return check_summary("test_beam");
}
