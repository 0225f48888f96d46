#!/bin/bash
# Files of earlier versions: tests/data/v1run holds a 2-rank run stopped at step 40 by kd 0.1.0 before
# the restructure of issue 12 (checkpoint format 1; kd synth data regenerated here, bitwise as it was).
# The current kd resumes it and ends bitwise equal to an uninterrupted run of the current kd, with the
# same metrics apart from timing; kd eval and kd predict read its checkpoint.
source "$(dirname "$0")/lib.sh"
"$KD" synth --out d.h5 --teacher-out t.h5 --train 600 --test 100 --dim 8 --classes 3 >/dev/null || exit 1
A=(train --data d.h5 --teacher t.h5 --student 8-16-3 --epochs 3 --batch 20 --threads 1 --ckpt-every 25 --keep 1
   --dropout 0.1 --optimizer adamw --lr 0.01 --progress off)
kdrun 2 "${A[@]}" --out ref > ref.log || fail "uninterrupted run"
cp -r "$TESTS_DIR/data/v1run" v1
expect "the v1 checkpoint verifies" quiet "$KD" eval --ckpt v1 --data d.h5 --teacher t.h5
expect "kd predict reads it" quiet "$KD" predict --ckpt v1 --data d.h5 --out p.h5
kdrun 2 train --resume v1 > v1.log 2>&1 || { fail "resume of the v1 checkpoint"; cat v1.log; }
expect "resumed from step 40" grep -q "resume at step 40" v1.log
expect "final weights bitwise equal to the uninterrupted run" \
  quiet "$PY" "$TESTS_DIR/compare_weights.py" ref/final.h5 v1/final.h5 --exact
expect "metrics equal apart from timing" cmp <(cut -d, -f1-8,11- ref/metrics.csv) <(cut -d, -f1-8,11- v1/metrics.csv)
finish
