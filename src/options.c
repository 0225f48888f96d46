#include "kd/options.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define INF HUGE_VAL
#define T_(f) offsetof(kd_train_cfg, f)
#define S_(f) offsetof(kd_synth_cfg, f)
#define STR(cfg, f) sizeof(((cfg *)0)->f)

/* name, type, offset, size, default, choices, lo, hi, lo_open, hi_open, help */
const kd_opt_spec kd_train_opts[] = {
  {"data", KD_OPT_STR, T_(data), STR(kd_train_cfg, data), "", NULL, 0, 0, 0, 0,
   "HDF5 data file: /train/x [N,D], /train/y [N] (optional /valid, /test); required unless --resume"},
  {"teacher", KD_OPT_STR, T_(teacher), STR(kd_train_cfg, teacher), "", NULL, 0, 0, 0, 0,
   "HDF5 teacher file with /train/logits [N,C] (may be the data file); none: supervised training"},
  {"out", KD_OPT_STR, T_(out), STR(kd_train_cfg, out), "", NULL, 0, 0, 0, 0,
   "run directory (checkpoints, metrics.csv, final.h5); refused if it holds a run, unless --force; "
   "required unless --resume"},
  {"student", KD_OPT_STR, T_(student), STR(kd_train_cfg, student), "", NULL, 0, 0, 0, 0,
   "MLP sizes input-hidden...-classes, e.g. 784-800-800-10; required unless --resume"},
  {"resume", KD_OPT_STR, T_(resume), STR(kd_train_cfg, resume), "", NULL, 0, 0, 0, 0,
   "continue a run: a checkpoint FILE or DIR[:latest|best|step:N]; needs no other option"},
  {"init", KD_OPT_STR, T_(init_from), STR(kd_train_cfg, init_from), "", NULL, 0, 0, 0, 0,
   "start a new run from a checkpoint's weights (fresh optimizer, step 0): FILE or DIR[:latest|best|step:N]"},
  {"activation", KD_OPT_CHOICE, T_(activation), STR(kd_train_cfg, activation), "relu", "relu|gelu", 0, 0, 0, 0,
   "hidden activation"},
  {"weight-init", KD_OPT_CHOICE, T_(weight_init), STR(kd_train_cfg, weight_init), "he", "he|xavier", 0, 0, 0, 0,
   "hidden-layer initialisation (the output layer is always Xavier)"},
  {"dropout", KD_OPT_REAL, T_(dropout), 0, "0", NULL, 0, 1, 0, 1,
   "dropout probability on hidden layers, in [0, 1)"},
  {"alpha", KD_OPT_REAL, T_(alpha), 0, "0.1", NULL, 0, 1, 0, 0,
   "weight of the hard-label loss, in [0, 1]; 1 - alpha weighs the soft loss"},
  {"temperature", KD_OPT_REAL, T_(temperature), 0, "4", NULL, 0, 1000, 1, 0,
   "distillation temperature T > 0"},
  {"optimizer", KD_OPT_CHOICE, T_(optimizer), STR(kd_train_cfg, optimizer), "sgd", "sgd|adamw", 0, 0, 0, 0,
   "optimizer"},
  {"lr", KD_OPT_REAL, T_(lr), 0, "0.05", NULL, 0, 100, 1, 0, "peak learning rate > 0"},
  {"momentum", KD_OPT_REAL, T_(momentum), 0, "0.9", NULL, 0, 1, 0, 1, "SGD momentum, in [0, 1)"},
  {"nesterov", KD_OPT_FLAG, T_(nesterov), 0, "0", NULL, 0, 0, 0, 0, "Nesterov momentum (SGD)"},
  {"weight-decay", KD_OPT_REAL, T_(weight_decay), 0, "0", NULL, 0, 10, 0, 0,
   "weight decay on weights (not biases): coupled for SGD, decoupled for AdamW"},
  {"beta1", KD_OPT_REAL, T_(beta1), 0, "0.9", NULL, 0, 1, 0, 1, "AdamW beta1, in [0, 1)"},
  {"beta2", KD_OPT_REAL, T_(beta2), 0, "0.999", NULL, 0, 1, 0, 1, "AdamW beta2, in [0, 1)"},
  {"eps", KD_OPT_REAL, T_(eps), 0, "1e-8", NULL, 0, 1, 1, 0, "AdamW epsilon > 0"},
  {"schedule", KD_OPT_CHOICE, T_(schedule), STR(kd_train_cfg, schedule), "cosine", "const|cosine", 0, 0, 0, 0,
   "learning-rate schedule after warmup"},
  {"warmup", KD_OPT_INT, T_(warmup), 0, "0", NULL, 0, 1e12, 0, 0, "linear warmup steps"},
  {"clip", KD_OPT_REAL, T_(clip), 0, "0", NULL, 0, 1e30, 0, 0, "clip the global gradient norm to this (0: off)"},
  {"epochs", KD_OPT_INT, T_(epochs), 0, "10", NULL, 1, 1e9, 0, 0, "passes over the training rows, >= 1"},
  {"batch", KD_OPT_INT, T_(batch), 0, "128", NULL, 1, 1 << 24, 0, 0,
   "global batch (all ranks together), >= number of ranks"},
  {"max-steps", KD_OPT_INT, T_(max_steps), 0, "0", NULL, 0, 1e15, 0, 0,
   "stop after this many steps (0: no limit; the schedule still spans --epochs)"},
  {"seed", KD_OPT_INT, T_(seed), 0, "1", NULL, 0, 9.2e18, 0, 0, "seed of initialisation, shuffling and dropout"},
  {"threads", KD_OPT_INT, T_(threads), 0, "0", NULL, 0, 4096, 0, 0,
   "OpenBLAS threads per rank (0: cores available to the rank / ranks sharing them)"},
  {"bucket-kib", KD_OPT_INT, T_(bucket_kib), 0, "4096", NULL, 1, 1 << 20, 0, 0,
   "largest gradient bucket in KiB (a layer boundary closes one at a quarter of it): the unit of "
   "communication, and of overlap with --overlap"},
  {"overlap", KD_OPT_CHOICE, T_(overlap), STR(kd_train_cfg, overlap), "auto", "auto|on|off", 0, 0, 0, 0,
   "start each gradient bucket's reduction as soon as the backward pass has finished it, overlapping "
   "communication with the layers below (off: all buckets after the backward pass, blocking; auto: on when "
   "the ranks span several nodes, off on one node, where the copies compete with the compute for the same cores)"},
  {"shard-optimizer", KD_OPT_CHOICE, T_(shard_optimizer), STR(kd_train_cfg, shard_optimizer), "auto",
   "auto|on|off", 0, 0, 0, 0,
   "reduce-scatter the gradients, each rank updates its 1/p slice of the parameters, allgather them (off: "
   "allreduce, every rank updates everything; auto: on from 3 ranks)"},
  {"log-every", KD_OPT_INT, T_(log_every), 0, "50", NULL, 1, 1e15, 0, 0, "steps between metrics.csv rows"},
  {"ckpt-every", KD_OPT_INT, T_(ckpt_every), 0, "0", NULL, 0, 1e15, 0, 0,
   "steps between checkpoints (0: none between epoch ends); there is always one at the end"},
  {"ckpt-epochs", KD_OPT_INT, T_(ckpt_epochs), 0, "1", NULL, 0, 1e9, 0, 0,
   "also checkpoint (and evaluate) at every N-th epoch end (0: not at epoch ends)"},
  {"keep", KD_OPT_INT, T_(keep), 0, "3", NULL, 1, 1e9, 0, 0, "checkpoints kept (plus the best one)"},
  {"eval-every", KD_OPT_INT, T_(eval_every), 0, "0", NULL, 0, 1e15, 0, 0,
   "steps between evaluations (0: at each checkpoint and the end only)"},
  {"val-rows", KD_OPT_INT, T_(val_rows), 0, "0", NULL, 0, 1e15, 0, 0,
   "hold out the last N rows of /train for validation (when the data file has no /valid)"},
  {"best-metric", KD_OPT_CHOICE, T_(best_metric), STR(kd_train_cfg, best_metric), "accuracy", "accuracy|nll", 0, 0,
   0, 0, "validation metric that picks the best checkpoint (ties keep the earlier)"},
  {"progress", KD_OPT_CHOICE, T_(progress), STR(kd_train_cfg, progress), "auto", "auto|on|off", 0, 0, 0, 0,
   "live progress line (auto: only on a terminal outside a batch job)"},
  {"force", KD_OPT_FLAG, T_(force), 0, "0", NULL, 0, 0, 0, 0, "reuse an --out directory that holds a run"},
  {"self-distill", KD_OPT_FLAG, T_(self_distill), 0, "0", NULL, 0, 0, 0, 0,
   "self-distillation: the teacher is a frozen snapshot of an earlier checkpoint of this run (no teacher file)"},
  {"teacher-ckpt", KD_OPT_STR, T_(teacher_ckpt), STR(kd_train_cfg, teacher_ckpt), "best", NULL, 0, 0, 0, 0,
   "with --self-distill: which checkpoint teaches: best, latest, step:N, or a checkpoint FILE"},
  {"refresh-every", KD_OPT_INT, T_(refresh_every), 0, "0", NULL, 0, 1e9, 0, 0,
   "with --self-distill: replace the snapshot by a newer checkpoint every E epochs (0: keep the first)"},
  {"snapshot-logits", KD_OPT_STR, T_(snapshot_logits), STR(kd_train_cfg, snapshot_logits), "", NULL, 0, 0, 0, 0,
   "with --self-distill: write each snapshot's logits for the training rows to this teacher file"},
  {"generations", KD_OPT_INT, T_(generations), 0, "1", NULL, 1, 1000, 0, 0,
   "born-again generations: generation g+1 is a fresh student distilled from generation g's best checkpoint; "
   "each lives in OUT/gen{g}"},
  {"generation", KD_OPT_INT, T_(generation), 0, "0", NULL, 0, 1000, 0, 0,
   "which generation this run is (set by kd; leave it)"},
  {"hint-layer", KD_OPT_INT, T_(hint_layer), 0, "0", NULL, 0, 1000, 0, 0,
   "FitNets hints: match student hidden layer K (1-based, after the activation) to the teacher file's "
   "/train/features through a learned linear regressor (0: off)"},
  {"hint-weight", KD_OPT_REAL, T_(hint_weight), 0, "1", NULL, 0, 1e6, 1, 0,
   "BETA: the hint loss BETA * 0.5 * mean ||W h_s + b - h_t||^2 is added to the loss"},
  {"hint-epochs", KD_OPT_INT, T_(hint_epochs), 0, "0", NULL, 0, 1e9, 0, 0,
   "stage-wise FitNets: the first E epochs (counted in --epochs) train the layers up to K and the regressor on "
   "the hint loss alone"},
  {"on-nonfinite", KD_OPT_CHOICE, T_(on_nonfinite), STR(kd_train_cfg, on_nonfinite), "stop", "stop|skip", 0, 0, 0, 0,
   "a non-finite loss or gradient: stop the run (the last checkpoint stays the latest), or skip that step's "
   "update on every rank and count it"},
  {"train-rows", KD_OPT_INT, T_(train_rows), 0, "0", NULL, 0, 1e15, 0, 0,
   "train on the first N rows of /train only (0: all; --val-rows are taken from the end first)"},
  {"labelled-fraction", KD_OPT_REAL, T_(labelled_fraction), 0, "1", NULL, 0, 1, 0, 0,
   "keep the hard label on this fraction of training rows (chosen by --seed), the rest are unlabelled "
   "(y = -1): semi-supervised distillation, needs --teacher"},
};
const int kd_train_n_opts = (int)(sizeof kd_train_opts / sizeof kd_train_opts[0]);

