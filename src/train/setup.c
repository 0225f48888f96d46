/* Set-up of a run: the student and its loss terms and the one buffer per role (parameters, gradients + statistics,
 * optimizer moments) with their views and gradient buckets. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/dist.h"
#include "kd/registry.h"
#include "loss/attn.h"
#include "loss/hint.h"
#include "train/config.h"
#include "kd/loss.h"
#include "train/trainer.h"

/* The student the options describe. */
/* The student the options describe. The MLP's settings (--activation,
 * --weight-init) reach the family only when set: given on the command line,
 * or stored by the run being resumed with a value other than the default. */
static int model_spec(const kd_train_cfg *c, kd_model_spec *ms, kd_err *e) {
  memset(ms, 0, sizeof *ms);
  if (kd_model_spec_parse(ms, c->student, e)) return e->code;
  static const char *const opt[2] = {"activation", "weight-init"}, *const key[2] = {"activation", "init"};
  for (int i = 0; i < 2; i++) {
    const int k = kd_opts_index(kd_train_opts, KD_TRAIN_N_OPTS, opt[i]);
    char v[64], in_spec[64];
    kd_opts_format(&kd_train_opts[k], c, v, sizeof v);
    if (!c->given[k] && strcmp(v, kd_train_opts[k].def) == 0) continue;
    if (kd_spec_option(ms, key[i], in_spec, sizeof in_spec)) { /* the spec's setting; the option is its alias */
      if (strcmp(in_spec, v) != 0 && c->given[k])
        return kd_fail(e, KD_ERR_USAGE, "kd train: --%s %s and --student %s (%s=%s) disagree", opt[i], v, c->student,
                       key[i], in_spec);
      continue;
    }
    const size_t l = strlen(ms->options);
    snprintf(ms->options + l, sizeof ms->options - l, "%s%s=%s", l ? "," : "", key[i], v);
  }
  ms->dropout = (float)c->dropout;
  return KD_OK;
}

/* Options that do nothing in this run: one line each on rank 0. */
static void warn_unused(const trainer *t) {
  const kd_train_cfg *c = &t->cfg;
  if (!tr_root(t) || t->data.has_teacher || c->teacher_model[0] || c->generations > 1) return;
  static const char *const soft[] = {"alpha", "temperature"};
  for (int i = 0; i < 2; i++) {
    const int k = kd_opts_index(kd_train_opts, KD_TRAIN_N_OPTS, soft[i]);
    char v[64];
    if (k < 0 || !c->given[k]) continue;
    kd_opts_format(&kd_train_opts[k], c, v, sizeof v);
    printf("kd: warning: --%s %s has no effect without a teacher (--teacher, --self-distill or --generations > 1): "
           "this run trains on the hard labels alone\n",
           soft[i], v);
  }
}

int tr_check_setup(trainer *t, kd_err *e) {
  const kd_train_cfg *c = &t->cfg;
  if (kd_train_cfg_check(c, e)) return e->code;
  if (c->batch < t->mpi.size)
    return kd_fail(e, KD_ERR_USAGE, "kd train: --batch %lld is smaller than the %d ranks: every rank needs a row",
                   (long long)c->batch, t->mpi.size);
  t->sched.B = (int)c->batch;
  t->sched.b_local = kd_local_batch(t->sched.B, t->mpi.size, t->mpi.rank);
  t->data.has_teacher = c->teacher[0] != '\0' || c->self_distill || c->teacher_model[0] != '\0';
  t->data.teacher_live = c->teacher[0] != '\0' || c->teacher_model[0] != '\0';
  warn_unused(t);
  kd_model_spec ms;
  if (model_spec(c, &ms, e)) return e->code;
  const int b = t->sched.b_local;
  const kd_family *fam = kd_family_find(ms.family);
  const int rows = fam && b < fam->min_train_rows ? fam->min_train_rows : b;
  if (kd_model_create(&t->net.model, &ms, rows, e)) return e->code;
  if (t->net.model->input == KD_INPUT_TOKENS) {
    if (c->hint_layer > 0)
      return kd_fail(e, KD_ERR_USAGE, "kd train: --hint-layer (FitNets) is for mlp students; a %s student's hidden "
                     "states are matched per token (hidden-state distillation)", t->net.model->family);
    if (t->set.data.normalize != KD_NORM_NONE)
      return kd_fail(e, KD_ERR_USAGE, "kd train: --normalize %s is for feature rows; a %s student reads token ids",
                     c->normalize, t->net.model->family);
  }
  if (t->set.model.best == TR_BEST_AUTO) { /* a language model ranks checkpoints by NLL, a classifier by accuracy */
    const int nll = t->net.model->input == KD_INPUT_TOKENS;
    t->set.model.best = nll ? TR_BEST_NLL : TR_BEST_ACCURACY;
    snprintf(t->cfg.best_metric, sizeof t->cfg.best_metric, "%s", nll ? "nll" : "accuracy"); /* for the record */
  }
  if (c->hint_layer > 0) {
    const int nh = t->net.model->ops->n_hidden(t->net.model);
    if (c->hint_layer > nh)
      return kd_fail(e, KD_ERR_USAGE, "kd train: --hint-layer %lld: the student %s has %d hidden layer%s",
                     (long long)c->hint_layer, c->student, nh, nh == 1 ? "" : "s");
  }
  return KD_OK;
}

