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
static int member_logits(const char *path, kd_source *test, float **sum, float **logits, int *C,
                         kd_eval_result *r, const kd_train_cfg *c, kd_err *e) {
  kd_model *m = NULL;
  float *params = NULL;
  kd_preprocess pre;
  int rc = kd_ckpt_read_preprocess(path, &pre, e);
  if (!rc) rc = kd_source_set_preprocess(test, &pre, e);
  if (!rc) rc = kd_model_load(&m, &params, path, 0, e);
  /* logits values of the split: rows x positions x classes */
  const size_t n = (size_t)kd_source_rows(test) * (kd_source_kind(test) == KD_INPUT_TOKENS ? kd_source_width(test) : 1);
  if (!rc) {
    *C = m->out_dim;
    if (!*sum) {
      *sum = calloc(n * *C, sizeof(float));
      *logits = malloc(sizeof(float) * n * *C);
    }
    rc = *sum && *logits ? kd_eval_model(r, *logits, m, test, NULL, c->temperature, NULL, e) : KD_ERR_RUNTIME;
  }
  if (!rc)
    for (size_t i = 0; i < n * *C; i++) (*sum)[i] += (*logits)[i];
  kd_source_set_preprocess(test, NULL, e);
  kd_preprocess_free(&pre);
  kd_model_free(m);
  free(params);
  return rc;
}

/* The accuracy of the averaged logits sum / members on every target of test. */
static void ensemble_row(const kd_source *test, float *sum, int members, int C) {
  const int64_t n = kd_source_rows(test);
  kd_err e;
  kd_err_clear(&e);
  kd_batch b;
  if (kd_batch_init(&b, kd_source_kind(test), (int)n, kd_source_width(test), &e) == KD_OK &&
      kd_source_gather_range(test, 0, (int)n, &b, &e) == KD_OK) {
    const int P = kd_batch_positions(&b);
    int32_t *y = malloc(sizeof(int32_t) * (size_t)n * P);
    for (size_t i = 0; y && i < (size_t)n * P * C; i++) sum[i] /= (float)members;
    kd_eval_sums es;
    memset(&es, 0, sizeof es);
    if (y) {
      kd_batch_targets(&b, y);
      kd_eval_accumulate(&es, sum, y, NULL, (int)(n * P), C, 1.0);
      kd_eval_result r;
      kd_eval_finish(&r, &es);
      printf("  %-12s %.4f  (averaged logits of %d generations)\n", "ensemble", r.accuracy, members);
    }
    free(y);
  }
  kd_batch_free(&b);
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
  if (members > 1) ensemble_row(test, sum, members, C);
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
  /* so do an online teacher and the intermediate losses: generation 0's teacher only */
  cfg->teacher_model[0] = cfg->attn_relations[0] = cfg->attn_map[0] = cfg->hidden_map[0] = '\0';
  snprintf(cfg->attn_loss, sizeof cfg->attn_loss, "none");
  cfg->relation_heads = cfg->intermediate_epochs = 0;
  cfg->generation = g;
  cfg->seed = eff->seed + 1;
  /* A resumed chain may find a generation's directory begun before a crash. */
  cfg->force = cli->force || resuming;
  cfg->max_steps = cli->max_steps;
}

/* --resume TOP/genK[:SELECTOR] of a chain: TOP, K and the selector ("" : none). */
static int chain_member(const char *resume, char *top, size_t n, int *k, char *sel, size_t sn) {
  char dir[KD_PATH_MAX];
  snprintf(dir, sizeof dir, "%s", resume);
  sel[0] = '\0';
  char *colon = strchr(dir, ':');
  if (colon) {
    snprintf(sel, sn, "%s", colon);
    *colon = '\0';
  }
  size_t l = strlen(dir);
  while (l > 1 && dir[l - 1] == '/') dir[--l] = '\0';
  char *slash = strrchr(dir, '/');
  const char *base = slash ? slash + 1 : dir;
  char *end;
  if (strncmp(base, "gen", 3) != 0 || !base[3]) return 0;
  const long g = strtol(base + 3, &end, 10);
  if (*end || g < 0) return 0;
  if (slash) *slash = '\0';
  snprintf(top, n, "%s", slash ? (dir[0] ? dir : "/") : ".");
  *k = (int)g;
  return is_generations_dir(top);
}

