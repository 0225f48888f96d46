#!/bin/bash
# Gradient synchronisation paths against each other and against 1 rank (N = B: every step sees the
# same rows whatever the rank count, as in test_equiv.sh), with small buckets
# (--bucket-kib 1: about 20 buckets) so several collectives are in flight at once:
#  - 2 ranks: --overlap on|off x --shard-optimizer on|off all equal 1 rank within 1e-5 (float rounding of the split batch); overlapped
#    equals blocking bit for bit (a sum of two floats does not depend on the order); without
#    clipping the sharded optimizer equals the replicated one bit for bit;
#  - 3 ranks (uneven slices) with the sharded optimizer, blocking and overlapped, equal 1 rank within 1e-5;
#  - stop and --resume with the sharded, overlapped path: bitwise equal to a straight run (the
#    moments each rank owns are gathered for the checkpoint).
source "$(dirname "$0")/lib.sh"
"$KD" synth --out d.h5 --teacher-out t.h5 --train 96 --test 0 --dim 20 --classes 5 >/dev/null || exit 1
C=(train --data d.h5 --teacher t.h5 --student 20-64-48-5 --batch 96 --epochs 4 --threads 1 --progress off
   --bucket-kib 1)
cmpw() { quiet "$PY" "$TESTS_DIR/compare_weights.py" "$@"; }
for opt in "sgd --nesterov --weight-decay 0.01 --lr 0.1" "adamw --lr 0.01 --weight-decay 0.1 --clip 0.05"; do
  tag=$(echo "$opt" | cut -d' ' -f1)
  kdrun 1 "${C[@]}" --optimizer $opt --out r1_$tag >/dev/null || fail "1-rank run ($tag)"
  for ov in off on; do
    for sh in off on; do
      kdrun 2 "${C[@]}" --optimizer $opt --overlap $ov --shard-optimizer $sh --out r2_${tag}_${ov}_$sh > $tag.$ov.$sh.log ||
        fail "2-rank run ($tag, overlap $ov, shard $sh)"
      expect "$tag: overlap $ov, shard $sh == 1 rank within 1e-5" \
        cmpw r1_$tag/final.h5 r2_${tag}_${ov}_$sh/final.h5 --rtol 1e-5
    done
    expect "$tag: overlap $ov, sharded == replicated$([ $tag = sgd ] && echo ' bitwise' || echo ' within 1e-6 (clipped)')" \
      cmpw r2_${tag}_${ov}_off/final.h5 r2_${tag}_${ov}_on/final.h5 $([ $tag = sgd ] && echo --exact || echo --rtol 1e-6)
  done
  for sh in off on; do
    expect "$tag: shard $sh, overlapped == blocking bitwise" cmpw r2_${tag}_off_$sh/final.h5 r2_${tag}_on_$sh/final.h5 --exact
  done
done
n=$(sed -n 's/^gradients: \([0-9]*\) buckets, reduce-scatter.*overlapped.*/\1/p' sgd.on.on.log)
expect "several buckets in flight (${n:-none} reported)" test "${n:-0}" -ge 10

kdrun 3 "${C[@]}" --optimizer sgd --nesterov --weight-decay 0.01 --lr 0.1 --out r3 > r3.log || fail "3-rank run"
expect "3 ranks shard by default" grep -q "reduce-scatter + sharded optimizer" r3.log
expect "3 ranks, sharded == 1 rank within 1e-5" cmpw r1_sgd/final.h5 r3/final.h5 --rtol 1e-5
kdrun 3 "${C[@]}" --optimizer sgd --nesterov --weight-decay 0.01 --lr 0.1 --overlap on --out r3o > r3o.log ||
  fail "3-rank overlapped run"
expect "3 ranks, sharded and overlapped == 1 rank within 1e-5" cmpw r1_sgd/final.h5 r3o/final.h5 --rtol 1e-5

R=("${C[@]}" --optimizer adamw --lr 0.01 --clip 0.05 --dropout 0.1 --ckpt-every 2 --overlap on --shard-optimizer on)
kdrun 2 "${R[@]}" --out full >/dev/null || fail "straight run"
kdrun 2 "${R[@]}" --out half --max-steps 2 >/dev/null || fail "half run"
kdrun 2 train --resume half >/dev/null || fail "resume"
expect "sharded + overlapped: resume bitwise equal" cmpw full/final.h5 half/final.h5 --exact
finish
