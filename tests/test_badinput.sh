#!/bin/bash
# The bad-input matrix, on 2 ranks, each case under a 10-second limit (a hang fails the case; a few cases at
# once, each in its own directory, as most of a failing case's time is mpiexec waiting out its ranks' exit): one
# "kd: error" line naming the file, dataset, option or value; exit 2 when the arguments and the rank
# count alone decide, 1 when reading files or running does; the checkpoints already on disk unchanged.
source "$(dirname "$0")/lib.sh"
"$PY" "$TESTS_DIR/make_bad.py" b || exit 1
G=b/good.h5
T=b/teacher.h5
base=(--student 8-16-3 --epochs 1 --batch 20 --threads 1 --progress off)
# A run whose checkpoints must survive every case below.
kdrun 2 train --data $G --teacher $T "${base[@]}" --epochs 2 --out keep >/dev/null || { fail "reference run"; finish; exit 1; }
sums() { (cd keep && md5sum ckpt-*.h5 latest best final.h5 2>/dev/null); }
before=$(sums)
# What some cases read or must leave alone: a teacher of other data, an existing teacher file, a run to resume.
"$KD" synth --out b/other.h5 --train 200 --test 0 --dim 8 --classes 3 >/dev/null
kdrun 1 logits --ckpt keep --data b/other.h5 --out b/other_t.h5 >/dev/null
cp b/teacher.h5 b/existing_t.h5
cp -r keep full
n=0
started=()

