#!/bin/bash
# Streamed training rows (issue 31), on feature rows and token rows:
#  - a run whose data fits trains in memory by default, bit for bit as --stream off;
#  - streamed, 1 and 2 ranks train the same steps to rounding (the order is global), with dense float16 and
#    sparse top-k teacher logits too; --stream auto streams over --memory-budget and says so, bit for bit as on;
#  - a streamed run stopped (--max-steps), preempted (SIGTERM) or killed (SIGKILL) resumes bitwise;
#  - refusals are one line with exit 2: a budget too small for two windows, --snapshot-logits streamed;
#  - self-distillation streamed: a fixed snapshot is that checkpoint as an online teacher, bit for bit; a refreshing
#    one trains alike on 1 and 2 ranks and resumes bitwise;
#  - three shard files (a glob, a list) train the steps of the one file they split; kd logits writes a teacher
#    shard per data shard; a bad set (width, count, rows, provenance, no match, missing file) is one line, exit 1;
#  - with the process's address space limited (prlimit --as) below the size of its data and teacher files, a
#    streamed run finishes with the weights of the same run unlimited, where the in-memory run fails cleanly;
#    kd eval and kd predict (rows read in order, a block at a time) run under it too, kd eval as the run's own.
source "$(dirname "$0")/lib.sh"
"$KD" synth --out d.h5 --teacher-out t.h5 --train 12000 --test 500 --dim 32 --classes 5 >/dev/null || exit 1
A=(train --data d.h5 --teacher t.h5 --student 32-64-5 --epochs 3 --batch 60 --threads 1 --progress off
   --optimizer adamw --lr 0.003 --dropout 0.1 --ckpt-every 100 --keep 2)
S=(--stream on --shuffle-window 1000)
same() { close "$1" "$2" --exact; }
# Under the sanitizers (KD_TEST_QUICK=1) the reader thread runs in the streamed runs of 1 and 2 ranks, token rows
# with float16 logits (and their resume) and the shards; the rest runs in the main pass only.
quick=${KD_TEST_QUICK:-0}
[ "$quick" = 1 ] && echo "note: KD_TEST_QUICK=1: a subset (streamed ranks, token rows, shards)"

# 1. Data that fits: in memory, unchanged.
if [ "$quick" != 1 ]; then
kdrun 2 "${A[@]}" --out mem > mem.log || fail "in-memory run"
kdrun 2 "${A[@]}" --stream off --out off > /dev/null || fail "--stream off run"
expect "the default holds data that fits in memory and says so" grep -q '^rows: in memory' mem.log
expect "the default is the in-memory path, bit for bit" same mem/final.h5 off/final.h5
fi

# 2. Streamed: the order does not depend on the rank count.
kdrun 1 "${A[@]}" "${S[@]}" --out s1 > s1.log || fail "streamed, 1 rank"
kdrun 2 "${A[@]}" "${S[@]}" --out s2 > s2.log || fail "streamed, 2 ranks"
expect "the banner says the rows are streamed, with the order's blocks and windows" \
  grep -q '^rows: streamed from the files (--stream on), blocks of 512 rows shuffled and rows within windows of 1024' s2.log
expect "the run reports its reader" grep -q '^stream (rank 0): the reader read' s2.log
expect "streamed: 1 and 2 ranks end with the same weights (1e-5)" close s1/final.h5 s2/final.h5 --rtol 1e-5
expect "streamed: 1 and 2 ranks log the same losses (1e-5)" cols s1 s2 loss ce kd
expect "streamed: the same test accuracy on 1 and 2 ranks" \
  test "$(grep -o 'test_acc=[0-9.]*' s1.log)" = "$(grep -o 'test_acc=[0-9.]*' s2.log)"
kdrun 1 eval --ckpt s2 --data d.h5 --teacher t.h5 --split test > s2ev.log || fail "kd eval"
expect "kd eval (rows read in order, a block at a time) prints the run's own final evaluation (held in memory)" \
  test "$(grep '^test:' s2ev.log)" = "$(grep '^test:' s2.log | tail -1)"
if [ "$quick" != 1 ]; then
kdrun 2 "${A[@]}" --memory-budget 512K --shuffle-window 1000 --out auto > auto.log || fail "auto over the budget"
expect "auto streams a shard over --memory-budget and says why" \
  grep -q '^rows: streamed from the files (the shard is over --memory-budget)' auto.log
