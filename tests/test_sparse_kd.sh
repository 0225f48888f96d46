#!/bin/bash
# Sparse teacher logits (issue 18):
#  - kd logits --topk / --sample write the datasets docs/format.md describes (16-bit ids, float32 lse,
#    counts summing to S, distinct ids), equal to numpy's top-k and log-sum-exp of the dense logits, and the
#    same file on 1 and 2 ranks;
#  - training on top-k with K = V gives the dense run's losses and weights (gpt and mlp);
#  - topk, tail and sampled train; auto picks sampled, then tail; 2 ranks equal 1 rank to 1e-5;
#  - the head GEMM and loss in chunks of positions give the whole batch's losses and weights (dense, sparse and
#    no teacher, vocabulary 300), and are the default only above 256 classes;
#  - bad sparse files are one clear line naming file, dataset, row and position, exit 1, on 2 ranks
#    without a hang: ids out of range, duplicate ids, K differing between splits, negative counts, a
#    sample_temperature other than --temperature, tail without lse, a missing half of a pair.
source "$(dirname "$0")/lib.sh"
"$PY" "$TESTS_DIR/make_tokens.py" fx > /dev/null || exit 1
"$KD" import text --in fx/corpus.txt --ctx 16 --doc-sep % --valid-frac 0.15 --test-frac 0.15 --out c.h5 > /dev/null ||
  exit 1

TG=(--batch 16 --threads 1 --progress off --optimizer adamw --lr 0.003)
kdrun 2 train --data c.h5 --student gpt:vocab=256,ctx=16,layers=2,dim=32,heads=4 "${TG[@]}" --epochs 1 --out tch \
  > /dev/null || fail "teacher"
kdrun 2 logits --ckpt tch --data c.h5 --dtype f32 --out dense.h5 > /dev/null || fail "kd logits (dense)"
kdrun 2 logits --ckpt tch --data c.h5 --dtype f32 --topk 8 --out k8.h5 > /dev/null || fail "kd logits --topk 8"
# --batch 1: the teacher's logits are then the same bits on any rank count (OpenBLAS's sums depend on the
# number of rows of a GEMM), so the files must be identical
kdrun 1 logits --ckpt tch --data c.h5 --dtype f16 --topk 8 --sample 12 --sample-temperature 2 --seed 5 --batch 1 \
  --out both1.h5 > /dev/null || fail "kd logits --topk --sample, 1 rank"
KD_LOGITS_ROUND_ROWS=7 KD_LOGITS_CHUNK_ROWS=3 kdrun 2 logits --ckpt tch --data c.h5 --dtype f16 --topk 8 --sample 12 \
  --sample-temperature 2 --seed 5 --batch 1 --out both2.h5 > /dev/null || fail "kd logits --topk --sample, 2 ranks"
kdrun 2 logits --ckpt tch --data c.h5 --dtype f32 --topk 256 --out kv.h5 > /dev/null || fail "kd logits --topk V"

expect "kd logits --topk: ids, logits and lse are numpy's top-k and log-sum-exp of the dense logits" \
  "$PY" - dense.h5 k8.h5 <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as d, h5py.File(sys.argv[2], "r") as k:
    assert "train/logits" not in k, "dense logits written beside top-k"
    for s in ("train", "valid", "test"):
        z = d[s + "/logits"][()].astype(np.float64)
        ids, lg, lse = k[s + "/topk/ids"], k[s + "/topk/logits"], k[s + "/topk/lse"]
        assert ids.dtype == np.uint16 and lse.dtype == np.float32 and ids.shape == z.shape[:2] + (8,), (ids.dtype, ids.shape)
        ids, lg, lse = ids[()].astype(np.int64), lg[()], lse[()]
        order = np.argsort(-z, axis=-1, kind="stable")[..., :8]
        assert (order == ids).all(), s
        assert (np.take_along_axis(z.astype(np.float32), ids, -1) == lg).all(), s
        m = z.max(-1, keepdims=True)
        ref = (m[..., 0] + np.log(np.exp(z - m).sum(-1))).astype(np.float32)
        assert np.allclose(lse, ref, rtol=1e-6, atol=1e-6), s
