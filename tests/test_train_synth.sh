#!/bin/bash
# Training on kd synth data on 2 ranks reaches the stated accuracy:
#   KD student 64-128-10, 10 epochs: test accuracy >= 0.84 (the Bayes teacher
#   scores ~0.89), at least 2 points above the same student from scratch.
# Also: the run writes metrics.csv with the documented header, final.h5 in
# the documented layout, and refuses to overwrite the run without --force.
source "$(dirname "$0")/lib.sh"
"$KD" synth --out d.h5 --teacher-out t.h5 >/dev/null || exit 1
common=(--data d.h5 --student 64-128-10 --epochs 10 --threads 1 --progress off)
kdrun 2 train "${common[@]}" --teacher t.h5 --out kd > kd.log || fail "KD run failed"
kdrun 2 train "${common[@]}" --out scratch > scratch.log || fail "scratch run failed"
kd_acc=$(sed -n 's/^final: .*test_acc=\([0-9.]*\).*/\1/p' kd.log)
sc_acc=$(sed -n 's/^final: .*test_acc=\([0-9.]*\).*/\1/p' scratch.log)
echo "KD student test accuracy: ${kd_acc:-none}; from scratch: ${sc_acc:-none}"
expect "KD student reaches 0.84" awk -v a="${kd_acc:-0}" 'BEGIN { exit !(a >= 0.84) }'
expect "KD beats scratch by 2 points" awk -v a="${kd_acc:-0}" -v b="${sc_acc:-1}" 'BEGIN { exit !(a >= b + 0.02) }'
expect "per-epoch lines" test "$(grep -c '^epoch ' kd.log)" -eq 10
expect "epoch lines show hard and soft parts" grep -q '^epoch 10/10  loss [0-9.]* (ce [0-9.]*, kd [0-9.]*)  train acc' kd.log
expect "metrics header" test "$(head -1 kd/metrics.csv)" = \
  "step,epoch,loss,ce,kd,acc,lr,grad_norm,samples_per_s,elapsed_s,eval_accuracy,eval_nll,eval_ece,eval_agreement,eval_kl,hint"
# 156 steps per epoch x 10 = 1560 steps: a training row every 50 steps (31) and an
# evaluation row at each epoch-end checkpoint (10, none on a multiple of 50).
expect "metrics rows" test "$(wc -l < kd/metrics.csv)" -eq 42
expect "evaluation rows" test "$(grep -c '^[0-9]*,[0-9]*,,,,,,,,,0\.' kd/metrics.csv)" -eq 10
expect "scratch run leaves kd column empty" grep -q '^50,1,[0-9.e-]*,[0-9.e-]*,,' scratch/metrics.csv
expect "final.h5 layout" "$PY" -c "
import h5py
f = h5py.File('kd/final.h5', 'r')
assert f['model/layer0/weight'].shape == (128, 64), f['model/layer0/weight'].shape
assert f['model/layer0/bias'].shape == (128,)
assert f['model/layer1/weight'].shape == (10, 128)
assert f.attrs['student'] == '64-128-10' and f.attrs['format_version'] == 1
"
kdrun 2 train "${common[@]}" --out kd --epochs 1 >/dev/null 2>err.txt
rc=$?
expect "existing run refused with exit 2" test $rc -eq 2
expect "refusal names --force" grep -q -- "--force" err.txt
kdrun 2 train "${common[@]}" --out kd --epochs 1 --force >/dev/null
expect "--force reuses the directory" test $? -eq 0
finish
