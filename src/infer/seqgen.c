/* kd generate --data: the decoded targets of a split as a data file. */
#include <hdf5.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomic.h"
#include "core/dist.h"
#include "core/h5io.h"
#include "core/provenance.h"
#include "data/rows.h"
#include "data/tokenizer.h"
#include "infer/seqtask.h"
#include "kd/infer.h"
#include "models/fit.h"
#include "kd/data.h"

/* One rank's decoded rows. */
typedef struct gen_out {
  int64_t n;            /* rows */
  int W, N;             /* positions per row, n-best per row */
  int32_t *tokens;      /* [n, W] prompt + chosen target */
  uint8_t *mask;        /* [n, W] */
  int32_t *nb_tokens;   /* [n, N, W] targets, padded */
  int32_t *nb_len;      /* [n, N] */
  double *nb_logp;      /* [n, N] */
} gen_out;

static void out_free(gen_out *o) {
  free(o->tokens);
  free(o->mask);
  free(o->nb_tokens);
  free(o->nb_len);
  free(o->nb_logp);
  memset(o, 0, sizeof *o);
}

static int out_alloc(gen_out *o, int64_t n, int W, int N, kd_err *e) {
  memset(o, 0, sizeof *o);
  o->n = n;
  o->W = W;
  o->N = N;
  const size_t rows = (size_t)(n ? n : 1);
  o->tokens = kd_malloc(sizeof(int32_t) * rows * W, "decoded rows", e);
  o->mask = kd_calloc(rows * W, 1, "decoded masks", e);
  o->nb_tokens = kd_malloc(sizeof(int32_t) * rows * N * W, "n-best tokens", e);
  o->nb_len = kd_calloc(rows * N, sizeof(int32_t), "n-best lengths", e);
  o->nb_logp = kd_malloc(sizeof(double) * rows * N, "n-best scores", e);
  if (e->code) out_free(o);
  return e->code;
}

/* Tokens of hypothesis k of row b, without a final end token. */
static int hyp_body(const kd_hyps *h, int b, int k, int end_id, const int32_t **t) {
  const size_t i = (size_t)b * h->nbest + k;
  *t = h->tokens + i * h->max_len;
  int n = h->len[i];
  return n > 0 && (*t)[n - 1] == end_id ? n - 1 : n;
}

/* The hypothesis row b keeps: the best, or (closest) the one whose body is
 * nearest the reference in token edit distance (a tie: the better score). */
static int choose(const kd_hyps *h, int b, const int32_t *ref, int ref_len, int closest, int end_id, int *scratch) {
  if (!closest) return 0;
  int best = 0, best_d = -1;
  for (int k = 0; k < h->nbest && h->len[(size_t)b * h->nbest + k] > 0; k++) {
    const int32_t *t;
    const int n = hyp_body(h, b, k, end_id, &t), d = kd_token_edit_distance(t, n, ref, ref_len, scratch);
    if (best_d < 0 || d < best_d) best = k, best_d = d;
  }
  return best;
}

/* Row r of the output from the decoded hypotheses of batch row b. */
static void emit(gen_out *o, int64_t r, const int32_t *row, int plen, const kd_hyps *h, int b, int pick, int32_t pad) {
  const int W = o->W;
  int32_t *dst = o->tokens + (size_t)r * W;
  uint8_t *mk = o->mask + (size_t)r * W;
  memcpy(dst, row, sizeof(int32_t) * plen);
  const size_t ip = (size_t)b * h->nbest + pick;
  for (int p = plen; p < W; p++) {
    const int i = p - plen;
    dst[p] = i < h->len[ip] ? h->tokens[ip * h->max_len + i] : pad;
    mk[p] = i < h->len[ip];
  }
  for (int k = 0; k < o->N; k++) {
    const size_t i = (size_t)b * h->nbest + k, j = (size_t)r * o->N + k;
    int32_t *nt = o->nb_tokens + j * W;
    for (int p = 0; p < W; p++) nt[p] = p < h->len[i] ? h->tokens[i * h->max_len + p] : pad;
    o->nb_len[j] = h->len[i];
    o->nb_logp[j] = h->logp[i];
  }
}

/* Decode rows [0, n) of src (this rank's blocks) in batches of B. */
/* Decode n rows (whole batches) the provider gives next, rows [row0, row0 + n) of the split, into o's rows
 * [0, n). */
