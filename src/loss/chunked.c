/* The head GEMM and the loss in chunks of positions, for large
 * vocabularies: the logits [n, V] and their gradient never exist whole.
 * Per chunk of c positions: z = x W^T (GEMM), the loss and dz in one pass
 * per row, then dx = dz W and dW += dz^T x (GEMMs); peak memory 2 c V
 * floats plus 4 V floats (the exps of dense rows, or the other divergences' work). The dense rows' pass
 * computes each exp once, in float with the vectorizable kd_exp_fast, and
 * accumulates in double: exact to float rounding (tested against the
 * plain double-precision loss). */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kd/loss.h"
#include "loss/divergence.h"
#include "loss/sparse.h"
#include "loss/sums.h"
#include "models/profile.h"
#include "nn/fastmath.h"
#include "nn/gemm.h"
#include "nn/simd.h"

enum { PROF_GEMM = 24, PROF_PASS = 25 };
static const char *const prof_gemm = "loss: head gemms (chunked)", *const prof_pass = "loss: softmax/CE/KD pass";

/* Reductions in LANES interleaved partial sums: a single running sum is one long chain of dependent adds
 * that the compiler may not reorder (no -ffast-math), so it would neither vectorize nor pipeline. */
enum { LANES = 8 };

KD_HOT static double sum_of(const float *x, int V) {
  double acc[LANES] = {0};
  int c = 0;
  for (; c + LANES <= V; c += LANES)
    for (int k = 0; k < LANES; k++) acc[k] += x[c + k];
  double s = 0.0;
  for (; c < V; c++) s += x[c];
  for (int k = 0; k < LANES; k++) s += acc[k];
  return s;
}

/* sum_c e[c] (a[c] - b[c]) */
KD_HOT static double dot_diff(const float *e, const float *a, const float *b, int V) {
  double acc[LANES] = {0};
  int c = 0;
  for (; c + LANES <= V; c += LANES)
    for (int k = 0; k < LANES; k++) acc[k] += (double)e[c + k] * ((double)a[c + k] - (double)b[c + k]);
  double s = 0.0;
  for (; c < V; c++) s += (double)e[c] * ((double)a[c] - (double)b[c]);
  for (int k = 0; k < LANES; k++) s += acc[k];
  return s;
}

/* sum of x[c] where mark[c] is 0 */
KD_HOT static double unmarked_sum(const float *x, const unsigned char *mark, int V) {
  double acc[LANES] = {0};
  int c = 0;
  for (; c + LANES <= V; c += LANES)
    for (int k = 0; k < LANES; k++) acc[k] += mark[c + k] ? 0.0 : (double)x[c + k];
  double s = 0.0;
  for (; c < V; c++) s += mark[c] ? 0.0 : (double)x[c];
  for (int k = 0; k < LANES; k++) s += acc[k];
  return s;
}

KD_HOT static float max_of(const float *z, int V) {
  float acc[LANES];
  for (int k = 0; k < LANES; k++) acc[k] = z[0];
  int c = 0;
  for (; c + LANES <= V; c += LANES)
    for (int k = 0; k < LANES; k++) acc[k] = z[c + k] > acc[k] ? z[c + k] : acc[k];
  float mx = z[0];
  for (; c < V; c++) mx = z[c] > mx ? z[c] : mx;
  for (int k = 0; k < LANES; k++) mx = acc[k] > mx ? acc[k] : mx;
  return mx;
}

/* exp((v - mx) * s) for every v of z, into out (float, clamped to exp(-87): a probability below 1e-38 is 0
 * to the loss); returns their sum in double. */
KD_HOT static double exps(float *out, const float *z, int V, float mx, float s) {
  for (int c = 0; c < V; c++) {
    float u = (z[c] - mx) * s;
    u = u < -87.0f ? -87.0f : u;
    out[c] = kd_exp_fast(u);
  }
  return sum_of(out, V);
}