/* The newest generation of TOP that has a checkpoint (-1: none). */
static int newest_generation(const char *top) {
  int g = -1;
  for (int k = 0; k < 1000; k++) {
    char p[KD_PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/gen%d/latest", top, k);
    if (access(p, F_OK) == 0) g = k;
  }
  return g;
}

/* Where a chain starts: a new one in OUT/gen0; a resumed one (--resume
 * TOP, or TOP/genK) at its newest generation with a checkpoint, or at genK
 * when a checkpoint selector names one there. */
static int chain_start(const kd_train_cfg *cli, MPI_Comm comm, int resuming, char *top, size_t n, kd_train_cfg *cfg,
                       int *g, kd_err *e) {
  *cfg = *cli;
  *g = 0;
  char sel[KD_PATH_MAX] = "";
  int k = -1, rank; /* of the run's communicator: under kd sweep, world rank 0 may be in another group */
  MPI_Comm_rank(comm, &rank);
  if (resuming && !chain_member(cli->resume, top, n, &k, sel, sizeof sel)) {
    if (strlen(cli->resume) >= n) return kd_fail(e, KD_ERR_USAGE, "--resume %s: path too long", cli->resume);
    snprintf(top, n, "%s", cli->resume);
  }
  if (!resuming) {
    if (strlen(cli->out) >= n) return kd_fail(e, KD_ERR_USAGE, "--out %s: path too long", cli->out);
    snprintf(top, n, "%s", cli->out);
    snprintf(cfg->out, sizeof cfg->out, "%s/gen0", top);
    cfg->generation = 0;
    return KD_OK;
  }
  const int newest = newest_generation(top);
  *g = sel[0] && k >= 0 ? k : newest > k ? newest : k;
  if (*g < 0) *g = 0;
  if (k >= 0 && *g != k && rank == 0)
    printf("kd: %s/gen%d is part of the chain %s, whose newest generation is %d: continuing the chain there\n", top, k,
           top, *g);
  snprintf(cfg->resume, sizeof cfg->resume, "%s/gen%d%s", top, *g, sel);
  return KD_OK;
}

/* A stop inside generation g: the command that continues the whole chain. */
static int chain_stopped(kd_err *e, int g, const char *top) {
  char head[sizeof e->msg];
  snprintf(head, sizeof head, "%s", e->msg);
  char *cut = strstr(head, "; checkpoint written");
  if (cut) *cut = '\0';
  snprintf(e->msg, sizeof e->msg, "%.200s of generation %d; checkpoint written; continue the chain with: kd train --resume %.700s",
           head, g, top);
  return KD_STOPPED;
}

/* A --resume of a chain: its top directory, or one generation's (TOP/genK). */
static int resumes_chain(const char *resume) {
  char top[KD_PATH_MAX], sel[KD_PATH_MAX];
  int k;
  return resume[0] && (is_generations_dir(resume) || chain_member(resume, top, sizeof top, &k, sel, sizeof sel));
}

int tr_run_chain(const kd_train_cfg *cli, MPI_Comm comm, kd_train_result *res, kd_err *e) {
  const int resuming = resumes_chain(cli->resume);
  if (cli->generations <= 1 && !resuming) return tr_run_one(cli, comm, res, NULL, e);
  int rank, g = 0, rc;
  MPI_Comm_rank(comm, &rank);
  char top[KD_PATH_MAX - 64];
  kd_train_cfg cfg, eff;
  if ((rc = chain_start(cli, comm, resuming, top, sizeof top, &cfg, &g, e))) return rc;
  int G = (int)cli->generations;
  for (;;) {
    if (rank == 0) {
      printf("== generation %d%s\n", g, cfg.resume[0] ? " (resumed)" : "");
      fflush(stdout);
    }
    if ((rc = tr_run_one(&cfg, comm, res, &eff, e))) return rc == KD_STOPPED ? chain_stopped(e, g, top) : rc;
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
