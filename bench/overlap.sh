#!/bin/bash
# bench/overlap.sh [REPEATS]: the 2-rank gradient synchronisation choices side by side, for the
# reference (784-800-800-10, batch 128) and large (784-4096-4096-10, batch 512) students on 2 ranks x 1
# thread: --overlap on|off x --shard-optimizer on|off, each run REPEATS times (default 3) in interleaved
# order, with the median samples/s and the median milliseconds per step in each phase (kd's step_ms
# line: communication is "allreduce", the optimizer "update"). Prints; asserts nothing.
set -u
source "$(dirname "$0")/lib.sh"
reps=${1:-3}
bench_header "$reps runs each, medians"
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR ? v[int((NR + 1) / 2)] : "?") }'; }
for m in "reference 784-800-800-10 128 400" "large 784-4096-4096-10 512 16"; do
  set -- $m
  name=$1 spec=$2 batch=$3 steps=$4
  printf '\n%s %s, global batch %s, 2 ranks x 1 thread\n' "$name" "$spec" "$batch"
  printf '%-8s %-8s %10s %8s %8s %8s %8s %9s %8s\n' overlap shard "samp/s" forward loss backward update allreduce other
  for ((r = 0; r < reps; r++)); do
    for ov in off on; do
      for sh in off on; do
        mpirun -q -np 2 --oversubscribe --bind-to none "$KD_BUILD/kd" train --data "$work/d.h5" \
          --teacher "$work/t.h5" --student "$spec" --batch "$batch" --epochs 100 --max-steps "$steps" --threads 1 \
          --optimizer sgd --schedule const --lr 0.01 --ckpt-epochs 0 --progress off --log-every 1000000 --force \
          --overlap $ov --shard-optimizer $sh --out "$work/r" | grep -E '^(final|step_ms):' >>"$work/$name.$ov.$sh"
      done
    done
  done
  for ov in off on; do
    for sh in off on; do
      f="$work/$name.$ov.$sh"
      sps=$(sed -n 's/.*samples_per_s=\([0-9]*\).*/\1/p' "$f" | median)
      row=()
      for k in forward loss backward update allreduce other; do
        row+=("$(sed -n "s/^step_ms:.* $k=\([0-9.]*\).*/\1/p" "$f" | median)")
      done
      printf '%-8s %-8s %10s %8s %8s %8s %8s %9s %8s\n' $ov $sh "$sps" "${row[@]}"
    done
  done
done