/* "S:T,S:T,..." into c->pairs. */
static int parse_pairs(kd_inter_cfg *c, const char *opt, const char *text, kd_err *e) {
  c->n_pairs = 0;
  for (const char *p = text; *p;) {
    int s, tl, used = 0;
    if (c->n_pairs == KD_MAX_PAIRS) return kd_fail(e, KD_ERR_USAGE, "--%s %s: at most %d pairs", opt, text, KD_MAX_PAIRS);
    if (sscanf(p, "%d:%d%n", &s, &tl, &used) != 2 || (p[used] && p[used] != ','))
      return kd_fail(e, KD_ERR_USAGE, "--%s %s: expected student:teacher layer pairs, like 1:2,2:4 (or uniform)", opt,
                     text);
    c->pairs[c->n_pairs++] = (kd_layer_pair){s, tl};
    p += used + (p[used] == ',');
  }
  return KD_OK;
}

/* Student layer m takes teacher layer m * Lt / Ls, for m = from..Ls. */
static void uniform_pairs(kd_inter_cfg *c, int Ls, int from) {
  c->n_pairs = 0;
  for (int m = from; m <= Ls && c->n_pairs < KD_MAX_PAIRS; m++)
    c->pairs[c->n_pairs++] = (kd_layer_pair){m, (int)((int64_t)m * c->t_layers / Ls) > from
                                                     ? (int)((int64_t)m * c->t_layers / Ls)
                                                     : from}; /* a shallower teacher: its first layer */
}

static int need_teacher_layers(const trainer *t, const kd_inter_cfg *c, const char *opt, kd_err *e) {
  if (c->t_layers_known) return KD_OK;
  return kd_fail(e, KD_ERR_USAGE, "--%s: the teacher file %s does not say how many layers its teacher has (attribute "
                 "`layers` of /train/attn or /train/hidden): give the pairs, like --%s 1:2,2:4", opt, t->cfg.teacher, opt);
}

/* The layer pairs of one intermediate term from its option (or its default). */
static int term_pairs(const trainer *t, kd_inter_cfg *c, const char *opt, const char *text, int from, int last_only,
                      kd_err *e) {
  const int Ls = t->net.model->ops->n_hidden(t->net.model);
  if (text[0] && strcmp(text, "uniform") != 0) return parse_pairs(c, opt, text, e);
  if (need_teacher_layers(t, c, opt, e)) return e->code;
  if (last_only && !text[0]) {
    c->n_pairs = 1;
    c->pairs[0] = (kd_layer_pair){Ls, c->t_layers};
  } else {
    uniform_pairs(c, Ls, from);
  }
  return KD_OK;
}

static int parse_relations(const char *text, unsigned *bits, kd_err *e) {
  *bits = 0;
  static const char *const names[3] = {"q-q", "k-k", "v-v"};
  for (const char *p = text; *p;) {
    const size_t l = strcspn(p, ",");
    int k = 0;
    while (k < 3 && !(strlen(names[k]) == l && strncmp(p, names[k], l) == 0)) k++;
    if (k == 3) return kd_fail(e, KD_ERR_USAGE, "--attn-relations %s: '%.*s' is not one of q-q, k-k, v-v", text, (int)l, p);
    *bits |= 1u << k;
    p += l + (p[l] == ',');
  }
  return KD_OK;
}

