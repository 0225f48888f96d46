#!/bin/bash
# The gpt student end to end (issue 15), on 2 ranks unless stated:
#  - kd import text: no document in two splits (also for another ctx), every token after the first a
#    target exactly once, the byte tokenizer record;
#  - training from text; kd predict's logits reproduced by a numpy forward pass that reads the weights
#    by their documented names (1e-4), kd eval's NLL, accuracy and bits per byte by numpy;
#  - kd logits writes [N, T, V] float16; a student distilled from it; 2 ranks equal 1 rank after a step
#    whose targets are spread unevenly over the ranks (1e-5); stop/resume bitwise with overlap and the
#    sharded optimizer on 3 ranks; a damaged latest checkpoint falls back;
#  - --init from an h5py-written /model file (names, shapes, the tied head checked);
#  - bad inputs: one line, the right exit code; --on-nonfinite skip; self-distillation and generations.
source "$(dirname "$0")/lib.sh"
"$PY" "$TESTS_DIR/make_tokens.py" fx > /dev/null || exit 1
same() { "$PY" "$TESTS_DIR/compare_weights.py" "$@" > /dev/null; }

# 1. kd import text
"$KD" import text --in fx/corpus.txt --ctx 16 --doc-sep % --valid-frac 0.15 --test-frac 0.15 --out c.h5 > imp.log ||
  fail "kd import text"
"$KD" import text --in fx/corpus.txt --ctx 33 --doc-sep % --valid-frac 0.15 --test-frac 0.15 --out c33.h5 > /dev/null
splits_py='
import h5py, re, sys
def docs(path):
    f, seen = h5py.File(path), {}
    for s in ("train", "valid", "test"):
        t, m = f[s + "/tokens"][()], f[s + "/mask"][()]
        assert m[:, 0].sum() == 0
        stream = [int(t[0][0])] + [int(x) for r in range(len(t)) for x, k in zip(t[r][1:], m[r][1:]) if k]
        for d in set(re.findall(r"doc(\d{3})", bytes(stream).decode())):
            assert d not in seen, (d, seen[d], s)
            seen[d] = s
    return seen, f
a, f = docs("c.h5")
b, _ = docs("c33.h5")
assert len(a) == 240 and a == b, (len(a), len(b))
assert len(f["tokenizer/vocab"]) == 256 and f["tokenizer"].attrs["kind"] == "bytes"
'
expect "import text: no document in two splits, every token after the first a target once, same split at another ctx" \
  "$PY" -c "$splits_py"

# 2. A language model from text.
G=(--student gpt:vocab=256,ctx=16,layers=2,dim=32,heads=4 --batch 16 --threads 1 --progress off)
kdrun 2 train --data c.h5 "${G[@]}" --epochs 2 --dropout 0.1 --optimizer adamw --lr 0.003 --out lm > lm.log ||
  fail "training a gpt"
expect "metrics.csv of a gpt run has eval_bpb" grep -q ',eval_bpb$' <(head -1 lm/metrics.csv)
expect "held-out bits per byte printed" grep -Eq '^valid: nll [0-9.]+  ppl [0-9.]+  bpb [0-9.]+' lm.log
expect "checkpoints and final.h5 carry the tokenizer" "$PY" -c "
import h5py
for p in ('lm/final.h5', 'lm/' + open('lm/latest').read().strip()):
    assert len(h5py.File(p)['tokenizer/vocab']) == 256, p
"
kdrun 1 predict --ckpt lm/final.h5 --data c.h5 --out lp.h5 > /dev/null || fail "kd predict of a gpt"
"$KD" eval --ckpt lm/final.h5 --data c.h5 --json > lm.json || fail "kd eval of a gpt"
expect "numpy forward == kd predict, numpy NLL/accuracy/bpb == kd eval" "$PY" "$TESTS_DIR/check_lm.py" lm/final.h5 c.h5 \
  lp.h5 lm.json
kdrun 2 logits --ckpt lm --data c.h5 --dtype f16 --out lt.h5 > /dev/null || fail "kd logits of a gpt"
expect "kd logits writes [N, T, V] float16" "$PY" -c "
import h5py
f, d = h5py.File('lt.h5'), h5py.File('c.h5')
for s in ('train', 'valid', 'test'):
    assert f[s + '/logits'].shape == d[s + '/tokens'].shape + (256,) and f[s + '/logits'].dtype == 'float16', s
"
S=(--student gpt:vocab=256,ctx=16,layers=1,dim=16,heads=2 --batch 12 --threads 1 --progress off)
kdrun 2 train --data c.h5 --teacher lt.h5 "${S[@]}" --epochs 1 --alpha 0.5 --temperature 2 --out st > st.log ||
  fail "a distilled gpt"
