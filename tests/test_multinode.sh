#!/bin/bash
# kd across "nodes" (tests/multinode.sh: network namespaces on a virtual switch, each with its own
# address, hostname and node-local scratch; mpirun on a head node starts one daemon per node, TCP
# between nodes):
#  - 2 nodes x 1 rank (btl tcp,self) and 2 nodes x 2 ranks (tcp,vader,self) end with weights bitwise
#    equal to 2 and 4 ranks on one node (the 4-rank run with --overlap on, the multi-node default);
#    the banner counts the nodes and each node splits its own cores; checkpoints land in the shared
#    output folder;
#  - a 2-node run stopped at step 40 resumes on 1 node (bitwise equal to the uninterrupted run) and on
#    3 nodes (resharded, to the end of its schedule);
#  - an output folder local to each node is refused at the start with one line (exit 2);
#  - a node whose processes all die mid-step: the job ends within 30 s, non-zero, naming the lost
#    host, and the latest checkpoint resumes;
#  - a node's link down mid-allreduce, --collective-timeout 5: every kd process on both sides of the
#    cut ends within 15 s (before Open MPI's keepalive could), rank 0 with a rank-tagged line; with
#    the default timeout, launch/local.sh's Open MPI settings end every process (mpirun and its
#    daemons too) within 60 s.
# On one box first: a rank stopped by SIGSTOP leaves its peer in a collective, whose watchdog ends it
# with a rank-tagged line; a peer waiting for rank 0's evaluation is not ended by it; a malformed
# --collective-timeout is a usage error.
# The namespaces need root (elsewhere the test is skipped after the one-box checks); everything it
# made is removed when it ends, also on failure.
source "$(dirname "$0")/lib.sh"
"$KD" synth --out d.h5 --teacher-out t.h5 --train 2048 --test 128 --dim 32 --classes 10 >/dev/null || exit 1

for v in -1 0.5 x; do
  expect_usage_error "--collective-timeout $v" "^kd: error: --collective-timeout: expected 0 (no watchdog) or seconds >= 1, got '$v'" \
    train --data d.h5 --collective-timeout $v
done
# (no checkpoints or evaluations: a peer waiting for rank 0's own work has a longer limit)
kdrun 2 train --data d.h5 --teacher t.h5 --student 32-256-10 --epochs 1000 --batch 64 --progress off --out wd-stop \
  --ckpt-epochs 0 --collective-timeout 2 > wd-stop.log 2>&1 &
job=$!
for _ in $(seq 600); do [ -e wd-stop/metrics.csv ] && break; sleep 0.05; done
sleep 0.5
stopped=$(pids_of kd wd-stop | tail -1)
kill -STOP $stopped
wait $job
rc=$?
kill -KILL $stopped 2>/dev/null
expect "a stopped peer: the waiting rank's watchdog ends the job (exit $rc)" test $rc -ne 0
expect "with a line naming the rank, its host and the call" \
  grep -q "^kd: rank [01] (host $(hostname)): MPI_[A-Za-z_]* has not returned after [23] s (--collective-timeout 2)" wd-stop.log

# Rank 0 evaluating 30000 rows alone (seconds here) while its peers wait: a wait for rank 0's own work
# has 10 S (at least 600 s), so --collective-timeout 1 does not end the run; 3 ranks with a sharded
# optimizer, whose checkpoint at step 10 (evaluated too) first gathers the moments from every rank.
"$KD" synth --out big.h5 --train 31000 --test 0 --dim 64 --classes 10 >/dev/null || exit 1
kdrun 3 train --data big.h5 --val-rows 30000 --student 64-2048-2048-10 --epochs 1 --batch 66 --eval-every 5 \
  --ckpt-every 10 --shard-optimizer on --max-steps 12 --threads 1 --progress off --out wd-eval \
  --collective-timeout 1 > wd-eval.log 2>&1
expect "rank 0 evaluating alone longer than --collective-timeout: the run completes (exit $?)" test -e wd-eval/final.h5
expect "and no watchdog line" test -z "$(grep "has not returned" wd-eval.log)"

[ "$(id -u)" = 0 ] || { echo "skip: network namespaces need root"; finish || exit 1; exit 77; }
source "$TESTS_DIR/multinode.sh"
mn_up 3 || { fail "namespace nodes"; finish; exit 1; }
ok "3 namespace nodes: $(mn_exec kdn1 hostname), $(mn_exec kdn2 hostname), $(mn_exec kdn3 hostname)"
expect "node-local scratch: each node sees its own" test "$(mn_exec kdn1 sh -c "echo 1 > $MN_LOCAL/x; cat $MN_LOCAL/x")$(
  mn_exec kdn2 sh -c "ls $MN_LOCAL")" = 1

