#include "data/tokenizer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/h5io.h"
#include "data/bpe.h"

void kd_tokenizer_free(kd_tokenizer *t) {
  free(t->offsets);
  free(t->bytes);
  free(t->merges);
  free(t->pattern);
  free(t->merge_ids);
  free(t->token_kind);
  memset(t, 0, sizeof *t);
}

int kd_tokenizer_bytes(kd_tokenizer *t, kd_err *e) {
  memset(t, 0, sizeof *t);
  snprintf(t->kind, sizeof t->kind, "bytes");
  t->pad_id = t->sep_id = t->end_id = t->unk_id = t->target_id0 = -1;
  t->vocab = 256;
  t->offsets = kd_malloc(sizeof(int64_t) * 257, "tokenizer", e);
  t->bytes = kd_malloc(256, "tokenizer", e);
  if (e->code) {
    kd_tokenizer_free(t);
    return e->code;
  }
  for (int i = 0; i <= 256; i++) t->offsets[i] = i;
  for (int i = 0; i < 256; i++) t->bytes[i] = (uint8_t)i;
  return KD_OK;
}

/* The record's dataset or group `name` under group g ("/tokenizer", "/teacher_tokenizer"). */
enum { KD_TOKENIZER_LOC = 96 };
static const char *loc(char *buf, const char *g, const char *name) {
  snprintf(buf, KD_TOKENIZER_LOC, "%s/%s", g, name);
  return buf;
}

/* The vocabulary's entries, stored as vlen uint8 (h5py: vlen_dtype(uint8))
 * or as strings (h5py: string_dtype()), into offsets/bytes. */
static int read_vocab(kd_tokenizer *t, hid_t f, const char *path, const char *g, kd_err *e) {
  char ds[KD_TOKENIZER_LOC];
  hid_t d = H5Dopen2(f, loc(ds, g, "vocab"), H5P_DEFAULT);
  hid_t ft = d >= 0 ? H5Dget_type(d) : -1, sp = d >= 0 ? H5Dget_space(d) : -1;
  int rc = KD_OK;
  const hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
  const H5T_class_t cls = ft >= 0 ? H5Tget_class(ft) : H5T_NO_CLASS;
  if (n < 1 || (cls != H5T_VLEN && cls != H5T_STRING)) {
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: %s/vocab must be a 1-D dataset of byte strings (vlen uint8 or strings)",
                 path, g);
    goto out;
  }
  if (n > (1 << 28)) {
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: %s/vocab has %lld entries; kd reads at most %d", path, g, (long long)n,
                 1 << 28);
    goto out;
  }
  t->vocab = (int)n;
  t->offsets = kd_malloc(sizeof(int64_t) * (size_t)(n + 1), "tokenizer", e);
  void *buf = kd_calloc((size_t)n, cls == H5T_VLEN ? sizeof(hvl_t) : sizeof(char *), "tokenizer", e);
  hid_t mt = cls == H5T_VLEN ? H5Tvlen_create(H5T_NATIVE_UINT8) : H5Tcopy(H5T_C_S1);
  if (cls == H5T_STRING) H5Tset_size(mt, H5T_VARIABLE);
  if (!e->code && H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
    rc = kd_fail(e, KD_ERR_RUNTIME, "%s: cannot read %s/vocab", path, g);
  if (!rc && !e->code) {
    size_t total = 0;
    for (hssize_t i = 0; i < n; i++)
      total += cls == H5T_VLEN ? ((hvl_t *)buf)[i].len : strlen(((char **)buf)[i] ? ((char **)buf)[i] : "");
    t->bytes = kd_malloc(total ? total : 1, "tokenizer", e);
    size_t pos = 0;
    for (hssize_t i = 0; t->bytes && i < n; i++) {
      const void *src = cls == H5T_VLEN ? ((hvl_t *)buf)[i].p : ((char **)buf)[i];
      const size_t len = cls == H5T_VLEN ? ((hvl_t *)buf)[i].len : strlen(src ? src : "");
      t->offsets[i] = (int64_t)pos;
      if (len) memcpy(t->bytes + pos, src, len);
      pos += len;
    }
    t->offsets[n] = (int64_t)pos;
    H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, buf);
  }
  rc = rc ? rc : e->code;
  free(buf);
  H5Tclose(mt);
