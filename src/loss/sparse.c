/* The distillation loss against sparse teacher logits (kd/teacher.h,
 * docs/usage.md "Large vocabularies"). Per position, with the
 * student's full-vocabulary p = softmax(z_s / T) and a teacher target q over
 * the K slots (and, for tail, one more bin):
 *   topk     q_k = softmax_k(z_t,k / T) over the K ids;
 *   tail     bins K + 1: the K logits and the tail logit
 *            log(exp(lse) - sum_k exp(z_t,k)), all divided by T; the
 *            student's tail bin is its mass off the K ids;
 *   sampled  q_k = count_k / sum of counts (draws from the teacher at T).
 * Soft term T^2 * sum_bins q (log q - log p); its gradient is
 * T * (p_j - target_j), target_j = q_k at id_k, for tail q_tail * p_j / p_tail
 * off the ids, else 0. With sampled targets that gradient is an unbiased
 * estimate of the dense one (E[count / N] = the teacher's probability). */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kd/loss.h"
#include "loss/sparse.h"

typedef struct sparse_work {
  double *e1, *esT;      /* [C] exp(z - max z), exp(z / T - max z / T) */
  unsigned char *mark;   /* [C] 1 at the position's slot ids (tail) */
} sparse_work;

int kd_sparse_teacher_bins(double *q, const kd_sparse_targets *sp, size_t pos, double invT, int student_tail) {
  const int K = sp->K;
  const float *v = sp->vals + pos * K;
  if (sp->mode == KD_SPARSE_SAMPLED) {
    double n = 0.0;
    for (int k = 0; k < K; k++) n += v[k];
    if (n <= 0.0) return 0;
    for (int k = 0; k < K; k++) q[k] = v[k] / n;
    q[K] = 0.0;
    return 1;
  }
  double tail_logit = -INFINITY;
  if (sp->mode == KD_SPARSE_TAIL && student_tail) {
    const double lse = sp->lse[pos];
    double m = 0.0;
    for (int k = 0; k < K; k++) m += exp((double)v[k] - lse);
    /* rounding (float16 logits) can put the top-k mass at or above 1: no tail then */
    if (m < 1.0) tail_logit = lse + log1p(-m);
  }
  double mx = tail_logit * invT;
  for (int k = 0; k < K; k++)
    if ((double)v[k] * invT > mx) mx = (double)v[k] * invT;
  double s = 0.0;
  for (int k = 0; k < K; k++) s += (q[k] = exp((double)v[k] * invT - mx));
  q[K] = isinf(tail_logit) ? 0.0 : exp(tail_logit * invT - mx);
  s += q[K];
  for (int k = 0; k <= K; k++) q[k] /= s;
  return 1;
}

