/* The streamed row provider: a reader thread reads the rows of the next
 * window this rank takes (and their teacher targets) into one of two
 * window buffers while the steps take rows from the other. The reader
 * makes every HDF5 call under the process's HDF5 lock and no MPI call. A
 * window's rows are read block by block in row order: per block one
 * hyperslab per dataset, over the span of the rows needed there. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/files.h"
#include "core/h5io.h"
#include "data/order.h"
#include "data/rows_impl.h"

enum { SLOT_FREE = 0, SLOT_QUEUED, SLOT_READING, SLOT_READY, SLOT_FAILED };

typedef struct slot {
  int state;
  int64_t epoch, window, from;  /* the job: positions [from, the window's end) of the epoch */
  uint64_t seq;                 /* jobs are read in the order queued */
  int64_t n, cursor;            /* rows held, rows taken */
  kd_batch in;                  /* [cap] rows */
  void *logits;                 /* [cap * P * C] dense teacher logits as stored (float16 or float32) */
  kd_sparse_batch sb;           /* [cap * P] positions of sparse ones */
  kd_err err;
} slot;

typedef struct stream {
  kd_rows base;
  kd_stream_cfg c;
  char split[16];
  int P, off, b;                /* teacher positions per row; this rank's slots [off, off + b) of a global batch */
  int64_t steps, end, cap;      /* steps per epoch, the positions they take; rows a slot holds at most */
  kd_order order;               /* the reader's */
  int f16;                      /* the teacher file's logits are float16 */
  size_t lrow;                  /* bytes of a row of stored logits */
  slot slots[2];
  int cur;                      /* the slot the steps take rows from */
  int64_t next_epoch, next_window; /* the job after the last one queued (next_epoch >= epochs: none) */
  uint64_t seq;
  int64_t epoch, pos;           /* where the next step starts (pos: its first position; epoch -1: nowhere) */
  uint64_t gen;                 /* bumped by a seek: the reader drops a job of an older generation */
  int quit, started;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int64_t *rows, *pick;         /* the reader's: a window's rows; the picked (row, slot row) pairs */
  kd_fileset own[2];            /* kd_rows_file_in_order: the data and teacher files, the stream's own */
} stream;

double kd_rows_row_bytes(const kd_stream_cfg *c) {
  const double P = c->kind == KD_INPUT_TOKENS ? c->width : 1;
  double b = c->kind == KD_INPUT_TOKENS ? 5.0 * c->width : 4.0 * c->width;
  b += 4 + 8; /* label, row id */
  if (c->dense) b += 4.0 * P * c->classes;
  if (c->sparse != KD_SPARSE_DENSE) b += P * (8.0 * c->sparse_k + (c->sparse_lse ? 4.0 : 0.0));
  return b;
}

static int64_t slot_capacity(const kd_stream_cfg *c, int64_t window, int b) {
  const int64_t cap = (window / c->B + 2) * b;
  return cap < window ? cap : window;
}

/* The rows of the order's largest window, as kd_order_init rounds it. */
static int64_t order_window(const kd_stream_cfg *c) {
  const int64_t block = c->block < c->rows ? c->block : c->rows;
  const int64_t w = (c->window + block - 1) / block * block;
  return w < c->rows ? w : c->rows;
}

double kd_rows_stream_bytes(const kd_stream_cfg *c) {
  const double row = kd_rows_row_bytes(c);
  const int b = (c->B + c->ranks - 1) / c->ranks; /* the largest share: every rank decides alike */
  const int64_t block = c->block < c->rows ? c->block : c->rows;
  /* two slots, and one block's stores (as stored: at most float32 and the same ids) */
  return 2.0 * (double)slot_capacity(c, order_window(c), b) * row + (double)block * row;
}

/* ---- the reader ---- */

