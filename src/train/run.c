/* One training run, from the command line's configuration to final.h5. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/dist.h"
#include "core/h5io.h"
#include "nn/gemm.h"
#include "train/trainer.h"

/* Validation point 1: options (identical on every rank), resume, --out. */
static int setup_options(trainer *t, const kd_train_cfg *cli, kd_err *e) {
  t->cfg = *cli;
  int rc = cli->resume[0] ? tr_open_resume(t, cli, e) : KD_OK;
  if (rc) return rc;
  rc = tr_settings_parse(&t->set, &t->cfg, e); /* once, from the effective options */
  if (!rc) rc = tr_check_setup(t, e);
  if (!rc) rc = tr_prepare_out_dir(t, e);
  if ((rc = kd_agree(t->mpi.comm, rc, e))) return rc;
  return tr_check_out_shared(t, e);
}

/* Every rank runs the same number of steps: the fewest any rank can fill
 * (streamed: whole global batches of the order). */
static int setup_schedule(trainer *t, kd_err *e) {
  int64_t mine = t->data.streamed ? t->data.n_train / t->sched.B : kd_source_rows(t->data.train) / t->sched.b_local;
  if (kd_mpi_check(MPI_Allreduce(&mine, &t->sched.steps_per_epoch, 1, MPI_INT64_T, MPI_MIN, t->mpi.comm),
                   "MPI_Allreduce", e))
    return e->code;
  if (t->sched.steps_per_epoch < 1)
    return kd_fail(e, KD_ERR_RUNTIME,
                   "%s: /train has %lld training rows, too few for one global batch of %d on %d ranks; lower --batch",
                   t->cfg.data, (long long)t->data.n_train, t->sched.B, t->mpi.size);
  t->sched.total_steps = t->sched.steps_per_epoch * t->cfg.epochs;
  t->sched.end_step =
      t->cfg.max_steps > 0 && t->cfg.max_steps < t->sched.total_steps ? t->cfg.max_steps : t->sched.total_steps;
  return KD_OK;
}

/* Parameters from the checkpoint (resume, --init) or initialised on rank
 * 0, broadcast so replicas start bitwise equal; then the run state. */
static int setup_state(trainer *t, kd_err *e) {
  kd_run_state saved;
  memset(&saved, 0, sizeof saved);
  int rc = tr_restore_params(t, &saved, e);
  if (!rc && t->cfg.resume[0]) rc = tr_restore_state(t, &saved, e);
  if (!rc && t->cfg.self_distill && t->st.teacher_ckpt[0]) rc = tr_refresh_snapshot(t, 1, e);
  if (rc) return rc;
  const char *const *cols = t->log.cols;
  if (tr_root(t))
    rc = t->cfg.resume[0] ? kd_metrics_open_resume(&t->log.metrics, t->cfg.out, t->st.step, cols, t->log.n_cols, e)
                          : kd_metrics_open(&t->log.metrics, t->cfg.out, cols, t->log.n_cols, e);
  return kd_agree(t->mpi.comm, rc, e);
}

/* More ranks than cores on a node: every step waits for the slowest of
 * the ranks sharing a core. A warning, never an error (tests oversubscribe
 * on purpose). When the masks leave CPUs of the node unused, the launcher
 * (or what it inherited its mask from) is the cause: say so. */
static int warn_oversubscribed(trainer *t, kd_err *e) {
  int v[3];
  if (kd_node_load(t->mpi.comm, &v[0], &v[1], e)) return e->code;
  v[2] = (int)sysconf(_SC_NPROCESSORS_ONLN);
  int mine[2] = {v[0] > v[1] ? v[0] - v[1] : 0, t->mpi.rank}, worst[2];
  if (kd_mpi_check(MPI_Allreduce(mine, worst, 1, MPI_2INT, MPI_MAXLOC, t->mpi.comm), "MPI_Allreduce", e) ||
      kd_mpi_check(MPI_Bcast(v, 3, MPI_INT, worst[1], t->mpi.comm), "MPI_Bcast", e))
    return e->code;
  if (!tr_root(t) || worst[0] <= 0) return KD_OK;
  if (v[1] < v[2])
    printf("kd: warning: %d ranks on one node may run on only %d of its %d CPUs (their affinity masks, set by the "
           "launcher or inherited from the process that started it): oversubscribed and slower; bind the ranks to "
           "cores of their own (srun --cpu-bind=cores where Slurm has task/affinity, or mpirun)\n",
           v[0], v[1], v[2]);
  else
    printf("kd: warning: %d ranks share %d cores on one node (oversubscribed): ranks wait for each other's cores and "
           "the run is slower than with %d ranks there\n",
           v[0], v[1], v[1]);
  return KD_OK;
}