/* Is y the first index of the largest logit (the student's top-1)? */
static int top1_is(const float *z, float mx, int y) {
  if (z[y] != mx) return 0;
  for (int c = 0; c < y; c++)
    if (z[c] == mx) return 0;
  return 1;
}

/* One dense row (as row_cached of loss.c, for any V): e1, esT, etT are [V] scratch. */
static void dense_row(float *dl, kd_loss_sums *sums, const float *zs, const float *zt, int y, int a, int V,
                      const kd_loss_cfg *cfg, float grad_scale, float *e1, float *esT, float *etT) {
  if (zt && cfg->div.kind != KD_DIV_FORWARD) { /* the other divergences' rows, in double; e1.. is 4 V floats */
    kd_divergence_loss_row(dl, sums, zs, zt, y, a, V, cfg, grad_scale, (double *)(void *)e1);
    return;
  }
  const double T = cfg->temperature, invTd = 1.0 / T;
  const float invT = (float)invTd;
  const int labelled = y >= 0;
  if (y == KD_Y_IGNORE) {
    if (dl) memset(dl, 0, sizeof(float) * (size_t)V);
    return;
  }
  const double w_hard = zt ? (labelled ? cfg->alpha : 0.0) : 1.0, w_soft = zt ? (labelled ? 1.0 - cfg->alpha : 1.0) : 0.0;
  if (!labelled && !zt) { /* no signal (a snapshot teacher not there yet): counted, no gradient */
    if (dl) memset(dl, 0, sizeof(float) * (size_t)V);
    sums->rows += 1.0;
    return;
  }
  const float mx = max_of(zs, V);
  const double s1 = exps(e1, zs, V, mx, 1.0f), r1 = 1.0 / s1, H = w_hard * r1, gs = grad_scale;
  const double lse1 = (double)mx + log(s1);
  const double ce = labelled ? lse1 - (double)zs[y] : 0.0;
  double kl = 0.0;
  if (zt) {
    const double ssT = T == 1.0 ? s1 : exps(esT, zs, V, mx, invT);
    const float *es = T == 1.0 ? e1 : esT;
    const float mt = max_of(zt, V);
    const double stT = exps(etT, zt, V, mt, invT), rs = 1.0 / ssT, rt = 1.0 / stT, a = w_soft * T;
    /* sum_c p_t (log p_t - log p_s), with log p = (z - max) / T - log(sum): what stays of it once
     * sum_c p_t = 1 is used */
    kl = invTd * rt * dot_diff(etT, zt, zs, V) + ((double)mx - (double)mt) * invTd + log(ssT) - log(stT);
    if (dl) {
      const double A = a * rs, Bt = a * rt;
      for (int c = 0; c < V; c++) dl[c] = (float)((H * e1[c] + A * es[c] - Bt * etT[c]) * gs);
      if (labelled) dl[y] = (float)((H * e1[y] - w_hard + A * es[y] - Bt * etT[y]) * gs);
    }
  } else if (dl) {
    for (int c = 0; c < V; c++) dl[c] = (float)(H * e1[c] * gs);
    dl[y] = (float)((H * e1[y] - w_hard) * gs);
  }
  kd_loss_sums_row(sums, labelled, labelled && top1_is(zs, mx, y), w_hard, w_soft, ce, T * T * kl);
}

/* One row against sparse targets (as position() of sparse.c, the reference, with float exps): e1, esT [V]
 * and mark [V] (zero on entry and exit) scratch, q [K + 1]. */
