#!/bin/bash
# kd eval and kd predict against an independent computation: the h5py
# example's logits equal kd predict's, and accuracy, NLL, ECE, teacher
# agreement and KL equal kd eval --json's (with and without --normalize). Checkpoint specs DIR, DIR:best,
# DIR:step:N and FILE all resolve. Evaluation rows appear in metrics.csv.
source "$(dirname "$0")/lib.sh"
"$KD" synth --out d.h5 --teacher-out t.h5 --train 6000 --test 1500 --dim 32 --classes 7 >/dev/null || exit 1
kdrun 2 train --data d.h5 --teacher t.h5 --student 32-64-7 --activation gelu --epochs 3 --batch 64 --ckpt-every 40 \
  --eval-every 25 --val-rows 1000 --threads 1 --progress off --out run > run.log || fail "training run"
kdrun 2 predict --ckpt run --data d.h5 --out pred.h5 > pred.log || fail "kd predict"
kdrun 2 eval --ckpt run --data d.h5 --teacher t.h5 --temperature 3 --json > ev.json || fail "kd eval --json"
expect "kd eval prints one JSON object" test "$(wc -l < ev.json)" -eq 1
expect "independent metrics" "$PY" "$TESTS_DIR/check_eval.py" "run/$(cat run/latest)" d.h5 t.h5 pred.h5 ev.json 3
# With --normalize the h5py example applies /preprocess as kd predict and kd eval do.
kdrun 2 train --data d.h5 --teacher t.h5 --student 32-64-7 --epochs 2 --batch 64 --normalize minmax --threads 1 \
  --progress off --out runn > runn.log || fail "--normalize minmax run"
kdrun 1 predict --ckpt runn/final.h5 --data d.h5 --out predn.h5 > /dev/null || fail "kd predict (normalised)"
kdrun 1 eval --ckpt runn/final.h5 --data d.h5 --teacher t.h5 --temperature 3 --json > evn.json || fail "kd eval (normalised)"
expect "independent metrics with --normalize" "$PY" "$TESTS_DIR/check_eval.py" runn/final.h5 d.h5 t.h5 predn.h5 evn.json 3
oldest=$(ls run/ckpt-*.h5 | head -1 | sed 's/.*ckpt-0*\([0-9]*\)\.h5/\1/')
for spec in run:best "run:step:$oldest" "run/$(cat run/latest)" run/final.h5; do
  kdrun 1 eval --ckpt "$spec" --data d.h5 > spec.log 2>&1 || fail "kd eval --ckpt $spec"
done
ok "checkpoint specs resolve"
expect "text output" grep -Eq '^test: accuracy [0-9.]+  nll [0-9.]+  ece [0-9.]+  \(1500 rows\)' spec.log
expect "eval rows in metrics.csv" grep -Eq '^25,1,[^,]*,[^,]*,[^,]*,[^,]*,[^,]*,[^,]*,[^,]*,[^,]*,0\.[0-9]+,' run/metrics.csv
expect "best pointer exists" test -e "run/$(cat run/best)"
kdrun 2 train --data d.h5 --student 32-16-7 --epochs 3 --ckpt-epochs 0 --threads 1 --progress off --out few > few.log ||
  fail "--ckpt-epochs 0 run"
expect "--ckpt-epochs 0: only the final checkpoint" test "$(ls few/ckpt-*.h5 | wc -l)" -eq 1
kdrun 1 eval --ckpt run:step:7 --data d.h5 > missing.log 2>&1
expect "missing step is an error" test $? -eq 1
finish