static int setup(trainer *t, const kd_train_cfg *cli, kd_err *e) {
  int rc = setup_options(t, cli, e);
  if (rc) return rc;
  if ((rc = warn_oversubscribed(t, e))) return rc;
  t->mpi.threads = t->cfg.threads > 0 ? (int)t->cfg.threads : kd_default_threads(t->mpi.comm);
  kd_blas_set_threads(t->mpi.threads);
  /* Validation point 2: data shapes and values, each rank its own rows
   * (held in memory, or passed over once when they are streamed). */
  rc = tr_probe_data(t, e);
  if ((rc = kd_agree(t->mpi.comm, rc, e))) return rc;
  rc = tr_plan_rows(t, e);
  if ((rc = kd_agree(t->mpi.comm, rc, e))) return rc;
  rc = tr_load_data(t, e);
  if ((rc = kd_agree(t->mpi.comm, rc, e)) || (rc = tr_check_targets(t, e))) return rc;
  if ((rc = tr_xtok_probe(t, e)) || (rc = tr_online_open(t, e)) || (rc = tr_xtok_load(t, e))) return rc;
  if ((rc = tr_fingerprint(t, e)) || (rc = tr_preprocess(t, e)) || (rc = tr_online_check_inputs(t, e)) ||
      (rc = setup_schedule(t, e)))
    return rc;
  rc = kd_node_count(t->mpi.comm, &t->mpi.nodes, e); /* collective: before anything may fail alone */
  if (!rc) rc = tr_build(t, e);
  if (!rc) rc = tr_rollout_open(t, e);
  if (!rc) rc = tr_config_items(t, e);
  if ((rc = kd_agree(t->mpi.comm, rc, e))) return rc;
  return setup_state(t, e);
}

/* A resumed run whose schedule is done and whose final.h5 is written has
 * nothing left to do: say so (instead of evaluating again). */
static int already_complete(trainer *t, kd_train_result *res) {
  if (!t->cfg.resume[0] || t->st.step < t->sched.total_steps) return 0;
  char path[KD_PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/final.h5", t->cfg.out);
  int have = tr_root(t) && access(path, F_OK) == 0;
  MPI_Bcast(&have, 1, MPI_INT, 0, t->mpi.comm);
  if (!have) return 0; /* stopped between its last checkpoint and final.h5: finish it */
  res->steps = t->st.step;
  res->completed = 1;
  if (tr_root(t)) {
    printf("kd: %s is complete: step %lld of %lld (%lld epochs), weights in %s; nothing to do (resume with a "
           "larger --epochs to train on)\n",
           t->cfg.out, (long long)t->st.step, (long long)t->sched.total_steps, (long long)t->cfg.epochs, path);
    fflush(stdout);
  }
  return 1;
}

int tr_run_one(const kd_train_cfg *cli, MPI_Comm comm, kd_train_result *res, kd_train_cfg *eff, kd_err *e) {
  trainer *t = calloc(1, sizeof *t);
  if (!t) return kd_fail(e, KD_ERR_RUNTIME, "out of memory (trainer)");
  memset(res, 0, sizeof *res);
  res->test_accuracy = res->test_agreement = res->valid_accuracy = res->valid_nll = -1;
  t->mpi.comm = comm;
  MPI_Comm_rank(comm, &t->mpi.rank);
  MPI_Comm_size(comm, &t->mpi.size);
  t->st.best_metric = NAN;
  t->st.best_step = -1;
  t->st.last_ckpt_step = -1;
  kd_h5_quiet();
  int rc = setup(t, cli, e);
  const int done = !rc && already_complete(t, res);
  if (!rc && !done) {
    tr_print_banner(t);
    if (tr_root(t) && t->cfg.resume[0])
      printf("kd: resume at step %lld (epoch %lld, step %lld of %lld)\n", (long long)t->st.step,
             (long long)t->st.epoch + 1, (long long)t->st.step_in_epoch, (long long)t->sched.steps_per_epoch);
    rc = kd_progress_init_on(&t->log.progress, t->cfg.progress, t->cfg.progress_every, tr_root(t), e);
    if (!rc) rc = tr_run_loop(t, res, e);
  }
  if (!rc && !done) rc = tr_finish_run(t, res, e);
  if (eff) *eff = t->cfg;
  if (tr_root(t) && t->log.metrics.csv) {
    kd_err ignore;
    kd_err_clear(&ignore);
    kd_metrics_close(&t->log.metrics, &ignore);
  }
  tr_free(t);
  free(t);
  return rc;
}
