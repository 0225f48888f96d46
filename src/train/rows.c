/* The training rows of a run: held in memory or streamed from disk
 * (--stream, --memory-budget), decided alike on every rank; the streamed
 * pass that checks, fingerprints and measures the rows before step 1; the
 * row provider every step reads. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/dist.h"
#include "core/files.h"
#include "data/order.h"
#include "models/fit.h"
#include "train/trainer.h"

/* Half of the node's memory shared by its ranks. Collective. */
static int default_budget(const trainer *t, double *bytes, kd_err *e) {
  int ranks = 1, cores = 1;
  if (kd_node_load(t->mpi.comm, &ranks, &cores, e)) return e->code;
  const double mem = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
  *bytes = 0.5 * mem / (ranks > 0 ? ranks : 1);
  return KD_OK;
}

/* What a streamed run cannot do yet, or NULL. */
static const char *not_streamable(const trainer *t) {
  const kd_train_cfg *c = &t->cfg;
  if (c->snapshot_logits[0]) return "--snapshot-logits (written from the snapshot's logits held in memory; kd logits "
                                     "--ckpt SNAPSHOT writes the same file)";
  if (c->hint_layer > 0) return "--hint-layer (the teacher's FitNets features are held in memory)";
  if (c->teacher[0] && !c->teacher_model[0] &&
      (c->attn_relations[0] || strcmp(c->attn_loss, "none") != 0 || c->hidden_map[0]))
    return "stored intermediate targets (/train/hidden, /train/attn)";
  return NULL;
}

/* The order a resumed run was trained in ("_order" of its configuration). */
static int saved_order(const trainer *t, int *streamed, int64_t *block, int64_t *window) {
  if (!t->cfg.resume[0]) return 0;
  for (int i = 0; i < t->resume.n_items; i++) {
    if (strcmp(t->resume.items[i].name, "_order") != 0) continue;
    const char *v = t->resume.items[i].value;
    long long b = 0, w = 0;
    *streamed = sscanf(v, "stream:%lld:%lld", &b, &w) == 2;
    *block = b;
    *window = w;
    return *streamed || strcmp(v, "memory") == 0;
  }
  *streamed = 0; /* a checkpoint from before streaming: in memory */
  return 1;
}

const char *tr_order_item(const trainer *t, char *buf, size_t n) {
  if (t->data.streamed)
    snprintf(buf, n, "stream:%lld:%lld", (long long)t->data.stream.block, (long long)t->data.stream.window);
  else
    snprintf(buf, n, "memory");
  return buf;
}

static void fill_stream_cfg(trainer *t) {
  tr_data *d = &t->data;
  const kd_train_cfg *c = &t->cfg;
  kd_stream_cfg *s = &d->stream;
  memset(s, 0, sizeof *s);
  s->data = &d->dfiles;
  s->teacher = c->teacher[0] ? &d->tfiles : NULL;
  s->split = "train";
  s->rows = d->n_train;
  s->kind = d->info_train.kind;
  s->width = d->info_train.width;
  s->classes = t->net.model->out_dim;
  s->dense = c->teacher[0] && d->sparse_mode == KD_SPARSE_DENSE;
  s->sparse = c->teacher[0] ? d->sparse_mode : KD_SPARSE_DENSE;
  s->sparse_k = s->sparse == KD_SPARSE_SAMPLED ? d->sparse_info.sampled_s : d->sparse_info.topk_k;
  s->sparse_lse = s->sparse == KD_SPARSE_TAIL;
  s->B = t->sched.B;
  s->ranks = t->mpi.size;
  s->rank = t->mpi.rank;
  s->seed = (uint64_t)c->seed;
  s->epochs = c->epochs;
}

static void fmt_bytes(char *buf, size_t n, double b) {
  if (b >= 1073741824.0) snprintf(buf, n, "%.2f GiB", b / 1073741824.0);
  else if (b >= 1048576.0) snprintf(buf, n, "%.1f MiB", b / 1048576.0);
  else snprintf(buf, n, "%.0f KiB", b / 1024.0);
}

/* Stream or not: the same answer on every rank (the budget is the smallest any rank has). Collective. */
/* The same files, in the same order, with the same rows, on every rank (each rank expands the globs and reads
 * the shapes itself: a shard seen late on one node's file system would split the ranks). Collective. */