static void sparse_row(float *dl, kd_loss_sums *sums, const float *zs, const kd_sparse_targets *sp, size_t pos, int y,
                       int V, const kd_loss_cfg *cfg, float grad_scale, float *e1, float *esT, unsigned char *mark,
                       double *q) {
  if (y == KD_Y_IGNORE) {
    if (dl) memset(dl, 0, sizeof(float) * (size_t)V);
    return;
  }
  const double T = cfg->temperature;
  const float invT = (float)(1.0 / T);
  const int K = sp->K, labelled = y >= 0, tail = sp->mode == KD_SPARSE_TAIL;
  const int32_t *id = sp->ids + pos * K;
  const float mx = max_of(zs, V);
  const double s1 = exps(e1, zs, V, mx, 1.0f), ssT = T == 1.0 ? s1 : exps(esT, zs, V, mx, invT);
  const float *es = T == 1.0 ? e1 : esT;
  double tail_sum = 0.0;
  if (tail) {
    for (int k = 0; k < K; k++) mark[id[k]] = 1;
    tail_sum = unmarked_sum(es, mark, V);
  }
  const int has_soft = kd_sparse_teacher_bins(q, sp, pos, 1.0 / T, tail && K < V);
  const double w_hard = labelled ? cfg->alpha : 0.0, w_soft = has_soft ? (labelled ? 1.0 - cfg->alpha : 1.0) : 0.0;
  const double lse1 = (double)mx + log(s1), lse_sT = (double)mx * invT + log(ssT);
  const double ts = tail_sum > DBL_MIN ? tail_sum : DBL_MIN;
  double kl = 0.0;
  for (int k = 0; k < K && has_soft; k++)
    if (q[k] > 0.0) kl += q[k] * (log(q[k]) - ((double)zs[id[k]] * invT - lse_sT));
  if (has_soft && q[K] > 0.0) kl += q[K] * (log(q[K]) - (log(ts) - log(ssT)));
  if (dl) {
    const double r1 = 1.0 / s1, rsT = 1.0 / ssT, a = w_soft * T, tail_scale = q[K] > 0.0 ? a * q[K] / ts : 0.0;
    const double H = w_hard * r1, A = a * rsT, gs = grad_scale;
    if (tail_scale > 0.0) /* off the ids: the tail bin's target q_tail p_j / p_tail */
      for (int c = 0; c < V; c++) dl[c] = (float)((H * e1[c] + (A - (mark[c] ? 0.0 : tail_scale)) * es[c]) * gs);
    else
      for (int c = 0; c < V; c++) dl[c] = (float)((H * e1[c] + A * es[c]) * gs);
    if (labelled) dl[y] = (float)((w_hard * (e1[y] * r1 - 1.0) + a * es[y] * rsT -
                                   (tail_scale > 0.0 && !mark[y] ? tail_scale * es[y] : 0.0)) * grad_scale);
    for (int k = 0; k < K && a != 0.0; k++)
      if (q[k] > 0.0) {
        const int c = id[k];
        const double g = w_hard * (e1[c] * r1 - (c == y ? 1.0 : 0.0)) + a * (es[c] * rsT - q[k]);
        dl[c] = (float)(g * grad_scale);
      }
  }
  if (tail)
    for (int k = 0; k < K; k++) mark[id[k]] = 0;
  const double ce = labelled ? lse1 - (double)zs[y] : 0.0;
  sums->loss += w_hard * ce + w_soft * T * T * kl;
  sums->ce += ce;
  sums->kd += w_soft != 0.0 ? T * T * kl : 0.0;
  sums->rows += 1.0;
  if (labelled) {
    sums->labelled += 1.0;
    sums->correct += top1_is(zs, mx, y);
  }
}

int kd_loss_dense_rows(float *dlogits, kd_loss_sums *sums, const float *z_s, const kd_targets *t, int B, int C,
                       const kd_loss_cfg *cfg, float grad_scale, kd_err *e) {
  float *w = kd_malloc(sizeof(float) * 4 * (size_t)C, "loss workspace", e);
  if (!w) return e->code;
  for (int b = 0; b < B; b++)
    dense_row(dlogits ? dlogits + (size_t)b * C : NULL, sums, z_s + (size_t)b * C,
              t->t_logits ? t->t_logits + (size_t)b * C : NULL, t->y[b], t->sampled ? t->sampled[b] : -1, C, cfg,
              grad_scale, w, w + C, w + 2 * (size_t)C);
  free(w);
  return KD_OK;
}

