/* A GGUF (version 3) writer: what llama.cpp, ollama and LM Studio load.
 * The file is a header (magic "GGUF", version, tensor and key counts), the
 * metadata as typed key/value pairs, the tensor infos (name, dimensions
 * innermost first, type, offset), then each tensor's data at an offset
 * aligned to 32 bytes. Strings are a uint64 length and the bytes, with no
 * terminator. A writer collects keys and tensors (the tensors' data stay
 * the caller's until the write), then writes the file atomically. */
#ifndef KD_INTEROP_GGUF_H
#define KD_INTEROP_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "kd/error.h"

typedef enum { KD_GGUF_F32 = 0, KD_GGUF_F16 = 1 } kd_gguf_dtype;

typedef struct kd_gguf kd_gguf;

int kd_gguf_new(kd_gguf **g, kd_err *e);
void kd_gguf_free(kd_gguf *g);

/* Metadata, in the order written. */
int kd_gguf_u32(kd_gguf *g, const char *key, uint32_t v, kd_err *e);
int kd_gguf_f32(kd_gguf *g, const char *key, float v, kd_err *e);
int kd_gguf_bool(kd_gguf *g, const char *key, int v, kd_err *e);
int kd_gguf_str(kd_gguf *g, const char *key, const char *v, kd_err *e);
/* An array of n strings of the given lengths (not terminated: a string may hold any bytes). */
int kd_gguf_str_array(kd_gguf *g, const char *key, const char *const *v, const size_t *len, size_t n, kd_err *e);
int kd_gguf_i32_array(kd_gguf *g, const char *key, const int32_t *v, size_t n, kd_err *e);

/* A matrix [rows, cols] row-major (ndim 2), or a vector [rows] (ndim 1, cols 1), from float32 data, stored
 * as dtype; GGUF lists the dimensions innermost first (cols, rows). The data must stay valid until
 * kd_gguf_write. */
int kd_gguf_tensor(kd_gguf *g, const char *name, const float *data, int ndim, int64_t rows, int64_t cols,
                   kd_gguf_dtype dtype, kd_err *e);

/* The file at path (under a temporary name, fsynced, renamed). */
int kd_gguf_write(const kd_gguf *g, const char *path, kd_err *e);

#endif