out:
  if (sp >= 0) H5Sclose(sp);
  if (ft >= 0) H5Tclose(ft);
  if (d >= 0) H5Dclose(d);
  return rc;
}

static int read_merges(kd_tokenizer *t, hid_t f, const char *path, const char *g, kd_err *e) {
  char ds[KD_TOKENIZER_LOC];
  if (!kd_h5_exists(f, loc(ds, g, "merges"))) return KD_OK;
  int nd;
  int64_t d[KD_H5_MAX_DIMS];
  if (kd_h5_shape(f, path, loc(ds, g, "merges"), &nd, d, e)) return e->code;
  if (nd != 2 || d[1] != 2) return kd_fail(e, KD_ERR_RUNTIME, "%s: %s/merges must be [M, 2]", path, g);
  if (d[0] > (1 << 28)) return kd_fail(e, KD_ERR_RUNTIME, "%s: %s/merges has %lld rows; kd reads at most %d",
                                       path, g, (long long)d[0], 1 << 28);
  t->n_merges = (int)d[0];
  t->merges = kd_malloc(sizeof(int32_t) * 2 * (size_t)(d[0] ? d[0] : 1), "tokenizer merges", e);
  if (!t->merges) return e->code;
  return kd_h5_read_rows(f, path, loc(ds, g, "merges"), 0, d[0], H5T_NATIVE_INT32, t->merges, e);
}

static int read_id(hid_t f, const char *path, const char *g, const char *name, int32_t *v, kd_err *e) {
  int64_t x = -1;
  if (H5Aexists_by_name(f, g, name, H5P_DEFAULT) > 0 && kd_h5_get_attr_i64(f, path, g, name, &x, e))
    return e->code;
  if (x < -1 || x > INT32_MAX)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: %s attribute %s = %lld is not an id (-1: absent)", path, g, name,
                   (long long)x);
  *v = (int32_t)x;
  return KD_OK;
}

/* Every id the record names lies within its vocabulary. */
static int check_ids(const kd_tokenizer *t, const char *path, const char *g, kd_err *e) {
  const char *names[5] = {"pad_id", "sep_id", "end_id", "unk_id", "target_id0"};
  const int32_t ids[5] = {t->pad_id, t->sep_id, t->end_id, t->unk_id, t->target_id0};
  for (int i = 0; i < 5; i++) /* target_id0 starts the range [target_id0, vocab): it may equal vocab */
    if (ids[i] < -1 || (t->vocab > 0 && ids[i] >= t->vocab + (i == 4)))
      return kd_fail(e, KD_ERR_RUNTIME, "%s: %s attribute %s = %d is outside its vocabulary [0, %d) (-1: absent)",
                     path, g, names[i], (int)ids[i], t->vocab);
  for (int i = 0; i < 2 * t->n_merges; i++)
    if (t->merges[i] < 0 || (t->vocab > 0 && t->merges[i] >= t->vocab))
      return kd_fail(e, KD_ERR_RUNTIME, "%s: %s/merges row %d names id %d, outside the vocabulary [0, %d)", path, g,
                     i / 2, (int)t->merges[i], t->vocab);
  return KD_OK;
}