PY
expect "kd logits --sample: S draws per position, distinct ids, the attributes, counts as uint16" \
  "$PY" - both1.h5 <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    g = f["train/sampled"]
    assert g.attrs["sample_temperature"] == 2 and g.attrs["seed"] == 5
    ids, c = g["ids"][()], g["counts"][()]
    assert g["counts"].dtype == np.uint16 and f["train/topk/logits"].dtype == np.float16
    assert (c.sum(-1) == 12).all()
    for row_ids, row_c in zip(ids.reshape(-1, 12), c.reshape(-1, 12)):
        used = row_ids[row_c > 0]
        assert len(set(used.tolist())) == len(used)
        assert (np.diff(row_c.astype(int)) <= 0).all()
PY
expect "kd logits --topk --sample: 1 rank and 2 ranks (many rounds and messages) write the same datasets" \
  "$PY" - both1.h5 both2.h5 <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as a, h5py.File(sys.argv[2], "r") as b:
    names = []
    a.visit(lambda n: names.append(n) if isinstance(a[n], h5py.Dataset) else None)
    assert len(names) == 15, names
    for n in names:
        assert a[n].dtype == b[n].dtype and np.array_equal(a[n][()], b[n][()]), n
PY
expect "the draws follow the teacher at T = 2: mean count / S of each position's top-1 = its probability (5 SE)" \
  "$PY" - dense.h5 both1.h5 <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as d, h5py.File(sys.argv[2], "r") as f:
    z = d["train/logits"][()].astype(np.float64).reshape(-1, 256) / 2
    p = np.exp(z - z.max(-1, keepdims=True)); p /= p.sum(-1, keepdims=True)
    top = p.argmax(-1)
    ids, c = f["train/sampled/ids"][()].reshape(-1, 12), f["train/sampled/counts"][()].reshape(-1, 12)
    got = ((ids == top[:, None]) * c).sum(-1) / 12.0
    want = p[np.arange(len(top)), top]
    se = np.sqrt((want * (1 - want) / 12).sum()) / len(top)
    assert abs(got.mean() - want.mean()) < 5 * se + 1e-3, (got.mean(), want.mean(), se)
PY

W2=(--data c.h5 --student gpt:vocab=256,ctx=16,layers=2,dim=16,heads=2 --threads 1 --progress off --lr 0.5
  --optimizer sgd --temperature 2 --alpha 0.5 --log-every 1 --train-rows 32 --batch 32)
kdrun 1 train "${W2[@]}" --epochs 4 --teacher dense.h5 --out dn > /dev/null || fail "dense run"
kdrun 1 train "${W2[@]}" --epochs 4 --teacher kv.h5 --sparse-kd topk --out kvr > kvr.log || fail "top-k K = V run"
expect "top-k with K = V == dense logits: losses per step 1e-5" cols dn kvr loss ce kd
expect "top-k with K = V == dense logits: weights 1e-5" close dn/final.h5 kvr/final.h5 --rtol 1e-5
expect "the banner names the sparse mode, K and the file's bytes per position" \
  grep -q '^teacher: sparse logits, topk over K = 256 slots per position (1536 bytes per position' kvr.log
for mode in topk tail; do
  kdrun 1 train "${W2[@]}" --epochs 2 --teacher k8.h5 --sparse-kd $mode --out r1$mode > /dev/null || fail "$mode, 1 rank"
  kdrun 2 train "${W2[@]}" --epochs 2 --teacher k8.h5 --sparse-kd $mode --out r2$mode > /dev/null || fail "$mode, 2 ranks"
  expect "$mode: 2 ranks == 1 rank (losses 1e-5)" cols r1$mode r2$mode loss ce kd
