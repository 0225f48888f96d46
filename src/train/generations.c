/* Born-again networks: generation g+1 is a fresh student (seed + 1)
 * distilled from generation g's best checkpoint, each in OUT/gen{g}. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/dist.h"
#include "train/trainer.h"

/* Generation g's best checkpoint (its latest when no best was recorded). */
static int generation_ckpt(const char *top, int g, char *path, size_t n, kd_err *e) {
  char spec[KD_PATH_MAX + 32];
  kd_err ie;
  kd_err_clear(&ie);
  snprintf(spec, sizeof spec, "%s/gen%d:best", top, g);
  if (kd_ckpt_resolve(spec, 0, path, n, NULL, 0, &ie) == KD_OK) return KD_OK;
  snprintf(spec, sizeof spec, "%s/gen%d", top, g);
  return kd_ckpt_resolve(spec, 0, path, n, NULL, 0, e);
}

/* Rank 0: one generation's test logits into logits (added into sum). */
static int member_logits(const char *path, const kd_source *test, float **sum, float **logits, int *C,
                         kd_eval_result *r, const kd_train_cfg *c, kd_err *e) {
  kd_model *m = NULL;
  float *params = NULL;
  int rc = kd_model_load(&m, &params, path, 1024, e);
  const size_t n = (size_t)kd_source_rows(test);
  if (!rc) {
    *C = m->out_dim;
    if (!*sum) {
      *sum = calloc(n * *C, sizeof(float));
      *logits = malloc(sizeof(float) * n * *C);
    }
    rc = *sum && *logits ? kd_eval_model(r, *logits, m, test, NULL, c->temperature, e) : KD_ERR_RUNTIME;
  }
  if (!rc)
    for (size_t i = 0; i < n * *C; i++) (*sum)[i] += (*logits)[i];
  kd_model_free(m);
  free(params);
  return rc;
}

/* Rank 0: test accuracy of each generation's best checkpoint and of the
 * ensemble of their averaged logits. */
static void generation_table(const char *top, int G, const kd_train_cfg *c) {
  printf("\nborn-again generations (%s, best checkpoint of each, /test):\n", top);
  printf("  %-12s %s\n", "generation", "test accuracy");
  kd_source *test = NULL;
  kd_split_info info;
  kd_err e;
  kd_err_clear(&e);
  if (kd_source_probe(c->data, "test", &info, &e) || !info.present ||
      kd_source_open(&test, c->data, "test", 0, info.rows, &e)) {
    printf("  (no /test split in %s)\n", c->data);
    return;
  }
  float *sum = NULL, *logits = NULL;
  int members = 0, C = 0;
  for (int g = 0; g < G; g++) {
    char path[KD_PATH_MAX + 64];
    kd_eval_result r;
    kd_err_clear(&e);
    if (generation_ckpt(top, g, path, sizeof path, &e)) continue;
    if (member_logits(path, test, &sum, &logits, &C, &r, c, &e) == KD_OK) {
      printf("  %-12d %.4f\n", g, r.accuracy);
      members++;
    }
  }
  if (members > 1) {
    const int64_t n = kd_source_rows(test);
    kd_batch b;
    kd_eval_sums es;
    memset(&es, 0, sizeof es);
    for (size_t i = 0; i < (size_t)n * C; i++) sum[i] /= (float)members;
    if (kd_batch_init(&b, KD_INPUT_FEATURES, (int)n, kd_source_width(test), &e) == KD_OK &&
        kd_source_gather_range(test, 0, (int)n, &b, &e) == KD_OK) {
      kd_eval_accumulate(&es, sum, b.y, NULL, (int)n, C, 1.0);
      kd_eval_result r;
      kd_eval_finish(&r, &es);
      printf("  %-12s %.4f  (averaged logits of %d generations)\n", "ensemble", r.accuracy, members);
    }
    kd_batch_free(&b);
  }
  free(sum);
  free(logits);
  kd_source_free(test);
  fflush(stdout);
}

/* Does dir hold a generations run (gen0/ but no checkpoint of its own)? */
static int is_generations_dir(const char *dir) {
  char p[KD_PATH_MAX + 32];
  struct stat sb;
  snprintf(p, sizeof p, "%s/gen0", dir);
  if (stat(p, &sb) != 0 || !S_ISDIR(sb.st_mode)) return 0;
  snprintf(p, sizeof p, "%s/latest", dir);
  return access(p, F_OK) != 0;
}