static int decode_rows(const kd_seq_task *t, const kd_seqgen_cfg *c, const kd_seq_cfg *sc, kd_rows *rows,
                       int64_t row0, gen_out *o, double *hyp_tokens, kd_progress *prog, kd_err *e) {
  const int W = t->width, B = (int)c->batch;
  kd_batch bt;
  kd_hyps h;
  memset(&h, 0, sizeof h);
  if (kd_batch_init(&bt, KD_INPUT_TOKENS, B, W, e) || kd_hyps_init(&h, B, sc->nbest, W, e)) {
    kd_batch_free(&bt);
    return e->code;
  }
  int *plen = kd_malloc(sizeof(int) * 3 * (size_t)B, "decode rows", e), *ref = plen ? plen + B : NULL;
  int *maxl = plen ? plen + 2 * B : NULL, *scratch = kd_malloc(sizeof(int) * (size_t)(W + 1), "edit distance", e);
  int64_t *ids = kd_malloc(sizeof(int64_t) * (size_t)B, "decode rows", e);
  for (int64_t r0 = 0; r0 < o->n && !e->code; r0 += B) {
    const kd_rows_out out = {&bt, NULL, NULL};
    if (kd_rows_next(rows, &out, e)) break;
    const int nb = bt.rows;
    for (int b = 0; b < nb && !e->code; b++) {
      ids[b] = row0 + r0 + b;
      const int32_t *row = bt.tokens + (size_t)b * W;
      if (t->prompt_tokens > 0 ? kd_seq_text_row(t, bt.mask + (size_t)b * W, ids[b], &plen[b], &ref[b], e)
                               : kd_seq_row(t, row, ids[b], &plen[b], &ref[b], e))
        break;
      maxl[b] = W - plen[b];
    }
    for (size_t i = 0; i < (size_t)h.rows * h.nbest; i++) h.len[i] = 0, h.logp[i] = h.score[i] = -INFINITY;
    if (e->code || kd_decode_rows(t->m, bt.tokens, W, plen, maxl, nb, ids, sc, &h, e)) break;
    for (int b = 0; b < nb; b++) {
      const int32_t *row = bt.tokens + (size_t)b * W;
      const int pick = choose(&h, b, row + plen[b], ref[b], c->select_closest, sc->end_id, scratch);
      emit(o, r0 + b, row, plen[b], &h, b, pick, t->pad);
      *hyp_tokens += h.len[(size_t)b * h.nbest + pick];
    }
    kd_progress_add(prog, nb, MPI_Wtime());
  }
  free(plen);
  free(scratch);
  free(ids);
  kd_hyps_free(&h);
  kd_batch_free(&bt);
  return e->code;
}

/* The work: every rank decodes a contiguous range of whole batches of the split (kd_shard_range over the
 * batches), in rounds of `per` rows; rank 0 receives each round's rows of every rank and writes them at their
 * rows of the output, so no rank holds more than a round of every rank's rows. */
typedef struct gen_plan {
  int P;
  int64_t batches, per, rounds;   /* batches of the split; rows of a rank per round; rounds */
} gen_plan;

/* Rows [a, b) of the split that rank r decodes in round k. */
static void round_rows(const gen_plan *g, const kd_seq_task *t, int64_t B, int r, int64_t k, int64_t *a, int64_t *b) {
  int64_t b0, b1;
  kd_shard_range(g->batches, g->P, r, &b0, &b1);
  const int64_t lo = b0 * B, hi = b1 * B < t->rows ? b1 * B : t->rows;
  *a = lo + k * g->per < hi ? lo + k * g->per : hi;
  *b = *a + g->per < hi ? *a + g->per : hi;
}

static void plan_rounds(gen_plan *g, const kd_seq_task *t, const kd_seq_cfg *sc, int64_t B, int P) {
  g->P = P;
  g->batches = (t->rows + B - 1) / B;
  /* about 64 MiB of decoded rows per round on rank 0, whole batches */
  const double row = (double)t->width * (5.0 + 4.0 * sc->nbest) + 12.0 * sc->nbest;
  int64_t nb = (int64_t)((double)(64 << 20) / (row * (double)B * P));
  const char *hook = getenv("KD_GENERATE_ROUND_BATCHES"); /* tests: many small rounds */
  if (hook && atoll(hook) > 0) nb = atoll(hook);
  g->per = (nb > 1 ? nb : 1) * B;
  const int64_t most = (g->batches + P - 1) / P * B; /* the rows of the largest range */
  g->rounds = (most + g->per - 1) / g->per;
}