done
kdrun 1 train "${W2[@]}" --epochs 2 --teacher both1.h5 --out r1s > r1s.log || fail "sampled, 1 rank"
kdrun 2 train "${W2[@]}" --epochs 2 --teacher both1.h5 --out r2s > /dev/null || fail "sampled, 2 ranks"
expect "sampled: 2 ranks == 1 rank (losses 1e-5)" cols r1s r2s loss ce kd
expect "auto takes sampled when the file has both" grep -q '^teacher: sparse logits, sampled over K = 12' r1s.log
kdrun 1 train "${W2[@]}" --epochs 1 --teacher k8.h5 --out ra > ra.log || fail "auto on top-k"
expect "auto takes tail when the file has top-k with lse" grep -q '^teacher: sparse logits, tail over K = 8' ra.log
expect "top-k and tail differ (the tail bin counts)" "$PY" - r1topk r1tail <<'PY'
import csv, sys
a, b = (list(csv.DictReader(open(d + "/metrics.csv"))) for d in sys.argv[1:])
assert abs(float(a[-1]["kd"]) - float(b[-1]["kd"])) > 1e-4, (a[-1]["kd"], b[-1]["kd"])
PY
kdrun 2 train "${W2[@]}" --epochs 3 --teacher k8.h5 --ckpt-epochs 1 --max-steps 2 --out rs > /dev/null &&
  kdrun 2 train "${W2[@]}" --epochs 3 --teacher k8.h5 --resume rs > /dev/null &&
  kdrun 2 train "${W2[@]}" --epochs 3 --teacher k8.h5 --out rf > /dev/null
expect "tail: stop/resume == uninterrupted, bitwise" close rs/final.h5 rf/final.h5 --exact

# the large-vocabulary loss: the head GEMM and the loss in chunks of positions == the whole batch at once
V3=(--student gpt:vocab=300,ctx=16,layers=1,dim=16,heads=2)
kdrun 2 train --data c.h5 "${V3[@]}" "${TG[@]}" --epochs 1 --out t300 > /dev/null || fail "vocab-300 teacher"
kdrun 2 logits --ckpt t300 --data c.h5 --dtype f32 --out d300.h5 > /dev/null || fail "vocab-300 logits"
kdrun 2 logits --ckpt t300 --data c.h5 --dtype f16 --topk 16 --out k300.h5 > /dev/null || fail "vocab-300 top-k"
C3=(--data c.h5 "${V3[@]}" --threads 1 --progress off --lr 0.5 --optimizer sgd --temperature 2 --alpha 0.5
  --log-every 1 --train-rows 32 --batch 32 --epochs 3)
for tf in none d300.h5 k300.h5; do
  teach=(); [ $tf != none ] && teach=(--teacher $tf)
  kdrun 2 train "${C3[@]}" "${teach[@]}" --loss-chunk -1 --out cw$tf > /dev/null || fail "whole-batch loss ($tf)"
  kdrun 2 train "${C3[@]}" "${teach[@]}" --loss-chunk 37 --out cc$tf > cc$tf.log || fail "chunked loss ($tf)"
  kdcol=(kd); [ $tf = none ] && kdcol=()
  expect "chunks of 37 positions == the whole batch ($tf): losses 1e-5" cols cw$tf cc$tf loss ce "${kdcol[@]}"
  expect "chunks of 37 positions == the whole batch ($tf): weights 1e-5" close cw$tf/final.h5 cc$tf/final.h5 --rtol 1e-5
done
expect "the loss line states the chunks" grep -q '; head GEMM and loss in chunks of 37 positions' ccnone.log
kdrun 1 train "${C3[@]}" --epochs 1 --out cauto > cauto.log || fail "auto chunks"
expect "over 256 classes the loss runs in chunks by default" grep -q 'head GEMM and loss in chunks of' cauto.log
kdrun 1 train "${W2[@]}" --epochs 1 --out c256 > c256.log || fail "vocab 256"
expect "up to 256 classes it does not (results unchanged)" test "$(grep -c 'in chunks of' c256.log)" = 0

