#!/bin/bash
# The same command on the same ranks and threads gives bitwise the same
# weights and the same metrics apart from the timing columns, with dropout
# and shuffling on; a different seed gives different weights.
source "$(dirname "$0")/lib.sh"
"$KD" synth --out d.h5 --teacher-out t.h5 --train 3000 --test 500 --dim 32 --classes 6 >/dev/null || exit 1
args=(train --data d.h5 --teacher t.h5 --student 32-64-64-6 --dropout 0.2 --epochs 2 --batch 50 --log-every 10
      --threads 1 --progress off --optimizer adamw --lr 0.003 --warmup 20 --clip 5)
kdrun 2 "${args[@]}" --out a >/dev/null || fail "run a"
kdrun 2 "${args[@]}" --out b >/dev/null || fail "run b"
kdrun 2 "${args[@]}" --out c --seed 2 >/dev/null || fail "run c"
expect "final weights bitwise equal" "$PY" "$TESTS_DIR/compare_weights.py" a/final.h5 b/final.h5 --exact
# columns 9 and 10 are samples_per_s and elapsed_s
expect "metrics equal apart from timing" cmp <(cut -d, -f1-8,11- a/metrics.csv) <(cut -d, -f1-8,11- b/metrics.csv)
expect "metrics has rows" test "$(wc -l < a/metrics.csv)" -ge 10
if "$PY" "$TESTS_DIR/compare_weights.py" a/final.h5 c/final.h5 --exact >/dev/null 2>&1; then
  fail "another seed gave the same weights"
else
  ok "another seed gives other weights"
fi
finish
