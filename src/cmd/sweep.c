/* kd sweep: one MPI job trains every setting of a grid of kd train options, its ranks split into groups of
 * --group-ranks that each take the next unclaimed setting (sweep_run.c). This file: the command line, the
 * sweep's folder and DIR/sweep.json, and the outcome. */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "cmd/sweep_run.h"
#include "core/dist.h"
#include "core/files.h"
#include "train/config.h"

typedef struct sweep_opts {
  char grid[8192];
  int64_t group_ranks;
  char out[KD_PATH_MAX];
  char resume[KD_PATH_MAX];
  int json;
} sweep_opts;

#define S_(f) offsetof(sweep_opts, f)
static const kd_opt_spec opts[] = {
  {"grid", KD_OPT_STR, S_(grid), STR(sweep_opts, grid), "", NULL, 0, 0, 0, 0,
   "the settings: KEY=V1,V2,... separated by spaces (quote the whole), each KEY a kd train option's long name; "
   "every combination is one setting; required unless --resume"},
  {"group-ranks", KD_OPT_INT, S_(group_ranks), 0, "1", NULL, 1, 1 << 20, 0, 0,
   "ranks per group: each group trains one setting at a time, data-parallel; must divide the number of ranks"},
  {"out", KD_OPT_STR, S_(out), STR(sweep_opts, out), "", NULL, 0, 0, 0, 0,
   "the sweep's folder: sweep.json, summary.json and a run folder per setting (KEY=VALUE,KEY=VALUE); required "
   "unless --resume"},
  {"resume", KD_OPT_STR, S_(resume), STR(sweep_opts, resume), "", NULL, 0, 0, 0, 0,
   "continue the sweep in DIR: finished settings are kept, interrupted ones resume from their checkpoints, the "
   "rest start; takes no grid or train options (--group-ranks may change)"},
  {"json", KD_OPT_FLAG, S_(json), 0, "0", NULL, 0, 0, 0, 0,
   "print the summary as JSON on stdout (the sweep's own lines go to stderr)"},
};

static int spec_set_args(cmd_sweep_spec *s, int n, char **args, kd_err *e) {
  s->args = kd_calloc((size_t)n + 1, sizeof *s->args, "sweep arguments", e);
  if (!s->args) return e->code;
  for (; s->n_args < n; s->n_args++) {
    s->args[s->n_args] = kd_malloc(strlen(args[s->n_args]) + 1, "sweep argument", e);
    if (!s->args[s->n_args]) return e->code;
    strcpy(s->args[s->n_args], args[s->n_args]);
  }
  return KD_OK;
}

/* --resume DIR: world rank 0 reads DIR/sweep.json and every rank parses the same text. */
static int load_spec(cmd_sweep_spec *s, const char *dir, kd_err *e) {
  char path[KD_PATH_MAX + 16];
  snprintf(path, sizeof path, "%s/sweep.json", dir);
  uint8_t *text = NULL;
  size_t len = 0;
  int rc = KD_OK;
  if (g_rank == 0 && access(path, F_OK) != 0)
    rc = kd_fail(e, KD_ERR_USAGE, "kd sweep: --resume %s: no sweep there (%s: %s)", dir, path, strerror(errno));
  else if (g_rank == 0)
    rc = kd_read_all(path, &text, &len, e);
  if (rc == KD_OK && g_rank == 0 && len > (1 << 24)) rc = kd_fail(e, KD_ERR_RUNTIME, "%s: over 16 MiB", path);
  if ((rc = kd_agree_after_root(MPI_COMM_WORLD, rc, e))) return free(text), rc;
  int64_t n = (int64_t)len;
  if (kd_mpi_check(MPI_Bcast(&n, 1, MPI_INT64_T, 0, MPI_COMM_WORLD), "MPI_Bcast", e)) return free(text), e->code;
  if (g_rank != 0 && !(text = kd_malloc((size_t)n + 1, "sweep.json", e))) return kd_fatal(e, g_rank, "sweep.json");
  if (kd_mpi_check(MPI_Bcast(text, (int)n, MPI_CHAR, 0, MPI_COMM_WORLD), "MPI_Bcast", e)) return free(text), e->code;
  rc = cmd_sweep_spec_parse(s, (const char *)text, (size_t)n, dir, e);
  free(text);
  return rc;
}

