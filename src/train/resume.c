/* Resume: the checkpoint to continue, its configuration merged with the
 * command line, and its parameters, optimizer moments and run state. */
#define _GNU_SOURCE
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/weights.h"
#include "core/dist.h"
#include "train/config.h"
#include "train/trainer.h"

/* Options a resumed run may change; all others must match the checkpoint. */
static int may_change(const char *name) {
  static const char *ok[] = {"epochs", "ckpt-every", "ckpt-epochs", "keep", "on-nonfinite", "threads", "overlap",
                             "shard-optimizer", "bucket-kib", "max-steps", "progress", "progress-every",
                             "eval-every", "log-every", "data", "teacher", "resume", "force", "stream", "memory-budget",
                             "teacher-model", NULL}; /* the teacher's identity is checked by checksum */
  for (int i = 0; ok[i]; i++)
    if (strcmp(ok[i], name) == 0) return 1;
  return 0;
}

/* The checkpoint's stored options into t->cfg. */
static int load_stored_config(trainer *t, kd_err *e) {
  if (kd_train_cfg_defaults(&t->cfg, e)) return e->code;
  for (int i = 0; i < t->resume.n_items; i++) {
    const char *name = t->resume.items[i].name;
    /* Not inherited: how this invocation runs, not what the run is. */
    if (name[0] == '_' || strcmp(name, "resume") == 0 || strcmp(name, "force") == 0 || strcmp(name, "max-steps") == 0)
      continue;
    if (kd_opts_index(kd_train_opts, KD_TRAIN_N_OPTS, name) < 0) {
      if (tr_root(t))
        printf("kd: note: ignoring option --%s stored in the checkpoint (unknown to kd %s)\n", name, KD_VERSION);
      continue;
    }
    if (kd_opts_set(kd_train_opts, KD_TRAIN_N_OPTS, &t->cfg, name, t->resume.items[i].value, "checkpoint", e)) {
      char why[sizeof e->msg];
      snprintf(why, sizeof why, "%s", e->msg);
      kd_err_clear(e);
      return kd_fail(e, KD_ERR_RUNTIME, "%s: damaged checkpoint: stored option --%s: %s", t->resume.path, name, why);
    }
  }
  char dir[KD_PATH_MAX];
  snprintf(dir, sizeof dir, "%s", t->resume.path);
  snprintf(t->cfg.out, sizeof t->cfg.out, "%s", dirname(dir));
  return KD_OK;
}

/* Option i given on the command line against the checkpoint's value. */
static int merge_option(trainer *t, const kd_train_cfg *cli, int i, kd_err *e) {
  kd_train_cfg *c = &t->cfg;
  const kd_opt_spec *s = &kd_train_opts[i];
  char mine[KD_PATH_MAX], theirs[KD_PATH_MAX];
  kd_opts_format(s, cli, mine, sizeof mine);
  kd_opts_format(s, c, theirs, sizeof theirs);
  if (strcmp(s->name, "out") == 0) {
    char a[PATH_MAX], b[PATH_MAX];
    if (!realpath(cli->out, a) || !realpath(c->out, b) || strcmp(a, b) != 0)
      return kd_fail(e, KD_ERR_USAGE, "--out %s: a resumed run continues in its own directory %s", cli->out, c->out);
    return KD_OK;
  }
  if (kd_opts_equal(s, cli, c)) return KD_OK;
  if (!may_change(s->name))
    return kd_fail(e, KD_ERR_USAGE,
                   "--%s %s contradicts the checkpoint (%s has --%s %s); resume without it, or start a new run",
                   s->name, mine, t->resume.path, s->name, theirs[0] ? theirs : "(unset)");
  if (tr_root(t) && strcmp(s->name, "resume") != 0 && strcmp(s->name, "force") != 0)
    printf("kd: resume: --%s changed from %s to %s%s\n", s->name, theirs[0] ? theirs : "(unset)", mine,
           strcmp(s->name, "threads") == 0 ? " (the bitwise-identical resume holds only for the same threads)" : "");
  return kd_opts_set(kd_train_opts, KD_TRAIN_N_OPTS, c, s->name, mine, "kd train", e);
}

static int merge_resume_config(trainer *t, const kd_train_cfg *cli, kd_err *e) {
  if (load_stored_config(t, e)) return e->code;
  for (int i = 0; i < KD_TRAIN_N_OPTS; i++)
    if (cli->given[i] && merge_option(t, cli, i, e)) return e->code;
  snprintf(t->cfg.resume, sizeof t->cfg.resume, "%s", t->resume.path);
  t->cfg.force = 1;
  return KD_OK;
}

/* Rank 0 picks the checkpoint (falling back past damaged ones) and tells all. */
static int find_resume_checkpoint(trainer *t, const char *spec, kd_err *e) {
  int rc = KD_OK;
  if (tr_root(t)) {
    char notes[8192];
    rc = kd_ckpt_resolve(spec, 1, t->resume.path, sizeof t->resume.path, notes, sizeof notes, e);
    for (char *line = strtok(notes, "\n"); line; line = strtok(NULL, "\n")) fprintf(stderr, "kd: resume: %s\n", line);
    if (!rc) printf("kd: resuming from %s\n", t->resume.path);
    fflush(stdout);
  }
  if ((rc = kd_agree(t->mpi.comm, rc, e))) return rc;
  if (kd_mpi_check(MPI_Bcast(t->resume.path, sizeof t->resume.path, MPI_CHAR, 0, t->mpi.comm), "MPI_Bcast", e))
    return e->code;
  return tr_check_resume_shared(t, e);
}

