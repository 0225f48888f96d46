#include "data/align.h"

#include <stdlib.h>
#include <string.h>

/* A text token: one that encoding plain text can produce (not a special, added or unused id, nor one of the
 * record's control ids). */
static int is_text(const kd_tokenizer *t, int id) {
  if (id == t->pad_id || id == t->sep_id || id == t->end_id || id == t->unk_id) return 0;
  return !t->token_kind || t->token_kind[id] == KD_TOKEN_TEXT;
}

static uint64_t hash_bytes(const uint8_t *p, int64_t n) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (int64_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

static int same_bytes(const kd_tokenizer *a, int i, const kd_tokenizer *b, int j) {
  const int64_t na = a->offsets[i + 1] - a->offsets[i], nb = b->offsets[j + 1] - b->offsets[j];
  return na == nb && memcmp(a->bytes + a->offsets[i], b->bytes + b->offsets[j], (size_t)na) == 0;
}

static uint64_t hash_of(const kd_tokenizer *t, int id) {
  return hash_bytes(t->bytes + t->offsets[id], t->offsets[id + 1] - t->offsets[id]);
}

void kd_vocab_map_free(kd_vocab_map *m) {
  free(m->s_ids);
  memset(m, 0, sizeof *m);
}

static int map_alloc(kd_vocab_map *m, int n, int Vs, int Vt, kd_err *e) {
  memset(m, 0, sizeof *m);
  m->s_ids = kd_malloc(sizeof(int32_t) * 2 * (size_t)(n > 0 ? n : 1), "shared vocabulary", e);
  if (!m->s_ids) return e->code;
  m->t_ids = m->s_ids + (n > 0 ? n : 1);
  m->Vs = Vs;
  m->Vt = Vt;
  return KD_OK;
}

int kd_vocab_map_identity(kd_vocab_map *m, int V, kd_err *e) {
  if (map_alloc(m, V, V, V, e)) return e->code;
  for (int i = 0; i < V; i++) m->s_ids[i] = m->t_ids[i] = i;
  m->n = V;
  return KD_OK;
}

int kd_vocab_map_build(kd_vocab_map *m, const kd_tokenizer *student, int Vs, const kd_tokenizer *teacher, int Vt,
                       kd_err *e) {
  memset(m, 0, sizeof *m);
  if (student->vocab > Vs || teacher->vocab > Vt)
    return kd_fail(e, KD_ERR_RUNTIME, "shared vocabulary: a tokenizer of %d ids for a model of %d, or of %d for %d",
                   student->vocab, Vs, teacher->vocab, Vt);
  /* the teacher's text tokens in an open-addressing table (a power of two at least twice their number) */
  size_t cap = 16;
  while (cap < 2 * (size_t)teacher->vocab) cap *= 2;
  int32_t *slot = kd_malloc(sizeof(int32_t) * cap, "shared vocabulary table", e);
  if (!slot) return e->code;
  for (size_t i = 0; i < cap; i++) slot[i] = -1;
  for (int j = 0; j < teacher->vocab; j++) {
    if (!is_text(teacher, j)) continue;
    size_t h = (size_t)hash_of(teacher, j) & (cap - 1);
    while (slot[h] >= 0 && !same_bytes(teacher, slot[h], teacher, j)) h = (h + 1) & (cap - 1);
    if (slot[h] < 0) slot[h] = j; /* a second spelling of the same bytes keeps the lower id */
  }
  uint8_t *taken = kd_calloc((size_t)teacher->vocab + 1, 1, "shared vocabulary table", e);
  int rc = taken ? map_alloc(m, student->vocab, Vs, Vt, e) : e->code;
  for (int i = 0; !rc && i < student->vocab; i++) {
    if (!is_text(student, i)) continue;
    size_t h = (size_t)hash_of(student, i) & (cap - 1);
    while (slot[h] >= 0 && !same_bytes(teacher, slot[h], student, i)) h = (h + 1) & (cap - 1);
    if (slot[h] < 0 || taken[slot[h]]) continue; /* taken: by the student's lower id of the same bytes */
    taken[slot[h]] = 1;
    m->s_ids[m->n] = i;
    m->t_ids[m->n] = slot[h];
    m->n++;
  }
  free(slot);
  free(taken);
  if (rc) kd_vocab_map_free(m);
  return rc;
}

int kd_align_positions(int32_t *pi, int32_t *pa, const int32_t *s_end, int ns, const int32_t *t_end, int nt) {
  int n = 0;
  for (int i = 0, a = 0; i < ns && a < nt;) {
    if (s_end[i] == t_end[a]) {
      pi[n] = i, pa[n] = a, n++;
      i++, a++;
    } else if (s_end[i] < t_end[a]) {
      i++;
    } else {
      a++;
    }
  }
  return n;
}
