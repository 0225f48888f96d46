#!/bin/bash
# kd import text --tokenizer bpe:V (byte-level BPE, src/data/bpe.h):
#  - two imports and one under 2 ranks write the same merges and tokens; the tokens are uint16; the
#    merges and vocabulary are consistent (id 256 + i the concatenation of merge i); the import prints
#    its training time and merges and records the tokenizer in the generator string;
#  - the documents go to the same splits as with byte tokens, and decoding the rows with /tokenizer/vocab
#    gives back the training stream: every row's bytes are in the corpus, the stream is the training
#    documents joined by the separator line, and it takes fewer ids than bytes;
#  - a tiny gpt trains on it on 2 ranks, and kd generate continues a prompt with non-ASCII text;
#  - the record names its pre-tokenizer (gpt2: GPT-2's pattern); a record written before it existed (no
#    pre_tokenizer attribute) encodes with kd1's byte classes, as it was written: the same text may split
#    otherwise, and both round trip;
#  - bad specs (bpe:, bpe:100, bpe:x, words) are one line and exit 2.
source "$(dirname "$0")/lib.sh"
"$PY" "$TESTS_DIR/make_tokens.py" fx > /dev/null || exit 1
IMP=(import text --in fx/corpus.txt --ctx 16 --doc-sep % --valid-frac 0.15 --test-frac 0.15)
"$KD" "${IMP[@]}" --tokenizer bpe:300 --out a.h5 > a.log || fail "import --tokenizer bpe:300"
"$KD" "${IMP[@]}" --tokenizer bpe:300 --out b.h5 > /dev/null || fail "import again"
kdrun 2 "${IMP[@]}" --tokenizer bpe:300 --out c.h5 > /dev/null || fail "import on 2 ranks"
"$KD" "${IMP[@]}" --out bytes.h5 > /dev/null || fail "import with byte tokens"

expect "the import prints the merges learnt and the time taken" \
  grep -Eq '^bpe: 44 merges on 0\.[0-9] MB of training text in [0-9.]+ s$' a.log
expect "three imports (one on 2 ranks): the same merges and tokens; uint16 tokens; a consistent vocabulary" \
  "$PY" - a.h5 b.h5 c.h5 <<'PY'
import sys, h5py, numpy as np
fs = [h5py.File(p, "r") for p in sys.argv[1:]]
a = fs[0]
m = a["tokenizer/merges"][()]
assert m.shape == (44, 2) and m.dtype == np.int32, (m.shape, m.dtype)
for f in fs[1:]:
    assert np.array_equal(f["tokenizer/merges"][()], m)
    for s in ("train", "valid", "test"):
        assert np.array_equal(f[s + "/tokens"][()], a[s + "/tokens"][()]), s
        assert np.array_equal(f[s + "/mask"][()], a[s + "/mask"][()]), s
t = a["tokenizer"]
assert t.attrs["kind"] == "bpe" and t.attrs["pad_id"] == -1 and t.attrs["end_id"] == -1
vocab = [bytes(v) for v in t["vocab"][()]]
assert len(vocab) == 300 and all(vocab[i] == bytes([i]) for i in range(256))
for i, (l, r) in enumerate(m):
    assert l < 256 + i and r < 256 + i and vocab[256 + i] == vocab[l] + vocab[r], i
for s in ("train", "valid", "test"):
    assert a[s + "/tokens"].dtype == np.uint16, a[s + "/tokens"].dtype
    assert a[s + "/tokens"][()].max() < 300
assert "bpe:300" in a.attrs["generator"], a.attrs["generator"]
PY
expect "decoding the rows gives the training stream; the same documents in each split as byte tokens" \
  "$PY" - a.h5 bytes.h5 fx/corpus.txt <<'PY'
import re, sys, h5py
def streams(path):
    f, out = h5py.File(path, "r"), {}
    vocab = [bytes(v) for v in f["tokenizer/vocab"][()]]
    for s in ("train", "valid", "test"):
        t, m = f[s + "/tokens"][()], f[s + "/mask"][()]
        assert m[:, 0].sum() == 0
        ids = [int(t[0][0])] + [int(x) for r in range(len(t)) for x, k in zip(t[r][1:], m[r][1:]) if k]
        rows = [vocab[r[0]] + b"".join(vocab[x] for x, k in zip(r[1:], mr[1:]) if k) for r, mr in zip(t, m)]
        out[s] = (b"".join(vocab[x] for x in ids), len(ids), rows)
    return out
