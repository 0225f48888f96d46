#!/bin/bash
# bench/perf.sh: kd against the PyTorch peer (bench/peer.py, Debian's python3-torch) on this box, side
# by side: for the small (784-32-10, batch 64), reference (784-800-800-10, batch 128) and large
# (784-4096-4096-10, batch 512) students, on 1 rank x 2 threads, 1 rank x 1 thread and 2 ranks x 1
# thread: samples/s, GFLOP/s (6 x parameters x samples/s), the sgemm rate at the model's own GEMM
# shapes, the share of step time in the allreduce, peak resident memory per rank against the bound
# (shard + 5 x parameters + one step's activations + 128 MiB), and kd / PyTorch. Prints; asserts nothing.
#
# bench/perf.sh --vs OTHER_KD [--runs N]: instead, this build against another kd binary (an older
# build, say) on the small and reference students in the same three configurations, runs interleaved
# (A B A B ...), median samples/s of each and the ratio.
set -u
source "$(dirname "$0")/lib.sh"
vs="" runs=5
while [ $# -gt 0 ]; do
  case $1 in
    --vs) vs=$(realpath "$2"); shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    *) echo "usage: bench/perf.sh [--vs OTHER_KD [--runs N]]" >&2; exit 2 ;;
  esac
done

# sps BIN NP THREADS SPEC BATCH STEPS: samples/s of one run
sps() {
  mpirun -q -np "$2" --oversubscribe --bind-to none "$1" train --data "$work/d.h5" --teacher "$work/t.h5" \
    --student "$4" --batch "$5" --epochs 100 --max-steps "$6" --threads "$3" --optimizer sgd --schedule const \
    --lr 0.01 --ckpt-epochs 0 --progress off --log-every 1000000 --force --out "$work/r" |
    sed -n 's/^final:.*samples_per_s=\([0-9]*\).*/\1/p'
}
median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
if [ -n "$vs" ]; then
  bench_header "A: $KD_BUILD/kd, B: $vs, $runs interleaved runs each"
  printf '%-10s %-7s %12s %12s %8s\n' model config "A samp/s" "B samp/s" "A/B"
  for m in "small 784-32-10 64 3000" "reference 784-800-800-10 128 300"; do
    set -- $m
    name=$1 spec=$2 batch=$3 steps=$4
    for cfg in "1 2" "1 1" "2 1"; do
      set -- $cfg
      a="" b=""
      for ((k = 0; k < runs; k++)); do
        a+=" $(sps "$KD_BUILD/kd" "$1" "$2" "$spec" "$batch" "$steps")"
        b+=" $(sps "$vs" "$1" "$2" "$spec" "$batch" "$steps")"
      done
      ma=$(median <<<"$a") mb=$(median <<<"$b")
      printf '%-10s %-7s %12s %12s %8s\n' "$name" "${1}x${2}" "$ma" "$mb" \
        "$(awk -v a="$ma" -v b="$mb" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')"
    done
  done
  exit 0
fi
have_torch=1
/usr/bin/python3 -c "import torch" 2>/dev/null || { have_torch=0; echo "(python3-torch missing: apt-get install python3-torch for the PyTorch column)"; }
bench_header
printf '%-8s %-10s %10s %8s %8s %9s %9s %9s %10s %8s\n' model config "kd samp/s" "GFLOP/s" "sgemm" "allreduce" \
  "rss MiB" "bound" "torch s/s" "kd/torch"