/* Rank 0 receives every rank's rows of a round, in rank order, into all (n: this rank's rows). */
static int gather(const gen_out *mine, gen_out *all, int64_t total, MPI_Comm comm, int rank, int P, kd_err *e) {
  int *counts = kd_calloc((size_t)P * 2, sizeof(int), "gather counts", e), *displ = counts ? counts + P : NULL;
  int rc = counts ? KD_OK : e->code, n = (int)mine->n;
  if (!rc && rank == 0) rc = out_alloc(all, total, mine->W, mine->N, e);
  rc = kd_agree(comm, rc, e);
  if (!rc) rc = kd_mpi_check(MPI_Gather(&n, 1, MPI_INT, counts, 1, MPI_INT, 0, comm), "MPI_Gather", e);
  const struct { const void *src; void *dst; int per; MPI_Datatype ty; } parts[5] = {
      {mine->tokens, all->tokens, mine->W, MPI_INT32_T},
      {mine->mask, all->mask, mine->W, MPI_UINT8_T},
      {mine->nb_tokens, all->nb_tokens, mine->N * mine->W, MPI_INT32_T},
      {mine->nb_len, all->nb_len, mine->N, MPI_INT32_T},
      {mine->nb_logp, all->nb_logp, mine->N, MPI_DOUBLE}};
  for (int k = 0; k < 5 && !rc; k++) {
    int *rc_counts = NULL;
    if (rank == 0) {
      rc_counts = kd_malloc(sizeof(int) * (size_t)P, "gather counts", e);
      if (!rc_counts) return kd_mpi_fatal(MPI_ERR_NO_MEM, "gather", rank, e);
      for (int p = 0, at = 0; p < P; p++) {
        rc_counts[p] = counts[p] * parts[k].per;
        displ[p] = at;
        at += rc_counts[p];
      }
    }
    rc = kd_mpi_check(MPI_Gatherv(parts[k].src, n * parts[k].per, parts[k].ty, parts[k].dst, rc_counts, displ,
                                  parts[k].ty, 0, comm),
                      "MPI_Gatherv of the decoded rows", e);
    free(rc_counts);
  }
  free(counts);
  return rc;
}

static hid_t token_type(int V) { return V <= 256 ? H5T_STD_U8LE : V <= 65536 ? H5T_STD_U16LE : H5T_STD_I32LE; }

static int copy_group(hid_t in, hid_t out, const char *name, const char *data, const char *path, kd_err *e) {
  if (!kd_h5_exists(in, name)) return KD_OK;
  if (H5Ocopy(in, name, out, name, H5P_DEFAULT, H5P_DEFAULT) < 0)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: cannot copy %s from %s", path, name, data);
  return KD_OK;
}

/* The output's datasets of the decoded split: names, file types, memory types. */
enum { N_OUT = 5 };
static const char *const out_names[N_OUT] = {"tokens", "mask", "nbest_tokens", "nbest_lengths", "nbest_scores"};

static hid_t out_file_type(int k, const kd_seq_task *t) {
  return k == 1 ? H5T_STD_U8LE : k == 3 ? H5T_STD_I32LE : k == 4 ? H5T_IEEE_F64LE : token_type(t->m->out_dim);
}

static hid_t out_mem_type(int k) {
  return k == 1 ? H5T_NATIVE_UINT8 : k == 4 ? H5T_NATIVE_DOUBLE : H5T_NATIVE_INT32;
}

/* Rank 0: the output file, with the other splits and /tokenizer copied and the split's datasets created. */
static int create_file(hid_t *f, kd_atomic *a, const kd_seqgen_cfg *c, const kd_seq_task *t, int N, kd_err *e) {
  hid_t in = H5I_INVALID_HID;
  *f = H5I_INVALID_HID;
  if (kd_atomic_begin(a, c->out, e) || kd_h5_open_ro(&in, c->data, e)) return e->code;
  int rc = kd_h5_create(f, a->tmp, e);
  const char *groups[4] = {"/train", "/valid", "/test", "/tokenizer"};
  for (int g = 0; g < 4 && !rc; g++)
    if (strcmp(groups[g] + 1, t->split) != 0) rc = copy_group(in, *f, groups[g], c->data, a->tmp, e);
  H5Fclose(in);
  const int64_t dims[N_OUT][3] = {{t->rows, t->width}, {t->rows, t->width}, {t->rows, N, t->width},
                                  {t->rows, N}, {t->rows, N}};
  for (int k = 0; k < N_OUT && !rc; k++) {
    char ds[64];
    snprintf(ds, sizeof ds, "/%s/%s", t->split, out_names[k]);
    rc = kd_h5_create_dataset(*f, a->tmp, ds, k == 2 ? 3 : 2, dims[k], out_file_type(k, t), e);
  }
  return rc;
}