/* The sweep's parameters: from the command line, or (--resume DIR) from DIR/sweep.json. */
static int get_spec(cmd_sweep_spec *s, sweep_opts *so, int argc, char **argv, kd_err *e) {
  char **sa = kd_calloc((size_t)argc + 1, sizeof *sa, "arguments", e), **ta = kd_calloc((size_t)argc + 1, sizeof *ta, "arguments", e);
  int ns, nt, rc = sa && ta ? KD_OK : e->code;
  unsigned char given[N_OPTS(opts)];
  if (!rc) cmd_split_args(opts, N_OPTS(opts), argc, argv, sa, &ns, ta, &nt);
  if (!rc) rc = kd_opts_parse(opts, N_OPTS(opts), so, ns, sa, "kd sweep", given, e);
  memset(s, 0, sizeof *s);
  if (!rc && so->resume[0] && (so->grid[0] || so->out[0] || nt > 0))
    rc = kd_fail(e, KD_ERR_USAGE, "kd sweep: --resume %s takes its grid and train options from %s/sweep.json: give "
                 "only --group-ranks or --json with it", so->resume, so->resume);
  else if (!rc && !so->resume[0] && (!so->out[0] || !so->grid[0]))
    rc = kd_fail(e, KD_ERR_USAGE, "kd sweep: --%s is required (see kd sweep --help)", so->out[0] ? "grid" : "out");
  if (!rc && so->resume[0]) {
    snprintf(so->out, sizeof so->out, "%s", so->resume);
    rc = load_spec(s, so->resume, e);
    if (!rc && given[kd_opts_index(opts, N_OPTS(opts), "group-ranks")]) s->group_ranks = so->group_ranks;
  } else if (!rc) {
    snprintf(s->grid, sizeof s->grid, "%s", so->grid);
    s->group_ranks = so->group_ranks;
    rc = spec_set_args(s, nt, ta, e);
  }
  free(sa);
  free(ta);
  return rc;
}

/* The shared train options, the group size and every setting, checked before anything runs (the same verdict
 * on every rank). */
static int check_spec(const cmd_sweep_spec *s, cmd_sweep_grid *g, kd_train_cfg *base, const char *dir, kd_err *e) {
  if (kd_train_cfg_parse(base, s->n_args, s->args, e)) return e->code;
  if (s->group_ranks > g_size || g_size % s->group_ranks != 0)
    return kd_fail(e, KD_ERR_USAGE, "kd sweep: --group-ranks %lld does not divide the %d ranks into groups",
                   (long long)s->group_ranks, g_size);
  if (cmd_sweep_grid_parse(g, s->grid, base, e)) return e->code;
  kd_train_cfg cfg;
  for (int64_t i = 0; i < g->n_settings; i++)
    if (cmd_sweep_setting_cfg(g, i, base, dir, &cfg, e)) return e->code;
  return KD_OK;
}

/* World rank 0: the folder, sweep.json (a new sweep), and no claims or stop mark of an earlier invocation. */
static int prepare_dir(const cmd_sweep_spec *s, const cmd_sweep_grid *g, const char *dir, int resuming, int force,
                       kd_err *e) {
  char path[KD_PATH_MAX + 32];
  if (kd_mkdirs(dir, "--out", e)) return e->code;
  snprintf(path, sizeof path, "%s/sweep.json", dir);
  if (!resuming && access(path, F_OK) == 0 && !force)
    return kd_fail(e, KD_ERR_USAGE, "kd sweep: --out %s already holds a sweep (sweep.json); continue it with kd sweep "
                   "--resume %s, or pass --force to start it over", dir, dir);
  if (!resuming && cmd_sweep_spec_write(s, dir, e)) return e->code;
  snprintf(path, sizeof path, "%s/claims", dir);
  if (mkdir(path, 0777) != 0 && errno != EEXIST)
    return kd_fail(e, KD_ERR_RUNTIME, "kd sweep: cannot create %s (%s)", path, strerror(errno));
  for (int64_t i = 0; i < g->n_settings; i++) {
    char name[SWEEP_NAME_MAX], res[KD_PATH_MAX + SWEEP_NAME_MAX + 16];
    cmd_sweep_setting_name(g, i, name, sizeof name);
    snprintf(res, sizeof res, "%s/%s/result.json", dir, name); /* --force: no outcome of the sweep started over */
    snprintf(path, sizeof path, "%s/claims/%lld", dir, (long long)i);
    const char *bad = unlink(path) != 0 && errno != ENOENT                ? path
                      : !resuming && unlink(res) != 0 && errno != ENOENT ? res
                                                                          : NULL;
    if (bad) return kd_fail(e, KD_ERR_RUNTIME, "kd sweep: cannot remove %s (%s)", bad, strerror(errno));
  }
  snprintf(path, sizeof path, "%s/stop", dir);
  if (unlink(path) != 0 && errno != ENOENT)
    return kd_fail(e, KD_ERR_RUNTIME, "kd sweep: cannot remove %s (%s)", path, strerror(errno));
  return KD_OK;
}