A=(--data "$WORK/d.h5" --teacher "$WORK/t.h5" --student 32-64-10 --epochs 2 --batch 64 --ckpt-every 20 --progress off)
# mn NP MPIRUN-OPTIONS... -- KD-ARGS...: kd on the nodes, bounded in time
mn() {
  local np=$1 opts=()
  shift
  while [ "$1" != -- ]; do opts+=("$1"); shift; done
  shift
  timeout -k 5 120 bash -c 'source "$1"; shift; mn_mpirun "$@"' _ "$TESTS_DIR/multinode.sh" -np "$np" --bind-to none "${opts[@]}" \
    "$KD" "$@"
}

kdrun 2 train "${A[@]}" --out r2 > r2.log || fail "2 ranks on one node"
kdrun 4 train "${A[@]}" --overlap on --out r4 > r4.log || fail "4 ranks on one node"
mn 2 --map-by node --mca btl tcp,self -- train "${A[@]}" --out "$WORK/m21" > m21.log 2>&1 || fail "2 nodes x 1 rank"
# Each namespace node sees all of this machine's cores: 1 rank per node takes them all, 2 share them.
cores=$(nproc)
t1="$cores OpenBLAS thread$([ "$cores" -gt 1 ] && echo s)"
t2="$((cores / 2 > 0 ? cores / 2 : 1)) OpenBLAS thread$([ "$cores" -gt 3 ] && echo s)"
expect "2 x 1: the banner counts 2 nodes, each rank with its node's $cores cores" \
  grep -q "^kd .* train: 2 ranks on 2 nodes x $t1," m21.log
expect "2 x 1: weights bitwise equal to 2 ranks on one node" close r2/final.h5 m21/final.h5 --exact
expect "2 x 1: rank 0's checkpoints in the shared folder" test -e m21/ckpt-00000040.h5 -a -e m21/latest
mn 4 --map-by ppr:2:node --mca btl tcp,vader,self -- train "${A[@]}" --out "$WORK/m22" > m22.log 2>&1 ||
  fail "2 nodes x 2 ranks"
expect "2 x 2: the banner counts 2 nodes, 2 ranks sharing each node's $cores cores" \
  grep -q "^kd .* train: 4 ranks on 2 nodes x $t2," m22.log
expect "2 x 2: weights bitwise equal to 4 ranks on one node" close r4/final.h5 m22/final.h5 --exact

# Stopped at step 40 on 2 nodes, resumed on 1 node and on 3.
mn 2 --map-by node -- train "${A[@]}" --max-steps 40 --out "$WORK/s" > s.log 2>&1 || fail "2-node run to step 40"
cp -r s s3
kdrun 2 train --resume s > s1.log || fail "resume on 1 node"
expect "resumed on 1 node: bitwise equal to the uninterrupted run" close r2/final.h5 s/final.h5 --exact
mn 3 --map-by node -- train --resume "$WORK/s3" > s3.log 2>&1 || fail "resume on 3 nodes"
expect "resumed on 3 nodes (resharded) at step 40" grep -q "^kd: resume at step 40" s3.log
# 3 ranks take 21, 21 and 22 rows of each batch of 64: 682 / 21 = 32 but 683 / 22 = 31 steps per epoch
expect "and trained to the end of its schedule (31 steps per epoch on 3 ranks)" grep -q "^final: steps=62 " s3.log

out=$(mn 2 --map-by node -q -- train "${A[@]}" --out "$MN_LOCAL/run" 2>&1)
rc=$?
expect "--out on node-local scratch: exit 2 (got $rc)" test $rc -eq 2
expect "--out on node-local scratch: refused at the start, one line naming the rank and both hosts" test "$(grep -c \
  "^kd: error (rank 1): --out $MN_LOCAL/run is not shared: rank 1 on host kdn2 does not see the file rank 0 wrote there on host kdn1" \
  <<< "$out")" -eq 1 -a "$(grep -c "^kd: " <<< "$out")" -eq 1

