#!/bin/bash
# FitNets hints on 2 ranks: kd logits --features writes a teacher hidden layer; a thin deep student
# trains with --hint-layer (stage-wise with --hint-epochs); the regressor is checkpointed under
# /aux/hint/ and left out of the deployed student; resume with hints is bitwise; the sharded,
# overlapped gradient path gives the same bits; wrong feature row counts and widths are clear
# errors (exit 1, one line), a hint layer the student lacks exit 2.
source "$(dirname "$0")/lib.sh"
"$KD" synth --out d.h5 --train 4000 --test 500 --dim 16 --classes 4 >/dev/null || exit 1
kdrun 2 train --data d.h5 --student 16-48-48-4 --epochs 3 --threads 1 --progress off --out teacher > /dev/null ||
  fail "teacher"
kdrun 2 logits --ckpt teacher --data d.h5 --features 1 --out t.h5 > /dev/null || fail "kd logits --features"
expect "features written" "$PY" -c "
import h5py
f = h5py.File('t.h5', 'r')
assert f['train/features'].shape == (4000, 48) and f['test/features'].shape == (500, 48)
assert f.attrs['features_layer'] == 1
"
H=(train --data d.h5 --teacher t.h5 --student 16-12-12-12-4 --epochs 4 --hint-layer 2 --hint-weight 0.5
   --hint-epochs 1 --batch 50 --ckpt-every 30 --threads 1 --progress off --dropout 0.1)
kdrun 2 "${H[@]}" --out a > a.log || fail "hint run"
expect "stage 1 reported" grep -q "stage 1: hints alone" a.log
expect "the banner's loss line names the hint term" grep -Eq "^loss: .* \+ 0\.5 \* hint \(FitNets.*; the first 1 epoch train the hint alone" a.log
expect "hint column filled" grep -Eq '^50,1,.*,[0-9.e-]+$' a/metrics.csv
expect "regressor checkpointed under /aux/hint, left out of final.h5" "$PY" -c "
import h5py
c = h5py.File('a/' + open('a/latest').read().strip(), 'r')
assert c['aux/hint/weight'].shape == (48, 12) and c['aux/hint/bias'].shape == (48,)
f = h5py.File('a/final.h5', 'r')
assert 'aux' not in f and sorted(f['model']) == ['layer0', 'layer1', 'layer2', 'layer3']
"
expect "kd predict runs the deployed student" quiet "$KD" predict --ckpt a --data d.h5 --out p.h5
# Resume, stopping inside stage 1 and again in stage 2.
kdrun 2 "${H[@]}" --out b --max-steps 50 > /dev/null || fail "first part"
kdrun 2 train --resume b --max-steps 130 > /dev/null || fail "second part"
kdrun 2 train --resume b > /dev/null || fail "third part"
expect "resume with hints is bitwise" quiet "$PY" "$TESTS_DIR/compare_weights.py" a/final.h5 b/final.h5 --exact
expect "metrics equal after the resumes" cmp -s <(cut -d, -f1-8,11- a/metrics.csv) <(cut -d, -f1-8,11- b/metrics.csv)
# The sharded optimizer with overlapped buckets: stage 1 updates only its views' slices, the
# replicated regressor is updated on every rank; same bits as the replicated optimizer.
kdrun 2 "${H[@]}" --out s --shard-optimizer on --overlap on --bucket-kib 1 > /dev/null || fail "sharded hint run"
expect "hints: sharded + overlapped == replicated, bitwise" \
  quiet "$PY" "$TESTS_DIR/compare_weights.py" a/final.h5 s/final.h5 --exact
# Wrong row count, wrong width, missing layer.
"$PY" -c "
import h5py
with h5py.File('t.h5', 'r') as a:
    for name, feats in (('short.h5', a['train/features'][:-3]), ('wide.h5', a['train/features'][:, :40])):
        with h5py.File(name, 'w') as b:
            b['train/logits'] = a['train/logits'][()]
            b['train/features'] = feats
"
rows_refused() {
  local out rc
  out=$(kdrun 2 "${H[@]}" --teacher short.h5 --out c 2>&1 >/dev/null)
  rc=$?
  expect "features of other data: exit 1 (got $rc)" test $rc -eq 1
  expect "features of other data: one line naming them" \
    test "$(grep -c 'has 3997 rows but /train/x has 4000' <<<"$out")" -eq 1
}
width_refused() {
  local out rc
  out=$(kdrun 2 train --resume wide_run --teacher wide.h5 --epochs 5 2>&1 >/dev/null)
  rc=$?
  expect "features of another width at resume: exit 1 (got $rc)" test $rc -eq 1
  expect "width named" grep -q "/aux/hint/weight is \[48, 12\] but this run needs \[40, 12\]" <<<"$out"
}
layer_refused() {
  local out
  out=$(kdrun 2 "${H[@]}" --hint-layer 4 --out d 2>&1 >/dev/null)
  expect "a hint layer the student lacks: exit 2" test $? -eq 2
  expect "hint layer named" grep -q -- "--hint-layer 4: the student 16-12-12-12-4 has 3 hidden layers" <<<"$out"
}
cp -r b wide_run
later rows_refused
later width_refused
later layer_refused
settle
finish
