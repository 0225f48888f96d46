/* What rank 0 prints: the banner, the epoch lines, the end of the run. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "ckpt/weights.h"
#include "core/dist.h"
#include "kd/loss.h"
#include "nn/gemm.h"
#include "train/trainer.h"

const char *const kd_phase_names[KD_PHASES] = {"gather", "generate", "teacher", "forward", "loss", "backward", "allreduce", "update"};

static void print_loss_line(const trainer *t) {
  const kd_train_cfg *c = &t->cfg;
  const kd_divergence *d = &t->set.loss.div;
  const char *soft = d->kind == KD_DIV_REVERSE           ? "KL(student || teacher)"
                     : d->kind == KD_DIV_REVERSE_SAMPLED ? "KL(student || teacher) (sampled on on-policy rows)"
                     : d->kind == KD_DIV_JSD   ? "JSD"
                     : d->kind == KD_DIV_SKEW  ? "skew KL"
                                               : "KL";
  if (t->data.has_teacher && d->kind != KD_DIV_JSD && d->kind != KD_DIV_SKEW)
    printf("loss: %.3g * CE + %.3g * T^2 * %s at T = %g", c->alpha, 1.0 - c->alpha, soft, c->temperature);
  else if (t->data.has_teacher)
    printf("loss: %.3g * CE + %.3g * T^2 * %s(%s %g) at T = %g", c->alpha, 1.0 - c->alpha, soft,
           d->kind == KD_DIV_JSD ? "beta" : "alpha", d->param, c->temperature);
  else
    printf("loss: CE on hard labels (no teacher)");
  for (int i = 0; i < t->net.n_terms; i++) {
    const kd_term *term = t->net.terms[i];
    printf(" + %s", term->summary);
    if (term->alone_epochs > 0)
      printf("; the first %d epoch%s train the %s alone", term->alone_epochs, term->alone_epochs > 1 ? "s" : "",
             term->name);
  }
  if (t->batch.chunk)
    printf("; head GEMM and loss in chunks of %d positions (%.1f MiB)", t->batch.chunk,
           (double)kd_loss_chunk_floats(t->batch.chunk, t->net.model->out_dim) * sizeof(float) / (1024.0 * 1024.0));
  printf("\n");
  const tr_rollout_state *r = &t->roll;
  if (r->on)
    printf("on-policy: %g of the steps train on the student's own samples (prompts: the rows' unmasked prefix, or "
           "their first %d tokens; up to %d new tokens at temperature %g%s), scored by the teacher, no hard labels\n",
           t->cfg.on_policy, r->prompt, r->max_new, t->cfg.rollout_temperature,
           t->cfg.rollout_top_k > 0 ? ", top-k" : "");
}

static void print_blas_line(void) {
  const char *forced = getenv("OPENBLAS_CORETYPE");
  printf("blas: OpenBLAS %s kernels", kd_blas_core());
  if (kd_blas_avx512_unused()) /* worth knowing: its AVX-512 kernels ran sgemm 1.8x faster here */
    printf(" on a CPU with AVX-512 (%s%s)", forced && *forced ? "set by OPENBLAS_CORETYPE=" : "OpenBLAS does not know this CPU",
           forced && *forced ? forced : "");
  printf("\n");
}

/* What rank 0 holds: the per-role buffers, one step's activations, and its
 * rows (its shard, with rank 0's evaluation splits). */
static void print_memory_line(const trainer *t) {
  const double mib = 1.0 / (1024.0 * 1024.0), np = (double)t->net.n_total * sizeof(float);
  const int moments = t->set.optim.optim.kind == KD_OPT_ADAMW ? 2 : t->cfg.momentum > 0 ? 1 : 0;
  const tr_data *d = &t->data;
  kd_rows_stats rs;
  kd_rows_get_stats(d->rows, &rs);
  const double rows = d->streamed ? (double)rs.buffer_bytes
                                  : (double)(kd_source_bytes(d->train) + kd_teacher_bytes(d->teacher) +
                                             kd_sparse_bytes(d->sparse));
  const double evals = (double)(kd_source_bytes(d->valid) + kd_source_bytes(d->test) + kd_teacher_bytes(d->valid_t) +
                                kd_teacher_bytes(d->test_t));
  printf("memory (rank 0): parameters, gradients and %d moment%s %.1f MiB; activations %.1f MiB; rows %.1f MiB "
         "(%s)",
         moments, moments == 1 ? "" : "s", (2 + moments) * np * mib, (double)t->net.model->act_bytes * mib, rows * mib,
         d->streamed ? "two windows and a block, streamed" : "shard with its teacher outputs");
  if (evals > 0) printf(" + %.1f MiB (evaluation splits)", evals * mib);
  printf("\n");
}

