/* libkd: running a kd student inside another program (C, C++, Fortran through ISO_C_BINDING).
 *
 * A session holds one student, opened from a checkpoint (FILE, DIR, DIR:best, DIR:latest, DIR:step:N), a
 * weights file (final.h5, kd import weights) or a Hugging Face safetensors export (a directory with
 * model.safetensors and config.json, or the model.safetensors file beside its config.json), with its
 * tokenizer and input normalisation. It gives logits of token rows or feature rows, the tokenizer (encode,
 * decode), and generation (greedy, sampling with temperature, top-k and a seed, beam search) with the
 * student's key/value cache: the results of `kd predict` and `kd generate` for the same settings.
 *
 * Errors: every call returns KD_OK (0) or a code (KD_ERR_RUNTIME: bad files or data; KD_ERR_USAGE: bad
 * arguments); kd_last_error() is the message of the calling thread's last failure. The library never exits.
 *
 * Threads: one session per thread (a session is not to be used by two threads at once); sessions in
 * different threads run concurrently. Opening takes one library-wide lock around its HDF5 reads (Debian's
 * parallel HDF5 is not thread-safe), so opens are serial; nothing else reads files. No MPI call is made:
 * the program need not start MPI. OpenBLAS's thread count is process-wide (OPENBLAS_NUM_THREADS, or
 * kd_session_params.threads).
 *
 * Link: pkg-config --cflags --libs kd, or find_package(kd) and the target kd::kd. */
#ifndef KD_LIBKD_H
#define KD_LIBKD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KD_VERSION_MAJOR 0
#define KD_VERSION_MINOR 2
#define KD_VERSION_PATCH 0
#define KD_VERSION_STRING "0.2.0"

#if defined(__GNUC__)
#define KD_API __attribute__((visibility("default")))
#else
#define KD_API
#endif

/* Return codes (the kd driver's exit codes; inside kd they are enumerators of the same values). */
#ifndef KD_ERROR_H
#define KD_OK 0
#define KD_ERR_RUNTIME 1 /* a file, its data or a computation failed */
#define KD_ERR_USAGE 2   /* a bad argument */
#endif

/* The library's version ("0.2.0"); it equals KD_VERSION_STRING of the header it was built with. */
KD_API const char *kd_version(void);
/* The message of the calling thread's last failed call ("" when none). */
KD_API const char *kd_last_error(void);

typedef struct kd_session kd_session;

typedef struct kd_session_params {
  int max_batch; /* rows a logits call computes at once (0: as many as 256 MiB of activations hold, at most 1024) */
  int threads;   /* OpenBLAS threads, process-wide (0: leave them as they are) */
} kd_session_params;

KD_API kd_session_params kd_session_default_params(void);
/* Open a student (see above); params NULL: the defaults. On failure *s is NULL. */
KD_API int kd_session_open(kd_session **s, const char *path, const kd_session_params *params);
KD_API void kd_session_close(kd_session *s);

typedef struct kd_session_info {
  char family[16];   /* "mlp", "gpt", "llama" */
  char spec[256];    /* the family's spec, as --student takes it */
  char path[4160];   /* the file opened (a checkpoint directory resolved to its file) */
  int tokens;        /* 1: a language model over token ids; 0: feature rows */
  int in_dim;        /* feature rows: features per row */
  int vocab;         /* the logits per position or row (classes for feature rows) */
  int ctx;           /* token models: the longest row; 0 otherwise */
  int tokenizer;     /* 1: the session can encode and decode text */
  int end_id;        /* the tokenizer's end token (-1: none) */
} kd_session_info;

KD_API int kd_session_info_get(const kd_session *s, kd_session_info *info);

/* Logits of token rows: tokens [rows, T] (ids in [0, vocab), 1 <= T <= ctx) into logits [rows, T, vocab], the
 * logits at each position predicting the next token. Any number of rows (computed max_batch at a time). */
KD_API int kd_session_logits_tokens(kd_session *s, float *logits, const int32_t *tokens, int rows, int T);
/* Logits of feature rows: x [rows, in_dim] (raw: the student's input normalisation is applied) into logits
 * [rows, vocab]. */
KD_API int kd_session_logits_features(kd_session *s, float *logits, const float *x, int rows);

/* Text into ids [cap]: *n ids. Special and added tokens are never produced from text. */
KD_API int kd_session_encode(kd_session *s, int32_t *ids, int cap, int *n, const char *text, size_t len);
/* ids into text [cap] (not NUL-terminated; truncated at cap): *len bytes. */
KD_API int kd_session_decode(kd_session *s, char *text, size_t cap, size_t *len, const int32_t *ids, int n);

typedef enum kd_gen_mode { KD_GEN_GREEDY = 0, KD_GEN_SAMPLE = 1, KD_GEN_BEAM = 2 } kd_gen_mode;

typedef struct kd_gen_params {
  kd_gen_mode mode;      /* default KD_GEN_SAMPLE, as kd generate */
  int max_new;           /* tokens to generate at most (default 200) */
  double temperature;    /* sampling: softmax(z / temperature) (default 1) */
  int top_k;             /* sampling: among the k most likely only (0: all; default 0) */
  uint64_t seed;         /* sampling: the draws' seed (default 1; a seed repeats its text) */
  int beam;              /* beam search: K (default 4) */
  double length_penalty; /* beam search: hypotheses ranked by logp / len^A (default 1) */
} kd_gen_params;

KD_API kd_gen_params kd_gen_default_params(void);
/* Continue prompt [n_prompt] into out [cap]: the new ids only, *n_out of them; generation stops at the
 * tokenizer's end token (included) or after max_new. Greedy and sampling run with the key/value cache and
 * go on past the context from its last three quarters (as kd generate); beam search stops at the context. */
KD_API int kd_session_generate(kd_session *s, int32_t *out, int cap, int *n_out, const int32_t *prompt, int n_prompt,
                               const kd_gen_params *params);
/* The same from text to text: prompt (NUL-terminated) encoded, the new ids decoded into text [cap] (*len
 * bytes, not NUL-terminated). A prompt-completion student's prompt gets its separator, as kd generate does. */
KD_API int kd_session_generate_text(kd_session *s, char *text, size_t cap, size_t *len, const char *prompt,
                                    const kd_gen_params *params);

#ifdef __cplusplus
}
#endif

#endif