/* The teacher's shape: an online teacher's, or the stored tensors'. */
static int teacher_shape(trainer *t, kd_inter_cfg *base, kd_err *e) {
  const kd_train_cfg *c = &t->cfg;
  if (t->online.model) {
    if (!t->online.ptrs)
      return kd_fail(e, KD_ERR_USAGE, "--teacher-model %s: the teacher %s %s has no attention layers or hidden states to "
                     "match (a gpt or llama teacher has)", t->online.path, t->online.model->family, t->online.model->spec);
    base->t_layers = t->online.inter.layers;
    base->t_dim = t->online.inter.dim;
    base->t_heads = t->online.inter.heads;
    base->t_kv_heads = t->online.inter.kv_heads;
    base->t_head_dim = t->online.inter.head_dim;
    base->t_layers_known = 1;
    return KD_OK;
  }
  int stored = 0;
  if (kd_inter_store_probe(c->teacher, "train", &base->t_layers, &stored, &base->t_dim, &base->t_heads, e))
    return e->code;
  base->t_layers_known = base->t_layers > 0;
  if (!base->t_layers) base->t_layers = stored;
  return KD_OK;
}

/* MiniLM's default: the student's query heads, or the largest count below them that divides every width a
 * relation may read (queries H hd, grouped-query keys and values G hd, of both models). */
static int default_relation_heads(const kd_tap_shape *sh, const kd_inter_cfg *b) {
  const int w[4] = {sh->heads * sh->head_dim, sh->kv_heads * sh->head_dim, b->t_heads * b->t_head_dim,
                    b->t_kv_heads * b->t_head_dim};
  for (int r = sh->heads; r > 1; r--) {
    int ok = 1;
    for (int i = 0; i < 4; i++) ok &= w[i] <= 0 || w[i] % r == 0;
    if (ok) return r;
  }
  return 1;
}

/* TinyBERT's and MiniLM's terms, and (teacher file) the store of their targets. */
static int build_inter_terms(trainer *t, kd_err *e) {
  const kd_train_cfg *c = &t->cfg;
  const int rel = t->set.inter.relations, maps = t->set.inter.maps != 0, hid = t->set.inter.hidden;
  if (!rel && !maps && !hid) return KD_OK;
  kd_inter_cfg base;
  memset(&base, 0, sizeof base);
  base.alone_epochs = (int)c->intermediate_epochs;
  base.alone_only = c->intermediate_epochs > 0;
  if (teacher_shape(t, &base, e)) return e->code;
  kd_tap_shape sh;
  memset(&sh, 0, sizeof sh);
  if (t->net.model->ops->tap) t->net.model->ops->tap(t->net.model, KD_TAP_Q, 1, &sh);
  kd_inter_cfg rc = base, ac = base, hc = base;
  int want_h[KD_MAX_PAIRS], want_a[KD_MAX_PAIRS], nh = 0, na = 0;
  if (rel) {
    rc.weight = (float)c->attn_weight;
    rc.relation_heads = c->relation_heads > 0 ? (int)c->relation_heads : default_relation_heads(&sh, &base);
    if (parse_relations(c->attn_relations, &rc.relations, e) ||
        term_pairs(t, &rc, "attn-map", c->attn_map, 1, 1, e) || kd_relation_term_create(&t->net.terms[t->net.n_terms], t->net.model, &rc, e))
      return e->code;
    t->net.n_terms++;
  }
  if (maps) {
    ac.weight = (float)c->attn_weight;
    ac.attn = (kd_attn_kind)t->set.inter.maps;
    if (term_pairs(t, &ac, "attn-map", c->attn_map, 1, 0, e) ||
        kd_attn_term_create(&t->net.terms[t->net.n_terms], t->net.model, &ac, e))
      return e->code;
    t->net.n_terms++;
    for (int p = 0; p < ac.n_pairs; p++) want_a[na++] = ac.pairs[p].t;
  }
  if (hid) {
    hc.weight = (float)c->hidden_weight;
    if (term_pairs(t, &hc, "hidden-map", c->hidden_map, 0, 0, e) ||
        kd_hidden_term_create(&t->net.terms[t->net.n_terms], t->net.model, &hc, e))
      return e->code;
    t->net.n_terms++;
    for (int p = 0; p < hc.n_pairs; p++) want_h[nh++] = hc.pairs[p].t;
  }
  if (t->online.model) return KD_OK;
  int64_t lo, hi;
  kd_shard_range(t->data.n_train, t->mpi.size, t->mpi.rank, &lo, &hi);
  return kd_inter_store_open(&t->data.inter, c->teacher, "train", lo, hi, kd_source_total(t->data.train),
                             kd_source_width(t->data.train), t->net.model->max_batch, want_h, nh, want_a, na, e);
}