const kd_opt_spec kd_synth_opts[] = {
  {"out", KD_OPT_STR, S_(out), STR(kd_synth_cfg, out), NULL, NULL, 0, 0, 0, 0, "data file to write"},
  {"teacher-out", KD_OPT_STR, S_(teacher_out), STR(kd_synth_cfg, teacher_out), "", NULL, 0, 0, 0, 0,
   "teacher-logits file to write (empty: none)"},
  {"train", KD_OPT_INT, S_(train), 0, "20000", NULL, 1, 1e10, 0, 0, "training rows"},
  {"test", KD_OPT_INT, S_(test), 0, "4000", NULL, 0, 1e10, 0, 0, "test rows (0: no /test split)"},
  {"dim", KD_OPT_INT, S_(dim), 0, "64", NULL, 1, 1 << 20, 0, 0, "features per row"},
  {"classes", KD_OPT_INT, S_(classes), 0, "10", NULL, 2, 1 << 20, 0, 0, "classes"},
  {"clusters", KD_OPT_INT, S_(clusters), 0, "4", NULL, 1, 1024, 0, 0,
   "Gaussian clusters per class (more: a less linear problem)"},
  {"noise", KD_OPT_REAL, S_(noise), 0, "1.0", NULL, 0, 1e6, 1, 0, "standard deviation of each cluster"},
  {"separation", KD_OPT_REAL, S_(separation), 0, "5", NULL, 0, 1e6, 1, 0,
   "typical distance between two cluster centres, in noise deviations (smaller: harder)"},
  {"teacher-temperature", KD_OPT_REAL, S_(teacher_temperature), 0, "1.0", NULL, 0, 1e6, 1, 0,
   "divides the teacher's log-likelihood logits (larger: softer teacher)"},
  {"seed", KD_OPT_INT, S_(seed), 0, "1", NULL, 0, 9.2e18, 0, 0, "seed"},
};
const int kd_synth_n_opts = (int)(sizeof kd_synth_opts / sizeof kd_synth_opts[0]);