bpe, byt = streams(sys.argv[1]), streams(sys.argv[2])
corpus = open(sys.argv[3], "rb").read()
docs = set(corpus.split(b"%\n"))
for s in ("train", "valid", "test"):
    text, n_ids, rows = bpe[s]
    assert text == byt[s][0], s                            # the same documents, in the same order
    assert n_ids < 0.6 * len(text), (s, n_ids, len(text))  # the merges are used
    for r in rows:                                         # the pieces between separators: the corpus's text
        assert r in text and all(piece in corpus for piece in r.split(b"%\n")), (s, r)
    for d in text.split(b"%\n")[:-1]:
        assert d in docs, d
    ids_of = lambda x: set(re.findall(rb"doc(\d{3})", x))
    assert ids_of(text) == ids_of(byt[s][0])
assert len(set(re.findall(rb"doc(\d{3})", bpe["train"][0]))) > 100
PY

G=(--student gpt:vocab=300,ctx=16,layers=1,dim=16,heads=2 --batch 8 --threads 1 --progress off)
kdrun 2 train --data a.h5 "${G[@]}" --epochs 1 --max-steps 3 --out r > r.log 2>&1 || fail "training a gpt on bpe rows"
expect "the checkpoint carries the merges" "$PY" -c "
import h5py, numpy as np
with h5py.File('r/final.h5', 'r') as f, h5py.File('a.h5', 'r') as d:
    assert np.array_equal(f['tokenizer/merges'][()], d['tokenizer/merges'][()])
"
"$KD" generate --ckpt r --prompt "the café — 日本語 😀 quick" --max-new 12 --decode greedy > g.txt 2> g.err
expect "kd generate encodes a non-ASCII prompt and decodes the continuation" \
  test $? -eq 0 -a -s g.txt -a "$(grep -c '^kd generate: 12 new tokens' g.err)" -eq 1

for spec in bpe: bpe:100 bpe:x words; do
  out=$(kdrun 2 "${IMP[@]}" --tokenizer "$spec" --out bad.h5 2>&1)
  rc=$?
  if [ $rc -eq 2 ] && [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] && printf '%s' "$out" | grep -qF "'$spec'" &&
    [ ! -e bad.h5 ]; then
    ok "--tokenizer $spec: exit 2, one line"
  else
    fail "--tokenizer $spec: wanted exit 2 and one line; got $rc: $out"
  fi
done
expect "the record names GPT-2's pre-tokenizer" "$PY" -c "
import h5py; assert h5py.File('a.h5')['tokenizer'].attrs['pre_tokenizer'] == 'gpt2'"
"$PY" -c "
import h5py, shutil
for src in ('a.h5',):
    shutil.copyfile(src, 'old.h5')
with h5py.File('old.h5', 'r+') as f:
    del f['tokenizer'].attrs['pre_tokenizer']
"
kdrun 1 train --data old.h5 --student gpt:vocab=300,ctx=16,layers=1,dim=16,heads=2 --epochs 1 --max-steps 2 --batch 8 \
  --threads 1 --progress off --out old > /dev/null || fail "training on a record without pre_tokenizer"
prompt=$'  the fox... "quoted" words  \n\nand café—x'
"$KD" generate --ckpt r --prompt "$prompt" --max-new 1 --print ids --decode greedy > new_ids.txt 2> /dev/null
"$KD" generate --ckpt old --prompt "$prompt" --max-new 1 --print ids --decode greedy > old_ids.txt 2> /dev/null
expect "gpt2 and kd1 records both encode a prompt to ids that decode back to it" "$PY" - "$prompt" <<'PY'
import h5py, sys
vocab = [bytes(v) for v in h5py.File("a.h5")["tokenizer/vocab"][()]]
for p in ("new_ids.txt", "old_ids.txt"):
    ids = [int(x) for x in open(p).readline().split()[1:]]
    assert ids and b"".join(vocab[x] for x in ids) == sys.argv[1].encode(), (p, ids)
PY
"$KD" export --ckpt old --format gguf --out old.gguf > old.export
expect "a record without pre_tokenizer reads as kd1 (kd export says so, and warns that llama.cpp splits otherwise)" \
  test "$(grep -c "tokenizer: byte-level BPE of kd1 pre-splitting" old.export)" -eq 1 -a \
  "$(grep -c "^kd: warning: .*pre_tokenizer kd1); llama.cpp cuts it by GPT-2's pattern" old.export)" -eq 1
finish