/* The loss terms the options ask for (the teacher's features are loaded). */
static int build_terms(trainer *t, kd_err *e) {
  const kd_train_cfg *c = &t->cfg;
  if (build_inter_terms(t, e)) return e->code;
  if (c->hint_layer > 0) {
    kd_term *hint;
    if (kd_hint_term_create(&hint, t->net.model, (int)c->hint_layer, kd_teacher_feat_dim(t->data.teacher),
                            (float)c->hint_weight, (int)c->hint_epochs, e))
      return e->code;
    t->net.terms[t->net.n_terms++] = hint;
  }
  return KD_OK;
}

/* metrics.csv's extra columns: feature-row runs always had "hint"; each
 * term fills the column of its name, added when it is not there. */
static void metrics_columns(trainer *t) {
  tr_log *l = &t->log;
  l->n_cols = 0;
  if (t->net.model->input == KD_INPUT_FEATURES) {
    l->cols[l->n_cols] = "hint";
    l->col_slot[l->n_cols++] = -1;
  } else { /* language models: held-out bits per byte */
    l->cols[l->n_cols] = "eval_bpb";
    l->col_slot[l->n_cols++] = TR_COL_BPB;
  }
  for (int i = 0; i < t->net.n_terms; i++) {
    int k = 0;
    while (k < l->n_cols && strcmp(l->cols[k], t->net.terms[i]->name) != 0) k++;
    if (k == l->n_cols && k < KD_METRICS_MAX_EXTRA) l->cols[l->n_cols++] = t->net.terms[i]->name;
    if (k < KD_METRICS_MAX_EXTRA) l->col_slot[k] = tr_term_slot(i);
  }
}

/* Views: the student's, then each term's placed after it; and those a
 * stage where terms train alone updates (the student's layers below them). */
static int build_views(trainer *t, kd_err *e) {
  tr_net *n = &t->net;
  const int nv = n->model->n_views;
  int nt = 0, top = 0, any_alone = 0;
  size_t off = n->model->n_params;
  for (int i = 0; i < n->n_terms; i++) {
    kd_term_place(n->terms[i], off);
    off += n->terms[i]->n_params;
    nt += n->terms[i]->n_views;
    any_alone |= n->terms[i]->alone_epochs > 0;
    if (n->terms[i]->alone_epochs > 0 && n->terms[i]->layer > top) top = n->terms[i]->layer;
  }
  n->n_total = off;
  n->views = kd_calloc((size_t)(nv + nt), sizeof(kd_param_view), "parameter views", e);
  n->alone_views = kd_calloc((size_t)(nv + nt), sizeof(kd_param_view), "parameter views", e);
  if (e->code) return e->code;
  memcpy(n->views, n->model->views, sizeof(kd_param_view) * (size_t)nv);
  n->n_views = nv;
  /* a term at layer 0 (a gpt's embedding output) still trains the embeddings */
  n->n_alone_views = any_alone ? n->model->ops->views_through(n->model, top) : 0;
  memcpy(n->alone_views, n->model->views, sizeof(kd_param_view) * (size_t)n->n_alone_views);
  for (int i = 0; i < n->n_terms; i++)
    for (int k = 0; k < n->terms[i]->n_views; k++) {
      n->views[n->n_views++] = n->terms[i]->views[k];
      if (n->terms[i]->alone_epochs > 0) n->alone_views[n->n_alone_views++] = n->terms[i]->views[k];
    }
  return KD_OK;
}

static void grads_ready(void *ctx, size_t from) { kd_gsync_ready(ctx, from); }

/* Gradient buckets may begin at any view boundary of the student; the tail
 * (the terms' gradients and the step statistics) is allreduced last. */