#define E_(f) offsetof(kd_eval_cfg, f)
const kd_opt_spec kd_eval_opts[] = {
  {"ckpt", KD_OPT_STR, E_(ckpt), STR(kd_eval_cfg, ckpt), NULL, NULL, 0, 0, 0, 0,
   "checkpoint FILE or DIR[:latest|best|step:N]"},
  {"data", KD_OPT_STR, E_(data), STR(kd_eval_cfg, data), NULL, NULL, 0, 0, 0, 0, "HDF5 data file"},
  {"teacher", KD_OPT_STR, E_(teacher), STR(kd_eval_cfg, teacher), "", NULL, 0, 0, 0, 0,
   "teacher file: with /SPLIT/logits, adds teacher agreement and KL(teacher || student)"},
  {"split", KD_OPT_STR, E_(split), STR(kd_eval_cfg, split), "test", NULL, 0, 0, 0, 0, "split to evaluate"},
  {"temperature", KD_OPT_REAL, E_(temperature), 0, "4", NULL, 0, 1000, 1, 0, "temperature of the KL"},
  {"batch", KD_OPT_INT, E_(batch), 0, "1024", NULL, 1, 1 << 24, 0, 0, "rows per forward pass"},
  {"json", KD_OPT_FLAG, E_(json), 0, "0", NULL, 0, 0, 0, 0,
   "print one JSON object with accuracy, nll, ece, agreement, kl, n"},
};
const int kd_eval_n_opts = (int)(sizeof kd_eval_opts / sizeof kd_eval_opts[0]);