static int same_sets(const trainer *t, kd_err *e) {
  const tr_data *d = &t->data;
  uint64_t h[2] = {kd_fileset_hash(&d->dfiles), kd_fileset_hash(&d->tfiles)}, lo[2], hi[2];
  if (kd_mpi_check(MPI_Allreduce(h, lo, 2, MPI_UINT64_T, MPI_MIN, t->mpi.comm), "MPI_Allreduce", e) ||
      kd_mpi_check(MPI_Allreduce(h, hi, 2, MPI_UINT64_T, MPI_MAX, t->mpi.comm), "MPI_Allreduce", e))
    return kd_fatal(e, t->mpi.rank, "shard lists");
  if (lo[0] != hi[0] || lo[1] != hi[1])
    return kd_fail(e, KD_ERR_RUNTIME, "%s: the ranks see different shard files or rows (rank %d sees %d data files, "
                   "%lld rows): every rank must see the same files", d->is_set ? t->cfg.data : t->cfg.teacher,
                   t->mpi.rank, d->dfiles.n, (long long)d->dfiles.row0[d->dfiles.n]);
  return KD_OK;
}

int tr_plan_rows(trainer *t, kd_err *e) {
  tr_data *d = &t->data;
  const tr_data_settings *ds = &t->set.data;
  if (d->is_set && same_sets(t, e)) return e->code;
  fill_stream_cfg(t);
  double budget = ds->memory_budget;
  int rc = budget > 0 ? KD_OK : default_budget(t, &budget, e);
  if ((rc = kd_agree(t->mpi.comm, rc, e))) return rc;
  if (kd_mpi_check(MPI_Allreduce(MPI_IN_PLACE, &budget, 1, MPI_DOUBLE, MPI_MIN, t->mpi.comm), "MPI_Allreduce", e))
    return kd_fatal(e, t->mpi.rank, "memory budget");
  d->budget = budget;
  const double row = kd_rows_row_bytes(&d->stream);
  d->shard_bytes = row * (double)((d->n_train + t->mpi.size - 1) / t->mpi.size);
  kd_order_defaults(row, d->n_train, &d->stream.block, &d->stream.window);
  if (ds->shuffle_window > 0) { /* a window of at least one block: smaller asked, smaller blocks */
    while (d->stream.block > ds->shuffle_window) d->stream.block /= 2;
    d->stream.window = (ds->shuffle_window + d->stream.block - 1) / d->stream.block * d->stream.block;
  }
  if (d->stream.window > d->n_train) d->stream.window = d->n_train;
  int saved = 0;
  int64_t sb = 0, sw = 0;
  const int resumed = saved_order(t, &saved, &sb, &sw);
  const char *no = not_streamable(t);
  if (resumed) { /* the order a run started with is the order it continues in */
    if (d->is_set && !saved)
      return kd_fail(e, KD_ERR_USAGE, "kd train: %s was trained in memory from one file; a set of shard files is "
                     "streamed: resume it with that file", t->resume.path);
    d->streamed = saved;
    if (saved) {
      d->stream.block = sb;
      d->stream.window = sw;
    }
    if (tr_root(t) && ((saved && ds->stream == TR_OFF) || (!saved && ds->stream == TR_ON)))
      printf("kd: note: --stream %s: the checkpoint was trained %s, and a resumed run keeps its order\n",
             ds->stream == TR_ON ? "on" : "off", saved ? "streamed" : "in memory");
  } else {
    d->streamed = ds->stream == TR_ON || d->is_set || (ds->stream == TR_AUTO && d->shard_bytes > budget && !no);
    if (ds->stream == TR_AUTO && d->shard_bytes > budget && no && tr_root(t)) {
      char a[32], b[32];
      fmt_bytes(a, sizeof a, d->shard_bytes);
      fmt_bytes(b, sizeof b, budget);
      printf("kd: warning: the training shard (%s per rank) is over --memory-budget %s, but %s cannot be streamed: "
             "holding it in memory\n", a, b, no);
    }
  }
  if (!d->streamed) return KD_OK;
  if (no) return kd_fail(e, KD_ERR_USAGE, "kd train: --stream: %s cannot be streamed yet; run with --stream off", no);
  const double need = kd_rows_stream_bytes(&d->stream);
  if (need > budget) {
    char a[32], b[32];
    fmt_bytes(a, sizeof a, need);
    fmt_bytes(b, sizeof b, budget);
    return kd_fail(e, KD_ERR_USAGE,
                   "kd train: streaming needs %s per rank (two windows of --shuffle-window %lld rows and a block of "
                   "%lld) but --memory-budget is %s: raise the budget or lower --shuffle-window",
                   a, (long long)d->stream.window, (long long)d->stream.block, b);
  }
  return KD_OK;
}

