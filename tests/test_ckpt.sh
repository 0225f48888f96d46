#!/bin/bash
# Checkpoints and resume (2 ranks unless stated):
#  - stop half-way (--max-steps) and --resume: losses and final weights bitwise equal to a straight run;
#  - SIGTERM to the ranks: checkpoint, exit 75, resume completes bitwise;
#  - SIGKILL of the whole job mid-epoch, and of rank 0 during a checkpoint write (KD_FAULT_CKPT):
#    the previous checkpoint and the latest pointer stay valid, resume completes bitwise;
#  - a full disk during a checkpoint write: exit 1, earlier checkpoints untouched;
#  - truncated and corrupted latest checkpoint: resume falls back to the previous one and says so;
#  - resume on 1 rank from a 2-rank checkpoint; contradicting options refused (exit 2);
#  - keep-K rotation with the best checkpoint protected; --init.
source "$(dirname "$0")/lib.sh"
"$KD" synth --out d.h5 --teacher-out t.h5 --train 40000 --test 2000 --dim 64 --classes 10 >/dev/null || exit 1
A=(train --data d.h5 --teacher t.h5 --student 64-256-256-10 --epochs 3 --batch 100 --ckpt-every 150 --keep 2
   --val-rows 2000 --dropout 0.1 --optimizer adamw --lr 0.002 --warmup 50 --threads 1 --progress off)
same() { "$PY" "$TESTS_DIR/compare_weights.py" "$1" "$2" --exact >/dev/null; }
metrics_same() { cmp -s <(cut -d, -f1-8,11- "$1") <(cut -d, -f1-8,11- "$2"); }

kdrun 2 "${A[@]}" --out ref > ref.log || { fail "reference run"; finish; exit 1; }

# 1. Stop half-way and resume.
kdrun 2 "${A[@]}" --out half --max-steps 500 > half.log || fail "half run"
expect "latest points at the stop" grep -qx "ckpt-00000500.h5" half/latest
kdrun 2 train --resume half > half2.log || fail "resume"
expect "resumed weights bitwise equal" same ref/final.h5 half/final.h5
expect "resumed metrics equal (timing aside)" metrics_same ref/metrics.csv half/metrics.csv
expect "resumed losses in the log equal" cmp -s <(grep '^epoch 3' ref.log | sed 's/  [0-9]* samples.*//') \
  <(grep '^epoch 3' half2.log | sed 's/  [0-9]* samples.*//')
n_ckpt=$(ls ref/ckpt-*.h5 | wc -l)
best=$(cat ref/best)
expect "keep 2 plus the best ($n_ckpt files, best $best)" test "$n_ckpt" -le 3 -a -e "ref/$best"

# 2. Preemption: SIGTERM to the ranks (as Slurm sends it).
kdrun 2 "${A[@]}" --out pre > pre.log 2>&1 &
mpid=$!
for _ in $(seq 200); do [ -e pre/ckpt-00000150.h5 ] && break; sleep 0.05; done
signal_ranks TERM pre
wait "$mpid"
rc=$?
expect "SIGTERM exits 75 (got $rc)" test "$rc" -eq 75
expect "SIGTERM message" grep -q "stopped by signal 15" pre.log
expect "stopped before the end" test ! -e pre/final.h5
kdrun 2 train --resume pre > pre2.log || fail "resume after SIGTERM"
expect "preempted run ends bitwise equal" same ref/final.h5 pre/final.h5

# 3. SIGKILL of the whole job mid-epoch.
kdrun 2 "${A[@]}" --out kill > kill.log 2>&1 &
mpid=$!
for _ in $(seq 200); do [ -e kill/ckpt-00000300.h5 ] && break; sleep 0.05; done
kill_job kill
wait "$mpid" 2>/dev/null
expect "no process of the killed run is left" test -z "$(pids_of kd kill)"
expect "killed before the end" test ! -e kill/final.h5
kdrun 2 train --resume kill > kill2.log || fail "resume after SIGKILL"
expect "killed run ends bitwise equal" same ref/final.h5 kill/final.h5

