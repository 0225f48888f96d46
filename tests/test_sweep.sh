#!/bin/bash
# kd sweep (issue 35): every setting of a grid in one MPI job, groups of ranks taking settings in turn. Each
# setting's weights equal the same kd train run alone on as many ranks (bitwise); the summary is best first; a
# stopped sweep exits 75 and --resume DIR finishes it with the same weights; bad grids and group sizes are usage
# errors (exit 2, one line) before anything runs.
source "$(dirname "$0")/lib.sh"
"$KD" synth --out d.h5 --teacher-out t.h5 --train 2000 --test 500 --dim 16 --classes 4 >/dev/null || exit 1
T=(--data d.h5 --teacher t.h5 --student 16-32-4 --epochs 2 --batch 50 --val-rows 200 --threads 1 --progress off)
GRID="temperature=1,4 alpha=0,0.5"
NAMES=("temperature=1,alpha=0" "temperature=1,alpha=0.5" "temperature=4,alpha=0" "temperature=4,alpha=0.5")
OPTS=("--temperature 1 --alpha 0" "--temperature 1 --alpha 0.5" "--temperature 4 --alpha 0" "--temperature 4 --alpha 0.5")

# same_as_alone NP SWEEP_DIR PREFIX TRAIN_OPTIONS...: each setting's final.h5 equals kd train alone on NP ranks.
same_as_alone() {
  local np=$1 dir=$2 pre=$3 i
  shift 3
  for i in 0 1 2 3; do
    # shellcheck disable=SC2086
    kdrun "$np" train "$@" ${OPTS[$i]} --out "$pre$i" > /dev/null 2>&1 || fail "kd train alone ${OPTS[$i]}"
    expect "$dir/${NAMES[$i]}: bitwise the run alone on $np rank(s)" close "$dir/${NAMES[$i]}/final.h5" "$pre$i/final.h5" --exact
  done
}

# ordered FILE.json: the summary's settings are best first (validation accuracy, then grid order) and all done,
# and they are the settings' own result.json.
ordered() {
  "$PY" - "$@" <<'PY'
import json, sys, os
s = json.load(open(sys.argv[1]))
rows = s["settings"]
assert s["metric"] == "accuracy" and len(rows) == 4, s
assert [r["rank"] for r in rows] == [1, 2, 3, 4]
assert all(r["status"] == "done" and r["steps"] > 0 and r["valid_accuracy"] is not None for r in rows), rows
keys = [(-r["valid_accuracy"], r["index"]) for r in rows]
assert keys == sorted(keys), keys
d = os.path.dirname(sys.argv[2]) if len(sys.argv) > 2 else None
for r in rows:
    if d:
        own = json.load(open(os.path.join(d, r["setting"], "result.json")))
        assert own["valid_accuracy"] == r["valid_accuracy"] and own["steps"] == r["steps"], (own, r)
PY
}

# 1. Four ranks in two groups of two: four settings, each as kd train on 2 ranks.
kdrun 4 sweep --grid "$GRID" --group-ranks 2 --out sw "${T[@]}" > sw.log 2> sw.err
rc=$?
expect "4 ranks, groups of 2: exit 0 (got $rc: $(head -c 300 sw.err))" test "$rc" -eq 0
expect "a start and an end line per setting" test "$(grep -c ': starts ' sw.log)" -eq 4 -a "$(grep -c ' done in ' sw.log)" -eq 4
expect "the trainer's lines go to each setting's train.log, not the terminal" \
  test "$(cat sw/*/train.log | grep -c '^final:')" -eq 4 -a "$(grep -c '^final:' sw.log)" -eq 0
expect "sweep.json keeps the grid and the train options" grep -q '"group_ranks": 2' sw/sweep.json
same_as_alone 2 sw a2_ "${T[@]}"
expect "summary.json is best first and matches the settings' results" ordered sw/summary.json sw/sweep.json
# the table: the same order as summary.json
table=$(sed -n '/^ *[0-9] /p' sw.log | awk '{print $2}' | tr '\n' ' ')
want=$("$PY" -c "import json; print(' '.join(r['setting'] for r in json.load(open('sw/summary.json'))['settings']), end=' ')")
expect "the table lists the settings best first ($table)" test "$table" = "$want"
kdrun 4 sweep --resume sw > swr.log 2>&1
rc=$?
expect "--resume of a finished sweep: exit 0, nothing trained again (got $rc)" test "$rc" -eq 0 -a "$(grep -c ': starts \|: resumes ' swr.log)" -eq 0
expect_usage_error "a new sweep into a folder that holds one" "already holds a sweep" sweep --grid "$GRID" --out sw "${T[@]}"

# 2. Groups of one rank (2 ranks, 2 groups), --json: each setting as kd train on 1 rank.
kdrun 2 sweep --grid "$GRID" --out sw1 --json "${T[@]}" > sw1.json 2> sw1.err
rc=$?
expect "groups of 1 with --json: exit 0 (got $rc)" test "$rc" -eq 0
expect "--json: stdout is the JSON summary, best first" ordered sw1.json
expect "--json: the sweep's own lines go to stderr" test "$(grep -c ' done in ' sw1.err)" -eq 4
expect "--json prints what summary.json holds" cmp -s sw1.json sw1/summary.json
same_as_alone 1 sw1 a1_ "${T[@]}"