/* Where the training rows come from: memory or the files, and why. */
static void print_rows_line(const trainer *t) {
  const tr_data *d = &t->data;
  const double mib = 1.0 / (1024.0 * 1024.0);
  if (!d->streamed) {
    printf("rows: in memory, %.1f MiB per rank (--memory-budget %.1f MiB), shuffled within each rank's shard\n",
           d->shard_bytes * mib, d->budget * mib);
    return;
  }
  const tr_scan *sc = &d->scan;
  char why[64];
  snprintf(why, sizeof why, "a set of %d shard files", d->dfiles.n);
  printf("rows: streamed from the files (%s), blocks of %lld rows shuffled and rows within windows of %lld, the same "
         "order for any rank count; rank 0 checked its %lld rows (%.1f MiB) in %.2f s before step 1\n",
         t->cfg.resume[0]                ? "as the checkpoint was"
         : t->set.data.stream == TR_ON ? "--stream on"
         : d->is_set                   ? why
                                       : "the shard is over --memory-budget",
         (long long)d->stream.block, (long long)d->stream.window, (long long)sc->rows, sc->bytes * mib, sc->seconds);
}

void tr_print_banner(const trainer *t) {
  const kd_train_cfg *c = &t->cfg;
  if (!tr_root(t)) return;
  const int P = t->mpi.size, th = t->mpi.threads;
  const kd_model *m = t->net.model;
  const int nodes = t->mpi.nodes;
  char on[32] = "";
  if (nodes > 1) snprintf(on, sizeof on, " on %d nodes", nodes);
  printf("kd %s train: %d rank%s%s x %d OpenBLAS thread%s, student %s %s (%zu parameters)\n", KD_VERSION, P,
         P > 1 ? "s" : "", on, th, th > 1 ? "s" : "", m->family, m->spec, m->n_params);
  const int64_t n = t->data.n_train;
  char files[48] = "";
  if (t->data.is_set) snprintf(files, sizeof files, " in %d shard files", t->data.dfiles.n);
  printf("data: %s (/train %lld training rows%s, %lld per rank or fewer)%s%s", c->data, (long long)n, files,
         (long long)((n + P - 1) / P),
         c->self_distill ? ", teacher: a snapshot of this run (self-distillation, --teacher-ckpt "
                         : c->teacher[0] ? ", teacher: " : c->teacher_model[0] ? "" : ", no teacher",
         c->self_distill ? c->teacher_ckpt : c->teacher);
  printf("%s\n", c->self_distill ? ")" : "");
  const tr_online *o = &t->online;
  if (o->model)
    printf("teacher: online %s %s (%zu parameters, %zu MiB of activations per rank) from %s, checksum %016llx, run "
           "forward on every batch\n",
           o->model->family, o->model->spec, o->model->n_params, o->model->act_bytes >> 20, o->path,
           (unsigned long long)o->checksum);
  if (o->model && c->teacher_vocab_crop > 0 && o->model->out_dim > c->teacher_vocab_crop)
    printf("teacher: its first %lld of %d logits at every position (--teacher-vocab-crop), renormalised over them\n",
           (long long)c->teacher_vocab_crop, o->model->out_dim);
  if (t->xtok.kind)
    printf("teacher: another tokenizer (%s, %d ids; rows of %d tokens), --cross-tokenizer %s at aligned positions: "
           "%.1f%% of the student's targets\n",
           o->model->family, o->model->out_dim, t->xtok.Tt, kd_xtok_name(t->xtok.kind), 100.0 * t->xtok.aligned_share);
  if (t->xtok.kind)
    printf("teacher: %d ids spelt the same by both vocabularies (of %d student, %d teacher)%s\n", t->xtok.map.n,
           t->net.model->out_dim, o->model->out_dim, t->xtok.identity ? ": one tokenizer, the identity" : "");
  if (t->data.sparse)
    printf("teacher: sparse logits, %s over K = %d slots per position (%.0f bytes per position in the file)\n",
           kd_sparse_mode_name(t->data.sparse_mode), kd_sparse_k(t->data.sparse), kd_sparse_file_bytes(t->data.sparse));
  if (t->data.has_valid || t->data.has_test)
    printf("evaluation by rank 0 on /%s (%lld rows)\n", t->data.valid_name,
           (long long)kd_source_rows(t->data.has_valid ? t->data.valid : t->data.test));
  print_loss_line(t);
  print_rows_line(t);
  print_memory_line(t);
  printf("steps: %lld per epoch x %lld epochs, global batch %d, %s lr %g, %s schedule\n",
         (long long)t->sched.steps_per_epoch, (long long)c->epochs, t->sched.B, c->optimizer, c->lr, c->schedule);
  print_blas_line();
  const kd_gsync *gs = &t->sync.gs;
  if (P > 1)
    printf("gradients: %d bucket%s, %s, %s\n", gs->n_buckets, gs->n_buckets > 1 ? "s" : "",
           gs->shard ? "reduce-scatter + sharded optimizer + allgather" : "allreduce",
           gs->overlap ? "overlapped with the backward pass" : "after the backward pass");
  fflush(stdout);
}