# 4. Rank 0 killed while writing the checkpoint of step 300 (after 4096 bytes).
KD_FAULT_CKPT=kill:4096 KD_FAULT_CKPT_STEP=300 kdrun 2 "${A[@]}" --out wr > wr.log 2>&1
expect "fault hook fired" grep -q "KD_FAULT_CKPT: killing" wr.log
expect "latest still names step 150" grep -qx "ckpt-00000150.h5" wr/latest
expect "partial file left under a temporary name" test -e wr/.ckpt-00000300.h5.tmp -a ! -e wr/ckpt-00000300.h5
kdrun 2 train --resume wr > wr2.log || fail "resume after a kill during a write"
expect "kill-during-write run ends bitwise equal" same ref/final.h5 wr/final.h5

# 5. Disk full during a checkpoint write.
KD_FAULT_CKPT=enospc:2048 KD_FAULT_CKPT_STEP=300 kdrun 2 "${A[@]}" --out full > full.log 2>&1
rc=$?
expect "ENOSPC exits 1 (got $rc)" test "$rc" -eq 1
expect "ENOSPC message" grep -q "No space left on device" full.log
expect "ENOSPC leaves latest at 150" grep -qx "ckpt-00000150.h5" full/latest
expect "ENOSPC leaves the earlier checkpoint valid" quiet "$KD" eval --ckpt full --data d.h5 --json

# 6. Damaged latest checkpoints: resume falls back and says so.
cp -r half trunc
cp -r half corrupt
latest=$(cat half/latest)
size=$(stat -c %s "half/$latest")
truncate -s $((size / 2)) "trunc/$latest"
"$PY" - "corrupt/$latest" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    data = bytearray(f.read())
    # flip bytes inside the largest dataset (the middle of the file)
    for i in range(len(data) // 2, len(data) // 2 + 64):
        data[i] ^= 0x5A
    f.seek(0)
    f.write(data)
PY
kdrun 2 train --resume trunc --max-steps 510 > trunc.log 2>&1 || fail "resume from a truncated latest"
expect "truncated latest reported" grep -q "latest checkpoint is damaged" trunc.log
expect "fell back to an older checkpoint" grep -q "falling back to" trunc.log
kdrun 2 train --resume corrupt --max-steps 510 > corrupt.log 2>&1 || fail "resume from a corrupted latest"
expect "corrupted latest reported" grep -Eq "damaged: .*(checksum mismatch|cannot|not an HDF5|corrupt)" corrupt.log

# 6b. Resume from an older checkpoint: the newer ones are an abandoned future and go; the checkpoints
# written after the resume stay (keep-K counts only steps up to the current one).
kdrun 2 "${A[@]}" --out k1 --max-steps 450 > /dev/null || fail "run to step 450"
kdrun 2 train --resume k1:step:380 --max-steps 400 > k1.log 2>&1 || fail "resume from step 380"
expect "the checkpoint written after going back exists" test "$(cat k1/latest)" = ckpt-00000400.h5 -a -e k1/ckpt-00000400.h5
expect "the abandoned future checkpoint is gone" test ! -e k1/ckpt-00000450.h5

# 7. A 2-rank checkpoint resumed on 1 rank.
cp -r half one
rm -f one/final.h5
kdrun 1 train --resume one > one.log || fail "1-rank resume of a 2-rank checkpoint"
expect "1-rank resume reports the reshard" grep -q "rows resharded" one.log
expect "1-rank resume completes" test -e one/final.h5

# 8. Options at resume: contradictions refused, allowed changes reported.
kdrun 2 train --resume half --student 64-128-10 > bad.log 2>&1
rc=$?
expect "contradicting --student exits 2 (got $rc)" test "$rc" -eq 2
expect "contradiction named" grep -q -- "--student 64-128-10 contradicts the checkpoint" bad.log
kdrun 2 train --resume half --epochs 4 --max-steps 1250 > more.log || fail "resume with more epochs"
expect "changed epochs reported" grep -q -- "--epochs changed from 3 to 4" more.log

# 9. --init: weights only, fresh start; another architecture refused.
kdrun 2 train --data d.h5 --student 64-256-256-10 --init ref:best --epochs 1 --max-steps 10 --threads 1 \
  --progress off --out init > init.log || fail "--init run"
expect "--init reports its source" grep -q "initial weights from ref/ckpt-" init.log
expect "--init starts at step 0" grep -q "^final: steps=10 " init.log
kdrun 2 train --data d.h5 --student 64-128-10 --init ref --epochs 1 --out init2 > init2.log 2>&1
rc=$?
expect "--init of another architecture exits 1 (got $rc)" test "$rc" -eq 1
expect "--init mismatch named" grep -q "is of student 64-256-256-10, not 64-128-10" init2.log
finish
