#!/bin/bash
# bench/throughput.sh [STEPS]: training throughput of the reference student
# 784-800-800-10 at global batch 128 with the KD loss (SGD with momentum), on
# 1 rank x 1 thread, 1 rank x 2 threads and 2 ranks x 1 thread, next to the
# sgemm rate at the same GEMM shapes. Prints figures; asserts nothing.
set -u
source "$(dirname "$0")/lib.sh"
steps=${1:-300}
spec=784-800-800-10
params=$(( 784 * 800 + 800 + 800 * 800 + 800 + 800 * 10 + 10 ))
echo "kd throughput: student $spec ($params parameters), global batch 128, KD loss, SGD momentum, $steps steps"
bench_header
printf '%-18s %12s %10s %s\n' "config" "samples/s" "GFLOP/s" "(6 x params x samples/s)"
for cfg in "1 1" "1 2" "2 1"; do
  set -- $cfg
  np=$1 th=$2
  line=$(mpirun -q -np "$np" --oversubscribe --bind-to none "$KD_BUILD/kd" train --data "$work/d.h5" \
    --teacher "$work/t.h5" --student $spec --batch 128 --epochs 2 --max-steps "$steps" --threads "$th" \
    --optimizer sgd --schedule const --progress off --log-every 1000000 --out "$work/r${np}x$th" | grep '^final:')
  sps=$(echo "$line" | sed -n 's/.*samples_per_s=\([0-9]*\).*/\1/p')
  gf=$(awk -v s="${sps:-0}" -v p=$params 'BEGIN { printf "%.1f", 6 * p * s / 1e9 }')
  printf '%-18s %12s %10s\n' "$np rank x $th thr" "${sps:-?}" "$gf"
done
"$KD_BUILD/bench_sgemm" 1 128 784 800 800 10
"$KD_BUILD/bench_sgemm" 2 128 784 800 800 10
"$KD_BUILD/bench_sgemm" 1 64 784 800 800 10