/* Rank 0: a round's rows (every rank's, in rank order) at their rows of the output. */
static int write_round(hid_t f, const char *path, const kd_seq_task *t, const gen_plan *g, int64_t B, int64_t k,
                       const gen_out *all, kd_err *e) {
  const void *base[N_OUT] = {all->tokens, all->mask, all->nb_tokens, all->nb_len, all->nb_logp};
  const size_t per[N_OUT] = {sizeof(int32_t) * all->W, 1u * all->W, sizeof(int32_t) * all->N * all->W,
                             sizeof(int32_t) * all->N, sizeof(double) * all->N};
  int64_t at = 0;
  int rc = KD_OK;
  kd_h5_lock(); /* rank 0's reader thread reads beside it */
  for (int r = 0; r < g->P && !rc; r++) {
    int64_t a, b;
    round_rows(g, t, B, r, k, &a, &b);
    for (int j = 0; j < N_OUT && !rc; j++) {
      char ds[64];
      snprintf(ds, sizeof ds, "/%s/%s", t->split, out_names[j]);
      rc = kd_h5_write_rows_typed(f, path, ds, a, b - a, out_mem_type(j), (const char *)base[j] + (size_t)at * per[j], e);
    }
    at += b - a;
  }
  kd_h5_unlock();
  return rc;
}

/* Rank 0: provenance, then the file closed and committed (or removed). */
static int finish_file(hid_t f, kd_atomic *a, const kd_seqgen_cfg *c, const kd_seq_task *t, int rc, kd_err *e) {
  char gen[KD_PATH_MAX + 512];
  snprintf(gen, sizeof gen, "kd generate (/%s decoded by %s: %s, n-best %lld, length penalty %g%s)", t->split, t->ckpt,
           c->decode, (long long)c->nbest, c->length_penalty, c->select_closest ? ", the n-best closest to the "
           "reference kept" : "");
  kd_provenance p = kd_provenance_of("data");
  p.generator = gen;
  p.source_checkpoint = t->ckpt;
  p.source_student = t->m->spec;
  p.source_data = c->data;
  if (f >= 0 && !rc) rc = kd_provenance_write(f, a->tmp, &p, e);
  if (f >= 0) rc = kd_h5_close(f, a->tmp, rc, e);
  if (!rc) rc = kd_atomic_commit(a, e);
  if (rc) kd_atomic_abort(a);
  return rc;
}

/* This rank's range of rows: checked a piece at a time, then read in order a block at a time. */
static int open_range(const kd_seq_task *t, const kd_seqgen_cfg *c, const gen_plan *g, int rank, kd_rows **rows,
                      int64_t *lo, int64_t *hi, kd_err *e) {
  int64_t b0, b1;
  kd_shard_range(g->batches, g->P, rank, &b0, &b1);
  *lo = b0 * c->batch;
  *hi = b1 * c->batch < t->rows ? b1 * c->batch : t->rows;
  *rows = NULL;
  if (*hi <= *lo) return KD_OK;
  char who[KD_PATH_MAX + 384];
  kd_infer_who(who, sizeof who, t->m, t->ckpt);
  const kd_range_cfg r = {t->data, NULL, t->split, *lo, *hi - *lo, t->m->out_dim, (int)c->batch, NULL};
  if (kd_fit_file(t->m, who, t->data, t->split, *lo, *hi, 1, NULL, e) || kd_rows_file_in_order(rows, &r, e) ||
      kd_rows_seek(*rows, 0, 0, e))
    return e->code;
  return KD_OK;
}