static int cmp_pair(const void *a, const void *b) {
  const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

/* A view of row k of a slot's rows and sparse targets, for a gather of one row (the dense logits are copied
 * as stored). */
static void slot_views(const stream *s, slot *sl, int64_t k, kd_batch *in, kd_sparse_batch *sb) {
  const size_t W = (size_t)s->c.width;
  *in = sl->in;
  in->capacity = 1;
  if (in->x) in->x += (size_t)k * W;
  if (in->tokens) in->tokens += (size_t)k * W;
  if (in->mask) in->mask += (size_t)k * W;
  in->y += k;
  in->row_ids += k;
  *sb = sl->sb;
  if (sb->ids) {
    const size_t PK = (size_t)s->P * sb->t.K;
    sb->ids += (size_t)k * PK;
    sb->vals += (size_t)k * PK;
    if (sb->lse) sb->lse += (size_t)k * s->P;
  }
}

/* Rows [lo, hi) of one file (global rows; part of a block's span), and the picked ones among them into their
 * slot rows. */
static int read_file_span(stream *s, slot *sl, const int64_t *pick, int64_t n, int64_t lo, int64_t hi, kd_err *e) {
  kd_source *src = NULL;
  kd_teacher *t = NULL;
  kd_sparse_store *sp = NULL;
  const kd_stream_cfg *c = &s->c;
  int64_t a;
  const int f = kd_fileset_locate(c->data, lo, &a);
  const int64_t total = c->data->row0[f + 1] - c->data->row0[f], b = a + (hi - lo);
  kd_h5_lock();
  int rc = kd_source_open_rows(&src, c->data->paths[f], s->split, a, b, e);
  if (!rc && c->dense) rc = kd_teacher_open(&t, c->teacher->paths[f], s->split, a, b, total, KD_TEACH_LOGITS, e);
  if (!rc && t && c->check_teacher) rc = kd_teacher_validate(t, e); /* names the file and its row */
  if (!rc && c->sparse != KD_SPARSE_DENSE)
    rc = kd_sparse_open(&sp, c->teacher->paths[f], s->split, a, b, total, c->sparse, c->classes, e);
  kd_h5_unlock();
  for (int64_t i = 0; !rc && i < n; i++) {
    kd_batch in;
    kd_sparse_batch sb;
    slot_views(s, sl, pick[2 * i + 1], &in, &sb);
    const int64_t r = pick[2 * i] - lo;
    rc = kd_source_gather(src, &r, 1, &in, e);
    in.row_ids[0] = pick[2 * i]; /* the global row (the gather names the file's) */
    if (!rc && t) rc = kd_teacher_copy_stored(t, r, (char *)sl->logits + (size_t)pick[2 * i + 1] * s->lrow, e);
    if (!rc && sp) rc = kd_sparse_gather(sp, &r, 1, &sb, e);
  }
  s->base.st.bytes_read += (double)(kd_source_bytes(src) + kd_teacher_bytes(t) + kd_sparse_bytes(sp));
  kd_source_free(src);
  kd_teacher_free(t);
  kd_sparse_free(sp);
  return rc;
}

/* A block's span [lo, hi), split where a file ends. */
static int read_span(stream *s, slot *sl, const int64_t *pick, int64_t n, int64_t lo, int64_t hi, kd_err *e) {
  const kd_fileset *D = s->c.data;
  while (lo < hi) {
    int64_t a;
    const int f = kd_fileset_locate(D, lo, &a);
    const int64_t end = D->row0[f + 1] < hi ? D->row0[f + 1] : hi;
    int64_t k = 0;
    while (k < n && pick[2 * k] < end) k++;
    if (k && read_file_span(s, sl, pick, k, lo, end, e)) return e->code;
    pick += 2 * k;
    n -= k;
    lo = n ? pick[0] : hi; /* the next file's span starts at its first row needed */
  }
  return KD_OK;
}

static int dropped(stream *s, uint64_t gen) { return __atomic_load_n(&s->gen, __ATOMIC_ACQUIRE) != gen; }

/* The rows of slot sl's window this rank takes, from the files. */
static int read_job(stream *s, slot *sl, uint64_t gen, kd_err *e) {
  kd_order *o = &s->order;
  const int64_t B = s->c.B, end = s->end, p0 = sl->window * o->window;
  const int64_t n_w = kd_order_window_rows(o, sl->window);
  kd_order_window(o, sl->epoch, sl->window, s->rows);
  int64_t k = 0;
  for (int64_t i = 0; i < n_w; i++) {
    const int64_t p = p0 + i, q = p % B;
    if (p < sl->from || p >= end || q < s->off || q >= s->off + s->b) continue;
    s->pick[2 * k] = s->c.first + s->rows[i];
    s->pick[2 * k + 1] = k;
    k++;
  }
  if (k > s->cap)
    return kd_fail(e, KD_ERR_RUNTIME, "stream: %lld rows for a window buffer of %lld", (long long)k, (long long)s->cap);
  qsort(s->pick, (size_t)k, 2 * sizeof(int64_t), cmp_pair);
  for (int64_t g = 0; g < k;) {
    if (dropped(s, gen)) return KD_OK;
    const int64_t blk = s->pick[2 * g] / o->block;
    int64_t h = g;
    while (h < k && s->pick[2 * h] / o->block == blk) h++;
    if (read_span(s, sl, s->pick + 2 * g, h - g, s->pick[2 * g], s->pick[2 * (h - 1)] + 1, e)) return e->code;
    g = h;
  }
  sl->n = k;
  return KD_OK;
}

/* The queued slot of the earliest job, or NULL. */
static slot *queued(stream *s) {
  slot *a = &s->slots[0], *b = &s->slots[1];
  if (a->state == SLOT_QUEUED && (b->state != SLOT_QUEUED || a->seq < b->seq)) return a;
  return b->state == SLOT_QUEUED ? b : NULL;
}

static void *reader(void *arg) {
  stream *s = arg;
  pthread_mutex_lock(&s->mu);
  for (;;) {
    slot *sl;
    while (!s->quit && !(sl = queued(s))) pthread_cond_wait(&s->cv, &s->mu);
    if (s->quit) break;
    sl->state = SLOT_READING;
    const uint64_t gen = s->gen;
    pthread_mutex_unlock(&s->mu);
    kd_err e;
    kd_err_clear(&e);
    const double t0 = kd_seconds();
    sl->n = sl->cursor = 0;
    const int rc = read_job(s, sl, gen, &e);
    const double dt = kd_seconds() - t0;
    pthread_mutex_lock(&s->mu);
    if (s->gen == gen) { /* a dropped job's time is not the run's */
      s->base.st.read_s += dt;
      s->base.st.windows++;
    }
    if (s->gen != gen) sl->state = SLOT_FREE;
    else if (rc) {
      sl->err = e;
      sl->state = SLOT_FAILED;
    } else {
      sl->state = SLOT_READY;
    }
    pthread_cond_broadcast(&s->cv);
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

/* ---- the steps' side ---- */

static int64_t last_window(const stream *s) { return (s->end - 1) / s->order.window; }

/* Queue the next job into sl (under the lock); none past the last epoch. */
static void queue_next(stream *s, slot *sl, int64_t from) {
  sl->state = SLOT_FREE;
  sl->n = sl->cursor = 0;
  if (s->next_epoch >= s->c.epochs) return;
  sl->epoch = s->next_epoch;
  sl->window = s->next_window;
  sl->from = from > sl->window * s->order.window ? from : sl->window * s->order.window;
  sl->seq = ++s->seq;
  sl->state = SLOT_QUEUED;
  if (++s->next_window > last_window(s)) {
    s->next_epoch++;
    s->next_window = 0;
  }
  pthread_cond_broadcast(&s->cv);
}

static int64_t st_steps(const kd_rows *r) { return ((const stream *)r)->steps; }

static int st_seek(kd_rows *r, int64_t epoch, int64_t step, kd_err *e) {
  stream *s = (stream *)r;
  if (step < 0 || step >= s->steps)
    return kd_fail(e, KD_ERR_RUNTIME, "rows: step %lld of an epoch of %lld", (long long)step, (long long)s->steps);
  const int64_t pos = step * s->c.B;
  if (s->epoch == epoch && s->pos == pos) return KD_OK; /* the reader is already there */
  pthread_mutex_lock(&s->mu);
  __atomic_add_fetch(&s->gen, 1, __ATOMIC_RELEASE);
  for (;;) { /* a job under way is dropped at its next block */
    int busy = 0;
    for (int i = 0; i < 2; i++) {
      if (s->slots[i].state != SLOT_READING) s->slots[i].state = SLOT_FREE;
      busy |= s->slots[i].state == SLOT_READING;
    }
    if (!busy) break;
    pthread_cond_wait(&s->cv, &s->mu);
  }
  s->epoch = epoch;
  s->pos = pos;
  s->next_epoch = epoch;
  s->next_window = pos / s->order.window;
  s->cur = 0;
  queue_next(s, &s->slots[0], pos);
  queue_next(s, &s->slots[1], 0);
  pthread_mutex_unlock(&s->mu);
  return KD_OK;
}

/* k rows of slot sl from its cursor into the step's buffers at row `at`. */
static void take(stream *s, slot *sl, int64_t k, int at, const kd_rows_out *o) {
  const size_t W = (size_t)s->c.width, from = (size_t)sl->cursor;
  kd_batch *in = o->in;
  if (in->kind == KD_INPUT_TOKENS) {
    memcpy(in->tokens + at * W, sl->in.tokens + from * W, (size_t)k * W * sizeof(int32_t));
    memcpy(in->mask + at * W, sl->in.mask + from * W, (size_t)k * W);
  } else {
    memcpy(in->x + at * W, sl->in.x + from * W, (size_t)k * W * sizeof(float));
  }
  memcpy(in->y + at, sl->in.y + from, (size_t)k * sizeof(int32_t));
  memcpy(in->row_ids + at, sl->in.row_ids + from, (size_t)k * sizeof(int64_t));
  const size_t PC = (size_t)s->P * s->c.classes;
  if (sl->logits && o->tb && o->tb->logits) /* float16 becomes float32 here, as the in-memory gather does */
    kd_logits_to_float(o->tb->logits + at * PC, (const char *)sl->logits + from * s->lrow, (size_t)k * PC, s->f16);
  if (sl->sb.ids && o->sb) {
    const size_t PK = (size_t)s->P * sl->sb.t.K;
    memcpy(o->sb->ids + at * PK, sl->sb.ids + from * PK, (size_t)k * PK * sizeof(int32_t));
    memcpy(o->sb->vals + at * PK, sl->sb.vals + from * PK, (size_t)k * PK * sizeof(float));
    if (sl->sb.lse) memcpy(o->sb->lse + at * (size_t)s->P, sl->sb.lse + from * s->P, (size_t)k * s->P * sizeof(float));
  }
  sl->cursor += k;
}

static int st_next(kd_rows *r, const kd_rows_out *o, kd_err *e) {
  stream *s = (stream *)r;
  if (s->epoch < 0) return kd_fail(e, KD_ERR_RUNTIME, "rows: a step before the first seek");
  if (o->in->capacity < s->b || o->in->width != s->c.width)
    return kd_fail(e, KD_ERR_RUNTIME, "rows: a batch of %d rows of width %d for %d of width %d", o->in->capacity,
                   o->in->width, s->b, s->c.width);
  const int want = s->end - s->pos < s->b ? (int)(s->end - s->pos) : s->b; /* in order: the last batch is shorter */
  int got = 0;
  pthread_mutex_lock(&s->mu);
  while (got < want) {
    slot *sl = &s->slots[s->cur];
    const double t0 = kd_seconds();
    while (sl->state == SLOT_QUEUED || sl->state == SLOT_READING) pthread_cond_wait(&s->cv, &s->mu);
    s->base.st.wait_s += kd_seconds() - t0;
    if (sl->state == SLOT_FAILED) {
      *e = sl->err;
      pthread_mutex_unlock(&s->mu);
      return e->code;
    }
    if (sl->state != SLOT_READY) {
      pthread_mutex_unlock(&s->mu);
      return kd_fail(e, KD_ERR_RUNTIME, "rows: the stream ran out at epoch %lld position %lld", (long long)s->epoch,
                     (long long)s->pos);
    }
    const int64_t k = sl->n - sl->cursor < want - got ? sl->n - sl->cursor : want - got;
    take(s, sl, k, got, o); /* a READY slot is the steps' alone */
    got += (int)k;
    if (sl->cursor == sl->n) { /* its window is used up: it takes the next job */
      queue_next(s, sl, 0);
      s->cur ^= 1;
    }
  }
  pthread_mutex_unlock(&s->mu);
  o->in->rows = want;
  if (o->in->kind == KD_INPUT_FEATURES) kd_preprocess_apply(s->base.pre, o->in->x, o->in->rows);
  s->pos += s->c.B;
  if (s->pos >= s->end) {
    s->epoch++;
    s->pos = 0;
  }
  return KD_OK;
}

static void st_prefetch(const kd_rows *r, int teacher_logits) { (void)r, (void)teacher_logits; }

static void st_stop(kd_rows *r) {
  stream *s = (stream *)r;
  if (!s->started) return;
  pthread_mutex_lock(&s->mu);
  s->quit = 1;
  __atomic_add_fetch(&s->gen, 1, __ATOMIC_RELEASE);
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  pthread_join(s->thread, NULL);
  s->started = 0;
}

static void st_free(kd_rows *r) {
  stream *s = (stream *)r;
  st_stop(r);
  for (int i = 0; i < 2; i++) {
    kd_batch_free(&s->slots[i].in);
    free(s->slots[i].logits);
    kd_sparse_batch_free(&s->slots[i].sb);
  }
  kd_order_free(&s->order);
  free(s->rows);
  free(s->pick);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  kd_fileset_free(&s->own[0]);
  kd_fileset_free(&s->own[1]);
  free(s);
}

static const kd_rows_ops stream_ops = {st_steps, st_seek, st_next, st_prefetch, st_stop, st_free};

static int alloc_slots(stream *s, kd_err *e) {
  const kd_stream_cfg *c = &s->c;
  const int f = kd_fileset_first_rows(c->data);
  const int64_t frows = c->data->row0[f + 1] - c->data->row0[f];
  kd_sparse_store *shape = NULL; /* one row: the sparse batch's K and lse */
  if (c->sparse != KD_SPARSE_DENSE &&
      kd_sparse_open(&shape, c->teacher->paths[f], s->split, 0, 1, frows, c->sparse, c->classes, e))
    return e->code;
  if (c->dense) { /* one row: how the logits are stored */
    kd_teacher *t;
    if (kd_teacher_open(&t, c->teacher->paths[f], s->split, 0, 1, frows, KD_TEACH_LOGITS, e))
      return e->code;
    s->f16 = kd_teacher_is_f16(t);
    s->lrow = kd_teacher_stored_row_bytes(t);
    kd_teacher_free(t);
  }
  for (int i = 0; i < 2 && !e->code; i++) {
    slot *sl = &s->slots[i];
    if (kd_batch_init(&sl->in, c->kind, (int)s->cap, c->width, e)) break;
    if (c->dense) sl->logits = kd_malloc((size_t)s->cap * s->lrow, "stream teacher logits", e);
    if (shape && !e->code) kd_sparse_batch_init(&sl->sb, shape, (int)s->cap * s->P, e);
  }
  kd_sparse_free(shape);
  const size_t most = (size_t)kd_order_window_rows(&s->order, 0); /* no window has more rows than the first */
  s->rows = kd_malloc(sizeof(int64_t) * most, "stream window rows", e);
  s->pick = kd_malloc(2 * sizeof(int64_t) * most, "stream picked rows", e);
  return e->code;
}

/* own (nullable): files the stream takes over (c->data and c->teacher then point at them). */
static int open_stream(kd_rows **out, const kd_stream_cfg *c, kd_fileset *own, kd_err *e) {
  *out = NULL;
  stream *s = kd_calloc(1, sizeof *s, "row stream", e);
  if (!s) {
    if (own) kd_fileset_free(&own[0]), kd_fileset_free(&own[1]);
    return e->code;
  }
  s->base.ops = &stream_ops;
  s->base.streamed = 1;
  s->c = *c;
  if (own) {
    s->own[0] = own[0];
    s->own[1] = own[1];
    s->c.data = &s->own[0];
    s->c.teacher = c->teacher ? &s->own[1] : NULL;
  }
  snprintf(s->split, sizeof s->split, "%s", c->split);
  s->c.split = s->split;
  s->P = c->kind == KD_INPUT_TOKENS ? c->width : 1;
  s->b = kd_local_batch(c->B, c->ranks, c->rank);
  for (int r = 0; r < c->rank; r++) s->off += kd_local_batch(c->B, c->ranks, r);
  s->steps = c->in_order ? (c->rows + c->B - 1) / c->B : c->rows / c->B;
  s->end = c->in_order ? c->rows : s->steps * c->B;
  s->epoch = -1;
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  int rc = s->steps < 1 ? kd_fail(e, KD_ERR_RUNTIME, "stream: %lld rows, fewer than a batch of %d", (long long)c->rows, c->B)
           : c->in_order && (c->ranks != 1 || c->epochs != 1)
               ? kd_fail(e, KD_ERR_RUNTIME, "stream: rows in order are read by one rank for one pass")
               : kd_order_init(&s->order, c->rows, c->block, c->window, c->seed, e);
  s->order.in_order = c->in_order;
  if (!rc) {
    s->cap = slot_capacity(c, kd_order_window_rows(&s->order, 0), s->b);
    rc = alloc_slots(s, e);
  }
  if (!rc && pthread_create(&s->thread, NULL, reader, s) != 0)
    rc = kd_fail(e, KD_ERR_RUNTIME, "stream: cannot start the reader thread");
  s->started = !rc;
  s->base.st.buffer_bytes = (size_t)kd_rows_stream_bytes(c);
  if (rc) {
    st_free(&s->base);
    return rc;
  }
  *out = &s->base;
  return KD_OK;
}

int kd_rows_stream(kd_rows **out, const kd_stream_cfg *c, kd_err *e) { return open_stream(out, c, NULL, e); }

int kd_rows_file_in_order(kd_rows **out, const kd_range_cfg *r, kd_err *e) {
  *out = NULL;
  kd_fileset own[2];
  memset(own, 0, sizeof own);
  kd_split_info info;
  if (kd_fileset_single(&own[0], r->data, e) || kd_fileset_probe(&own[0], r->split, &info, e) ||
      (r->teacher && kd_fileset_single(&own[1], r->teacher, e))) {
    kd_fileset_free(&own[0]);
    kd_fileset_free(&own[1]);
    return e->code;
  }
  kd_stream_cfg c;
  memset(&c, 0, sizeof c);
  c.data = &own[0];
  c.teacher = r->teacher ? &own[1] : NULL;
  c.split = r->split;
  c.first = r->first;
  c.rows = r->rows;
  c.kind = info.kind;
  c.width = info.width;
  c.classes = r->classes;
  c.dense = c.check_teacher = r->teacher != NULL;
  c.sparse = KD_SPARSE_DENSE;
  c.B = r->B;
  c.ranks = c.epochs = c.in_order = 1;
  int64_t window;
  kd_order_defaults(kd_rows_row_bytes(&c), c.rows, &c.block, &window);
  c.window = c.block; /* no shuffle: a window of one block is enough */
  if (open_stream(out, &c, own, e)) return e->code;
  kd_rows_set_preprocess(*out, r->pre);
  return KD_OK;
}