/* A "bpe" record's pre-tokenizer: the attribute pre_tokenizer; records written before it existed split as "kd1". */
static int read_pre(kd_tokenizer *t, hid_t f, const char *path, const char *g, kd_err *e) {
  const htri_t has = H5Aexists_by_name(f, g, "pre_tokenizer", H5P_DEFAULT);
  if (has < 0) return kd_fail(e, KD_ERR_RUNTIME, "%s: cannot read the attributes of %s", path, g);
  if (has == 0) {
    snprintf(t->pre, sizeof t->pre, "%s", KD_BPE_PRE_KD1);
    return KD_OK;
  }
  if (kd_h5_get_attr_str(f, path, g, "pre_tokenizer", t->pre, sizeof t->pre, e)) return e->code;
  if (strcmp(t->pre, KD_BPE_PRE_GPT2) && strcmp(t->pre, KD_BPE_PRE_KD1) && strcmp(t->pre, KD_BPE_PRE_REGEX))
    return kd_fail(e, KD_ERR_RUNTIME, "%s: %s pre_tokenizer '%s' is not known to kd %s (%s, %s, %s)", path, g,
                   t->pre, KD_VERSION, KD_BPE_PRE_GPT2, KD_BPE_PRE_KD1, KD_BPE_PRE_REGEX);
  if (strcmp(t->pre, KD_BPE_PRE_REGEX) == 0) {
    char buf[KD_BPE_MAX_PATTERN + 1];
    if (kd_h5_get_attr_str(f, path, g, "pattern", buf, sizeof buf, e)) return e->code;
    if (strlen(buf) >= KD_BPE_MAX_PATTERN)
      return kd_fail(e, KD_ERR_RUNTIME, "%s: %s attribute pattern is longer than kd reads (%d bytes)", path, g,
                     KD_BPE_MAX_PATTERN - 1);
    if (!(t->pattern = kd_malloc(strlen(buf) + 1, "tokenizer pattern", e))) return e->code;
    memcpy(t->pattern, buf, strlen(buf) + 1);
  }
  return KD_OK;
}

/* The parts of a bpe record that Hugging Face tokenizers add (data/hftok.h); absent in kd's own. */
static int read_hf_parts(kd_tokenizer *t, hid_t f, const char *path, const char *g, kd_err *e) {
  char ds[KD_TOKENIZER_LOC];
  int64_t im = 0;
  if (H5Aexists_by_name(f, g, "normalizer", H5P_DEFAULT) > 0 &&
      kd_h5_get_attr_str(f, path, g, "normalizer", t->normalizer, sizeof t->normalizer, e))
    return e->code;
  if (t->normalizer[0] && strcmp(t->normalizer, "nfc") != 0)
    return kd_fail(e, KD_ERR_RUNTIME, "%s: %s normalizer '%s' is not known to kd %s (nfc)", path, g, t->normalizer,
                   KD_VERSION);
  if (H5Aexists_by_name(f, g, "ignore_merges", H5P_DEFAULT) > 0 &&
      kd_h5_get_attr_i64(f, path, g, "ignore_merges", &im, e))
    return e->code;
  t->ignore_merges = im != 0;
  if (!kd_h5_exists(f, loc(ds, g, "merge_ids")) && strcmp(t->pre, KD_BPE_PRE_REGEX) == 0) {
    /* a Hugging Face record without merges writes no merge_ids: it is still one, not kd's own layout */
    if (t->n_merges) return kd_fail(e, KD_ERR_RUNTIME, "%s: %s has merges but no merge_ids", path, g);
    if (!(t->merge_ids = kd_malloc(sizeof(int32_t), "tokenizer merges", e))) return e->code;
  }
  if (kd_h5_exists(f, loc(ds, g, "merge_ids"))) {
    int nd;
    int64_t d[KD_H5_MAX_DIMS];
    if (kd_h5_shape(f, path, loc(ds, g, "merge_ids"), &nd, d, e)) return e->code;
    if (nd != 1 || d[0] != t->n_merges)
      return kd_fail(e, KD_ERR_RUNTIME, "%s: %s/merge_ids must be [M] with M = %d merges", path, g, t->n_merges);
    if (!(t->merge_ids = kd_malloc(sizeof(int32_t) * (size_t)(d[0] ? d[0] : 1), "tokenizer merges", e)) ||
        kd_h5_read_rows(f, path, loc(ds, g, "merge_ids"), 0, d[0], H5T_NATIVE_INT32, t->merge_ids, e))
      return e->code;
    for (int i = 0; i < t->n_merges; i++)
      if (t->merge_ids[i] < 0 || t->merge_ids[i] >= t->vocab)
        return kd_fail(e, KD_ERR_RUNTIME, "%s: %s/merge_ids row %d names id %d, outside the vocabulary [0, %d)",
                       path, g, i, (int)t->merge_ids[i], t->vocab);
  }
  if (kd_h5_exists(f, loc(ds, g, "token_kind"))) {
    int nd;
    int64_t d[KD_H5_MAX_DIMS];
    if (kd_h5_shape(f, path, loc(ds, g, "token_kind"), &nd, d, e)) return e->code;
    if (nd != 1 || d[0] != t->vocab)
      return kd_fail(e, KD_ERR_RUNTIME, "%s: %s/token_kind must be [V] with V = %d ids", path, g, t->vocab);
    int32_t *k = kd_malloc(sizeof(int32_t) * (size_t)t->vocab, "token kinds", e);
    if (!k || kd_h5_read_rows(f, path, loc(ds, g, "token_kind"), 0, d[0], H5T_NATIVE_INT32, k, e)) {
      free(k);
      return e->code;
    }
    t->token_kind = kd_malloc((size_t)t->vocab, "token kinds", e);
    for (int i = 0; t->token_kind && i < t->vocab; i++) {
      if (k[i] < KD_TOKEN_TEXT || k[i] > KD_TOKEN_UNUSED) {
        kd_fail(e, KD_ERR_RUNTIME, "%s: %s/token_kind row %d is %d, not a kind (0 text, 1 special, 2 added, "
                "3 unused)", path, g, i, (int)k[i]);
        break;
      }
      t->token_kind[i] = (uint8_t)k[i];
    }
    free(k);
  }
  return e->code;
}

