#!/bin/bash
# bench/slurm.sh: samples/s of 2 ranks of a small student (784-32-10, batch 64) started by srun and by
# mpirun inside one allocation of a real single-node Slurm (tests/slurm_cluster.sh, the settings of a
# stock Debian site: MpiDefault=none, TaskPlugin=task/none), first with slurmd unpinned, then with
# slurmd started under taskset -c 0 (what a service or shell pinned to one CPU does): tasks that Slurm
# does not bind inherit slurmd's mask. The pinned srun runs once with Open MPI busy-polling
# (OMPI_MCA_mpi_yield_when_idle=0, what kd did before it asked for yielding) and once as kd runs now.
# Prints; asserts nothing.
set -u
source "$(dirname "$0")/lib.sh"
source "$KD_ROOT/tests/slurm_cluster.sh"
bench_header
A=(train --data "$work/d.h5" --teacher "$work/t.h5" --student 784-32-10 --batch 64 --epochs 100 --max-steps 1000
   --optimizer sgd --schedule const --ckpt-epochs 0 --progress off --log-every 1000000 --force --out "$work/r")
rate() { sed -n 's/^final:.*samples_per_s=\([0-9]*\).*allreduce_share=\([0-9.]*\).*/\1 samples\/s, allreduce \2 of the step/p'; }
measure() { # measure LABEL
  printf '  %-44s %s\n' "srun --mpi=pmix:" "$(srun --mpi=pmix -N 1 -n 2 "$KD_BUILD/kd" "${A[@]}" 2>&1 | rate)"
  [ "$1" = pinned ] && printf '  %-44s %s\n' "srun --mpi=pmix, Open MPI busy-polling:" \
    "$(OMPI_MCA_mpi_yield_when_idle=0 srun --mpi=pmix -N 1 -n 2 "$KD_BUILD/kd" "${A[@]}" 2>&1 | rate)"
  printf '  %-44s %s\n' "mpirun in an allocation (salloc):" \
    "$(salloc -N 1 -n 2 mpirun -q "$KD_BUILD/kd" "${A[@]}" 2>/dev/null | rate)"
}
slurm_up || exit 1
echo "slurmd unpinned (tasks see $(srun -n 1 nproc) CPUs):"
measure unpinned
slurm_down
slurm_up --pin-slurmd 0 || exit 1
echo "slurmd pinned to CPU 0 (tasks see $(srun -n 1 nproc) CPU):"
measure pinned
slurm_down