expect "the distilled student reports teacher agreement" grep -Eq '^valid: .* teacher agreement 0\.[0-9]+' st.log
kdrun 2 train --data c.h5 --teacher lt.h5 "${S[@]}" --epochs 1 --labelled-fraction 0 --log-every 10 --max-steps 20 \
  --out lf > lf.log || fail "--labelled-fraction with a gpt"
expect "--labelled-fraction 0: no target keeps its CE term, the KD term trains" "$PY" -c "
import csv
rows = [r for r in csv.DictReader(open('lf/metrics.csv')) if r['loss']]
assert rows and all(r['ce'] == '' and float(r['kd']) > 0 for r in rows), rows
"

# 3. 2 ranks == 1 rank: one step over the 8 rows of eq.h5; rank 0's rows hold 36 targets, rank 1's 8.
E=(train --data fx/eq.h5 --teacher fx/eqt.h5 --student gpt:vocab=13,ctx=10,layers=2,dim=16,heads=2 --batch 8
   --epochs 1 --max-steps 1 --dropout 0.1 --optimizer sgd --lr 0.5 --threads 1 --progress off --alpha 0.3
   --temperature 2)
kdrun 1 "${E[@]}" --out e1 > /dev/null || fail "1-rank step"
kdrun 2 "${E[@]}" --out e2 > /dev/null || fail "2-rank step"
expect "2 ranks == 1 rank with unevenly spread targets (1e-5)" same e1/final.h5 e2/final.h5 --rtol 1e-5

# 4. Stop and resume, overlapped and sharded (3 ranks).
R=(train --data c.h5 --teacher lt.h5 "${S[@]}" --epochs 2 --dropout 0.1 --optimizer adamw --lr 0.003 --ckpt-every 20
   --overlap on --shard-optimizer on)
kdrun 3 "${R[@]}" --out ra > /dev/null || fail "uninterrupted run"
kdrun 3 "${R[@]}" --out rb --max-steps 50 > /dev/null || fail "first half"
cp -r rb rc
kdrun 3 train --resume rb > rb.log || fail "resume"
expect "gpt resume is bitwise (overlap, sharded optimizer)" same ra/final.h5 rb/final.h5 --exact
latest=$(cat rc/latest)
truncate -s 3000 "rc/$latest"
kdrun 3 train --resume rc > rc.log 2>&1 || fail "resume past a damaged checkpoint"
expect "a damaged latest checkpoint falls back" grep -q "falling back to" rc.log

# 5. --init from weights written with h5py (as from a nanoGPT state_dict).
"$PY" - <<'PY'
import h5py, numpy as np
def copy(src, dst):
    names = []
    src["model"].visititems(lambda n, d: names.append(n) if isinstance(d, h5py.Dataset) else None)
    for n in names:
        dst["model/" + n] = src["model/" + n][()]
with h5py.File("lm/final.h5") as f, h5py.File("nano.h5", "w") as g, h5py.File("nano_bad.h5", "w") as b:
    copy(f, g)
    g["model/lm_head/weight"] = f["model/transformer/wte/weight"][()]
    g["model/transformer/h/0/attn/bias"] = np.tril(np.ones((1, 1, 16, 16), np.float32))
    copy(f, b)
    b["model/lm_head/weight"] = f["model/transformer/wte/weight"][()] + 1
PY
kdrun 2 train --data c.h5 "${G[@]}" --init nano.h5 --epochs 1 --max-steps 2 --out init > init.log 2>&1 || fail "--init nano.h5"
expect "--init from an h5py file" grep -q "initial weights from nano.h5" init.log
head_refused() {
  kdrun 2 train --data c.h5 "${G[@]}" --init nano_bad.h5 --epochs 1 --out init2 > init2.log 2>&1
  expect "--init with a head that differs from wte: exit 1" \
    test $? -eq 1 -a -n "$(grep -F 'lm_head/weight differs from' init2.log)"
}
depth_refused() {
  kdrun 2 train --data c.h5 --student gpt:vocab=256,ctx=16,layers=3,dim=32,heads=4 --init nano.h5 --epochs 1 --out init3 \
    > init3.log 2>&1
  expect "--init of another depth names the missing tensor" \
    grep -q "dataset /model/transformer/h/2/ln_1/weight is missing" init3.log
}
later head_refused
later depth_refused

