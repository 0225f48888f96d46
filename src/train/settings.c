#include "train/settings.h"

#include "loss/divergence.h"

#include <stdlib.h>
#include <string.h>

/* The index of value among the choices (NULL-terminated), or -1. */
static int choice(const char *value, const char *const *choices) {
  for (int i = 0; choices[i]; i++)
    if (strcmp(value, choices[i]) == 0) return i;
  return -1;
}

static int pick(int *out, const char *option, const char *value, const char *const *choices, const int *values,
                kd_err *e) {
  const int i = choice(value, choices);
  if (i < 0) return kd_fail(e, KD_ERR_USAGE, "kd train: --%s '%s' is not one of its choices", option, value);
  *out = values[i];
  return KD_OK;
}

/* SIZE[K|M|G][iB]: bytes (K, M, G: KiB, MiB, GiB). "" is 0: the default. */
static int parse_size(const char *v, double *bytes, kd_err *e) {
  *bytes = 0;
  if (!v[0]) return KD_OK;
  char *end;
  double x = strtod(v, &end);
  double unit = 1;
  if (*end == 'K' || *end == 'k') unit = 1024.0, end++;
  else if (*end == 'M' || *end == 'm') unit = 1048576.0, end++;
  else if (*end == 'G' || *end == 'g') unit = 1073741824.0, end++;
  if (unit > 1 && strcmp(end, "iB") == 0) end += 2;
  else if (*end == 'B' && end[1] == '\0') end++;
  if (end == v || *end || !(x > 0) || x * unit < 1 || x * unit > 1e18)
    return kd_fail(e, KD_ERR_USAGE, "kd train: --memory-budget '%s' is not a size (a positive number with K, M or G: "
                   "KiB, MiB, GiB, e.g. 512M)", v);
  *bytes = x * unit;
  return KD_OK;
}

int tr_settings_parse(tr_settings *s, const kd_train_cfg *c, kd_err *e) {
  memset(s, 0, sizeof *s);
  static const char *const optimizers[] = {"sgd", "adamw", NULL}, *const schedules[] = {"const", "cosine", NULL},
                           *const switches[] = {"auto", "on", "off", NULL},
                           *const metrics[] = {"auto", "accuracy", "nll", NULL},
                           *const nonfinite[] = {"stop", "skip", NULL},
                           *const maps[] = {"none", "mse", "mse-scores", NULL},
                           *const norms[] = {"none", "standard", "minmax", NULL};
  static const int optimizer_v[] = {KD_OPT_SGD, KD_OPT_ADAMW}, schedule_v[] = {KD_SCHED_CONST, KD_SCHED_COSINE},
                   switch_v[] = {TR_AUTO, TR_ON, TR_OFF}, metric_v[] = {TR_BEST_AUTO, TR_BEST_ACCURACY, TR_BEST_NLL},
                   nonfinite_v[] = {0, 1}, map_v[] = {0, KD_ATTN_PROBS, KD_ATTN_SCORES},
                   norm_v[] = {KD_NORM_NONE, KD_NORM_STANDARD, KD_NORM_MINMAX};
  int kind = 0, sched = 0, overlap = 0, shard = 0, best = 0, norm = 0, stream = 0;
  if (pick(&kind, "optimizer", c->optimizer, optimizers, optimizer_v, e) ||
      pick(&sched, "schedule", c->schedule, schedules, schedule_v, e) ||
      pick(&s->loss.skip_nonfinite, "on-nonfinite", c->on_nonfinite, nonfinite, nonfinite_v, e) ||
      pick(&s->inter.maps, "attn-loss", c->attn_loss, maps, map_v, e) ||
      pick(&overlap, "overlap", c->overlap, switches, switch_v, e) ||
      pick(&shard, "shard-optimizer", c->shard_optimizer, switches, switch_v, e) ||
      pick(&best, "best-metric", c->best_metric, metrics, metric_v, e) ||
      pick(&norm, "normalize", c->normalize, norms, norm_v, e) ||
      pick(&stream, "stream", c->stream, switches, switch_v, e) ||
      parse_size(c->memory_budget, &s->data.memory_budget, e))
    return e->code;
  s->optim.optim = (kd_optim_cfg){(kd_optim_kind)kind, (float)c->momentum, c->nesterov, (float)c->beta1,
                                  (float)c->beta2, (float)c->eps, (float)c->weight_decay};
  s->optim.schedule = (kd_sched_kind)sched;
  s->optim.lr = c->lr;
  s->optim.clip = c->clip;
  s->optim.warmup = c->warmup;
  s->loss.alpha = c->alpha;
  s->loss.temperature = c->temperature;
  s->loss.chunk = c->loss_chunk;
  if (kd_divergence_parse(&s->loss.div, c->divergence, e)) return e->code;
  s->loss.xtok = KD_XTOK_OFF;
  if (strcmp(c->cross_tokenizer, "off") != 0 && kd_xtok_parse(&s->loss.xtok, c->cross_tokenizer, e)) return e->code;
  s->inter.relations = c->attn_relations[0] != '\0';
  s->inter.hidden = c->hidden_map[0] != '\0';
  s->sync.overlap = (tr_switch)overlap;
  s->sync.shard = (tr_switch)shard;
  s->sync.bucket_kib = c->bucket_kib;
  s->data.normalize = (kd_norm)norm;
  s->data.train_rows = c->train_rows;
  s->data.val_rows = c->val_rows;
  s->data.labelled_fraction = c->labelled_fraction;
  s->data.stream = (tr_switch)stream;
  s->data.shuffle_window = c->shuffle_window;
  s->model.best = (tr_metric)best;
  s->model.dropout = c->dropout;
  return KD_OK;
}