static int build_sync(trainer *t, kd_err *e) {
  tr_net *n = &t->net;
  const size_t nm = n->model->n_params;
  const int nv = n->model->n_views;
  size_t *cuts = kd_malloc((size_t)nv * sizeof(size_t), "bucket boundaries", e);
  if (!cuts) return e->code;
  for (int k = 0; k < nv; k++) cuts[k] = n->model->views[k].offset;
  /* auto (docs/performance.md): on one node the "communication" is memory
   * copies by the same cores that compute, so overlap only adds contention;
   * at 2 ranks a reduce-scatter + allgather cost more than one allreduce. */
  const kd_train_cfg *c = &t->cfg;
  const tr_sync_settings *ss = &t->set.sync;
  const int overlap = ss->overlap == TR_ON || (ss->overlap == TR_AUTO && t->mpi.nodes > 1);
  const int shard = ss->shard == TR_ON || (ss->shard == TR_AUTO && t->mpi.size >= 3);
  int rc = kd_gsync_init(&t->sync.gs, t->mpi.comm, n->grads, nm, n->n_total - nm + (size_t)n->n_stats, cuts, nv,
                         (size_t)c->bucket_kib * 1024 / sizeof(float), overlap, shard, e);
  free(cuts);
  if (rc) return rc;
  int n_own;
  const kd_range *own = kd_gsync_owned(&t->sync.gs, &n_own);
  t->sync.upd = kd_calloc((size_t)n_own + 1, sizeof *t->sync.upd, "update ranges", e);
  if (!t->sync.upd) return e->code;
  memcpy(t->sync.upd, own, sizeof *own * (size_t)n_own);
  t->sync.n_upd = n_own;
  if (n->n_total > nm) { /* every rank updates the (replicated) terms */
    t->sync.upd[t->sync.n_upd].lo = nm;
    t->sync.upd[t->sync.n_upd++].hi = n->n_total;
  }
  n->model->grads_ready = grads_ready;
  n->model->grads_ready_ctx = &t->sync.gs;
  return KD_OK;
}

/* Positions per chunk of the head GEMM and loss: 0 (the whole batch's logits at once) for families without
 * a head op and, by default, up to 256 classes; else --loss-chunk, or what keeps the chunk's logits and
 * their gradient within 64 MiB. */
static int loss_chunk(const trainer *t, int positions) {
  const kd_model *m = t->net.model;
  const int64_t want = t->cfg.loss_chunk;
  if (!m->ops->head || want < 0 || (want == 0 && m->out_dim <= 256) || t->xtok.kind) return 0;
  int64_t c = want > 0 ? want : ((int64_t)32 << 20) / ((int64_t)m->out_dim * (int64_t)sizeof(float));
  if (c < 1) c = 1;
  return (int)(c < positions ? c : positions);
}

static int build_batch(trainer *t, kd_err *e) {
  kd_model *m = t->net.model;
  const int C = m->out_dim, b = m->max_batch;
  const int W = kd_source_width(t->data.train); /* features, or the data's positions (<= the model's ctx) */
  if (kd_batch_init(&t->batch.in, m->input, b, W, e)) return e->code;
  const int P = kd_batch_positions(&t->batch.in);
  int dense_c = t->data.sparse ? 0 : C; /* sparse teacher logits come in their own buffers */
  if (t->online.model && t->online.model->out_dim > dense_c) dense_c = t->online.model->out_dim; /* cropped after */
  const int t_pos = t->xtok.kind && t->xtok.Tt > P ? t->xtok.Tt : P; /* another tokenizer: the teacher's rows */
  if (kd_teacher_batch_init(&t->batch.tb, b * t_pos, dense_c, t->net.n_terms ? kd_teacher_feat_dim(t->data.teacher) : 0,
                            e))
    return e->code;
  if (t->data.sparse && kd_sparse_batch_init(&t->batch.sb, t->data.sparse, b * P, e)) return e->code;
  t->batch.targets = kd_malloc((size_t)b * P * sizeof(int32_t), "batch targets", e);
  if (t->set.loss.div.kind == KD_DIV_REVERSE_SAMPLED)
    t->batch.sampled = kd_malloc((size_t)b * P * sizeof(int32_t), "batch sampled tokens", e);
  t->batch.chunk = loss_chunk(t, b * P);
  if (t->batch.chunk) {
    t->batch.chunk_work = kd_malloc(sizeof(float) * kd_loss_chunk_floats(t->batch.chunk, C), "loss chunks", e);
  } else {
    t->batch.logits = kd_malloc((size_t)b * P * C * sizeof(float), "batch logits", e);
    t->batch.dlogits = kd_malloc((size_t)b * P * C * sizeof(float), "batch logit gradients", e);
  }
  if (e->code) return e->code;
  return tr_open_rows(t, e);
}