# feature rows: an mlp teacher's top-k with K = C is its dense logits
"$KD" synth --out d.h5 --train 400 --test 100 --dim 12 --classes 4 > /dev/null || exit 1
M=(--data d.h5 --batch 32 --threads 1 --progress off --log-every 1 --epochs 1)
kdrun 1 train "${M[@]}" --student 12-32-4 --out mt > /dev/null || fail "mlp teacher"
kdrun 2 logits --ckpt mt --data d.h5 --dtype f32 --out md.h5 > /dev/null || fail "mlp dense logits"
kdrun 2 logits --ckpt mt --data d.h5 --dtype f32 --topk 4 --out mk.h5 > /dev/null || fail "mlp top-k logits"
kdrun 2 train "${M[@]}" --student 12-8-4 --max-steps 5 --teacher md.h5 --out mdr > /dev/null || fail "mlp dense"
kdrun 2 train "${M[@]}" --student 12-8-4 --max-steps 5 --teacher mk.h5 --sparse-kd topk --out mkr > /dev/null ||
  fail "mlp top-k"
expect "mlp: top-k with K = C == dense logits" cols mdr mkr loss ce kd

# bad files, each from a good one, on 2 ranks
"$PY" - both1.h5 <<'PY' || fail "bad files"
import shutil, sys, h5py, numpy as np
src = sys.argv[1]
def bad(name, fn):
    shutil.copy(src, name)
    with h5py.File(name, "r+") as f:
        fn(f)
def out_of_range(f):
    ids = f["train/topk/ids"][()].astype(np.int32); ids[3, 5, 2] = 300
    del f["train/topk/ids"]; f["train/topk/ids"] = ids
def dup(f):
    ids = f["train/topk/ids"][()]; ids[9, 4, 1] = ids[9, 4, 0]; f["train/topk/ids"][...] = ids
def k_split(f):
    for n in ("ids", "logits"):
        v = f["valid/topk/" + n][()][..., :4]; del f["valid/topk/" + n]; f["valid/topk/" + n] = v
def negative(f):
    c = f["train/sampled/counts"][()].astype(np.int16); c[2, 7, 0] = -1
    del f["train/sampled/counts"]; f["train/sampled/counts"] = c
def no_lse(f):
    del f["train/topk/lse"]
def half(f):
    del f["train/sampled/counts"]
bad("bad_range.h5", out_of_range); bad("bad_dup.h5", dup); bad("bad_ksplit.h5", k_split)
bad("bad_neg.h5", negative); bad("bad_nolse.h5", no_lse); bad("bad_half.h5", half)
PY
# refused FILE MODE PATTERN DESCRIPTION [OPTIONS...]
refused() { later refused_run "$@"; }
refused_run() {
  local out rc
  out=$(kdrun 2 train "${W2[@]}" --epochs 1 --teacher "$1" --sparse-kd "$2" --out "rbad$nlater" "${@:5}" 2>&1)
  rc=$?
  if [ $rc = 1 ] && grep -q -- "$3" <<<"$out" && [ "$(grep -c 'kd: error' <<<"$out")" -le 2 ]; then ok "$4"; else
    fail "$4 (rc $rc): $out"; fi
}
refused bad_range.h5 topk "bad_range.h5: /train/topk/ids row 3 position 5 slot 2 is id 300, outside the vocabulary \[0, 256)" \
  "an id out of range names file, dataset, row, position, slot"
refused bad_dup.h5 topk "bad_dup.h5: /train/topk/ids row 9 position 4: id [0-9]* is in slots 0 and 1" \
  "a duplicate id names file, dataset, row and position"
refused bad_ksplit.h5 topk "bad_ksplit.h5: /train/topk/ids has K = 8 but /valid/topk/ids has K = 4" \
  "K differing between splits"
refused bad_neg.h5 sampled "bad_neg.h5: /train/sampled/counts row 2 position 7 slot 0 is -1: a count must be" \
  "a negative count names file, dataset, row, position"
refused both1.h5 sampled "drawn at sample_temperature 2 but --temperature is 3" "sample temperature mismatch" \
  --temperature 3
refused bad_nolse.h5 tail "has no /train/topk/lse" "tail without lse"
refused bad_half.h5 sampled "/train/sampled/ids is there but /train/sampled/counts is missing" "half of a pair"
refused dense.h5 topk "has no /train/topk/{ids,logits}" "a mode the file cannot serve"
settle
finish