/* One piece of the pass, rows [a, b) of file f: checked, fingerprinted (as rows of that file) and measured. */
static int scan_piece(trainer *t, int f, int64_t a, int64_t b, kd_err *e) {
  tr_data *d = &t->data;
  tr_scan *sc = &d->scan;
  const kd_stream_cfg *s = &d->stream;
  char who[300];
  snprintf(who, sizeof who, "--student %s", t->cfg.student);
  kd_source *src = NULL;
  kd_teacher *tch = NULL;
  kd_sparse_store *sp = NULL;
  const int64_t total = s->data->row0[f + 1] - s->data->row0[f];
  int rc = kd_source_open(&src, s->data->paths[f], "train", a, b, e);
  if (!rc) rc = kd_fit_rows(t->net.model, who, src, d->has_teacher, e);
  if (!rc) {
    const int D = s->width;
    sc->file_fp[2 * f] += kd_source_fingerprint(src);
    sc->targets += kd_source_targets(src);
    kd_source_stats(src, sc->stats, sc->stats + D, sc->stats + 2 * D, sc->stats + 3 * D, &sc->absmax);
    sc->bytes += (double)kd_source_bytes(src);
  }
  if (!rc && s->dense) rc = kd_teacher_open(&tch, s->teacher->paths[f], "train", a, b, total, KD_TEACH_LOGITS, e);
  if (!rc && tch) rc = kd_teacher_validate(tch, e);
  if (!rc && s->sparse != KD_SPARSE_DENSE)
    rc = kd_sparse_open(&sp, s->teacher->paths[f], "train", a, b, total, s->sparse, s->classes, e);
  if (!rc) {
    sc->file_fp[2 * f + 1] += kd_teacher_fingerprint(tch) + kd_sparse_fingerprint(sp);
    sc->bytes += (double)(kd_teacher_bytes(tch) + kd_sparse_bytes(sp));
  }
  kd_source_free(src);
  kd_teacher_free(tch);
  kd_sparse_free(sp);
  return rc;
}

/* The rank's shard [lo, hi) in pieces of a quarter of the budget: checked as the in-memory path checks its
 * stores, with the same fingerprints and statistics; the stores left hold one row each, for the shapes. */
int tr_open_stream(trainer *t, int64_t lo, int64_t hi, kd_err *e) {
  tr_data *d = &t->data;
  const kd_stream_cfg *s = &d->stream;
  tr_scan *sc = &d->scan;
  const int D = s->width;
  sc->stats = kd_calloc((size_t)4 * D, sizeof(double), "input statistics", e);
  sc->file_fp = kd_calloc(2 * (size_t)s->data->n, sizeof(uint64_t), "shard fingerprints", e);
  if (e->code) return e->code;
  for (int j = 0; j < D; j++) {
    sc->stats[2 * D + j] = INFINITY;
    sc->stats[3 * D + j] = -INFINITY;
  }
  const double t0 = kd_seconds();
  double piece = 0.25 * d->budget / kd_rows_row_bytes(s);
  const int64_t step = piece < 1 ? 1 : piece > (double)(hi - lo) ? hi - lo : (int64_t)piece;
  for (int64_t g = lo; g < hi;) { /* pieces end where a file does */
    int64_t a;
    const int f = kd_fileset_locate(s->data, g, &a);
    const int64_t end = g + step < hi ? g + step : hi, stop = s->data->row0[f + 1] < end ? s->data->row0[f + 1] : end;
    if (scan_piece(t, f, a, a + (stop - g), e)) return e->code;
    g = stop;
  }
  for (int f = 0; f < s->data->n; f++) { /* a single file's: the in-memory path's sums */
    sc->data_fp += sc->file_fp[2 * f];
    sc->teacher_fp += sc->file_fp[2 * f + 1];
  }
  sc->seconds = kd_seconds() - t0;
  sc->rows = hi - lo;
  /* stores of the first row of the first file with rows: the shapes */
  const int f = kd_fileset_first_rows(s->data);
  const int64_t frows = s->data->row0[f + 1] - s->data->row0[f];
  if (kd_source_open(&d->train, s->data->paths[f], "train", 0, 1, e)) return e->code;
  if (s->dense && kd_teacher_open(&d->teacher, s->teacher->paths[f], "train", 0, 1, frows, KD_TEACH_LOGITS, e))
    return e->code;
  if (s->sparse != KD_SPARSE_DENSE &&
      kd_sparse_open(&d->sparse, s->teacher->paths[f], "train", 0, 1, frows, s->sparse, s->classes, e))
    return e->code;
  return KD_OK;
}

int tr_open_rows(trainer *t, kd_err *e) {
  tr_data *d = &t->data;
  if (d->streamed) {
    if (kd_rows_stream(&d->rows, &d->stream, e)) return e->code;
  } else if (kd_rows_memory(&d->rows, d->train, d->teacher, d->sparse, d->inter, t->sched.b_local,
                            (uint64_t)t->cfg.seed, t->mpi.rank, e)) {
    return e->code;
  }
  kd_rows_set_preprocess(d->rows, &d->pre);
  return KD_OK;
}