int kd_tokenizer_read_at(kd_tokenizer *t, const char *path, const char *g, int *present, kd_err *e) {
  char ds[KD_TOKENIZER_LOC];
  memset(t, 0, sizeof *t);
  *present = 0;
  hid_t f;
  if (kd_h5_open_ro(&f, path, e)) return e->code;
  int rc = KD_OK;
  if (kd_h5_exists(f, g)) {
    *present = 1;
    rc = kd_h5_get_attr_str(f, path, g, "kind", t->kind, sizeof t->kind, e);
    if (!rc) rc = read_id(f, path, g, "pad_id", &t->pad_id, e);
    if (!rc) rc = read_id(f, path, g, "sep_id", &t->sep_id, e);
    if (!rc) rc = read_id(f, path, g, "end_id", &t->end_id, e);
    if (!rc) rc = read_id(f, path, g, "unk_id", &t->unk_id, e);
    if (!rc) rc = read_id(f, path, g, "target_id0", &t->target_id0, e);
    if (!rc && kd_h5_exists(f, loc(ds, g, "vocab"))) rc = read_vocab(t, f, path, g, e);
    if (!rc) rc = read_merges(t, f, path, g, e);
    if (!rc) rc = check_ids(t, path, g, e);
    if (!rc && strcmp(t->kind, "bpe") == 0) rc = read_pre(t, f, path, g, e);
    if (!rc && strcmp(t->kind, "bpe") == 0) rc = read_hf_parts(t, f, path, g, e);
  }
  H5Eclear2(H5E_DEFAULT);
  H5Fclose(f);
  if (rc) kd_tokenizer_free(t);
  return rc;
}

int kd_tokenizer_read(kd_tokenizer *t, const char *path, int *present, kd_err *e) {
  return kd_tokenizer_read_at(t, path, "/tokenizer", present, e);
}