expect "auto's stream is --stream on's, bit for bit" same s2/final.h5 auto/final.h5

# 3. Stop, preemption and a kill, then resume: bitwise.
kdrun 2 "${A[@]}" "${S[@]}" --out half --max-steps 250 > /dev/null || fail "half run"
cp -r half half3 # the stopped run, resumed twice: as it was, and with --stream off
kdrun 2 train --resume half > half2.log || fail "resume"
expect "a resumed streamed run keeps streaming" grep -q '^rows: streamed from the files (as the checkpoint was)' half2.log
expect "stopped mid-epoch and resumed: bitwise" same s2/final.h5 half/final.h5
kdrun 2 train --resume half3 --stream off > half3.log || fail "resume with --stream off"
expect "--stream off on a streamed checkpoint keeps its order (a note)" grep -q 'keeps its order' half3.log
expect "... and ends bitwise" same s2/final.h5 half3/final.h5
B=(train --data d.h5 --teacher t.h5 --student 32-256-256-5 --epochs 6 --batch 60 --threads 1 --progress off
   --optimizer adamw --lr 0.003 --ckpt-every 100 --keep 2 "${S[@]}")
kdrun 2 "${B[@]}" --out bref > /dev/null || fail "reference for the kills"
kdrun 2 "${B[@]}" --out pre > pre.log 2>&1 &
mpid=$!
for _ in $(seq 400); do [ -e pre/ckpt-00000200.h5 ] && break; sleep 0.025; done
signal_ranks TERM pre
wait "$mpid"
rc=$?
expect "SIGTERM stops a streamed run with exit 75 (got $rc)" test "$rc" -eq 75
kdrun 2 train --resume pre > /dev/null || fail "resume after SIGTERM"
expect "preempted streamed run ends bitwise" same bref/final.h5 pre/final.h5
kdrun 2 "${B[@]}" --out kill > kill.log 2>&1 &
mpid=$!
for _ in $(seq 400); do [ -e kill/ckpt-00000300.h5 ] && break; sleep 0.025; done
kill_job kill
wait "$mpid" 2>/dev/null
expect "no process of the killed streamed run is left" test -z "$(pids_of kd kill)"
kdrun 2 train --resume kill > /dev/null || fail "resume after SIGKILL"
expect "killed streamed run ends bitwise" same bref/final.h5 kill/final.h5

# 4. Refusals.
budget_refused() {
  local out rc
  out=$(kdrun 2 "${A[@]}" --stream on --memory-budget 64K --out small 2>&1)
  rc=$?
  expect "a budget too small for two windows: exit 2 (got $rc)" test "$rc" -eq 2
  expect "... one line naming the budget and --shuffle-window" \
    test "$(echo "$out" | grep -c 'streaming needs .* per rank (two windows of --shuffle-window .*--memory-budget is 64 KiB')" -eq 1
}
snapshot_refused() {
  local out rc
  out=$(kdrun 2 train --data d.h5 --student 32-64-5 --self-distill --snapshot-logits snap.h5 --stream on --out sd 2>&1)
  rc=$?
  expect "--stream on with --snapshot-logits: exit 2 (got $rc)" test "$rc" -eq 2
  expect "... one line naming --snapshot-logits and kd logits" \
    test "$(grep -c 'snapshot-logits .*kd logits --ckpt SNAPSHOT.* cannot be streamed' <<< "$out")" -eq 1
}
size_refused() {
  local out
  out=$(kdrun 1 "${A[@]}" --memory-budget 12X --out bad 2>&1)
  expect "--memory-budget 12X is a usage error" grep -q "memory-budget '12X' is not a size" <<< "$out"
}
later budget_refused
later snapshot_refused
later size_refused
fi

# 4b. Self-distillation streamed: the snapshot runs on each step's batch. From a fixed checkpoint it is that
# checkpoint as an online teacher, bit for bit; a refreshing snapshot trains alike on 1 and 2 ranks and resumes
# bitwise (the snapshot reloaded beside the reader thread).
if [ "$quick" != 1 ]; then
SD=(train --data d.h5 --student 32-64-5 --epochs 2 --batch 60 --threads 1 --progress off --optimizer adamw
    --lr 0.003 --dropout 0.1 --ckpt-every 100 --keep 3 "${S[@]}")