# How long until no process of this test's job is left: kd ranks, mpirun and its daemons (prints seconds).
gone_after() {
  local t0=$1 limit=$2 left
  while :; do
    left=$(for n in kdhead kdn1 kdn2 kdn3; do mn_pids $n; done | wc -l)
    [ "$left" = 0 ] && break
    [ "$(date +%s)" -ge $((t0 + limit)) ] && { echo "timeout ($left left)"; return 1; }
    sleep 0.5
  done
  echo $(($(date +%s) - t0))
}
ranks_left() { # kd processes on the nodes
  local p
  for p in $(mn_pids kdn1) $(mn_pids kdn2); do [ "$(cat /proc/$p/comm 2>/dev/null)" = kd ] && echo $p; done
}
wait_file() { # wait_file FILE LOG: up to 60 s; on failure LOG's end goes to stderr
  for _ in $(seq 1200); do [ -e "$1" ] && return 0; sleep 0.05; done
  echo "--- no $1 after 60 s; the end of $2:" >&2
  tail -15 "$2" >&2
  return 1
}
LONG=(--data "$WORK/d.h5" --teacher "$WORK/t.h5" --student 32-256-256-10 --epochs 400 --batch 64 --ckpt-every 50
      --progress off)
# launch/local.sh with this cluster's options, on the head
local_sh() {
  mn_exec kdhead env KD_BUILD="$(dirname "$KD")" KD_MPIRUN_FLAGS="$(mn_cluster_flags) --map-by node" \
    "$TESTS_DIR/../launch/local.sh" "$@"
}

# A node dies: every process of kdn2 killed once the run has a checkpoint.
local_sh 2 train "${LONG[@]}" --out "$WORK/k" > k.log 2>&1 &
wait_file k/ckpt-00000100.h5 k.log || fail "kill: no checkpoint"
t0=$(date +%s)
mn_kill_node kdn2
took=$(gone_after "$t0" 30)
expect "a node dies: every process ends within 30 s ($took s)" test "${took#timeout}" = "$took"
for n in kdhead kdn1 kdn2; do mn_kill_node $n; done # (after a failure: the wait must not hang)
wait $!
rc=$?
expect "and the job's exit code is not 0 ($rc)" test $rc -ne 0
expect "a line names the lost host" grep -q "kdn2" k.log
kdrun 2 train --resume k --max-steps 140 > k2.log || fail "resume after the node died"
expect "the latest checkpoint resumes" grep -q "^kd: resume at step [1-9]" k2.log

# A link goes down mid-allreduce, with a short collective timeout. No checkpoints nor evaluations:
# a peer waiting for rank 0's own work has a longer limit (10 S, at least 600 s), and the cut must find the
# ranks in the training steps' allreduces.
local_sh 2 train "${LONG[@]}" --ckpt-every 0 --ckpt-epochs 0 --out "$WORK/l" --collective-timeout 5 > l.log 2>&1 &
mp=$!
wait_rows() { for _ in $(seq 1200); do [ "$(wc -l < "$1" 2>/dev/null || echo 0)" -ge "$2" ] && return 0; sleep 0.05; done; return 1; }
wait_rows l/metrics.csv 5 || { fail "link: no metrics rows"; tail -15 l.log >&2; }
t0=$(date +%s)
mn_link kdn2 down
# within 5 s + the watchdog's polls + slack, before Open MPI's keepalive (25 s) could end the far rank
while [ -n "$(ranks_left)" ] && [ "$(date +%s)" -lt $((t0 + 15)) ]; do sleep 0.5; done
took=$(($(date +%s) - t0))
expect "link down, --collective-timeout 5: the kd ranks on both sides end within 15 s ($took s)" test -z "$(ranks_left)"
expect "rank 0 says which call it gave up on" grep -q "^kd: rank 0 (host kdn1): MPI_.* has not returned after" l.log
# The killed side's daemons wait on the cut link (launcher's outcome, for the log); end them here.
echo "launcher after the watchdog: mpirun $(kill -0 $mp 2>/dev/null && echo "still up" || echo "ended")"
{ kill -KILL $mp; wait $mp; } 2>/dev/null
for n in kdhead kdn1 kdn2; do mn_kill_node $n; done
mn_link kdn2 up

# The same cut with the default timeout: Open MPI's keepalive settings in launch/local.sh end it all.
local_sh 2 train "${LONG[@]}" --out "$WORK/l2" > l2.log 2>&1 &
wait_file l2/ckpt-00000100.h5 l2.log || fail "link 2: no checkpoint"
t0=$(date +%s)
mn_link kdn2 down
took=$(gone_after "$t0" 60)
expect "link down, launch/local.sh: mpirun, its daemons and both ranks end within 60 s ($took s)" \
  test "${took#timeout}" = "$took"
for n in kdhead kdn1 kdn2; do mn_kill_node $n; done
wait $!
expect "mpirun says it lost the node" grep -q "lost communication with a remote daemon" l2.log
mn_link kdn2 up
mn_down
expect "no namespace of this test is left" test -z "$(ip netns list | awk '{ print $1 }' | grep -E "^kd${MN_ID}(n[0-9]+|head|sw)\$")"
finish