# 6. Bad inputs: one error line, exit 1 for data, 2 for usage.
bad() { later bad_input "$@"; } # bad WANT NEEDLE ARGS...: --out bad<N> added
bad_input() {
  local want=$1 needle=$2
  shift 2
  local out rc
  out=$(timeout -k 2 20 "$MPIEXEC" -q -np 2 --oversubscribe --bind-to none "$KD" "$@" --out "bad$nlater" \
    2>&1 >/dev/null)
  rc=$?
  if [ $rc -eq "$want" ] && [ "$(grep -c '^kd: error' <<<"$out")" -eq 1 ] && grep -qF -- "$needle" <<<"$out"; then
    ok "bad input: exit $want, '$needle'"
  else fail "bad input: wanted exit $want and '$needle', got $rc: $out"; fi
}
Q=(--student gpt:vocab=13,ctx=10,layers=1,dim=8,heads=2 --epochs 1 --batch 4 --threads 1 --progress off)
bad 1 "fx/bad_id.h5: /train/tokens row 5 position 7 holds 17, outside the vocabulary [0, 13)" train --data fx/bad_id.h5 "${Q[@]}"
bad 1 "/train/tokens rows have 40 positions but --student" train --data fx/long.h5 "${Q[@]}"
bad 1 "/train/logits are over a vocabulary of 14" train --data fx/eq.h5 --teacher fx/vocab_t.h5 "${Q[@]}"
bad 1 "fx/inf_t.h5: /train/logits row 6 position 3 column 2 is infinite" train --data fx/eq.h5 --teacher fx/inf_t.h5 "${Q[@]}"
"$KD" synth --out feat.h5 --train 40 --test 0 --dim 10 --classes 3 > /dev/null
bad 1 "holds feature rows but --student gpt:" train --data feat.h5 "${Q[@]}"
bad 2 "--activation and --weight-init are for mlp students" train --data fx/eq.h5 "${Q[@]}" --activation gelu
bad 2 "--hint-layer (FitNets) is for mlp students" train --data fx/eq.h5 --teacher fx/eqt.h5 "${Q[@]}" --hint-layer 1
bad 2 "heads=3 does not divide dim=8" train --data fx/eq.h5 --student gpt:vocab=13,ctx=10,layers=1,dim=8,heads=3
bad 2 "ctx is missing" train --data fx/eq.h5 --student gpt:vocab=13,layers=1,dim=8,heads=2

# kd generate: greedy is deterministic; a checkpoint without a tokenizer record is a clear error.
"$KD" generate --ckpt lm --prompt "the quick" --max-new 40 --decode greedy > g1.txt 2> g1.err || fail "kd generate"
"$KD" generate --ckpt lm --prompt "the quick" --max-new 40 --decode greedy > g2.txt 2> /dev/null
expect "greedy generation twice gives the same text" cmp -s g1.txt g2.txt
expect "and states its rate" grep -Eq "^kd generate: 40 new tokens in [0-9.]+ s \([0-9]+ tokens/s, batch 1, greedy\)" g1.err
"$KD" generate --ckpt lm --prompt "the quick" --max-new 40 --seed 5 > s1.txt 2> /dev/null || fail "sampling"
"$PY" -c "
import h5py
with h5py.File('lm/final.h5') as f, h5py.File('notok.h5', 'w') as g:
    for k, v in f.attrs.items(): g.attrs[k] = v
    f.copy('model', g)
"
"$KD" generate --ckpt notok.h5 --prompt x > /dev/null 2> notok.err
expect "generate without a tokenizer record: exit 1, one line" test $? -eq 1 -a "$(grep -c 'no /tokenizer record' notok.err)" -eq 1

# 7. Non-finite steps skipped; self-distillation and generations with a gpt.
kdrun 2 train --data c.h5 "${S[@]}" --epochs 1 --lr 100 --optimizer sgd --on-nonfinite skip --out nf > nf.log 2>&1 ||
  fail "--on-nonfinite skip"
expect "non-finite gpt steps are skipped and counted" grep -Eq '^final: .* skipped=[0-9]+' nf.log
kdrun 2 train --data c.h5 "${S[@]}" --epochs 2 --self-distill --teacher-ckpt latest --ckpt-every 30 --out sd > sd.log ||
  fail "gpt self-distillation"
expect "the gpt snapshot teaches" grep -q "self-distillation: the teacher is now sd/ckpt-" sd.log
kdrun 2 train --data c.h5 "${S[@]}" --epochs 1 --generations 2 --out gens > gens.log || fail "gpt generations"
expect "gpt generations print their table" grep -q "^born-again generations" gens.log
settle
finish
