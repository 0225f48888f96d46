#!/bin/bash
# launch/slurm.sbatch under a real Slurm started here (tests/slurm_cluster.sh: munged, slurmctld and
# slurmd from Debian's slurm-wlm on localhost, MpiDefault=none, TaskPlugin=task/none), 2 ranks:
#  - with each launcher (srun, mpirun) a job preempted by SIGUSR1 mid-run (scancel -b -s USR1) exits 75,
#    requeues itself, and the requeued job (released at once) resumes and ends with weights bitwise
#    equal to an uninterrupted run; no "lacks support for cpu binding" where the site cannot bind;
#  - the default launcher (auto) is srun --mpi=pmix here, and mpirun when slurmd's CPU mask (which
#    unbound tasks inherit) is narrower than the allocation;
#  - kd started by srun without PMIx says in one line what to change (exit 2).
# The daemons it started are stopped by pid when it ends, also when it fails.
source "$(dirname "$0")/lib.sh"
source "$TESTS_DIR/slurm_cluster.sh"
ROOT=$(cd "$TESTS_DIR/.." && pwd)
slurm_up || { fail "starting Slurm"; finish; exit 1; }
ok "Slurm is up ($(sinfo -h -o '%N %c CPUs %T'))"
"$KD" synth --out d.h5 --teacher-out t.h5 --train 20000 --test 0 --dim 64 --classes 10 >/dev/null || exit 1
A=(--data "$WORK/d.h5" --teacher "$WORK/t.h5" --student 64-512-512-10 --epochs 4 --batch 100 --ckpt-every 40
   --progress off)
kdrun 2 train "${A[@]}" --threads 1 --out ref > ref.log || fail "uninterrupted run"

submit() { # submit LAUNCHER DIR: sbatch launch/slurm.sbatch for 2 ranks on this node; prints the job id
  (cd "$ROOT" && sbatch --parsable -N 1 --ntasks-per-node=2 --cpus-per-task=1 --time=5 -o "$WORK/$2.out" \
    --export=ALL,KD="$KD",KD_LAUNCHER="$1" launch/slurm.sbatch "$WORK/$2" "${A[@]}")
}

for launcher in srun mpirun; do
  job=$(submit $launcher $launcher) || { fail "$launcher: sbatch"; continue; }
  for _ in $(seq 600); do [ -e "$launcher/ckpt-00000040.h5" ] && break; sleep 0.05; done
  scancel -b -s USR1 "$job"
  slurm_wait_state "$job" PENDING || fail "$launcher: the job did not requeue"
  slurm_release "$job" || fail "$launcher: the requeued job did not start again"
  slurm_wait_state "$job" COMPLETED FAILED CANCELLED
  st=$(slurm_job_state "$job")
  expect "$launcher: the job completed after its requeue ($st)" test "$st" = COMPLETED
  if [ "$st" != COMPLETED ]; then # what went wrong, for the log
    grep -v '^epoch\|^checkpoint' $launcher.out | tail -20 >&2
    scontrol show job "$job" >&2
    tail -20 "$SLURM_DIR/log/slurmctld.log" >&2
  fi
  expect "$launcher: stopped by SIGUSR1, exit 75, requeued" grep -q "requeueing job $job" $launcher.out
  expect "$launcher: the requeued job resumed" grep -q "^kd: resume at step" $launcher.out
  grep -q "^kd: resume at step" $launcher.out || # what happened, for the log
    { grep -v '^epoch\|^checkpoint' $launcher.out | tail -30; scontrol show job "$job"; tail -30 "$SLURM_DIR/log/slurmctld.log"; } >&2
  expect "$launcher: weights bitwise equal to the uninterrupted run" \
    quiet "$PY" "$TESTS_DIR/compare_weights.py" ref/final.h5 $launcher/final.h5 --exact
  expect "$launcher: no cpu-binding complaint" test -z "$(grep 'lacks support for cpu binding' $launcher.out)"
done
expect "srun is given --mpi=pmix" grep -q "^kd: launching with srun --mpi=pmix" srun.out

job=$(submit auto auto) && slurm_wait_state "$job" COMPLETED FAILED
expect "auto: srun --mpi=pmix on this site" grep -q "^kd: launching with srun --mpi=pmix" auto.out
expect "auto: the run completes" test -e auto/final.h5

timeout 30 srun -N 1 -n 2 "$KD" --version > direct.out 2>&1
rc=$?
expect "srun without PMIx: exit 2 (got $rc)" test $rc -eq 2
expect "and one line saying what to change" test "$(grep -c '^kd: error: srun started kd without PMIx.*--mpi=pmix' direct.out)" -eq 1

# slurmd started from a shell pinned to one CPU: unbound tasks inherit that mask.
slurm_down
slurm_up --pin-slurmd 0 || { fail "starting Slurm with a pinned slurmd"; finish; exit 1; }
job=$(submit auto pinned) && slurm_wait_state "$job" COMPLETED FAILED
expect "auto: mpirun when the tasks would share slurmd's one CPU" grep -q "^kd: launching with mpirun" pinned.out
expect "pinned: the run completes" test -e pinned/final.h5
slurm_down
expect "no Slurm daemon of this test is left" test -z "$(pgrep -f "$WORK" | grep -v $$)"
finish
