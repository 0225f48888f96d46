#!/bin/bash
# Self-distillation on 2 ranks:
#  - in-run snapshots: the snapshot logits every rank computes (written by --snapshot-logits) equal
#    kd logits of the same checkpoint; the teaching checkpoint survives keep-K rotation; before the
#    first checkpoint the run says it uses hard labels only;
#  - born-again generations: a 3-generation chain completes and prints the per-generation table;
#  - resume in the middle of generation 1 (SIGTERM, exit 75) ends bitwise equal to an uninterrupted chain;
#  - resume inside a snapshot period is bitwise equal too.
source "$(dirname "$0")/lib.sh"
"$KD" synth --out d.h5 --teacher-out t.h5 --train 6000 --test 1000 --dim 24 --classes 5 >/dev/null || exit 1
S=(train --data d.h5 --student 24-64-5 --epochs 4 --self-distill --teacher-ckpt step:39 --keep 1 --val-rows 1000
   --threads 1 --progress off --alpha 0.5)
kdrun 2 "${S[@]}" --snapshot-logits snap.h5 --out sd > sd.log || fail "self-distillation run"
expect "hard labels until the first checkpoint" grep -q "no checkpoint yet: hard labels only" sd.log
expect "snapshot taken" grep -q "the teacher is now sd/ckpt-00000039.h5" sd.log
expect "teaching checkpoint kept by the rotation (--keep 1)" test -e sd/ckpt-00000039.h5
kdrun 2 logits --ckpt sd/ckpt-00000039.h5 --data d.h5 --out l39.h5 > /dev/null || fail "kd logits"
expect "snapshot logits == kd logits of the checkpoint" "$PY" -c "
import h5py, numpy as np
a, b = h5py.File('snap.h5', 'r')['train/logits'][()], h5py.File('l39.h5', 'r')['train/logits'][()]
assert a.shape == (5000, 5), a.shape
err = np.max(np.abs(a - b[:5000])) / max(1.0, np.max(np.abs(b)))
assert err < 1e-5, err
"
# Resume inside a snapshot period (refreshing every epoch from the latest checkpoint).
R=(train --data "$PWD/d.h5" --student 24-64-5 --epochs 4 --self-distill --teacher-ckpt latest --refresh-every 1 --threads 1
   --progress off --ckpt-every 30)
kdrun 2 "${R[@]}" --out rs_a > /dev/null || fail "refreshing run"
kdrun 2 "${R[@]}" --out rs_b --max-steps 140 > /dev/null || fail "refreshing run, first half"
(mkdir -p elsewhere && cd elsewhere && kdrun 2 train --resume ../rs_b > /dev/null) || fail "refreshing run, resumed from another directory"
expect "resume inside a snapshot period is bitwise" quiet "$PY" "$TESTS_DIR/compare_weights.py" rs_a/final.h5 rs_b/final.h5 --exact

# Born-again generations.
G=(train --data d.h5 --teacher t.h5 --student 24-64-5 --epochs 3 --generations 3 --val-rows 1000 --threads 1
   --progress off --ckpt-every 20 --dropout 0.1)
kdrun 2 "${G[@]}" --out chain_a > chain_a.log || fail "3-generation chain"
expect "per-generation table" grep -q "^born-again generations" chain_a.log
expect "table rows 0, 1, 2 and the ensemble" test "$(grep -cE '^  ([012]|ensemble) +0\.[0-9]+' chain_a.log)" -eq 4
expect "generation 1 learns from generation 0" grep -q "the teacher is now chain_a/gen0/ckpt-" chain_a.log
kdrun 2 "${G[@]}" --out chain_b > chain_b.log 2>&1 &
mpid=$!
# as soon as generation 1 begins: waiting for its first checkpoint raced with its end on a quiet machine
for _ in $(seq 2000); do [ -d chain_b/gen1 ] && break; sleep 0.01; done
signal_ranks TERM chain_b
wait "$mpid"
rc=$?
expect "SIGTERM in generation 1 exits 75 (got $rc)" test "$rc" -eq 75
expect "stopped before the chain ended" test -e chain_b/gen1/latest -a ! -e chain_b/gen2/final.h5
kdrun 2 train --resume chain_b > chain_b2.log || fail "chain resume"
expect "resumed chain continues where it stopped" grep -Eq "== generation [12] \(resumed\)" chain_b2.log
for g in 0 1 2; do
  expect "generation $g bitwise equal after the resume" quiet "$PY" "$TESTS_DIR/compare_weights.py" \
    chain_a/gen$g/final.h5 chain_b/gen$g/final.h5 --exact
done
finish
