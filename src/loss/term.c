#include "loss/term.h"

#include <stdlib.h>

void kd_term_place(kd_term *t, size_t base) {
  size_t off = base;
  for (int i = 0; i < t->n_views; i++) {
    t->views[i].offset = off;
    off += (size_t)t->views[i].rows * t->views[i].cols;
  }
}

void kd_term_free(kd_term *t) {
  if (!t) return;
  if (t->ops && t->ops->destroy) t->ops->destroy(t);
  free(t);
}