void tr_print_epoch(trainer *t, int64_t epoch, const double *sums, double sps, double elapsed, double eta_s) {
  const kd_train_cfg *cfg = &t->cfg;
  char eta[32], el[32];
  kd_progress_clear(&t->log.progress);
  kd_format_duration(eta, sizeof eta, eta_s);
  kd_format_duration(el, sizeof el, elapsed);
  const double loss = sums[ST_LOSS] / sums[ST_ROWS];
  const double acc = sums[ST_LABELLED] > 0 ? sums[ST_CORRECT] / sums[ST_LABELLED] : NAN;
  printf("epoch %lld/%lld  loss %.4f", (long long)epoch + 1, (long long)cfg->epochs, loss);
  if (t->data.has_teacher)
    printf(" (ce %.4f, kd %.4f)", sums[ST_LABELLED] > 0 ? sums[ST_CE] / sums[ST_LABELLED] : 0,
           sums[ST_KD] / sums[ST_ROWS]);
  for (int i = 0; i < t->net.n_terms; i++) {
    const kd_term *term = t->net.terms[i];
    const int alone = epoch < term->alone_epochs;
    printf(" (%s %.4f%s%s)", term->name, sums[tr_term_slot(i)] / sums[ST_ROWS], alone ? ", stage 1: " : "",
           alone ? term->alone_note : "");
  }
  printf("  train acc %.4f  %.0f samples/s  elapsed %s  ETA %s\n", acc, sps, el, eta);
  fflush(stdout);
}

