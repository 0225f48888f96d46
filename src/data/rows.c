/* The row provider's calls, and its in-memory backend: this rank's shard
 * in memory, each epoch a permutation of it keyed on (seed, epoch, rank). */
#include "data/rows_impl.h"

#include <stdlib.h>
#include <string.h>

#include "core/rng.h"

typedef struct memory {
  kd_rows base;
  const kd_source *src;
  const kd_teacher *teacher;
  const kd_sparse_store *sparse;
  kd_inter_store *inter;
  int b;
  uint64_t seed;
  int rank;
  int64_t *perm;            /* the epoch's order of the shard's rows */
  int64_t epoch, step;      /* of the next kd_rows_next (epoch -1: no order yet) */
} memory;

static int64_t mem_steps(const kd_rows *r) {
  const memory *m = (const memory *)r;
  return kd_source_rows(m->src) / m->b;
}

static int mem_seek(kd_rows *r, int64_t epoch, int64_t step, kd_err *e) {
  memory *m = (memory *)r;
  if (step < 0 || step > mem_steps(r))
    return kd_fail(e, KD_ERR_RUNTIME, "rows: step %lld of an epoch of %lld", (long long)step, (long long)mem_steps(r));
  if (m->epoch != epoch)
    kd_permutation(m->perm, kd_source_rows(m->src), kd_key(m->seed, KD_RNG_SHUFFLE, (uint64_t)epoch, (uint64_t)m->rank));
  m->epoch = epoch;
  m->step = step;
  return KD_OK;
}

static int mem_next(kd_rows *r, const kd_rows_out *o, kd_err *e) {
  memory *m = (memory *)r;
  if (m->epoch < 0 || m->step >= mem_steps(r))
    return kd_fail(e, KD_ERR_RUNTIME, "rows: no step %lld in an epoch of %lld", (long long)m->step,
                   (long long)mem_steps(r));
  const int64_t *idx = m->perm + m->step * m->b;
  if (kd_source_gather(m->src, idx, m->b, o->in, e)) return e->code;
  if (m->teacher && kd_teacher_gather(m->teacher, idx, m->b, o->tb, e)) return e->code;
  if (m->inter && kd_inter_store_gather(m->inter, idx, m->b, e)) return e->code;
  if (m->sparse && o->sb && kd_sparse_gather(m->sparse, idx, m->b, o->sb, e)) return e->code;
  m->step++;
  return KD_OK;
}

static void mem_prefetch(const kd_rows *r, int teacher_logits) {
  const memory *m = (const memory *)r;
  if (m->epoch < 0 || (m->step + 1) * m->b > kd_source_rows(m->src)) return;
  const int64_t *next = m->perm + m->step * m->b;
  kd_source_prefetch(m->src, next, m->b);
  if (teacher_logits && m->teacher) kd_teacher_prefetch(m->teacher, next, m->b);
}

static void mem_stop(kd_rows *r) { (void)r; }

static void mem_free(kd_rows *r) {
  memory *m = (memory *)r;
  free(m->perm);
  free(m);
}

static const kd_rows_ops memory_ops = {mem_steps, mem_seek, mem_next, mem_prefetch, mem_stop, mem_free};

int kd_rows_memory(kd_rows **out, const kd_source *src, const kd_teacher *teacher, const kd_sparse_store *sparse,
                   kd_inter_store *inter, int b_local, uint64_t seed, int rank, kd_err *e) {
  *out = NULL;
  memory *m = kd_calloc(1, sizeof *m, "row provider", e);
  if (!m) return e->code;
  const int64_t n = kd_source_rows(src);
  m->perm = kd_malloc(sizeof(int64_t) * (size_t)(n ? n : 1), "shuffle order", e);
  if (!m->perm) {
    free(m);
    return e->code;
  }
  m->base.ops = &memory_ops;
  m->src = src;
  m->teacher = teacher;
  m->sparse = sparse;
  m->inter = inter;
  m->b = b_local > 0 ? b_local : 1;
  m->seed = seed;
  m->rank = rank;
  m->epoch = -1;
  *out = &m->base;
  return KD_OK;
}

/* ---- in memory, in order: evaluation and inference ---- */

typedef struct in_order {
  kd_rows base;
  const kd_source *src;
  const kd_teacher *teacher;
  int chunk;
  int64_t step;
} in_order;

static int64_t ord_steps(const kd_rows *r) {
  const in_order *m = (const in_order *)r;
  return (kd_source_rows(m->src) + m->chunk - 1) / m->chunk;
}

static int ord_seek(kd_rows *r, int64_t epoch, int64_t step, kd_err *e) {
  in_order *m = (in_order *)r;
  if (epoch != 0 || step < 0 || step > ord_steps(r))
    return kd_fail(e, KD_ERR_RUNTIME, "rows: epoch %lld step %lld of one pass of %lld", (long long)epoch,
                   (long long)step, (long long)ord_steps(r));
  m->step = step;
  return KD_OK;
}

static int ord_next(kd_rows *r, const kd_rows_out *o, kd_err *e) {
  in_order *m = (in_order *)r;
  const int64_t n = kd_source_rows(m->src), r0 = m->step * m->chunk;
  if (r0 >= n) return kd_fail(e, KD_ERR_RUNTIME, "rows: no step %lld in a pass of %lld rows", (long long)m->step, (long long)n);
  const int nb = (int)(n - r0 < m->chunk ? n - r0 : m->chunk);
  if (kd_source_gather_range(m->src, r0, nb, o->in, e)) return e->code;
  if (m->teacher && o->tb && o->tb->logits && kd_teacher_gather_range(m->teacher, r0, nb, o->tb->logits, e))
    return e->code;
  m->step++;
  return KD_OK;
}

static void ord_prefetch(const kd_rows *r, int teacher_logits) { (void)r, (void)teacher_logits; }
static void ord_free(kd_rows *r) { free(r); }

static const kd_rows_ops in_order_ops = {ord_steps, ord_seek, ord_next, ord_prefetch, mem_stop, ord_free};

int kd_rows_memory_in_order(kd_rows **out, const kd_source *src, const kd_teacher *teacher, int chunk, kd_err *e) {
  *out = NULL;
  in_order *m = kd_calloc(1, sizeof *m, "row provider", e);
  if (!m) return e->code;
  m->base.ops = &in_order_ops;
  m->src = src;
  m->teacher = teacher;
  m->chunk = chunk > 0 ? chunk : 1;
  *out = &m->base;
  return KD_OK;
}

int64_t kd_rows_steps(const kd_rows *r) { return r->ops->steps(r); }
int kd_rows_seek(kd_rows *r, int64_t epoch, int64_t step, kd_err *e) { return r->ops->seek(r, epoch, step, e); }
int kd_rows_next(kd_rows *r, const kd_rows_out *o, kd_err *e) { return r->ops->next(r, o, e); }
void kd_rows_prefetch(const kd_rows *r, int teacher_logits) { r->ops->prefetch(r, teacher_logits); }
void kd_rows_set_preprocess(kd_rows *r, const kd_preprocess *p) { r->pre = p; }
int kd_rows_streamed(const kd_rows *r) { return r && r->streamed; }
void kd_rows_get_stats(const kd_rows *r, kd_rows_stats *s) {
  if (r) *s = r->st;
  else memset(s, 0, sizeof *s);
}
void kd_rows_stop(kd_rows *r) {
  if (r) r->ops->stop(r);
}
void kd_rows_free(kd_rows *r) {
  if (r) r->ops->free(r);
}
