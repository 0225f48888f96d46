/* Byte-level BPE: the tokenizer kind "bpe" that kd import text --tokenizer bpe:V learns and that
 * kd_tokenizer_encode applies (docs/format.md, "/tokenizer").
 *
 * Ids 0..255 are the bytes; merge i joins the pair merges[i] = (left, right) into id 256 + i, whose
 * bytes are those of left followed by those of right.
 *
 * Pre-tokenization: the text is cut into chunks that no merge crosses, so tokens stay within words.
 * The record's pre_tokenizer says how. "gpt2" (what kd import text writes since GGUF export, issue 28):
 * GPT-2's pattern, 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+, with
 * Unicode's letter, number and space classes (PCRE2), chunks of any length: the pre-tokenizer of
 * llama.cpp's "gpt-2" and Hugging Face's ByteLevel, so a file exported to them splits text as kd does
 * (bytes that are not UTF-8 make chunks of their own). "kd1" (records without the attribute, written
 * before): each byte has a class: word (ASCII letters and digits, and every byte >= 0x80, so that a UTF-8
 * sequence stays inside its word), punctuation (the other printable ASCII bytes), newline ('\n'), and
 * space (every other byte: ' ', tab, '\r', control bytes). A chunk is a maximal run of bytes of one
 * class, except that a single ' ' directly before a word or punctuation run starts that run's chunk
 * (" the", " ("); of several spaces before a word, only the last attaches. A run longer than
 * KD_BPE_MAX_CHUNK bytes is cut into pieces of at most that many (not before a UTF-8 continuation
 * byte where one can be avoided), which bounds the work per chunk and the length of a token. */
#ifndef KD_DATA_BPE_H
#define KD_DATA_BPE_H

#include <stddef.h>
#include <stdint.h>

#include "kd/data.h"

#define KD_BPE_MAX_CHUNK 64
#define KD_BPE_MAX_VOCAB (1 << 20)
#define KD_BPE_PRE_GPT2 "gpt2"
#define KD_BPE_PRE_KD1 "kd1"
#define KD_BPE_PRE_REGEX "regex" /* the record's pattern attribute (Hugging Face tokenizers, data/hftok.h) */
#define KD_BPE_MAX_PATTERN 2048

/* kd1: the end of the chunk that starts at text[i] (i < n): the chunk is text[i, end). */
size_t kd_bpe_chunk_end(const uint8_t *text, size_t n, size_t i);

/* A pre-tokenizer by its record name ("gpt2", "kd1"), and the end of the chunk at text[i] (i < n); i itself
 * when PCRE2 failed (a resource limit), which kd_bpe_split_error then reports. */
typedef struct kd_bpe_splitter kd_bpe_splitter;
int kd_bpe_splitter_new(kd_bpe_splitter **s, const char *pre, kd_err *e);
/* A splitter by a PCRE2 pattern: its matches and the text between them are the chunks (Hugging Face's Split
 * pre-tokenizer with behavior "Isolated"); an empty match cuts one character. */
int kd_bpe_splitter_new_pattern(kd_bpe_splitter **s, const char *pattern, kd_err *e);
/* GPT-2's pattern, as PCRE2 text (what "gpt2" splits by). */
const char *kd_bpe_gpt2_pattern(void);
void kd_bpe_splitter_free(kd_bpe_splitter *s);
size_t kd_bpe_split_next(kd_bpe_splitter *s, const uint8_t *text, size_t n, size_t i);
int kd_bpe_split_error(const kd_bpe_splitter *s, size_t at, kd_err *e);

/* Learn V - 256 merges (V in [256, KD_BPE_MAX_VOCAB]) from the chunks of text[0, n) as pre-tokenizer pre
 * cuts them, into t (kind "bpe", no pad, sep or end id, vocab, merges, pre). Each step merges the most frequent adjacent pair of ids over all chunks
 * (ties: the smaller (left, right)), every occurrence left to right, so the result depends on the text
 * only. Training stops early when no pair occurs twice: t->vocab is then 256 + t->n_merges < V. */
int kd_bpe_train(kd_tokenizer *t, const uint8_t *text, size_t n, int V, const char *pre, kd_err *e);

/* An encoder for a "bpe" tokenizer: the pair -> merge lookup, for encoding much text with one tokenizer. It
 * checks that t is a byte-level BPE (kd's own: the first 256 entries the bytes, merge i the concatenation that
 * makes entry 256 + i; a Hugging Face one: merge i makes merge_ids[i], the concatenation of its pair, and every
 * byte has a text token) and keeps no pointer into t. Records of Hugging Face tokenizers add their normalizer
 * (NFC, applied to the whole text first: valid UTF-8 runs normalized, other bytes kept), their split pattern
 * and ignore_merges (a chunk that is a text token is that token). Ids of special and added tokens are never
 * produced. */
typedef struct kd_bpe_encoder kd_bpe_encoder;
int kd_bpe_encoder_new(kd_bpe_encoder **enc, const kd_tokenizer *t, kd_err *e);
void kd_bpe_encoder_free(kd_bpe_encoder *enc);
/* text[0, len) into ids [cap] (at most len ids); *n ids. Within each chunk merges apply one at a time, the
 * lowest rank present first and of equal ranks the leftmost, until none applies (Hugging Face's order). For
 * kd's own merges, whose parts are made by earlier merges, that is each rank applied to all its occurrences
 * in turn: on the training text, exactly the segmentation training ended with. */
int kd_bpe_encoder_encode(kd_bpe_encoder *enc, const uint8_t *text, size_t len, int32_t *ids, size_t cap,
                          size_t *n, kd_err *e);

/* The same into *ids, allocated (free()) to the size the text needs: its length after normalisation. */
int kd_bpe_encoder_encode_alloc(kd_bpe_encoder *enc, const uint8_t *text, size_t len, int32_t **ids, size_t *n,
                                kd_err *e);

/* The same with an encoder made for this call (kd_tokenizer_encode's "bpe" kind). */
int kd_bpe_encode(const kd_tokenizer *t, const uint8_t *text, size_t len, int32_t *ids, int cap, int *n, kd_err *e);

#endif