/* After every group has finished: the summary (world rank 0) and the exit status every rank returns. */
static int outcome(const cmd_sweep_ctx *c, int stopped, int failed, kd_err *e) {
  int mine[2] = {stopped, failed}, all[2];
  if (kd_mpi_check(MPI_Allreduce(mine, all, 2, MPI_INT, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce", e))
    return kd_fatal(e, g_rank, "MPI_Allreduce of the sweep's outcome");
  int counts[3] = {0, 0, 0}; /* done, failed, pending or stopped */
  int rc = g_rank == 0 ? cmd_sweep_summary(c->grid, c->dir, c->json, stdout, counts, e) : KD_OK;
  if ((rc = kd_agree_after_root(MPI_COMM_WORLD, rc, e))) return rc;
  if (kd_mpi_check(MPI_Bcast(counts, 3, MPI_INT, 0, MPI_COMM_WORLD), "MPI_Bcast", e))
    return kd_fatal(e, g_rank, "MPI_Bcast of the sweep's outcome");
  const long long n = (long long)c->grid->n_settings;
  if (counts[2] > 0 && all[0])
    return kd_fail(e, KD_STOPPED, "sweep stopped by a signal: %d of %lld settings done, the running ones wrote "
                   "checkpoints; continue with: kd sweep --resume %s", counts[0], n, c->dir);
  if (counts[1] > 0 || counts[2] > 0 || all[1])
    return kd_fail(e, KD_ERR_RUNTIME, "kd sweep: %d of %lld settings failed or did not run (see the summary and "
                   "%s/SETTING/train.log)", counts[1] + counts[2], n, c->dir);
  return KD_OK;
}

static int run_sweep(cmd_sweep_ctx *c, const cmd_sweep_spec *s, kd_err *e) {
  int rc = g_rank == 0 ? prepare_dir(s, c->grid, c->dir, c->resuming, c->base.force, e) : KD_OK;
  if ((rc = kd_agree_after_root(MPI_COMM_WORLD, rc, e))) return rc;
  const int R = (int)s->group_ranks;
  if (kd_mpi_check(MPI_Comm_split(MPI_COMM_WORLD, g_rank / R, g_rank, &c->group), "MPI_Comm_split", e))
    return kd_fatal(e, g_rank, "MPI_Comm_split into the sweep's groups");
  c->group_id = g_rank / R;
  c->world_rank = g_rank;
  MPI_Comm_rank(c->group, &c->group_rank);
  MPI_Comm_size(c->group, &c->group_size);
  if (g_rank == 0)
    fprintf(c->json ? stderr : stdout, "kd sweep: %lld settings in %s on %d group%s of %d rank%s\n",
            (long long)c->grid->n_settings, c->dir, g_size / R, g_size / R > 1 ? "s" : "", R, R > 1 ? "s" : "");
  cmd_sweep_signals(1);
  int stopped = 0, failed = 0;
  rc = cmd_sweep_run_group(c, &stopped, &failed, e);
  if (!rc) rc = cmd_sweep_wait_all(MPI_COMM_WORLD, g_rank, e);
  if (!rc) rc = outcome(c, stopped, failed, e);
  /* after a stop the handler stays: the launcher may signal the ranks still on their way out (exit 75, not death) */
  if (rc != KD_STOPPED) cmd_sweep_signals(0);
  MPI_Comm_free(&c->group);
  return rc;
}

int cmd_sweep(int argc, char **argv, kd_err *e) {
  if (cmd_wants_help(argc, argv)) {
    cmd_help("usage: kd sweep --grid \"KEY=V1,V2 KEY2=W1,W2\" [--group-ranks R] --out DIR [kd train options]\n"
             "       kd sweep --resume DIR [--group-ranks R]\n\n"
             "Trains every combination of the grid's values in one MPI job: the ranks form groups of R, and each\n"
             "group trains the next setting not yet taken, data-parallel, in DIR/KEY=VALUE,KEY=VALUE (its output in\n"
             "train.log there). The other options are kd train's (kd train --help), shared by every setting. At the\n"
             "end rank 0 prints every setting, best first by validation accuracy (nll for language models).\n\n"
             "options:\n",
             opts, N_OPTS(opts));
    return KD_OK;
  }
  sweep_opts so;
  cmd_sweep_spec spec;
  memset(&spec, 0, sizeof spec);
  cmd_sweep_ctx *c = calloc(1, sizeof *c);
  cmd_sweep_grid *g = calloc(1, sizeof *g);
  int rc = c && g ? KD_OK : kd_fail(e, KD_ERR_RUNTIME, "out of memory (kd sweep)");
  if (!rc) rc = get_spec(&spec, &so, argc, argv, e);
  if (!rc) rc = check_spec(&spec, g, &c->base, so.out, e);
  if (!rc) {
    c->grid = g;
    snprintf(c->dir, sizeof c->dir, "%s", so.out);
    c->resuming = so.resume[0] != 0;
    c->json = so.json;
    rc = run_sweep(c, &spec, e);
  }
  cmd_sweep_spec_free(&spec);
  free(g);
  free(c);
  return rc;
}