const kd_opt_spec kd_predict_opts[] = {
  {"ckpt", KD_OPT_STR, E_(ckpt), STR(kd_eval_cfg, ckpt), NULL, NULL, 0, 0, 0, 0,
   "checkpoint FILE or DIR[:latest|best|step:N]"},
  {"data", KD_OPT_STR, E_(data), STR(kd_eval_cfg, data), NULL, NULL, 0, 0, 0, 0, "HDF5 data file"},
  {"out", KD_OPT_STR, E_(out), STR(kd_eval_cfg, out), NULL, NULL, 0, 0, 0, 0,
   "HDF5 file to write /SPLIT/logits into (created, or replaced)"},
  {"split", KD_OPT_STR, E_(split), STR(kd_eval_cfg, split), "test", NULL, 0, 0, 0, 0, "split to predict"},
  {"batch", KD_OPT_INT, E_(batch), 0, "1024", NULL, 1, 1 << 24, 0, 0, "rows per forward pass"},
};
const int kd_predict_n_opts = (int)(sizeof kd_predict_opts / sizeof kd_predict_opts[0]);

const kd_opt_spec kd_logits_opts[] = {
  {"ckpt", KD_OPT_STR, E_(ckpt), STR(kd_eval_cfg, ckpt), NULL, NULL, 0, 0, 0, 0,
   "teacher checkpoint FILE or DIR[:latest|best|step:N]"},
  {"data", KD_OPT_STR, E_(data), STR(kd_eval_cfg, data), NULL, NULL, 0, 0, 0, 0, "HDF5 data file"},
  {"out", KD_OPT_STR, E_(out), STR(kd_eval_cfg, out), NULL, NULL, 0, 0, 0, 0,
   "teacher file to write: /SPLIT/logits for every split of the data file"},
  {"batch", KD_OPT_INT, E_(batch), 0, "1024", NULL, 1, 1 << 24, 0, 0, "rows per forward pass"},
  {"features", KD_OPT_INT, E_(features), 0, "0", NULL, 0, 1000, 0, 0,
   "also write hidden layer K (1-based, after the activation) as /SPLIT/features, for --hint-layer"},
};
const int kd_logits_n_opts = (int)(sizeof kd_logits_opts / sizeof kd_logits_opts[0]);

static const kd_opt_spec *find(const kd_opt_spec *specs, int n, const char *name, size_t len) {
  for (int i = 0; i < n; i++)
    if (strlen(specs[i].name) == len && strncmp(specs[i].name, name, len) == 0) return &specs[i];
  return NULL;
}