static int write_vocab(hid_t f, const char *path, const kd_tokenizer *t, kd_err *e) {
  hvl_t *v = kd_calloc((size_t)t->vocab, sizeof(hvl_t), "tokenizer", e);
  if (!v) return e->code;
  for (int i = 0; i < t->vocab; i++) {
    v[i].len = (size_t)(t->offsets[i + 1] - t->offsets[i]);
    v[i].p = t->bytes + t->offsets[i];
  }
  hsize_t n = (hsize_t)t->vocab;
  hid_t ty = H5Tvlen_create(H5T_NATIVE_UINT8), sp = H5Screate_simple(1, &n, NULL);
  hid_t d = H5Dcreate2(f, "/tokenizer/vocab", ty, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  int rc = d < 0 || H5Dwrite(d, ty, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0
               ? kd_fail(e, KD_ERR_RUNTIME, "%s: cannot write /tokenizer/vocab", path)
               : KD_OK;
  if (d >= 0) H5Dclose(d);
  H5Sclose(sp);
  H5Tclose(ty);
  free(v);
  return rc;
}

static int write_hf_parts(hid_t f, const char *path, const kd_tokenizer *t, kd_err *e) {
  if (t->pattern && kd_h5_attr_str(f, "/tokenizer", "pattern", t->pattern, e)) return e->code;
  if (t->normalizer[0] && kd_h5_attr_str(f, "/tokenizer", "normalizer", t->normalizer, e)) return e->code;
  if (t->ignore_merges && kd_h5_attr_i64(f, "/tokenizer", "ignore_merges", 1, e)) return e->code;
  if (t->merge_ids && t->n_merges) {
    const int64_t d[1] = {t->n_merges};
    if (kd_h5_write(f, path, "/tokenizer/merge_ids", 1, d, H5T_STD_I32LE, H5T_NATIVE_INT32, t->merge_ids, e))
      return e->code;
  }
  if (t->token_kind) {
    const int64_t d[1] = {t->vocab};
    if (kd_h5_write(f, path, "/tokenizer/token_kind", 1, d, H5T_STD_U8LE, H5T_NATIVE_UINT8, t->token_kind, e))
      return e->code;
  }
  return KD_OK;
}

int kd_tokenizer_write(hid_t f, const char *path, const kd_tokenizer *t, kd_err *e) {
  hid_t g = H5Gcreate2(f, "/tokenizer", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (g < 0) return kd_fail(e, KD_ERR_RUNTIME, "%s: cannot create /tokenizer", path);
  H5Gclose(g);
  if (kd_h5_attr_str(f, "/tokenizer", "kind", t->kind, e) || kd_h5_attr_i64(f, "/tokenizer", "pad_id", t->pad_id, e) ||
      kd_h5_attr_i64(f, "/tokenizer", "sep_id", t->sep_id, e) || kd_h5_attr_i64(f, "/tokenizer", "end_id", t->end_id, e))
    return e->code;
  if (strcmp(t->kind, "symbols") == 0 && (kd_h5_attr_i64(f, "/tokenizer", "unk_id", t->unk_id, e) ||
                                          kd_h5_attr_i64(f, "/tokenizer", "target_id0", t->target_id0, e)))
    return e->code;
  if (t->vocab && write_vocab(f, path, t, e)) return e->code;
  if (strcmp(t->kind, "bpe") == 0 && kd_h5_attr_str(f, "/tokenizer", "pre_tokenizer", t->pre[0] ? t->pre : KD_BPE_PRE_KD1, e))
    return e->code;
  if (t->n_merges) {
    int64_t d[2] = {t->n_merges, 2};
    if (kd_h5_write_i32(f, path, "/tokenizer/merges", 2, d, t->merges, e)) return e->code;
  }
  return write_hf_parts(f, path, t, e);
}

/* Bytes of a UTF-8 character starting with lead byte c (1 for a stray byte). */
static size_t utf8_len(uint8_t c) { return c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1; }

/* Symbols: text as source characters (UTF-8 characters among the ids below target_id0; others unk_id). */
static int encode_source(const kd_tokenizer *t, const uint8_t *text, size_t len, int32_t *ids, int cap, int *n,
                         kd_err *e) {
  const int hi = t->target_id0 > 0 ? t->target_id0 : t->vocab;
  for (size_t i = 0; i < len;) {
    size_t l = utf8_len(text[i]);
    if (i + l > len) l = len - i;
    int32_t id = t->unk_id;
    for (int v = 0; v < hi; v++)
      if (v != t->pad_id && v != t->sep_id && v != t->end_id && v != t->unk_id &&
          (size_t)(t->offsets[v + 1] - t->offsets[v]) == l && memcmp(t->bytes + t->offsets[v], text + i, l) == 0) {
        id = v;
        break;
      }
    if (*n >= cap) return kd_fail(e, KD_ERR_USAGE, "the text is longer than %d tokens", cap);
    if (id < 0) return kd_fail(e, KD_ERR_USAGE, "'%.*s' is not a source symbol of this tokenizer", (int)l, text + i);
    ids[(*n)++] = id;
    i += l;
  }
  return KD_OK;
}

int kd_tokenizer_encode(const kd_tokenizer *t, const uint8_t *text, size_t len, int32_t *ids, int cap, int *n,
                        kd_err *e) {
  *n = 0;
  if (strcmp(t->kind, "bpe") == 0) return kd_bpe_encode(t, text, len, ids, cap, n, e);
  if (strcmp(t->kind, "symbols") == 0) return encode_source(t, text, len, ids, cap, n, e);
  if (strcmp(t->kind, "bytes") != 0)
    return kd_fail(e, KD_ERR_USAGE, "encoding text for a '%s' tokenizer is not in this kd (bytes and bpe are)",
                   t->kind);
  for (size_t i = 0; i < len; i++) {
    if (*n >= cap) return kd_fail(e, KD_ERR_USAGE, "the text is longer than %d tokens", cap);
    ids[(*n)++] = text[i];
  }
  return KD_OK;
}

static size_t put(uint8_t *out, size_t pos, size_t cap, const void *p, size_t l) {
  if (pos + l > cap) return pos;
  memcpy(out + pos, p, l);
  return pos + l;
}

/* Symbols: source characters joined, the separator as a tab, target symbols spaced, pad and end omitted. */
static size_t decode_symbols(const kd_tokenizer *t, const int32_t *ids, int n, uint8_t *out, size_t cap) {
  size_t pos = 0;
  int prev_target = 0;
  for (int i = 0; i < n; i++) {
    const int32_t v = ids[i];
    if (v < 0 || v >= t->vocab || v == t->pad_id || v == t->end_id) continue;
    if (v == t->sep_id) {
      pos = put(out, pos, cap, "\t", 1);
      prev_target = 0;
      continue;
    }
    const int target = t->target_id0 >= 0 && v >= t->target_id0;
    if (target && prev_target) pos = put(out, pos, cap, " ", 1);
    pos = put(out, pos, cap, t->bytes + t->offsets[v], (size_t)(t->offsets[v + 1] - t->offsets[v]));
    prev_target = target;
  }
  return pos;
}

size_t kd_tokenizer_decode(const kd_tokenizer *t, const int32_t *ids, int n, uint8_t *out, size_t cap) {
  if (strcmp(t->kind, "symbols") == 0) return decode_symbols(t, ids, n, out, cap);
  size_t pos = 0;
  for (int i = 0; i < n; i++) {
    if (ids[i] < 0 || ids[i] >= t->vocab) continue;
    const size_t a = (size_t)t->offsets[ids[i]], l = (size_t)t->offsets[ids[i] + 1] - a;
    if (pos + l > cap) break;
    memcpy(out + pos, t->bytes + a, l);
    pos += l;
  }
  return pos;
}