kdrun 2 train --data d.h5 --teacher t.h5 --student 32-64-5 --epochs 1 --batch 60 --threads 1 --progress off \
  --out sdt > /dev/null || fail "self-distillation's fixed teacher"
kdrun 2 "${SD[@]}" --self-distill --teacher-ckpt sdt/final.h5 --out sdfix > /dev/null || fail "streamed, fixed snapshot"
kdrun 2 "${SD[@]}" --teacher-model sdt/final.h5 --out sdonl > /dev/null || fail "streamed, online teacher"
expect "streamed self-distillation from a fixed checkpoint = that checkpoint online, bit for bit" \
  same sdfix/final.h5 sdonl/final.h5
kdrun 1 "${SD[@]}" --self-distill --refresh-every 1 --out sd1 > sd1.log || fail "streamed self-distillation, 1 rank"
kdrun 2 "${SD[@]}" --self-distill --refresh-every 1 --out sd2 > sd2.log || fail "streamed self-distillation, 2 ranks"
expect "streamed self-distillation: a snapshot of the run teaches" grep -q '^self-distillation: the teacher is now sd2/ckpt-' sd2.log
expect "streamed self-distillation: 1 and 2 ranks end with the same weights (1e-5)" close sd1/final.h5 sd2/final.h5 --rtol 1e-5
kdrun 2 "${SD[@]}" --self-distill --refresh-every 1 --out sdh --max-steps 250 > /dev/null || fail "self-distillation, half"
kdrun 2 train --resume sdh > /dev/null || fail "self-distillation, resume"
expect "streamed self-distillation stopped and resumed: bitwise" same sd2/final.h5 sdh/final.h5
fi

# 5. Token rows: dense float16 and sparse top-k teacher logits streamed.
"$PY" "$TESTS_DIR/make_tokens.py" fx > /dev/null || exit 1
"$KD" import text --in fx/corpus.txt --ctx 16 --doc-sep % --valid-frac 0.15 --test-frac 0.15 --out c.h5 > /dev/null ||
  exit 1
kdrun 2 train --data c.h5 --student gpt:vocab=256,ctx=16,layers=1,dim=32,heads=4 --batch 16 --threads 1 \
  --progress off --optimizer adamw --lr 0.003 --epochs 1 --out tch > /dev/null || fail "token teacher"
kdrun 2 logits --ckpt tch --data c.h5 --dtype f16 --out dense.h5 > /dev/null || fail "kd logits"
[ "$quick" = 1 ] || kdrun 2 logits --ckpt tch --data c.h5 --dtype f32 --topk 8 --out k8.h5 > /dev/null ||
  fail "kd logits --topk"
W=(train --data c.h5 --student gpt:vocab=256,ctx=16,layers=2,dim=16,heads=2 --threads 1 --progress off --lr 0.5
   --optimizer sgd --temperature 2 --alpha 0.5 --batch 8 --epochs 2 --stream on --shuffle-window 64)
for tf in dense $([ "$quick" = 1 ] || echo k8); do
  kdrun 1 "${W[@]}" --teacher $tf.h5 --out t1$tf > /dev/null || fail "tokens, $tf, 1 rank"
  kdrun 2 "${W[@]}" --teacher $tf.h5 --out t2$tf > /dev/null || fail "tokens, $tf, 2 ranks"
  expect "token rows, $tf teacher streamed: 1 and 2 ranks agree (1e-4)" close t1$tf/final.h5 t2$tf/final.h5 --rtol 1e-4
  kdrun 2 "${W[@]}" --teacher $tf.h5 --out th$tf --max-steps 100 > /dev/null || fail "tokens, $tf, half"
  kdrun 2 train --resume th$tf > /dev/null || fail "tokens, $tf, resume"
  expect "token rows, $tf teacher streamed: resume bitwise" same t2$tf/final.h5 th$tf/final.h5
done