int tr_open_resume(trainer *t, const kd_train_cfg *cli, kd_err *e) {
  int rc = find_resume_checkpoint(t, cli->resume, e);
  if (rc) return rc;
  rc = kd_ckpt_read_config(t->resume.path, &t->resume.items, &t->resume.n_items, e);
  if (!rc) rc = merge_resume_config(t, cli, e);
  return kd_agree(t->mpi.comm, rc, e);
}

static const kd_param_view *aux_views(const trainer *t, int *n) {
  *n = t->net.n_views - t->net.model->n_views;
  return t->net.views + t->net.model->n_views;
}

/* Rank 0: the parameters of this run (and, resuming, the optimizer and run state). */
static int read_params(trainer *t, kd_run_state *saved, kd_err *e) {
  const kd_train_cfg *c = &t->cfg;
  int n_aux, rc = KD_OK;
  const kd_param_view *aux = aux_views(t, &n_aux);
  if (c->resume[0]) {
    /* The terms first: their shapes name a feature-width mismatch best. */
    if (n_aux) rc = kd_ckpt_read_aux(t->resume.path, aux, n_aux, t->net.params, e);
    return rc ? rc : kd_ckpt_read(t->resume.path, t->net.model, &t->sync.opt, saved, e);
  }
  if (c->init_from[0] && kd_is_bare_weights(c->init_from)) { /* written by h5py: checked by name and shape */
    rc = kd_weights_read_bare(c->init_from, t->net.model, e);
    if (!rc) printf("kd: initial weights from %s (a /model file without kd attributes)\n", c->init_from);
  } else if (c->init_from[0]) {
    char path[KD_PATH_MAX];
    rc = kd_ckpt_resolve(c->init_from, 0, path, sizeof path, NULL, 0, e);
    if (!rc) rc = kd_ckpt_read(path, t->net.model, NULL, NULL, e);
    if (!rc) printf("kd: initial weights from %s\n", path);
  } else {
    t->net.model->ops->init_params(t->net.model, (uint64_t)c->seed);
  }
  for (int i = 0; i < t->net.n_terms && !rc; i++) /* a fresh regressor */
    t->net.terms[i]->ops->init_params(t->net.terms[i], t->net.params, (uint64_t)c->seed);
  return rc;
}

int tr_restore_params(trainer *t, kd_run_state *saved, kd_err *e) {
  const MPI_Comm comm = t->mpi.comm;
  int rc = tr_root(t) ? read_params(t, saved, e) : KD_OK;
  if ((rc = kd_agree(comm, rc, e))) return rc;
  if ((rc = tr_bcast_floats(t->net.params, t->net.n_total, 0, comm, e))) return rc;
  if (!t->cfg.resume[0]) return KD_OK;
  kd_optim *o = &t->sync.opt;
  if ((rc = tr_bcast_floats(o->m, o->n, 0, comm, e))) return rc;
  if (o->v && (rc = tr_bcast_floats(o->v, o->n, 0, comm, e))) return rc;
  if (kd_mpi_check(MPI_Bcast(&o->t, 1, MPI_INT64_T, 0, comm), "MPI_Bcast", e) ||
      kd_mpi_check(MPI_Bcast(saved, (int)sizeof *saved, MPI_BYTE, 0, comm), "MPI_Bcast", e))
    return e->code;
  return KD_OK;
}

/* The checkpoint's run state, after checking it was trained on these rows. */
int tr_restore_state(trainer *t, const kd_run_state *saved, kd_err *e) {
  if (saved->data_fp != t->st.data_fp)
    return kd_fail(e, KD_ERR_RUNTIME,
                   "%s: /train rows%s differ from the data the checkpoint %s was trained on "
                   "(fingerprint %016llx, checkpoint %016llx)",
                   t->cfg.data, t->xtok.kind ? " and their teacher rows" : "", t->resume.path,
                   (unsigned long long)t->st.data_fp, (unsigned long long)saved->data_fp);
  if (saved->teacher_fp != t->st.teacher_fp)
    return t->online.model ? kd_fail(e, KD_ERR_RUNTIME,
                                     "--teacher-model %s: the teacher's checksum %016llx differs from that of the "
                                     "teacher the checkpoint %s was trained with (%016llx)",
                                     t->online.path, (unsigned long long)t->st.teacher_fp, t->resume.path,
                                     (unsigned long long)saved->teacher_fp)
                           : kd_fail(e, KD_ERR_RUNTIME, "%s: teacher logits differ from those the checkpoint %s was trained on",
                                     t->cfg.teacher[0] ? t->cfg.teacher : "(no teacher)", t->resume.path);
  const uint64_t fp[2] = {t->st.data_fp, t->st.teacher_fp};
  t->st = *saved;
  t->st.data_fp = fp[0];
  t->st.teacher_fp = fp[1];
  if (saved->ranks != t->mpi.size || saved->steps_per_epoch != t->sched.steps_per_epoch) {
    /* Reshard: same epoch, same samples seen inside it. */
    if (t->st.step_in_epoch >= t->sched.steps_per_epoch) {
      t->st.epoch++;
      t->st.step_in_epoch = 0;
    }
    if (tr_root(t))
      printf("kd: resume: %lld ranks now, %lld in the checkpoint: rows resharded, continuing at epoch %lld step "
             "%lld of %lld (not bitwise identical to an uninterrupted run)\n",
             (long long)t->mpi.size, (long long)saved->ranks, (long long)t->st.epoch + 1,
             (long long)t->st.step_in_epoch, (long long)t->sched.steps_per_epoch);
  } else if (saved->threads != t->mpi.threads && tr_root(t)) {
    printf("kd: resume: %d OpenBLAS threads now, %lld in the checkpoint: the run will not be bitwise identical\n",
           t->mpi.threads, (long long)saved->threads);
  }
  return KD_OK;
}
