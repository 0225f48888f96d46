/* The doctor's baseline run and the teacher's margin over it (baseline.c). */
#ifndef KD_DOCTOR_BASELINE_H
#define KD_DOCTOR_BASELINE_H

#include "doctor/scan.h"

/* Collective: train the student from scratch on the transfer rows' labels
 * for about cfg->baseline_steps steps, then fill r's baseline figures: its
 * metric on the evaluation split and on (a sample of) the transfer rows,
 * and, when the teacher's logits of the evaluation split are known
 * (paired: a dense file with them, or a checkpoint), the teacher's metric
 * and its paired margin with a standard error. */
int dr_baseline(const kd_doctor_cfg *cfg, dr_teacher *tch, int paired, const dr_split *transfer, const dr_split *eval,
                MPI_Comm comm, kd_doctor_report *r, kd_err *e);

#endif