/* Generation g's configuration: a fresh student distilled from `best`. */
static void next_generation(kd_train_cfg *cfg, const kd_train_cfg *eff, const kd_train_cfg *cli, const char *top,
                            int g, const char *best, int resuming) {
  *cfg = *eff;
  memset(cfg->given, 0, sizeof cfg->given);
  cfg->resume[0] = cfg->init_from[0] = cfg->teacher[0] = cfg->snapshot_logits[0] = '\0';
  snprintf(cfg->out, sizeof cfg->out, "%s/gen%d", top, g);
  snprintf(cfg->teacher_ckpt, sizeof cfg->teacher_ckpt, "%s", best);
  cfg->self_distill = 1;
  cfg->refresh_every = 0;
  cfg->hint_layer = cfg->hint_epochs = 0; /* hints need teacher features: generation 0's teacher file only */
  cfg->generation = g;
  cfg->seed = eff->seed + 1;
  /* A resumed chain may find a generation's directory begun before a crash. */
  cfg->force = cli->force || resuming;
  cfg->max_steps = cli->max_steps;
}

/* Where a chain starts: a new one in OUT/gen0, or the newest generation of
 * a resumed one that has a checkpoint. */
static int chain_start(const kd_train_cfg *cli, int resuming, char *top, size_t n, kd_train_cfg *cfg, int *g,
                       kd_err *e) {
  const char *dir = resuming ? cli->resume : cli->out;
  if (strlen(dir) >= n) return kd_fail(e, KD_ERR_USAGE, "--%s %s: path too long", resuming ? "resume" : "out", dir);
  memcpy(top, dir, strlen(dir) + 1);
  *cfg = *cli;
  *g = 0;
  if (resuming) {
    for (int k = 0; k < 1000; k++) {
      char p[KD_PATH_MAX + 32];
      snprintf(p, sizeof p, "%s/gen%d/latest", top, k);
      if (access(p, F_OK) == 0) *g = k;
    }
    snprintf(cfg->resume, sizeof cfg->resume, "%s/gen%d", top, *g);
  } else {
    snprintf(cfg->out, sizeof cfg->out, "%s/gen0", top);
    cfg->generation = 0;
  }
  return KD_OK;
}

int tr_run_chain(const kd_train_cfg *cli, MPI_Comm comm, kd_train_result *res, kd_err *e) {
  const int resuming = cli->resume[0] && is_generations_dir(cli->resume);
  if (cli->generations <= 1 && !resuming) return tr_run_one(cli, comm, res, NULL, e);
  int rank, g = 0, rc;
  MPI_Comm_rank(comm, &rank);
  char top[KD_PATH_MAX - 64];
  kd_train_cfg cfg, eff;
  if ((rc = chain_start(cli, resuming, top, sizeof top, &cfg, &g, e))) return rc;
  int G = (int)cli->generations;
  for (;;) {
    if (rank == 0) {
      printf("== generation %d%s\n", g, cfg.resume[0] ? " (resumed)" : "");
      fflush(stdout);
    }
    if ((rc = tr_run_one(&cfg, comm, res, &eff, e))) return rc;
    G = (int)eff.generations;
    if (!res->completed) { /* --max-steps ended this generation early: so ends the chain */
      if (rank == 0) printf("kd: generation %d stopped at --max-steps; kd train --resume %s continues the chain\n", g, top);
      return KD_OK;
    }
    if (++g >= G) break;
    char best[KD_PATH_MAX] = "";
    rc = rank == 0 ? generation_ckpt(top, g - 1, best, sizeof best, e) : KD_OK;
    if ((rc = kd_agree(comm, rc, e))) return rc;
    if (kd_mpi_check(MPI_Bcast(best, (int)sizeof best, MPI_CHAR, 0, comm), "MPI_Bcast", e)) return e->code;
    next_generation(&cfg, &eff, cli, top, g, best, resuming);
  }
  if (rank == 0) generation_table(top, G, &eff);
  return KD_OK;
}