# case_ WANT_RC NEEDLE ARGS...: start a case on 2 ranks (KD_TEST_JOBS at a time, default 4) in the directory c<n>,
# which links to b, keep and full; collect reports the cases started: the exit, one error line, the needle.
case_() {
  local want=$1 needle=$2
  shift 2
  n=$((n + 1))
  while [ "$(jobs -rp | wc -l)" -ge "${KD_TEST_JOBS:-4}" ]; do wait -n; done
  mkdir "c$n" && ln -s ../b ../keep ../full "c$n"/ || { fail "case $n: its directory"; return; }
  started+=("$n")
  (
    cd "c$n" || exit 1
    start=$(date +%s)
    out=$(timeout -k 2 10 "$MPIEXEC" -q -np 2 --oversubscribe --bind-to none "$KD" "$@" 2>&1 >/dev/null)
    rc=$?
    end=$(date +%s)
    lines=$(printf '%s\n' "$out" | grep -c '^kd: error')
    if [ "$rc" -eq "$want" ] && [ "$lines" -eq 1 ] && printf '%s' "$out" | grep -qF -- "$needle"; then
      printf 'ok\ncase %s: exit %s in %s s, %s\n' "$n" "$want" "$((end - start))" "'$needle'"
    else
      printf "fail\ncase %s: wanted exit %s and one error line naming '%s'; got exit %s: %s (%s)\n" "$n" "$want" \
        "$needle" "$rc" "$out" "$*"
    fi > result
  ) &
}
# Files and data (exit 1).
case_ 1 "b/none.h5: cannot read the file (no such file)" train --data b/none.h5 "${base[@]}" --out o
case_ 1 "b/not_hdf5.h5: not an HDF5 file" train --data b/not_hdf5.h5 "${base[@]}" --out o
case_ 1 "b/truncated.h5" train --data b/truncated.h5 "${base[@]}" --out o
case_ 1 "dataset /train/y is missing" train --data b/no_y.h5 "${base[@]}" --out o
case_ 1 "/train/x must be 2-D" train --data b/x_1d.h5 "${base[@]}" --out o
case_ 1 "dataset /train/x has 3 dimensions" train --data b/x_3d.h5 "${base[@]}" --out o
case_ 1 "/train/x has 200 rows but /train/y has 199" train --data b/y_short.h5 "${base[@]}" --out o
case_ 1 "/train/logits has 195 rows but /train/x" train --data $G --teacher b/logits_short.h5 "${base[@]}" --out o
case_ 1 "/train/y row 150 holds label 3, outside [0, 3)" train --data b/label_big.h5 "${base[@]}" --out o
case_ 1 "/train/y row 150 holds label -3" train --data b/label_neg.h5 --teacher $T "${base[@]}" --out o
case_ 1 "row 150 is -1 (unlabelled), which needs a teacher" train --data b/label_unlabelled.h5 "${base[@]}" --out o
case_ 1 "row 150 holds 1.5, not a whole-number class label" train --data b/label_fraction.h5 "${base[@]}" --out o
case_ 1 "/train/logits has 4 classes but --student 8-16-3 outputs 3" train --data $G --teacher b/logits_c4.h5 "${base[@]}" --out o
case_ 1 "/train/x has 9 features per row but --student 8-16-3 takes 8" train --data b/x_width9.h5 "${base[@]}" --out o
case_ 1 "(rank 1): b/x_nan.h5: /train/x row 150 column 3 is NaN" train --data b/x_nan.h5 "${base[@]}" --out o
case_ 1 "/train/x row 150 column 3 is infinite" train --data b/x_inf.h5 "${base[@]}" --out o
case_ 1 "(rank 1): b/logits_nan.h5: /train/logits row 150 column 1 is NaN" train --data $G --teacher b/logits_nan.h5 "${base[@]}" --out o
case_ 1 "/train/logits row 150 column 1 is infinite" train --data $G --teacher b/logits_inf.h5 "${base[@]}" --out o
case_ 1 "split /train is empty" train --data b/empty.h5 "${base[@]}" --out o
case_ 1 "/train has 1 training rows, fewer than the 2 ranks" train --data b/one_row.h5 "${base[@]}" --out o
case_ 1 "too few for one global batch of 300" train --data $G "${base[@]}" --batch 300 --out o
case_ 1 "/sys/kd-out" train --data $G "${base[@]}" --out /sys/kd-out
case_ 1 "is of student 8-16-3, not 8-32-3" train --data $G --student 8-32-3 --init keep --epochs 1 --out o
case_ 1 "(rank 1): b/x_nan.h5: /train/x row 150 column 3 is NaN" logits --ckpt keep --data b/x_nan.h5 --out b/existing_t.h5
# kd eval and kd predict read their rows a block at a time: the row and the file are still named
case_ 1 "b/logits_nan.h5: /train/logits row 150 column 1 is NaN" eval --ckpt keep --data $G --teacher b/logits_nan.h5 --split train
case_ 1 "b/x_nan.h5: /train/x row 150 column 3 is NaN" predict --ckpt keep --data b/x_nan.h5 --split train --out b/pred.h5
case_ 1 "the teacher logits were computed from other data" train --data $G --teacher b/other_t.h5 "${base[@]}" --out o
KD_FAULT_CKPT=enospc:1000 case_ 1 "No space left on device" train --resume full --epochs 3
# Arguments and rank count (exit 2).
case_ 2 "--temperature 0: out of range" train --data $G "${base[@]}" --temperature 0 --out o
case_ 2 "--temperature -2: out of range" train --data $G "${base[@]}" --temperature -2 --out o
case_ 2 "--alpha 1.5: out of range" train --data $G "${base[@]}" --alpha 1.5 --out o
case_ 2 "--alpha -0.1: out of range" train --data $G "${base[@]}" --alpha -0.1 --out o
case_ 2 "--lr 0: out of range" train --data $G "${base[@]}" --lr 0 --out o
case_ 2 "--dropout 1: out of range" train --data $G "${base[@]}" --dropout 1 --out o
case_ 2 "--dropout -0.5: out of range" train --data $G "${base[@]}" --dropout -0.5 --out o
case_ 2 "--epochs 0: out of range" train --data $G "${base[@]}" --epochs 0 --out o
case_ 2 "--batch 0: out of range" train --data $G "${base[@]}" --batch 0 --out o
case_ 2 "--momentum 1: out of range" train --data $G "${base[@]}" --momentum 1 --out o
case_ 2 "--weight-decay -1: out of range" train --data $G "${base[@]}" --weight-decay -1 --out o
case_ 2 "--clip -1: out of range" train --data $G "${base[@]}" --clip -1 --out o
case_ 2 "--lr abc: expected a finite number" train --data $G "${base[@]}" --lr abc --out o
case_ 2 "--optimizer adam: unknown value, expected one of sgd|adamw" train --data $G "${base[@]}" --optimizer adam --out o
case_ 2 "--schedule step: unknown value" train --data $G "${base[@]}" --schedule step --out o
case_ 2 "--student '784-x-10'" train --data $G --student 784-x-10 --out o
case_ 2 "--student '784': need at least an input and a class count" train --data $G --student 784 --out o
case_ 2 "unknown student family 'tree'" train --data $G --student tree:8-16-3 --out o
case_ 2 "--batch 1 is smaller than the 2 ranks" train --data $G "${base[@]}" --batch 1 --out o
case_ 2 "unknown option '--bogus'" train --data $G "${base[@]}" --bogus 1 --out o
case_ 2 "--out keep already holds a run" train --data $G "${base[@]}" --out keep
case_ 2 "--student 8-32-3 contradicts the checkpoint" train --resume keep --student 8-32-3
case_ 2 "--hint-layer needs --teacher" train --data $G "${base[@]}" --hint-layer 1 --out o
collect
expect "kd logits on bad rows leaves the existing output as it was" cmp -s b/teacher.h5 b/existing_t.h5
expect "kd predict on bad rows writes no output" test ! -e b/pred.h5
expect "disk full: the earlier checkpoints are unchanged" \
  test "$(cd full && md5sum ckpt-*.h5 latest | sort)" = "$(cd keep && md5sum ckpt-*.h5 latest | sort)"
expect "at least 30 cases ($n)" test "$n" -ge 30
expect "no checkpoint already on disk changed" test "$(sums)" = "$before"
finish