static int in_choices(const char *choices, const char *v) {
  size_t lv = strlen(v);
  for (const char *p = choices; *p;) {
    const char *bar = strchr(p, '|');
    size_t l = bar ? (size_t)(bar - p) : strlen(p);
    if (l == lv && strncmp(p, v, l) == 0) return 1;
    p += l + (bar ? 1 : 0);
  }
  return 0;
}

static int range_msg(const kd_opt_spec *s, const char *cmd, const char *val, kd_err *e) {
  char lo[32] = "", hi[32] = "";
  snprintf(lo, sizeof lo, "%g", s->lo);
  snprintf(hi, sizeof hi, "%g", s->hi);
  return kd_fail(e, KD_ERR_USAGE, "%s: --%s %s: out of range, must be in %s%s, %s%s", cmd, s->name, val,
                 s->lo_open ? "(" : "[", lo, hi, s->hi_open ? ")" : "]");
}

static int set_value(const kd_opt_spec *s, void *cfg, const char *val, const char *cmd, kd_err *e) {
  char *base = (char *)cfg + s->offset;
  switch (s->type) {
    case KD_OPT_STR:
    case KD_OPT_CHOICE:
      if (strlen(val) >= s->size)
        return kd_fail(e, KD_ERR_USAGE, "%s: --%s: value longer than %zu characters", cmd, s->name, s->size - 1);
      if (s->type == KD_OPT_CHOICE && !in_choices(s->choices, val))
        return kd_fail(e, KD_ERR_USAGE, "%s: --%s %s: unknown value, expected one of %s", cmd, s->name, val,
                       s->choices);
      strcpy(base, val);
      return KD_OK;
    case KD_OPT_INT: {
      char *end;
      errno = 0;
      long long v = strtoll(val, &end, 10);
      if (!*val || *end || errno)
        return kd_fail(e, KD_ERR_USAGE, "%s: --%s %s: expected an integer", cmd, s->name, val);
      if ((double)v < s->lo || (double)v > s->hi) return range_msg(s, cmd, val, e);
      *(int64_t *)base = v;
      return KD_OK;
    }
    case KD_OPT_REAL: {
      char *end;
      errno = 0;
      double v = strtod(val, &end);
      if (!*val || *end || errno || !isfinite(v))
        return kd_fail(e, KD_ERR_USAGE, "%s: --%s %s: expected a finite number", cmd, s->name, val);
      if (v < s->lo || v > s->hi || (s->lo_open && v == s->lo) || (s->hi_open && v == s->hi))
        return range_msg(s, cmd, val, e);
      *(double *)base = v;
      return KD_OK;
    }
    case KD_OPT_FLAG:
      *(int *)base = (val[0] == '1');
      return KD_OK;
  }
  return KD_OK;
}

int kd_opts_index(const kd_opt_spec *specs, int n, const char *name) {
  const kd_opt_spec *s = find(specs, n, name, strlen(name));
  return s ? (int)(s - specs) : -1;
}

int kd_opts_set(const kd_opt_spec *specs, int n, void *cfg, const char *name,
                const char *value, const char *cmd, kd_err *e) {
  const kd_opt_spec *s = find(specs, n, name, strlen(name));
  if (!s) return kd_fail(e, KD_ERR_USAGE, "%s: unknown option '--%s'", cmd, name);
  if (s->type == KD_OPT_FLAG) {
    *(int *)((char *)cfg + s->offset) = strcmp(value, "1") == 0;
    return KD_OK;
  }
  return set_value(s, cfg, value, cmd, e);
}

void kd_opts_format(const kd_opt_spec *s, const void *cfg, char *buf, size_t n) {
  const char *base = (const char *)cfg + s->offset;
  switch (s->type) {
    case KD_OPT_STR:
    case KD_OPT_CHOICE: snprintf(buf, n, "%s", base); break;
    case KD_OPT_INT: snprintf(buf, n, "%lld", (long long)*(const int64_t *)base); break;
    case KD_OPT_REAL: snprintf(buf, n, "%.17g", *(const double *)base); break;
    case KD_OPT_FLAG: snprintf(buf, n, "%d", *(const int *)base ? 1 : 0); break;
  }
}