static void position(float *dl, kd_loss_sums *sums, const float *zs, const kd_sparse_targets *sp, size_t pos, int y,
                     int C, const kd_loss_cfg *cfg, float grad_scale, const sparse_work *w, double *q) {
  const double T = cfg->temperature, invT = 1.0 / T;
  const int K = sp->K, labelled = y >= 0;
  const int32_t *id = sp->ids + pos * K;
  int arg = 0;
  for (int c = 1; c < C; c++)
    if (zs[c] > zs[arg]) arg = c;
  const double mx1 = zs[arg], mxs = (double)zs[arg] * invT;
  double s1 = 0.0, ssT = 0.0;
  for (int c = 0; c < C; c++) s1 += (w->e1[c] = exp((double)zs[c] - mx1));
  if (T == 1.0)
    memcpy(w->esT, w->e1, sizeof(double) * (size_t)C), ssT = s1;
  else
    for (int c = 0; c < C; c++) ssT += (w->esT[c] = exp((double)zs[c] * invT - mxs));
  const int tail = sp->mode == KD_SPARSE_TAIL;
  double tail_sum = 0.0;
  if (tail) {
    for (int k = 0; k < K; k++) w->mark[id[k]] = 1;
    for (int c = 0; c < C; c++)
      if (!w->mark[c]) tail_sum += w->esT[c];
  }
  const int student_tail = tail && K < C;
  const int has_soft = kd_sparse_teacher_bins(q, sp, pos, invT, student_tail);
  const double w_hard = labelled ? cfg->alpha : 0.0, w_soft = has_soft ? (labelled ? 1.0 - cfg->alpha : 1.0) : 0.0;
  const double lse1 = mx1 + log(s1), lse_sT = mxs + log(ssT);
  double kl = 0.0;
  for (int k = 0; k < K && has_soft; k++)
    if (q[k] > 0.0) kl += q[k] * (log(q[k]) - ((double)zs[id[k]] * invT - lse_sT));
  const double tail_scale = q[K] > 0.0 ? q[K] / (tail_sum > DBL_MIN ? tail_sum : DBL_MIN) : 0.0;
  if (has_soft && q[K] > 0.0) kl += q[K] * (log(q[K]) - (log(tail_sum > DBL_MIN ? tail_sum : DBL_MIN) - log(ssT)));
  if (dl) {
    const double r1 = 1.0 / s1, rsT = 1.0 / ssT, a = w_soft * T;
    for (int c = 0; c < C; c++) {
      double g = w_hard * (w->e1[c] * r1 - (c == y ? 1.0 : 0.0)) + a * w->esT[c] * rsT;
      if (tail_scale > 0.0 && !w->mark[c]) g -= a * tail_scale * w->esT[c];
      dl[c] = (float)(g * grad_scale);
    }
    /* the slots' targets, added after the full pass (ids are distinct, or carry no mass when repeated) */
    for (int k = 0; k < K && a != 0.0; k++)
      if (q[k] > 0.0) {
        const int c = id[k];
        const double g = w_hard * (w->e1[c] * r1 - (c == y ? 1.0 : 0.0)) + a * (w->esT[c] * rsT - q[k]);
        dl[c] = (float)(g * grad_scale);
      }
  }
  if (tail)
    for (int k = 0; k < K; k++) w->mark[id[k]] = 0;
  sums->loss += w_hard * (labelled ? lse1 - (double)zs[y] : 0.0) + w_soft * T * T * kl;
  sums->ce += labelled ? lse1 - (double)zs[y] : 0.0;
  sums->kd += w_soft != 0.0 ? T * T * kl : 0.0;
  sums->rows += 1.0;
  if (labelled) {
    sums->labelled += 1.0;
    sums->correct += (arg == y);
  }
}

int kd_loss_sparse_forward_backward(float *dlogits, kd_loss_sums *sums, const float *z_s, const kd_targets *t, int B,
                                    int C, const kd_loss_cfg *cfg, float grad_scale, kd_err *e) {
  const kd_sparse_targets *sp = t->sparse;
  if (cfg->div.kind != KD_DIV_FORWARD) /* the others need p_t of every id p_s puts mass on */
    return kd_fail(e, KD_ERR_USAGE, "sparse teacher logits serve the forward divergence only");
  sparse_work w;
  w.e1 = kd_malloc(sizeof(double) * (size_t)C * 2, "sparse loss workspace", e);
  w.mark = kd_calloc((size_t)C, 1, "sparse loss workspace", e);
  double *q = kd_malloc(sizeof(double) * ((size_t)sp->K + 1), "sparse loss workspace", e);
  if (e->code) {
    free(w.e1);
    free(w.mark);
    free(q);
    return e->code;
  }
  w.esT = w.e1 + C;
  for (int b = 0; b < B; b++) {
    float *dl = dlogits ? dlogits + (size_t)b * C : NULL;
    const int y = t->y[b];
    if (y == KD_Y_IGNORE) {
      if (dl) memset(dl, 0, sizeof(float) * (size_t)C);
      continue;
    }
    position(dl, sums, z_s + (size_t)b * C, sp, (size_t)b, y, C, cfg, grad_scale, &w, q);
  }
  free(w.e1);
  free(w.mark);
  free(q);
  return KD_OK;
}