/* One round: this rank decodes its rows of it, rank 0 gathers and writes them. Collective. */
static int run_round(const kd_seq_task *t, const kd_seqgen_cfg *c, const kd_seq_cfg *sc, const gen_plan *g,
                     int64_t k, kd_rows *rows, hid_t f, const char *path, double *hyp_tokens, kd_progress *prog,
                     MPI_Comm comm, int rank, kd_err *e) {
  gen_out mine, all;
  memset(&all, 0, sizeof all);
  int64_t a, b, total = 0;
  round_rows(g, t, c->batch, rank, k, &a, &b);
  for (int r = 0; r < g->P; r++) {
    int64_t ra, rb;
    round_rows(g, t, c->batch, r, k, &ra, &rb);
    total += rb - ra;
  }
  int rc = out_alloc(&mine, b - a, t->width, sc->nbest, e);
  if (!rc && b > a) rc = decode_rows(t, c, sc, rows, a, &mine, hyp_tokens, prog, e);
  rc = kd_agree(comm, rc, e);
  if (!rc) rc = gather(&mine, &all, total, comm, rank, g->P, e);
  if (!rc && rank == 0) rc = write_round(f, path, t, g, c->batch, k, &all, e);
  out_free(&mine);
  out_free(&all);
  return kd_agree(comm, rc, e);
}

int kd_seqgen_run(const kd_seqgen_cfg *c, MPI_Comm comm, kd_seq_stats *st, kd_err *e) {
  memset(st, 0, sizeof *st);
  int rank, P;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &P);
  kd_seq_task t;
  kd_seq_cfg sc;
  kd_rows *rows = NULL;
  gen_plan g;
  memset(&g, 0, sizeof g);
  kd_atomic a;
  memset(&a, 0, sizeof a);
  hid_t f = H5I_INVALID_HID;
  int64_t lo = 0, hi = 0;
  kd_seq_threads(comm);
  int rc = kd_seq_task_open(&t, c->ckpt, c->data, c->split, c->prompt_tokens, e);
  if (!rc) rc = kd_seq_cfg_make(&sc, c->decode, c->nbest, c->length_penalty, c->temperature, c->top_k, c->seed, &t, e);
  if (!rc && c->select_closest && sc.nbest < 2)
    rc = kd_fail(e, KD_ERR_USAGE, "--select closest picks among the n-best: it needs --nbest 2 or more");
  if (!rc) plan_rounds(&g, &t, &sc, c->batch, P);
  /* Rank 0 gathers a round with MPI's int counts. */
  if (!rc && (double)g.per * P * sc.nbest * t.width > (double)INT_MAX)
    rc = kd_fail(e, KD_ERR_USAGE, "kd generate --data: a round of %lld rows of %d tokens on %d ranks with --nbest %d "
                 "is more than the %d tokens rank 0 can gather: use a smaller --batch or --nbest",
                 (long long)g.per, t.width, P, sc.nbest, INT_MAX);
  if (!rc) rc = open_range(&t, c, &g, rank, &rows, &lo, &hi, e);
  kd_progress prog;
  char what[64];
  snprintf(what, sizeof what, "kd generate /%s%s", t.split, P > 1 ? " (rank 0's rows)" : "");
  if (!rc) rc = kd_seq_progress(&prog, c, comm, what, "rows", hi - lo, e);
  const int prog_on = !rc;
  rc = kd_agree(comm, rc, e);
  if (!rc && rank == 0) { /* the reader thread is already reading beside it */
    kd_h5_lock();
    rc = create_file(&f, &a, c, &t, sc.nbest, e);
    kd_h5_unlock();
  }
  rc = kd_agree(comm, rc, e);
  double hyp_tokens = 0, t0 = MPI_Wtime();
  for (int64_t k = 0; k < g.rounds && !rc; k++)
    rc = run_round(&t, c, &sc, &g, k, rows, f, a.tmp, &hyp_tokens, &prog, comm, rank, e);
  if (prog_on) kd_progress_end(&prog);
  double dt = MPI_Wtime() - t0;
  kd_rows_free(rows); /* no reader beside the file's last calls */
  if (rank == 0 && a.tmp[0]) rc = finish_file(f, &a, c, &t, rc, e);
  rc = kd_agree(comm, rc, e);
  if (!rc) {
    MPI_Allreduce(MPI_IN_PLACE, &dt, 1, MPI_DOUBLE, MPI_MAX, comm);
    MPI_Allreduce(MPI_IN_PLACE, &hyp_tokens, 1, MPI_DOUBLE, MPI_SUM, comm);
    st->rows = t.rows;
    st->seconds = dt;
    st->hyp_tokens = hyp_tokens;
    st->seq_per_s = dt > 0 ? (double)t.rows / dt : 0;
    st->ranks = P;
  }
  kd_seq_task_close(&t);
  return rc;
}