for m in "small 784-32-10 64 3000" "reference 784-800-800-10 128 300" "large 784-4096-4096-10 512 12"; do
  set -- $m
  name=$1 spec=$2 batch=$3 steps=$4
  IFS=- read -r -a sz <<<"$spec"
  params=0 widths=0 macs=0 macs_dx=0
  for ((i = 0; i < ${#sz[@]} - 1; i++)); do
    params=$((params + sz[i] * sz[i + 1] + sz[i + 1]))
    widths=$((widths + sz[i + 1]))
    macs=$((macs + sz[i] * sz[i + 1]))
    ((i > 0)) && macs_dx=$((macs_dx + sz[i] * sz[i + 1]))
  done
  best_torch=0
  for cfg in "1 2" "1 1" "2 1"; do
    set -- $cfg
    np=$1 th=$2
    out=$(mpirun -q -np "$np" --oversubscribe --bind-to none "$KD_BUILD/kd" train --data "$work/d.h5" \
      --teacher "$work/t.h5" --student "$spec" --batch "$batch" --epochs 100 --max-steps "$steps" --threads "$th" \
      --optimizer sgd --schedule const --lr 0.01 --ckpt-epochs 0 --progress off --log-every 1000000 --force \
      --out "$work/r")
    line=$(grep '^final:' <<<"$out")
    phases=$(sed -n 's/^step_ms: //p' <<<"$out")
    sps=$(sed -n 's/.*samples_per_s=\([0-9]*\).*/\1/p' <<<"$line")
    ar=$(sed -n 's/.*allreduce_share=\([0-9.]*\).*/\1/p' <<<"$line")
    rss=$(sed -n 's/.*peak_rss_mib=\([0-9]*\).*/\1/p' <<<"$line")
    gf=$(awk -v s="${sps:-0}" -v p=$params 'BEGIN { printf "%.1f", 6 * p * s / 1e9 }')
    # sgemm at the GEMM shapes of one rank's share of the batch, times the ranks
    roof=$("$KD_BUILD/bench_sgemm" "$th" $((batch / np)) "${sz[@]}" | sed -n 's/.*: \([0-9.]*\) GFLOP.*/\1/p')
    roof=$(awk -v r="${roof:-0}" -v n=$np 'BEGIN { printf "%.1f", r * n }')
    # bound: the shard (x, y, logits), 5 copies of the parameters, activations and scratch of one step, 128 MiB
    bound=$(awk -v rows=$((BENCH_ROWS / np)) -v p=$params -v b=$((batch / np)) -v w=$widths 'BEGIN {
      printf "%.0f", (rows * (784 + 1 + 10) * 4 + 5 * p * 4 + b * (784 + 3 * w + 4 * 800) * 4) / 1048576 + 128 }')
    torch_sps="-" ratio="-"
    if [ $have_torch = 1 ]; then
      torch_sps=$(/usr/bin/python3 "$(dirname "$0")/peer.py" --sizes "$spec" --batch "$batch" --threads "$th" \
        --ranks "$np" --steps "$steps" --warmup 3 2>/dev/null | sed -n 's/^pytorch samples\/s //p')
      best_torch=$(awk -v a="$best_torch" -v b="${torch_sps:-0}" 'BEGIN { print (b > a ? b : a) }')
    fi
    printf '%-8s %-10s %10s %8s %8s %9s %9s %9s %10s\n' "$name" "${np}x${th}" "${sps:-?}" "$gf" "$roof" "${ar:--}" \
      "${rss:-?}" "$bound" "${torch_sps:--}"
    # where a step goes (rank 0, ms), next to its GEMMs' time at the sgemm rate of the same shapes
    gemm_ms=$(awk -v b=$((batch / np)) -v m=$macs -v d=$macs_dx -v r="$roof" -v n=$np \
      'BEGIN { printf "%.3f", (r > 0 ? 2 * b * (2 * m + d) / (r / n * 1e9) * 1e3 : 0) }')
    printf '    step ms: %s  (its GEMMs at the sgemm rate: %s)\n' "${phases:-?}" "$gemm_ms"
    eval "kd_${name}_${np}x${th}=${sps:-0}"
  done
  if [ $have_torch = 1 ]; then
    for cfg in 1x2 1x1 2x1; do
      v=kd_${name}_$cfg
      printf '  %s %s: kd / best PyTorch configuration = %s\n' "$name" "$cfg" \
        "$(awk -v a="${!v}" -v b="$best_torch" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')"
    done
  fi
  v1=kd_${name}_1x1 v2=kd_${name}_2x1
  printf '  %s: 2 ranks x 1 thread / 1 rank x 1 thread = %s\n' "$name" \
    "$(awk -v a="${!v2}" -v b="${!v1}" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')"
done