int tr_build(trainer *t, kd_err *e) {
  tr_net *n = &t->net;
  if (build_terms(t, e) || build_views(t, e)) return e->code;
  n->n_stats = ST_BASE + (n->n_terms > 1 ? n->n_terms - 1 : 0);
  n->params = kd_malloc(n->n_total * sizeof(float), "parameters", e);
  n->grads = kd_malloc((n->n_total + (size_t)n->n_stats) * sizeof(float), "gradients", e);
  if (e->code || build_batch(t, e)) return e->code;
  kd_model_bind(n->model, n->params, n->grads);
  if (build_sync(t, e)) return e->code;
  metrics_columns(t);
  return kd_optim_init(&t->sync.opt, &t->set.optim.optim, n->n_total, e);
}

int tr_terms_alone(const trainer *t, int64_t epoch) {
  for (int i = 0; i < t->net.n_terms; i++)
    if (epoch < t->net.terms[i]->alone_epochs) return 1;
  return 0;
}

/* The run configuration as text, for checkpoints. */
int tr_config_items(trainer *t, kd_err *e) {
  free(t->resume.items);
  t->resume.items = kd_calloc((size_t)KD_TRAIN_N_OPTS + 5, sizeof(kd_cfg_item), "configuration", e);
  if (!t->resume.items) return e->code;
  kd_cfg_item *it = t->resume.items;
  int k = 0;
  for (int i = 0; i < KD_TRAIN_N_OPTS; i++, k++) {
    snprintf(it[k].name, sizeof it[k].name, "%s", kd_train_opts[i].name);
    kd_opts_format(&kd_train_opts[i], &t->cfg, it[k].value, sizeof it[k].value);
  }
  /* Resolved values, for the record (not options); _order: the order rows are read in, which a resume keeps */
  snprintf(it[k].name, sizeof it[k].name, "_order");
  tr_order_item(t, it[k++].value, sizeof it[0].value);
  if (t->data.is_set) { /* the shard files as expanded */
    snprintf(it[k].name, sizeof it[k].name, "_data_files");
    kd_fileset_join(&t->data.dfiles, it[k++].value, sizeof it[0].value);
    if (t->cfg.teacher[0]) {
      snprintf(it[k].name, sizeof it[k].name, "_teacher_files");
      kd_fileset_join(&t->data.tfiles, it[k++].value, sizeof it[0].value);
    }
  }
  snprintf(it[k].name, sizeof it[k].name, "_ranks");
  snprintf(it[k++].value, sizeof it[0].value, "%d", t->mpi.size);
  snprintf(it[k].name, sizeof it[k].name, "_threads");
  snprintf(it[k++].value, sizeof it[0].value, "%d", t->mpi.threads);
  t->resume.n_items = k;
  return KD_OK;
}

void tr_free(trainer *t) {
  kd_rows_free(t->data.rows); /* first: it reads the stores below (and a reader thread may) */
  free(t->data.scan.stats);
  free(t->data.scan.file_fp);
  kd_fileset_free(&t->data.dfiles);
  kd_fileset_free(&t->data.tfiles);
  kd_model_free(t->net.model);
  for (int i = 0; i < t->net.n_terms; i++) kd_term_free(t->net.terms[i]);
  kd_model_free(t->snap.model);
  free(t->snap.params);
  tr_online_free(&t->online);
  tr_xtok_free(&t->xtok);
  tr_rollout_free(&t->roll);
  kd_inter_store_free(t->data.inter);
  kd_optim_free(&t->sync.opt);
  kd_gsync_free(&t->sync.gs);
  free(t->sync.upd);
  kd_source_free(t->data.train);
  kd_source_free(t->data.valid);
  kd_source_free(t->data.test);
  kd_teacher_free(t->data.teacher);
  kd_sparse_free(t->data.sparse);
  kd_teacher_free(t->data.valid_t);
  kd_teacher_free(t->data.test_t);
  kd_preprocess_free(&t->data.pre);
  kd_tokenizer_free(&t->data.tok);
  free(t->net.params);
  free(t->net.grads);
  free(t->net.views);
  free(t->net.alone_views);
  kd_batch_free(&t->batch.in);
  kd_teacher_batch_free(&t->batch.tb);
  kd_sparse_batch_free(&t->batch.sb);
  free(t->batch.targets);
  free(t->batch.sampled);
  free(t->batch.logits);
  free(t->batch.dlogits);
  free(t->batch.chunk_work);
  free(t->resume.items);
}
