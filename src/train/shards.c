/* --data and --teacher as sets of shard files (data/fileset.h): expanded,
 * and every shard checked against the first before any step (rows, width,
 * stored type, teacher classes, K, tokenizer record), one teacher shard per
 * data shard. A set is streamed; its evaluation splits are the first
 * shard's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/h5io.h"
#include "core/rng.h"
#include "train/trainer.h"

/* The files of --data and --teacher; data1 and teacher1 name the first. */
int tr_open_sets(trainer *t, kd_err *e) {
  const kd_train_cfg *c = &t->cfg;
  tr_data *d = &t->data;
  d->is_set = kd_fileset_is_set(c->data) || (c->teacher[0] && kd_fileset_is_set(c->teacher));
  int rc = kd_fileset_is_set(c->data) ? kd_fileset_expand(&d->dfiles, c->data, e)
                                      : kd_fileset_single(&d->dfiles, c->data, e);
  if (!rc && c->teacher[0])
    rc = kd_fileset_is_set(c->teacher) ? kd_fileset_expand(&d->tfiles, c->teacher, e)
                                       : kd_fileset_single(&d->tfiles, c->teacher, e);
  if (rc) return rc;
  snprintf(d->data1, sizeof d->data1, "%s", d->dfiles.paths[0]);
  snprintf(d->teacher1, sizeof d->teacher1, "%s", c->teacher[0] ? d->tfiles.paths[0] : "");
  if (!d->is_set) return KD_OK;
  if (c->teacher[0] && d->tfiles.n != d->dfiles.n)
    return kd_fail(e, KD_ERR_RUNTIME, "--teacher %s names %d file%s for the %d shard%s of --data %s: one teacher shard "
                   "per data shard (paired in the byte-wise order of their paths)", c->teacher, d->tfiles.n, d->tfiles.n == 1 ? "" : "s",
                   d->dfiles.n, d->dfiles.n == 1 ? "" : "s", c->data);
  if (c->val_rows > 0 || c->train_rows > 0)
    return kd_fail(e, KD_ERR_USAGE, "kd train: --%s takes rows of one data file; with a set of shards, name fewer "
                   "shards (or give /valid in the first shard)", c->val_rows > 0 ? "val-rows" : "train-rows");
  if (t->set.data.stream == TR_OFF && !c->resume[0])
    return kd_fail(e, KD_ERR_USAGE, "kd train: --stream off: a set of shard files is streamed (--data %s)", c->data);
  return KD_OK;
}

static int same_sparse(const kd_sparse_info *a, const kd_sparse_info *b) {
  return a->dense == b->dense && a->topk_k == b->topk_k && a->has_lse == b->has_lse && a->sampled_s == b->sampled_s &&
         a->sample_temperature == b->sample_temperature;
}

static int same_tokenizer(const kd_tokenizer *a, const kd_tokenizer *b) {
  return strcmp(a->kind, b->kind) == 0 && a->vocab == b->vocab && a->n_merges == b->n_merges &&
         a->pad_id == b->pad_id && a->sep_id == b->sep_id && a->end_id == b->end_id &&
         memcmp(a->offsets, b->offsets, sizeof(int64_t) * (size_t)(a->vocab + 1)) == 0 &&
         memcmp(a->bytes, b->bytes, (size_t)a->offsets[a->vocab]) == 0 &&
         (!a->n_merges || memcmp(a->merges, b->merges, sizeof(int32_t) * 2 * (size_t)a->n_merges) == 0);
}

/* Every data shard's tokenizer record is the first's. */
static int check_tokenizers(const tr_data *d, kd_err *e) {
  kd_tokenizer first, other;
  int has0 = 0, has = 0;
  if (kd_tokenizer_read(&first, d->dfiles.paths[0], &has0, e)) return e->code;
  int rc = KD_OK;
  for (int i = 1; i < d->dfiles.n && !rc; i++) {
    if ((rc = kd_tokenizer_read(&other, d->dfiles.paths[i], &has, e))) break;
    if (has != has0 || (has && !same_tokenizer(&first, &other)))
      rc = kd_fail(e, KD_ERR_RUNTIME, "%s: its /tokenizer %s that of the set's first shard %s", d->dfiles.paths[i],
                   has && has0 ? "differs from" : has ? "is there, unlike" : "is missing, unlike", d->dfiles.paths[0]);
    if (has) kd_tokenizer_free(&other);
  }
  if (has0) kd_tokenizer_free(&first);
  return rc;
}

/* The stored type of a teacher shard's /train/logits. */
static int logits_type(const char *path, size_t *size, kd_err *e) {
  hid_t f;
  if (kd_h5_open_ro(&f, path, e)) return e->code;
  *size = kd_h5_exists(f, "/train/logits") ? kd_h5_type_size(f, "/train/logits") : 0;
  H5Fclose(f);
  return KD_OK;
}

