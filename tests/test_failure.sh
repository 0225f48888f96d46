#!/bin/bash
# Divergence and dead ranks, on 2 ranks:
#  - a non-finite loss stops the run (exit 1) with a message naming the step, and the last good
#    checkpoint stays the latest and valid; --on-nonfinite skip drops those updates on every rank,
#    counts them in the log, and ends with finite weights; a run whose every step of an epoch is skipped
#    (it can no longer learn) stops with exit 1 and no final.h5;
#  - SIGKILL of one rank mid-epoch ends the whole job within 30 seconds, and --resume then finishes
#    with final weights bitwise equal to an uninterrupted run.
source "$(dirname "$0")/lib.sh"
"$KD" synth --out d.h5 --train 6000 --test 500 --dim 24 --classes 5 >/dev/null || exit 1
D=(train --data d.h5 --student 24-64-5 --epochs 2 --lr 100 --threads 1 --progress off)
kdrun 2 "${D[@]}" --ckpt-every 1 --keep 2 --out div > div.log 2>&1
rc=$?
expect "divergence exits 1 (got $rc)" test $rc -eq 1
step=$(sed -n 's/^kd: error: step \([0-9]*\) (epoch [0-9]*): the loss is not finite.*/\1/p' div.log)
expect "the message names the step ($step)" test -n "$step"
expect "the latest checkpoint is the last good step" grep -qx "ckpt-$(printf %08d $((step - 1))).h5" div/latest
expect "and it is valid" quiet "$KD" eval --ckpt div --data d.h5
kdrun 2 "${D[@]}" --on-nonfinite skip --out stuck > stuck.log 2>&1
expect "skipping every step of an epoch: exit 1, no final.h5" test $? -eq 1 -a ! -e stuck/final.h5
expect "... and it says so" grep -q "^kd: error: epoch 2: every one of its [0-9]* steps had a non-finite loss" stuck.log
S=(train --data d.h5 --student 24-64-5 --epochs 2 --lr 15 --threads 1 --progress off) # some steps skipped, not an epoch
kdrun 2 "${S[@]}" --on-nonfinite skip --out skip > skip.log 2>&1 || fail "skip run"
kdrun 2 "${S[@]}" --on-nonfinite skip --shard-optimizer on --overlap on --bucket-kib 1 --out skip_s > skip_s.log 2>&1 ||
  fail "skip run, sharded and overlapped"
expect "sharded, overlapped skips: the same weights" \
  quiet "$PY" "$TESTS_DIR/compare_weights.py" skip/final.h5 skip_s/final.h5 --exact
expect "skips are logged" grep -q "non-finite loss, update skipped" skip.log
expect "skips are counted at the end" grep -Eq "^final: .* skipped=[0-9]+" skip.log
expect "weights stay finite" "$PY" -c "
import h5py, numpy as np
f = h5py.File('skip/final.h5', 'r')
def walk(g):
    for k in g:
        v = g[k]
        if isinstance(v, h5py.Dataset):
            assert np.all(np.isfinite(v[()])), k
        else:
            walk(v)
walk(f)
"

# A dead rank.
"$KD" synth --out big.h5 --train 60000 --test 0 --dim 64 --classes 10 >/dev/null || exit 1
A=(train --data big.h5 --student 64-256-256-10 --epochs 2 --ckpt-every 100 --threads 1 --progress off)
kdrun 2 "${A[@]}" --out ref > /dev/null || fail "reference run"
kdrun 2 "${A[@]}" --out dead > dead.log 2>&1 &
mpid=$!
for _ in $(seq 400); do [ -e dead/ckpt-00000100.h5 ] && break; sleep 0.05; done
victim=$(pids_of kd dead | sort -n | tail -1)
kill -KILL "$victim"
t0=$(date +%s)
for _ in $(seq 300); do kill -0 "$mpid" 2>/dev/null || break; sleep 0.1; done
t1=$(date +%s)
expect "the whole job ended within 30 s of the SIGKILL ($((t1 - t0)) s)" test -z "$(pids_of kd dead)" -a $((t1 - t0)) -le 30
wait "$mpid" 2>/dev/null
expect "killed before the end" test ! -e dead/final.h5
kdrun 2 train --resume dead > dead2.log || fail "resume after a dead rank"
expect "resume after a dead rank is bitwise" quiet "$PY" "$TESTS_DIR/compare_weights.py" ref/final.h5 dead/final.h5 --exact
finish