int kd_opts_parse(const kd_opt_spec *specs, int n, void *cfg, int argc,
                  char **argv, const char *cmd, unsigned char *given, kd_err *e) {
  char seen[256] = {0};
  for (int i = 0; i < n; i++)
    if (specs[i].def && set_value(&specs[i], cfg, specs[i].def, cmd, e)) return e->code;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (strncmp(a, "--", 2) != 0 || !a[2])
      return kd_fail(e, KD_ERR_USAGE, "%s: unexpected argument '%s' (options start with --; see %s --help)", cmd,
                     a, cmd);
    const char *name = a + 2, *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    const kd_opt_spec *s = find(specs, n, name, len);
    if (!s)
      return kd_fail(e, KD_ERR_USAGE, "%s: unknown option '--%.*s' (see %s --help)", cmd, (int)len, name, cmd);
    const char *val;
    if (s->type == KD_OPT_FLAG) {
      if (eq) return kd_fail(e, KD_ERR_USAGE, "%s: --%s takes no value", cmd, s->name);
      val = "1";
    } else if (eq) {
      val = eq + 1;
    } else {
      if (i + 1 >= argc) return kd_fail(e, KD_ERR_USAGE, "%s: --%s needs a value", cmd, s->name);
      val = argv[++i];
    }
    if (set_value(s, cfg, val, cmd, e)) return e->code;
    seen[s - specs] = 1;
  }
  for (int i = 0; i < n; i++)
    if (!specs[i].def && !seen[i])
      return kd_fail(e, KD_ERR_USAGE, "%s: --%s is required (see %s --help)", cmd, specs[i].name, cmd);
  if (given)
    for (int i = 0; i < n; i++) given[i] = (unsigned char)seen[i];
  return KD_OK;
}

void kd_opts_help(const kd_opt_spec *specs, int n, FILE *f) {
  for (int i = 0; i < n; i++) {
    const kd_opt_spec *s = &specs[i];
    char left[64];
    const char *arg = s->type == KD_OPT_FLAG ? "" : s->type == KD_OPT_STR ? " VALUE"
                      : s->type == KD_OPT_CHOICE ? " CHOICE" : s->type == KD_OPT_INT ? " N" : " X";
    snprintf(left, sizeof left, "--%s%s", s->name, arg);
    fprintf(f, "  %-24s %s", left, s->help);
    if (s->type == KD_OPT_CHOICE) fprintf(f, " {%s}", s->choices);
    if (!s->def) fprintf(f, " (required)");
    else if (s->type == KD_OPT_FLAG) fprintf(f, " (default: off)");
    else if (!s->def[0]) fprintf(f, " (default: none)");
    else fprintf(f, " (default: %s)", s->def);
    fputc('\n', f);
  }
}

int kd_train_cfg_check(const kd_train_cfg *c, kd_err *e) {
  if (!c->data[0]) return kd_fail(e, KD_ERR_USAGE, "kd train: --data is required (see kd train --help)");
  if (!c->student[0]) return kd_fail(e, KD_ERR_USAGE, "kd train: --student is required (see kd train --help)");
  if (!c->out[0]) return kd_fail(e, KD_ERR_USAGE, "kd train: --out is required (see kd train --help)");
  if (c->self_distill && c->teacher[0])
    return kd_fail(e, KD_ERR_USAGE, "kd train: --self-distill and --teacher exclude each other");
  if (c->labelled_fraction < 1.0 && !c->teacher[0] && !c->self_distill)
    return kd_fail(e, KD_ERR_USAGE, "kd train: --labelled-fraction %g leaves unlabelled rows, which need --teacher",
                   c->labelled_fraction);
  if (c->hint_layer > 0 && !c->teacher[0])
    return kd_fail(e, KD_ERR_USAGE, "kd train: --hint-layer needs --teacher FILE with /train/features");
  if (c->hint_epochs > 0 && c->hint_layer == 0)
    return kd_fail(e, KD_ERR_USAGE, "kd train: --hint-epochs needs --hint-layer");
  if (c->hint_epochs >= c->epochs && c->hint_layer > 0)
    return kd_fail(e, KD_ERR_USAGE, "kd train: --hint-epochs %lld leaves no epoch of --epochs %lld for distillation",
                   (long long)c->hint_epochs, (long long)c->epochs);
  if (c->resume[0] && c->init_from[0])
    return kd_fail(e, KD_ERR_USAGE, "kd train: --resume and --init exclude each other");
  if (c->nesterov && (strcmp(c->optimizer, "sgd") != 0 || c->momentum <= 0.0))
    return kd_fail(e, KD_ERR_USAGE, "kd train: --nesterov needs --optimizer sgd and --momentum > 0");
  return KD_OK;
}