/* Each teacher shard against its data shard and the first teacher shard. */
static int check_teachers(trainer *t, int pos, int *classes, kd_err *e) {
  tr_data *d = &t->data;
  const kd_fileset *D = &d->dfiles, *T = &d->tfiles;
  size_t type0 = 0;
  for (int i = 0; i < T->n; i++) {
    const int64_t rows = D->row0[i + 1] - D->row0[i];
    kd_sparse_info si;
    if (kd_sparse_probe(T->paths[i], "train", rows, pos, &si, e)) return e->code;
    if (i == 0) d->sparse_info = si;
    else if (!same_sparse(&si, &d->sparse_info))
      return kd_fail(e, KD_ERR_RUNTIME, "%s: holds other teacher logits than the set's first shard %s (dense %d/%d, "
                     "top-k K %d/%d, lse %d/%d, sampled S %d/%d)", T->paths[i], T->paths[0], si.dense,
                     d->sparse_info.dense, si.topk_k, d->sparse_info.topk_k, si.has_lse, d->sparse_info.has_lse,
                     si.sampled_s, d->sparse_info.sampled_s);
    if (!si.dense) continue;
    int cl = 0;
    size_t type = 0;
    if (kd_teacher_probe(T->paths[i], "train", D->paths[i], rows, pos, &cl, e) || logits_type(T->paths[i], &type, e))
      return e->code;
    if (i == 0) *classes = cl, type0 = type;
    if (cl != *classes || type != type0)
      return kd_fail(e, KD_ERR_RUNTIME, "%s: /train/logits has %d classes stored in %zu bytes each, but the set's "
                     "first shard %s has %d in %zu", T->paths[i], cl, type, T->paths[0], *classes, type0);
  }
  memcpy(d->tfiles.row0, d->dfiles.row0, sizeof(int64_t) * (size_t)(D->n + 1));
  return KD_OK;
}

/* /train of a set: the shards' rows and shapes, the teacher shards, the tokenizer records. */
int tr_probe_set(trainer *t, int *classes, kd_err *e) {
  tr_data *d = &t->data;
  const kd_train_cfg *c = &t->cfg;
  if (kd_fileset_probe(&d->dfiles, "train", &d->info_train, e)) return e->code;
  if (!d->info_train.present)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: dataset /train/%s is missing in every shard", c->data,
                   t->net.model->input == KD_INPUT_TOKENS ? "tokens" : "x");
  const int pos = d->info_train.kind == KD_INPUT_TOKENS ? d->info_train.width : 0;
  d->sparse_mode = KD_SPARSE_DENSE;
  if (c->teacher[0] &&
      (check_teachers(t, pos, classes, e) ||
       kd_sparse_resolve(c->sparse_kd, &d->sparse_info, d->teacher1, c->temperature, &d->sparse_mode, e)))
    return e->code;
  return d->info_train.kind == KD_INPUT_TOKENS ? check_tokenizers(d, e) : KD_OK;
}

/* A set's fingerprint from its shards', in order (each as a file of its own has it). */
uint64_t tr_set_fingerprint(const uint64_t *parts, int n) {
  uint64_t h = kd_mix64(0x736861726473u ^ (uint64_t)n);
  for (int i = 0; i < n; i++) h = kd_mix64(h ^ parts[i]);
  return h;
}

/* Each teacher shard written by kd logits names its data shard's fingerprint. */
int tr_check_set_provenance(trainer *t, const uint64_t *data_fp, kd_err *e) {
  const kd_fileset *T = &t->data.tfiles;
  int noted = 0;
  for (int i = 0; i < T->n; i++) {
    hid_t f;
    if (kd_h5_open_ro(&f, T->paths[i], e)) return e->code;
    char hex[64] = "";
    int rc = KD_OK, has = H5Aexists(f, "data_fingerprint") > 0;
    if (has) rc = kd_h5_get_attr_str(f, T->paths[i], "/", "data_fingerprint", hex, sizeof hex, e);
    H5Fclose(f);
    if (rc) return rc;
    if (has && strtoull(hex, NULL, 16) != data_fp[i])
      return kd_fail(e, KD_ERR_RUNTIME, "%s: the teacher logits were computed from other data (its data_fingerprint "
                     "%s, /train of its data shard %s has %016llx)", T->paths[i], hex, t->data.dfiles.paths[i],
                     (unsigned long long)data_fp[i]);
    if (!has && !noted++ && tr_root(t))
      printf("kd: note: %s carries no data fingerprint (written by another tool): only its row counts were checked\n",
             T->paths[i]);
  }
  return KD_OK;
}