/* The chunks' logits and gradient, and 4 V floats: the exps (3 V), or the other divergences' 2 V doubles. */
size_t kd_loss_chunk_floats(int chunk, int V) { return (size_t)2 * chunk * V + (size_t)4 * V; }

/* The targets of positions [p0, p0 + c). */
static void chunk_targets(kd_targets *out, kd_sparse_targets *sp, const kd_targets *t, size_t p0, int V) {
  *out = *t;
  out->y = t->y + p0;
  if (t->sampled) out->sampled = t->sampled + p0;
  if (t->t_logits) out->t_logits = t->t_logits + p0 * V;
  if (t->sparse) {
    *sp = *t->sparse;
    sp->ids += p0 * sp->K;
    sp->vals += p0 * sp->K;
    if (sp->lse) sp->lse += p0;
    out->sparse = sp;
  }
}

int kd_loss_chunked(kd_loss_sums *sums, const kd_head *h, const kd_targets *t, const kd_loss_cfg *cfg, float grad_scale,
                    int grad, float *work, int chunk, kd_profile *prof, kd_err *e) {
  const int V = h->vocab, D = h->dim;
  float *z = work, *dz = work + (size_t)chunk * V, *ex = dz + (size_t)chunk * V;
  /* sparse targets: slot marks [V] (zero between rows) and the teacher's bins [K + 1] */
  if (t->sparse && cfg->div.kind != KD_DIV_FORWARD)
    return kd_fail(e, KD_ERR_USAGE, "sparse teacher logits serve the forward divergence only");
  unsigned char *mark = t->sparse ? kd_calloc((size_t)V, 1, "sparse loss marks", e) : NULL;
  double *q = t->sparse ? kd_malloc(sizeof(double) * ((size_t)t->sparse->K + 1), "sparse loss bins", e) : NULL;
  if (e->code) {
    free(mark);
    free(q);
    return e->code;
  }
  for (int p0 = 0; p0 < h->n; p0 += chunk) {
    const int c = h->n - p0 < chunk ? h->n - p0 : chunk;
    const float *x = h->x + (size_t)p0 * D;
    double t0 = prof ? kd_prof_now() : 0.0;
    kd_gemm(z, V, x, D, 0, h->w, D, 1, c, V, D, 1.0f, 0.0f);
    double t1 = prof ? kd_prof_now() : 0.0;
    kd_targets tc;
    kd_sparse_targets sc;
    chunk_targets(&tc, &sc, t, (size_t)p0, V);
    float *d = grad ? dz : NULL;
    if (tc.sparse) {
      for (int b = 0; b < c; b++)
        sparse_row(d ? d + (size_t)b * V : NULL, sums, z + (size_t)b * V, tc.sparse, (size_t)b, tc.y[b], V, cfg,
                   grad_scale, ex, ex + V, mark, q);
    } else {
      for (int b = 0; b < c; b++)
        dense_row(d ? d + (size_t)b * V : NULL, sums, z + (size_t)b * V, tc.t_logits ? tc.t_logits + (size_t)b * V : NULL,
                  tc.y[b], tc.sampled ? tc.sampled[b] : -1, V, cfg, grad_scale, ex, ex + V, ex + 2 * (size_t)V);
    }
    double t2 = prof ? kd_prof_now() : 0.0;
    if (grad) {
      kd_gemm(h->dx + (size_t)p0 * D, D, dz, V, 0, h->w, D, 0, c, D, V, 1.0f, 0.0f);
      kd_gemm(h->dw, D, dz, V, 1, x, D, 0, V, D, c, 1.0f, 1.0f);
    }
    if (prof) {
      const double t3 = kd_prof_now();
      kd_prof_add(prof, PROF_GEMM, prof_gemm, (t1 - t0) + (t3 - t2), (grad ? 6.0 : 2.0) * c * (double)D * V);
      kd_prof_add(prof, PROF_PASS, prof_pass, t2 - t1, 0.0);
    }
  }
  free(mark);
  free(q);
  return KD_OK;
}
