"""tokenizer.json files kd must refuse, each with the word its one-line error names, and one it must apply as
Hugging Face's library does although its merges are ranked unusually (DIR/tricky.json).
usage: make_bad_hftok.py DIR   (writes DIR/NAME.json and prints 'NAME|WORD' lines)"""
import json
import os
import sys

out = sys.argv[1]
byte_vocab = {}
# GPT-2's bytes-to-unicode: the printable bytes stand for themselves, the others for 256, 257, ...
n = 0
for b in range(256):
    printable = 33 <= b <= 126 or 161 <= b <= 172 or b >= 174
    byte_vocab[chr(b if printable else 256 + n)] = b
    n += 0 if printable else 1
bl = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}


def bpe(**kw):
    m = {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
         "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "vocab": dict(byte_vocab),
         "merges": []}
    m.update(kw)
    return m


def doc(model, **kw):
    d = {"version": "1.0", "added_tokens": [], "normalizer": None, "pre_tokenizer": bl, "model": model}
    d.update(kw)
    return d


cases = {
    "unigram": (doc({"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0.0], ["a", -1.0]]}), "Unigram"),
    "wordpiece": (doc({"type": "WordPiece", "unk_token": "[UNK]", "vocab": {"[UNK]": 0, "a": 1}}), "WordPiece"),
    "byte_fallback": (doc(bpe(byte_fallback=True)), "byte_fallback"),
    "lowercase": (doc(bpe(), normalizer={"type": "Lowercase"}), "Lowercase"),
    "metaspace": (doc(bpe(), pre_tokenizer={"type": "Metaspace", "replacement": "\u2581"}), "Metaspace"),
    "prefix_space": (doc(bpe(), pre_tokenizer=dict(bl, add_prefix_space=True)), "add_prefix_space"),
    "merge_missing": (doc(bpe(merges=["a q"])), "merges[0]"),
    "not_bytelevel": (doc(bpe(vocab=dict(byte_vocab, **{"\u4e00x": 300}))), "byte-level"),
    "short_vocab": (doc(bpe(vocab={"a": 0, "b": 1})), "cannot be byte-level"),
}
vocab_ab = dict(byte_vocab, ab=256, bc=257)
cases["repeated_merge"] = (doc(bpe(vocab=vocab_ab, merges=["a b", "b c", "a b"])), "repeats the pair of model.merges[0]")
cases["hex_class"] = (doc(bpe(), pre_tokenizer={"type": "Sequence", "pretokenizers": [
    {"type": "Split", "pattern": {"Regex": "\\h+|[^\\h]+"}, "behavior": "Isolated", "invert": False},
    dict(bl, use_regex=False)]}), "\\h")
cases["bad_regex"] = (doc(bpe(), pre_tokenizer={"type": "Sequence", "pretokenizers": [
    {"type": "Split", "pattern": {"Regex": "(ab"}, "behavior": "Isolated", "invert": False},
    dict(bl, use_regex=False)]}), "cannot compile")
no_a = {k: v for k, v in byte_vocab.items() if k != "A"}
no_a["\u0100\u0100"] = 65
cases["missing_byte"] = (doc(bpe(vocab=no_a)), "no token of the byte 0x41")
for name, (d, word) in cases.items():
    with open(os.path.join(out, name + ".json"), "w", encoding="utf-8") as f:
        json.dump(d, f, ensure_ascii=False)
    print(f"{name}|{word}")
with open(os.path.join(out, "truncated.json"), "w") as f:
    f.write(json.dumps(doc(bpe()))[:500])
print("truncated|not valid JSON at byte")
with open(os.path.join(out, "latin1.json"), "wb") as f:  # a string that is not UTF-8
    f.write(json.dumps(doc(bpe(), normalizer={"type": "NFC"})).encode().replace(b'"NFC"', b'"NF\xc7"'))
print("latin1|not valid UTF-8")
os.makedirs(os.path.join(out, "adir.json"), exist_ok=True)
print("adir|not a regular file")

# tricky.json: a vocabulary whose merges are not ranked after the merges of their parts ("ab a" before "a b"):
# Hugging Face merges the lowest rank present first, one pair at a time, so "abab" becomes "aba" "b".
tricky = doc(bpe(vocab=dict(byte_vocab, ab=256, aba=257), merges=[["ab", "a"], ["a", "b"]]))
with open(os.path.join(out, "tricky.json"), "w", encoding="utf-8") as f:
    json.dump(tricky, f, ensure_ascii=False)
