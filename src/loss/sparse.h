/* Shared by the sparse loss's reference (sparse.c) and its fast pass (chunked.c). */
#ifndef KD_LOSS_SPARSE_H
#define KD_LOSS_SPARSE_H

#include <stddef.h>

#include "kd/teacher.h"

/* The teacher's bins of position pos into q [K + 1] (q[K]: the tail, 0 but for tail mode with
 * student_tail, i.e. K < V); returns 0 when the position carries no teacher mass (sampled, every count 0). */
int kd_sparse_teacher_bins(double *q, const kd_sparse_targets *sp, size_t pos, double invT, int student_tail);

#endif
