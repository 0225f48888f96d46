/* libkd's sessions (include/kd/libkd.h) seen from inside kd: what the kd driver needs beyond the public
 * calls, so that `kd generate` runs through the same path as an embedding program. */
#ifndef KD_API_SESSION_H
#define KD_API_SESSION_H

#include "kd/error.h"
#include "kd/libkd.h"

/* kd_session_generate, with the margin of each new token (its largest logit minus the second largest:
 * how close a greedy choice was) into margins [cap] (nullable), and the error as a kd_err. */
int kd_session_generate_ex(kd_session *s, int32_t *out, int cap, int *n_out, float *margins, const int32_t *prompt,
                           int n_prompt, const kd_gen_params *params, kd_err *e);
/* kd_session_encode, as a kd_err, with the separator a prompt-completion student's prompt ends with (add_sep). */
int kd_session_encode_prompt(kd_session *s, int32_t *ids, int cap, int *n, const char *text, size_t len, kd_err *e);
/* "greedy" | "sample" | "beam:K" into p->mode and p->beam. */
int kd_gen_mode_parse(kd_gen_params *p, const char *spec, kd_err *e);

#endif
