/* Hugging Face tokenizers (tokenizer.json) in and out of kd's "bpe" record (docs/format.md, "/tokenizer").
 *
 * In: byte-level BPE models, the kind of GPT-2, Llama 3 and Qwen2/3: model "BPE" without byte_fallback,
 * dropout, unk or word affixes; normalizer none or NFC; pre-tokenizer ByteLevel (GPT-2's pattern) or a
 * Sequence of one Split (a regex, behavior Isolated) and ByteLevel without its regex; add_prefix_space off;
 * ignore_merges kept. The vocabulary's strings are GPT-2's byte-to-unicode form, stored as the bytes they
 * stand for; added tokens keep their text and their kind (special or not) and are never produced from plain
 * text (Hugging Face's library matches them in the text; kd's data has no control tokens inside it).
 * Other models (Unigram/SentencePiece, WordPiece, WordLevel, byte_fallback BPE) are an error naming them.
 *
 * Out: a tokenizer.json that Hugging Face's library loads and that encodes text as kd does, for records
 * that can be expressed so (bytes; bpe with pre-tokenizer gpt2 or regex and one id per string). */
#ifndef KD_DATA_HFTOK_H
#define KD_DATA_HFTOK_H

#include <stddef.h>

#include "kd/data.h"

/* tokenizer.json at path into t (kind "bpe", pre "regex"). */
int kd_hftok_load(kd_tokenizer *t, const char *path, kd_err *e);

/* t as a tokenizer.json at path (written whole, then renamed); when t cannot be expressed, no file, KD_OK and
 * why_not says why (empty when written). */
int kd_hftok_write_json(const kd_tokenizer *t, const char *path, char *why_not, size_t cap, kd_err *e);

/* GPT-2's byte-to-unicode map: the UTF-8 string (1 or 2 bytes) that stands for each byte. */
void kd_hftok_byte_chars(char out[256][3], int len[256]);

#endif