# 3. A stop (SIGUSR1 to the ranks, as Slurm's preemption does): exit 75, then --resume finishes every setting with
# the weights of the uninterrupted runs.
L=(--data d.h5 --teacher t.h5 --student 16-32-4 --epochs 100 --ckpt-epochs 10 --batch 50 --val-rows 200 --threads 1
   --progress off)
kdrun 4 sweep --grid "$GRID" --group-ranks 2 --out sws "${L[@]}" --json > sws.json 2> sws.log &
mpid=$!
for _ in $(seq 1500); do compgen -G 'sws/*/ckpt-*.h5' > /dev/null && break; sleep 0.02; done
signal_ranks USR1 sws
wait "$mpid"
rc=$?
expect "a stopped sweep exits 75 (got $rc)" test "$rc" -eq 75
expect "it says how to continue (on stderr, with --json)" grep -q 'continue with: kd sweep --resume sws$' sws.log
expect "--json: stdout holds the summary alone, also when stopped" "$PY" -c 'import json; json.load(open("sws.json"))'
left=$(grep -l '"status": "done"' sws/*/result.json 2> /dev/null | wc -l)
expect "settings were left unfinished ($left of 4 done)" test "$left" -lt 4
expect "a stopped setting is recorded as stopped" grep -q '"status": "stopped"' sws/*/result.json
kdrun 4 sweep --resume sws > swsr.log 2>&1
rc=$?
expect "--resume DIR finishes the sweep: exit 0 (got $rc: $(tail -n 3 swsr.log))" test "$rc" -eq 0
expect "an interrupted setting resumes from its checkpoint" grep -q ': resumes ' swsr.log
expect "after the resume, the summary is best first and complete" ordered sws/summary.json sws/sweep.json
same_as_alone 2 sws as_ "${L[@]}"

# 4. A group that finishes long before another waits for it without a timed MPI call: the collective watchdog
# (2 s here) must not end it. Then a setting that fails (a data file that is not there) is recorded, the others
# run, and the sweep exits 1.
kdrun 2 sweep --collective-timeout 2 --grid "epochs=1,300" --out swt --data d.h5 --teacher t.h5 \
  --student 16-256-256-4 --batch 50 --val-rows 200 --threads 1 --progress off --ckpt-epochs 0 > swt.log 2>&1
rc=$?
expect "groups ending seconds apart under --collective-timeout 2: exit 0 (got $rc: $(grep 'kd:' swt.log | head -n 2))" \
  test "$rc" -eq 0
expect "both settings done" test "$(grep -c ' done in ' swt.log)" -eq 2
kdrun 2 sweep --grid "data=d.h5,missing.h5" --out swf --teacher t.h5 --student 16-32-4 --epochs 1 --batch 50 \
  --threads 1 --progress off > swf.log 2> swf.err
rc=$?
expect "a failed setting: the sweep exits 1 (got $rc)" test "$rc" -eq 1
expect "the other setting is done" grep -q '"status": "done"' swf/data=d.h5/result.json
expect "the failure is recorded with its message" grep -q '"status": "failed"' swf/data=missing.h5/result.json
expect "the summary shows it" grep -q 'data=missing.h5 .* failed: .*missing.h5' swf.log
expect "one error line at the end" test "$(grep -c '^kd: error' swf.err)" -eq 1

# 5. Usage errors: one line, exit 2, before any training.
later expect_usage_error "an unknown grid key" "'colour' is not a kd train option" sweep --grid "colour=1,2" --out u1 "${T[@]}"
later expect_usage_error "a world size that R does not divide" "group-ranks 3 does not divide the 2 ranks" \
  sweep --grid "$GRID" --group-ranks 3 --out u2 "${T[@]}"
later expect_usage_error "no --grid" "grid is required" sweep --out u3 "${T[@]}"
later expect_usage_error "a grid key also given as a train option" "alpha is both a grid key and a train option" \
  sweep --grid "alpha=0,1" --alpha 0.5 --out u4 "${T[@]}"
later expect_usage_error "a value kd train refuses" "temperature 0: out of range" sweep --grid "temperature=0,1" --out u5 "${T[@]}"
later expect_usage_error "an empty value list" "an empty value" sweep --grid "alpha=" --out u6 "${T[@]}"
settle
expect "a refused sweep creates nothing" test ! -e u1 -a ! -e u2 -a ! -e u3 -a ! -e u4 -a ! -e u5 -a ! -e u6
help=$("$KD" sweep --help)
expect "kd sweep --help lists its options with defaults" \
  test "$(grep -c '^  --' <<< "$help")" -eq 5 -a "$(grep '^  --' <<< "$help" | grep -vc '(default')" -eq 0
expect "kd --help lists sweep" grep -q '^  sweep ' <("$KD" --help 2>/dev/null)
finish