# 6. Many shard files: the rows of d.h5 in three shards (the evaluation split in the first) train the steps of the
# one file, on 1 or 2 ranks; kd logits writes one teacher shard per data shard; bad sets are one line, exit 1.
"$PY" - <<'PY' || fail "writing the shards"
import h5py
cuts = [0, 4100, 7001, 12000]
with h5py.File("d.h5") as d, h5py.File("t.h5") as t:
    for i in range(3):
        a, b = cuts[i], cuts[i + 1]
        with h5py.File(f"part-{i}.h5", "w") as f, h5py.File(f"tpart-{i}.h5", "w") as g:
            f["train/x"], f["train/y"], g["train/logits"] = d["train/x"][a:b], d["train/y"][a:b], t["train/logits"][a:b]
            if i == 0:
                f["test/x"], f["test/y"], g["test/logits"] = d["test/x"][()], d["test/y"][()], t["test/logits"][()]
    with h5py.File("part-1b.h5", "w") as f:  # the rows of part-1, changed
        f["train/x"], f["train/y"] = d["train/x"][4100:7001] + 1, d["train/y"][4100:7001]
    with h5py.File("part-x.h5", "w") as f:  # a shard of another width
        f["train/x"], f["train/y"] = d["train/x"][:100, :16], d["train/y"][:100]
PY
kdrun 2 "${A[@]/d.h5/part-[0-2].h5}" --teacher 'tpart-0.h5,tpart-1.h5,tpart-2.h5' "${S[@]}" --out sh2 > sh2.log ||
  fail "three shards, 2 ranks"
expect "the banner counts the shard files" grep -q '^data: part-\[0-2\].h5 (/train 12000 training rows in 3 shard files' sh2.log
expect "three shards (2 ranks) train the steps of one file (1 rank), 1e-5" close s1/final.h5 sh2/final.h5 --rtol 1e-5
expect "... with the one file's test accuracy" \
  test "$(grep -o 'test_acc=[0-9.]*' s1.log)" = "$(grep -o 'test_acc=[0-9.]*' sh2.log)"
expect "the checkpoint records the expanded shard list" "$PY" -c "
import h5py
with h5py.File('sh2/final.h5') as f:
    c = {k: (v.decode() if isinstance(v, bytes) else str(v)) for k, v in f['config'].attrs.items()}
assert c['_data_files'] == 'part-0.h5,part-1.h5,part-2.h5', c.get('_data_files')
assert c['_teacher_files'] == 'tpart-0.h5,tpart-1.h5,tpart-2.h5', c.get('_teacher_files')"
if [ "$quick" = 1 ]; then settle; finish; exit; fi
kdrun 2 logits --ckpt s2 --data 'part-[0-2].h5' --out 'lg-{}.h5' > lg.log || fail "kd logits of a set"
expect "kd logits writes one teacher shard per data shard" test -e lg-part-0.h5 -a -e lg-part-1.h5 -a -e lg-part-2.h5
kdrun 2 "${A[@]/d.h5/part-[0-2].h5}" --teacher 'lg-part-*.h5' "${S[@]}" --epochs 1 --out shlg > /dev/null ||
  fail "training on kd logits' teacher shards"
bad() { # bad DESCRIPTION PATTERN ARGS...: exit 1, one error line matching PATTERN (run with later)
  local what=$1 pat=$2
  shift 2
  local out rc
  out=$(kdrun 2 train --student 32-64-5 --batch 60 --epochs 1 --threads 1 --progress off "$@" --out "badset$nlater" \
    2>&1)
  rc=$?
  expect "$what: exit 1 (got $rc)" test "$rc" -eq 1
  expect "$what: one line naming the file" test "$(grep -c "$pat" <<< "$out")" -eq 1
}
later bad "a shard of another width" "part-x.h5: /train holds feature rows of width 16 but the set's first shard" \
  --data 'part-*.h5'
later bad "two teacher shards for three" "names 2 files for the 3 shards of --data" --data 'part-[0-2].h5' \
  --teacher 'tpart-0.h5,tpart-1.h5'
later bad "a teacher shard of another shard's rows" "tpart-2.h5: .*rows" --data 'part-0.h5,part-1.h5' \
  --teacher 'tpart-0.h5,tpart-2.h5'
later bad "a glob matching nothing" "nothing-\*.h5: the pattern matches no file" --data 'nothing-*.h5'
later bad "a missing shard of a list" "part-9.h5: no such shard file" --data 'part-0.h5,part-9.h5'
later bad "teacher shards of other data" "lg-part-1.h5: the teacher logits were computed from other data" \
  --data 'part-0.h5,part-1b.h5' --teacher 'lg-part-0.h5,lg-part-1.h5'

