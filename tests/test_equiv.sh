#!/bin/bash
# 2 ranks against 1 rank on the same global batch: with N = B every step is
# one full batch, so both runs see the same rows in every step and must end
# with the same parameters up to float rounding (1e-6 relative).
source "$(dirname "$0")/lib.sh"
"$KD" synth --out d.h5 --teacher-out t.h5 --train 96 --test 0 --dim 20 --classes 5 >/dev/null || exit 1
common=(--data d.h5 --teacher t.h5 --student 20-32-16-5 --batch 96 --threads 1 --progress off)
for opt in "sgd --epochs 3 --nesterov --weight-decay 0.01 --lr 0.1" "sgd --epochs 1 --activation gelu" \
           "adamw --epochs 1 --lr 0.01 --weight-decay 0.1"; do
  tag=$(echo "$opt" | tr -c 'a-z0-9' _)
  kdrun 1 train "${common[@]}" --optimizer $opt --out r1_$tag >/dev/null || fail "1-rank run ($opt)"
  kdrun 2 train "${common[@]}" --optimizer $opt --out r2_$tag >/dev/null || fail "2-rank run ($opt)"
  expect "2 ranks == 1 rank within 1e-6 ($opt)" "$PY" "$TESTS_DIR/compare_weights.py" r1_$tag/final.h5 r2_$tag/final.h5 --rtol 1e-6
done
# An uneven split: 5 ranks take 19 + 19 + 19 + 19 + 20 rows of each batch of 96.
kdrun 5 train "${common[@]}" --optimizer sgd --epochs 1 --out r5 >/dev/null || fail "5-rank run"
kdrun 1 train "${common[@]}" --optimizer sgd --epochs 1 --out r1b >/dev/null || fail "1-rank run"
expect "5 uneven ranks == 1 rank within 1e-6" "$PY" "$TESTS_DIR/compare_weights.py" r1b/final.h5 r5/final.h5 --rtol 1e-6
# Uneven shards: 10 rows on 3 ranks (3, 3, 4 rows), batch 3 (1 row per rank per step): every
# rank runs min_r floor(n_r / b_r) = 3 steps per epoch, the fourth row of rank 2 is dropped.
"$KD" synth --out small.h5 --train 10 --test 0 --dim 4 --classes 3 >/dev/null || exit 1
kdrun 3 train --data small.h5 --student 4-8-3 --batch 3 --epochs 2 --threads 1 --progress off --out r3 > r3.log ||
  fail "3-rank uneven run"
expect "3 steps per epoch on uneven shards" grep -q "^final: steps=6 " r3.log
finish
