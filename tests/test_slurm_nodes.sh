#!/bin/bash
# launch/slurm.sbatch under a real Slurm across two nodes (tests/multinode.sh's network namespaces,
# tests/slurm_cluster.sh's slurm_up_nodes: slurmctld on kdhead, slurmd -N kdn1 and -N kdn2 at
# 10.231.0.1 and .2; sbatch and scontrol run on kdhead), 2 nodes x 1 rank, for each launcher (srun
# --mpi=pmix, and mpirun, whose daemon on the second node srun starts):
#  - the job runs one rank on each node (kd's banner: "2 ranks on 2 nodes");
#  - preempted by SIGUSR1 once it has a checkpoint (scancel -b -s USR1), it exits 75 and requeues
#    itself; the requeued job (released at once) resumes and ends with weights bitwise equal to an
#    uninterrupted 2-rank run on one node.
# Nothing of the cluster's network needs setting for the job: each namespace has only lo and its
# address on the switch, so PMIx, Open MPI's oob and btl/tcp find that address on their own.
# Needs root (namespaces) and slurm-wlm + munge, else skipped (77). The daemons and the namespaces
# are removed when it ends, also when it fails.
source "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || { echo "skip: network namespaces need root"; exit 77; }
for tool in munged slurmctld slurmd sbatch scontrol srun ip unshare; do
  command -v $tool > /dev/null || { echo "skip: $tool missing (apt-get install slurm-wlm munge iproute2)"; exit 77; }
done
source "$TESTS_DIR/multinode.sh"
source "$TESTS_DIR/slurm_cluster.sh"
ROOT=$(cd "$TESTS_DIR/.." && pwd)
mn_up 2 || { fail "namespace nodes"; finish; exit 1; }
slurm_up_nodes || { fail "starting Slurm on the nodes"; finish; exit 1; }
ok "Slurm on 2 nodes: $(slurm_cmd sinfo -h -N -o '%N (%o) %T' | paste -sd, | sed 's/,/, /g')"

"$KD" synth --out d.h5 --teacher-out t.h5 --train 20000 --test 0 --dim 64 --classes 10 >/dev/null || exit 1
# One OpenBLAS thread per rank: both nodes share this machine's cores.
A=(--data "$WORK/d.h5" --teacher "$WORK/t.h5" --student 64-512-512-10 --epochs 2 --batch 100 --ckpt-every 40
   --threads 1 --progress off)
kdrun 2 train "${A[@]}" --out ref > ref.log || fail "uninterrupted run on one node"

submit() { # submit LAUNCHER DIR: sbatch launch/slurm.sbatch, 1 rank on each of 2 nodes; prints the job id
  (cd "$ROOT" && slurm_cmd sbatch --parsable -N 2 --ntasks-per-node=1 --cpus-per-task=1 --time=5 \
    -o "$WORK/$2.out" --export=ALL,KD="$KD",KD_LAUNCHER="$1" launch/slurm.sbatch "$WORK/$2" "${A[@]}")
}

declare -A jobs
for launcher in srun mpirun; do
  t0=$(date +%s)
  job=$(submit $launcher $launcher) || { fail "$launcher: sbatch"; continue; }
  jobs[$launcher]=$job
  for _ in $(seq 600); do [ -e "$launcher/ckpt-00000040.h5" ] && break; sleep 0.05; done
  slurm_cmd scancel -b -s USR1 "$job"
  slurm_wait_state "$job" PENDING || fail "$launcher: the job did not requeue"
  slurm_release "$job" || fail "$launcher: the requeued job did not start again"
  slurm_wait_state "$job" COMPLETED FAILED CANCELLED
  st=$(slurm_job_state "$job")
  expect "$launcher: the job completed after its requeue ($st, $(($(date +%s) - t0)) s)" test "$st" = COMPLETED
  if [ "$st" != COMPLETED ]; then # what went wrong, for the log
    grep -v '^epoch\|^checkpoint' $launcher.out | tail -20 >&2
    slurm_cmd scontrol show job "$job" >&2
    tail -20 "$SLURM_DIR/log/slurmctld.log" "$SLURM_DIR"/log/slurmd-kdn*.log >&2
  fi
  expect "$launcher: the job held both nodes" \
    test "$(slurm_cmd scontrol show job "$job" | sed -n 's/^ *NodeList=//p')" = "kdn[1-2]"
  expect "$launcher: kd ran on 2 nodes, before and after the requeue" \
    test "$(grep -c '^kd .* train: 2 ranks on 2 nodes x 1 OpenBLAS thread' $launcher.out)" -eq 2
  expect "$launcher: stopped by SIGUSR1, exit 75, requeued" grep -q "requeueing job $job" $launcher.out
  expect "$launcher: the requeued job resumed" grep -q "^kd: resume at step" $launcher.out
  expect "$launcher: weights bitwise equal to the uninterrupted run on one node" \
    quiet "$PY" "$TESTS_DIR/compare_weights.py" ref/final.h5 $launcher/final.h5 --exact
  expect "$launcher: no cpu-binding complaint" test -z "$(grep 'lacks support for cpu binding' $launcher.out)"
done
expect "srun is given --mpi=pmix" grep -q "^kd: launching with srun --mpi=pmix" srun.out
# mpirun, in the batch script on kdn1, started its daemon on kdn2 as a job step (srun)
expect "mpirun: its daemon on kdn2 started with srun (step ${jobs[mpirun]:-none}.0)" \
  grep -q "launch task StepId=${jobs[mpirun]:-none}.0 .*HOST:$MN_NET.1 " "$SLURM_DIR/log/slurmd-kdn2.log"

[ -n "${KD_TEST_KEEP:-}" ] && cp -r "$SLURM_DIR/log" "$WORK/slurm-log" # kept by lib.sh
slurm_down
left=$(for n in kdhead kdn1 kdn2; do mn_pids $n; done)
expect "no process is left on the nodes once Slurm is down" test -z "$left"
[ -n "$left" ] && ps -o pid,cmd -p "$(paste -sd, <<< "$left")" >&2
mn_down
expect "no namespace of this test is left" test -z "$(ip netns list | awk '{ print $1 }' | grep -E "^kd${MN_ID}(n[0-9]+|head|sw)\$")"
finish
