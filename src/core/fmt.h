/* Numbers as people read them: the shortest decimal that reads back as the
 * same double (0.1, not 0.10000000000000001), for messages, --json and the
 * configuration stored in checkpoints. */
#ifndef KD_CORE_FMT_H
#define KD_CORE_FMT_H

#include <stddef.h>

/* Writes "nan", "inf", "-inf" for non-finite values. Returns buf. */
char *kd_fmt_num(char *buf, size_t n, double v);

/* Levenshtein distance between a and b (for "did you mean" suggestions). */
int kd_edit_distance(const char *a, const char *b);

#endif