# 7. Files larger than the address space: 760 MB of rows, the rank limited to 640 MiB (OpenBLAS alone reserves
# about 400 MiB of it; the launcher is not limited).
"$PY" - big.h5 bigt.h5 <<'PY' || fail "writing the large files"
import sys, h5py, numpy as np
n, d, c = 92_000, 2048, 4
rng = np.random.default_rng(3)
w = rng.standard_normal((d, c)).astype(np.float32) / np.sqrt(d)
with h5py.File(sys.argv[1], "w") as f, h5py.File(sys.argv[2], "w") as t:
    x, y = f.create_dataset("train/x", (n, d), np.float32), f.create_dataset("train/y", (n,), np.int32)
    z = t.create_dataset("train/logits", (n, c), np.float32)
    for a in range(0, n, 4000):
        b = min(n, a + 4000)
        xa = rng.standard_normal((b - a, d), dtype=np.float32)
        x[a:b], z[a:b] = xa, 4 * xa @ w
        y[a:b] = (xa @ w).argmax(1)
    xt = rng.standard_normal((200, d), dtype=np.float32)
    f["test/x"], f["test/y"], t["test/logits"] = xt, (xt @ w).argmax(1).astype(np.int32), 4 * xt @ w
PY
size=$(( $(stat -c %s big.h5) + $(stat -c %s bigt.h5) ))
limit=$((640 << 20))
expect "the files ($size bytes) are larger than the limit ($limit)" test "$size" -gt "$limit"
L=(train --data big.h5 --teacher bigt.h5 --student 2048-8-4 --epochs 1 --batch 256 --threads 1 --progress off
   --lr 0.05 --memory-budget 48M --shuffle-window 2048 --out)
# one OpenBLAS thread whatever the caller's environment: OpenBLAS reserves its buffers per thread at start
lim() { timeout -k 5 300 "$MPIEXEC" -q -np 1 --bind-to none env OPENBLAS_NUM_THREADS=1 prlimit --as=$limit "$KD" "$@"; }
lim "${L[@]}" lim > lim.log 2>&1 || fail "streamed under the limit: $(tail -2 lim.log)"
expect "auto streamed the large shard" grep -q '^rows: streamed from the files (the shard is over' lim.log
# The rest, one rank each, side by side.
unlimited() {
  kdrun 1 "${L[@]}" nolim > /dev/null || fail "streamed without the limit"
  expect "under the limit: the weights of the unlimited run, bit for bit" same nolim/final.h5 lim/final.h5
}
in_memory_refused() {
  local out rc
  out=$(lim "${L[@]}" bigmem --stream off 2>&1)
  rc=$?
  expect "in memory under the limit: exit 1 (got $rc)" test "$rc" -eq 1
  expect "... with one line saying memory ran out" grep -q 'out of memory' <<< "$out"
}
# kd eval and kd predict read the rows in order a block at a time, so they run under the limit too
eval_limited() {
  lim eval --ckpt lim --data big.h5 --teacher bigt.h5 --split train --json > limev.json 2> limev.err ||
    fail "kd eval under the limit: $(tail -2 limev.err)"
}
eval_unlimited() {
  kdrun 1 eval --ckpt lim --data big.h5 --teacher bigt.h5 --split train --json > ev.json || fail "kd eval unlimited"
}
predict_limited() {
  lim predict --ckpt lim --data big.h5 --split train --out limpred.h5 > /dev/null 2> limpred.err ||
    fail "kd predict under the limit: $(tail -2 limpred.err)"
  expect "kd predict under the limit writes the logits of every row" "$PY" -c "
import h5py, numpy as np
with h5py.File('limpred.h5') as f:
    z = f['train/logits'][()]
assert z.shape == (92000, 4) and np.isfinite(z).all(), z.shape"
}
later unlimited
later in_memory_refused
later eval_limited
later eval_unlimited
later predict_limited
settle
expect "kd eval of the 760 MB split under the limit: the figures of the unlimited run" cmp -s limev.json ev.json
expect "... over all 92000 rows, with the teacher's agreement" grep -q '"agreement": 0\.[0-9]*.*"n": 92000' limev.json
rm -f big.h5 bigt.h5 limpred.h5
finish