/* Rank 0: the end-of-run evaluations and the deployable weights. */
static int finish_root(trainer *t, kd_train_result *res, kd_err *e) {
  kd_eval_result ev;
  tr_data *d = &t->data;
  const double T = t->cfg.temperature;
  res->best_is_nll = t->set.model.best == TR_BEST_NLL;
  if (d->has_valid && kd_eval_model(&ev, NULL, t->net.model, d->valid, d->valid_t, T, NULL, e) == KD_OK) {
    kd_eval_print(stdout, "valid", &ev);
    res->valid_accuracy = isnan(ev.accuracy) ? -1 : ev.accuracy;
    res->valid_nll = isnan(ev.nll) ? -1 : ev.nll;
    res->valid_rows = ev.n;
  }
  if (!e->code && d->has_test && kd_eval_model(&ev, NULL, t->net.model, d->test, d->test_t, T, NULL, e) == KD_OK) {
    kd_eval_print(stdout, "test", &ev);
    res->test_accuracy = ev.accuracy;
    res->test_agreement = isnan(ev.agreement) ? -1 : ev.agreement;
    res->test_rows = ev.n;
  }
  if (e->code) return e->code;
  char path[KD_PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/final.h5", t->cfg.out);
  const int nv = t->net.model->n_views;
  const kd_ckpt_meta meta = {t->resume.items, t->resume.n_items, t->cfg.data, t->cfg.teacher,
                             t->net.views + nv, 0, t->net.params, &t->data.pre,
                             t->data.have_tok ? &t->data.tok : NULL};
  if (kd_weights_write(path, t->net.model, &meta, e)) return e->code;
  return kd_metrics_close(&t->log.metrics, e);
}

/* --profile: rank 0's step, kernel by kernel, then the trainer's phases
 * outside the model (the loss, the allreduce, the update). */
static void print_profile(const trainer *t, const kd_train_result *res) {
  const int64_t timed = res->steps_run - 1;
  const kd_profile *p = &t->log.prof;
  double total = 0, model = 0, loss = 0; /* slots named "loss: ..." (the chunked head and loss) are the loss phase's */
  for (int k = 0; k <= KD_PHASES; k++) total += res->step_ms[k];
  for (int k = 0; k < KD_PROF_SLOTS; k++)
    *(p->slot[k].name && strncmp(p->slot[k].name, "loss:", 5) == 0 ? &loss : &model) += p->slot[k].seconds;
  if (timed < 1 || total <= 0) return;
  if (model == 0) {
    printf("profile: the %s family has no per-kernel timing\n", t->net.model->family);
    return;
  }
  printf("profile (rank 0, ms per step over %lld steps; GFLOP/s of the kernel's own time):\n", (long long)timed);
  printf("  %-32s %9s %7s %9s\n", "kernel", "ms/step", "share", "GFLOP/s");
  for (int k = 0; k < KD_PROF_SLOTS; k++) {
    const kd_prof_slot *s = &p->slot[k];
    if (!s->name) continue;
    const double ms = 1e3 * s->seconds / (double)timed;
    printf("  %-32s %9.2f %6.1f%%", s->name, ms, 100.0 * ms / total);
    if (s->flop > 0 && s->seconds > 0) printf(" %9.1f", s->flop / s->seconds * 1e-9);
    printf("\n");
  }
  const double rest_model = res->step_ms[KD_PH_FORWARD] + res->step_ms[KD_PH_BACKWARD] - 1e3 * model / (double)timed;
  printf("  %-32s %9.2f %6.1f%%\n", "model, outside the kernels", rest_model, 100.0 * rest_model / total);
  for (int k = 0; k < KD_PHASES; k++) {
    if (k == KD_PH_FORWARD || k == KD_PH_BACKWARD) continue;
    char name[48];
    const double ms = res->step_ms[k] - (k == KD_PH_LOSS ? 1e3 * loss / (double)timed : 0.0);
    snprintf(name, sizeof name, "trainer: %s%s", kd_phase_names[k], k == KD_PH_LOSS && loss > 0 ? " (the rest)" : "");
    printf("  %-32s %9.2f %6.1f%%\n", name, ms, 100.0 * ms / total);
  }
  printf("  %-32s %9.2f %6.1f%%\n", "trainer: other", res->step_ms[KD_PHASES], 100.0 * res->step_ms[KD_PHASES] / total);
  printf("  %-32s %9.2f\n", "step", total);
}

static void print_final(const trainer *t, const kd_train_result *res) {
  printf("final: steps=%lld", (long long)res->steps);
  if (res->steps_run > 0) printf(" train_loss=%.4f train_acc=%.4f", res->final_loss, res->train_accuracy);
  if (res->test_accuracy >= 0) printf(" test_acc=%.4f", res->test_accuracy);
  if (res->test_agreement >= 0) printf(" test_agreement=%.4f", res->test_agreement);
  if (t->st.skipped) printf(" skipped=%lld", (long long)t->st.skipped);
  printf(" samples_per_s=%.0f", res->samples_per_s);
  if (t->batch.in.kind == KD_INPUT_TOKENS) /* sequences x positions of the data, as nanoGPT counts tokens */
    printf(" tokens_per_s=%.0f", res->samples_per_s * t->batch.in.alloc_width);
  if (t->mpi.size > 1) printf(" allreduce_share=%.3f", res->allreduce_share);
  printf(" peak_rss_mib=%.0f weights=%s/final.h5\n", res->peak_rss_mib, t->cfg.out);
  if (res->steps_run > 1) { /* where a step's time goes (rank 0) */
    printf("step_ms:");
    for (int k = 0; k < KD_PHASES; k++) printf(" %s=%.3f", kd_phase_names[k], res->step_ms[k]);
    printf(" other=%.3f\n", res->step_ms[KD_PHASES]);
    if (t->mpi.size > 1)
      printf("ranks: compute per step %.1f ms (rank %d) to %.1f ms (rank %d): the step waits for the slowest\n",
             res->compute_ms[0], res->compute_rank[0], res->compute_ms[1], res->compute_rank[1]);
  }
  if (t->roll.on && res->steps_run > 1)
    printf("on-policy (rank 0): %lld of %lld steps sampled %lld tokens (%.1f a row); generate %.3f ms a step, over all steps\n",
           (long long)t->roll.steps, (long long)res->steps_run, (long long)t->roll.total,
           t->roll.steps ? (double)t->roll.total / ((double)t->roll.steps * t->sched.b_local) : 0.0,
           res->step_ms[KD_PH_GENERATE]);
  if (t->data.streamed && res->steps_run > 1) {
    kd_rows_stats rs;
    kd_rows_get_stats(t->data.rows, &rs);
    const double train_s = res->samples_per_s > 0 ? (double)(res->steps_run - 1) * t->sched.B / res->samples_per_s : 0;
    printf("stream (rank 0): the reader read %.1f MiB in %lld windows, busy %.2f s (%.0f%% of the training time); "
           "the steps waited %.2f s for it (%.1f%%)\n",
           rs.bytes_read / 1048576.0, (long long)rs.windows, rs.read_s, train_s > 0 ? 100.0 * rs.read_s / train_s : 0,
           rs.wait_s, train_s > 0 ? 100.0 * rs.wait_s / train_s : 0);
  }
  if (t->cfg.profile) print_profile(t, res);
  fflush(stdout);
}

/* Each rank's compute per step (its step without the gradient communication, in which it waits for the
 * others): the least and the most, and which ranks. Data parallelism runs at the slowest rank's pace, so their
 * difference is what rank 0's allreduce phase spends waiting. */
static int compute_balance(trainer *t, kd_train_result *res, kd_err *e) {
  double own = 0;
  for (int k = 0; k <= KD_PHASES; k++)
    if (k != KD_PH_ALLREDUCE) own += res->step_ms[k];
  struct { double v; int r; } in = {own, t->mpi.rank}, lo, hi;
  if (kd_mpi_check(MPI_Allreduce(&in, &lo, 1, MPI_DOUBLE_INT, MPI_MINLOC, t->mpi.comm), "MPI_Allreduce", e) ||
      kd_mpi_check(MPI_Allreduce(&in, &hi, 1, MPI_DOUBLE_INT, MPI_MAXLOC, t->mpi.comm), "MPI_Allreduce", e))
    return e->code;
  res->compute_ms[0] = lo.v, res->compute_ms[1] = hi.v;
  res->compute_rank[0] = lo.r, res->compute_rank[1] = hi.r;
  return KD_OK;
}

int tr_finish_run(trainer *t, kd_train_result *res, kd_err *e) {
  int rc = tr_root(t) ? finish_root(t, res, e) : KD_OK;
  if ((rc = kd_agree_after_root(t->mpi.comm, rc, e))) return rc;
  /* Peak resident memory of the largest rank (ru_maxrss is in KiB on Linux). */
  struct rusage ru;
  double mine = getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss / 1024.0 : 0;
  if (kd_mpi_check(MPI_Allreduce(&mine, &res->peak_rss_mib, 1, MPI_DOUBLE, MPI_MAX, t->mpi.comm), "MPI_Allreduce", e))
    return e->code;
  if (compute_balance(t, res, e)) return e->code;
  if (tr_root(t)) print_final(t, res);
  return KD_OK;
}
