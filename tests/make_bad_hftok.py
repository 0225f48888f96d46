"""tokenizer.json files kd must refuse, each with the word its one-line error names.
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
for name, (d, word) in cases.items():
    with open(os.path.join(out, name + ".json"), "w", encoding="utf-8") as f:
        json.dump(d, f, ensure_ascii=False)
    print(f"{name}|{word}")
with open(os.path.join(out, "truncated.json"), "w") as f:
    f.write(json.dumps(doc(bpe()))[:500])
print("truncated|not valid JSON at byte")
