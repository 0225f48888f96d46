#!/bin/bash
# bench/normal.sh: what a user of a normal run sees, against what bench/perf.sh measures, for the reference MLP
# student 784-800-800-10 at batch 128. The normal run: the first 8,192 rows of Fashion-MNIST (Debian's
# dataset-fashion-mnist), 3 epochs, kd train's defaults otherwise (a checkpoint and an evaluation of the 10,000
# test rows at every epoch end, OpenBLAS threads from the ranks per node). Prints, for 2 ranks x 1 thread and
# 1 rank x 2 threads, the median of --runs interleaved runs of:
#   steps     the final line's samples_per_s: the training steps alone (evaluations, checkpoints and the
#             first step left out), which is what bench/perf.sh reports;
#   csv       metrics.csv's samples_per_s, the median over the second half of its rows (since issue 27 the
#             same steps-only rate as the final line; --old BIN: that binary's column too, which counted the
#             evaluations and checkpoints of each window);
#   wall      rows trained / the whole process's time (mpirun start to exit: start-up, loading, evaluations and
#             checkpoints included): what the clock on the wall says;
#   PyTorch   bench/peer.py's DDP 2 x 1 and 1 x 2 on the same shapes (steps alone, as kd's "steps").
# and bench/perf.sh's own setting once (25,600 synthetic rows, 300 steps, no checkpoints). Prints; asserts
# nothing.
#
#   bench/normal.sh [--runs N] [--old OLD_KD]        (about 4 minutes at the default 3 runs)
set -u
source "$(dirname "$0")/lib.sh"
runs=3 old=""
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --old) old=$(realpath "$2"); shift 2 ;;
    *) echo "usage: bench/normal.sh [--runs N] [--old OLD_KD]" >&2; exit 2 ;;
  esac
done
FM=$(dpkg -L dataset-fashion-mnist 2>/dev/null | grep -m1 'train-images-idx3-ubyte.gz$' | xargs -r dirname)
[ -n "$FM" ] || { echo "bench/normal.sh: needs Debian's dataset-fashion-mnist" >&2; exit 1; }
"$KD_BUILD/kd" import idx --images "$FM/train-images-idx3-ubyte.gz" --labels "$FM/train-labels-idx1-ubyte.gz" \
  --test-images "$FM/t10k-images-idx3-ubyte.gz" --test-labels "$FM/t10k-labels-idx1-ubyte.gz" --out "$work/fm.h5" \
  > /dev/null || exit 1
/usr/bin/python3 - "$work/fm.h5" "$work/fm8k.h5" <<'PY' || exit 1
import sys, h5py
with h5py.File(sys.argv[1]) as f, h5py.File(sys.argv[2], "w") as g:
    g["train/x"], g["train/y"] = f["train/x"][:8192], f["train/y"][:8192]
    g["test/x"], g["test/y"] = f["test/x"][()], f["test/y"][()]
PY
normal() { # normal BIN NP THREADS: "steps csv wall" of one normal run
  local out t0 t1
  t0=$(date +%s.%N)
  out=$(mpirun -q -np "$2" --oversubscribe --bind-to none "$1" train --data "$work/fm8k.h5" --student 784-800-800-10 \
    --batch 128 --epochs 3 --threads "$3" --progress off --force --out "$work/n")
  t1=$(date +%s.%N)
  /usr/bin/python3 - "$work/n/metrics.csv" "$(sed -n 's/^final:.*samples_per_s=\([0-9]*\).*/\1/p' <<<"$out")" \
    "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" <<'PY'
import csv, sys, statistics
rows = [r for r in csv.DictReader(open(sys.argv[1])) if r["samples_per_s"]]
half = rows[len(rows) // 2:]
wall = 3 * (8192 // 128) * 128 / float(sys.argv[3])  # the whole process: start-up, loading, evaluations included
print(sys.argv[2], round(statistics.median(float(r["samples_per_s"]) for r in half)), round(wall))
PY
}
median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print (NR ? (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) : 0) }'; }
have_torch=1
/usr/bin/python3 -c "import torch" 2>/dev/null || have_torch=0
bench_header "784-800-800-10, batch 128, 8,192 Fashion-MNIST rows, 3 epochs; $runs interleaved runs"
declare -A col
for ((k = 0; k < runs; k++)); do
  for cfg in "2 1" "1 2"; do
    set -- $cfg
    read -r s c w <<<"$(normal "$KD_BUILD/kd" "$1" "$2")"
    col[steps:$1x$2]+=" $s" col[csv:$1x$2]+=" $c" col[wall:$1x$2]+=" $w"
    if [ -n "$old" ]; then
      read -r s c w <<<"$(normal "$old" "$1" "$2")"
      col[oldcsv:$1x$2]+=" $c"
    fi
    [ $have_torch = 1 ] && col[torch:$1x$2]+=" $(/usr/bin/python3 "$(dirname "$0")/peer.py" --sizes 784-800-800-10 \
      --batch 128 --threads "$2" --ranks "$1" --steps 192 --warmup 10 2>/dev/null | sed -n 's/^pytorch samples\/s //p')"
  done
done
printf '%-7s %10s %10s %10s %12s %10s %10s\n' config steps csv wall "old csv" PyTorch "steps/PT"
for cfg in 2x1 1x2; do
  st=$(median <<<"${col[steps:$cfg]}") pt=$(median <<<"${col[torch:$cfg]:-}")
  printf '%-7s %10s %10s %10s %12s %10s %10s\n' $cfg "$st" "$(median <<<"${col[csv:$cfg]}")" \
    "$(median <<<"${col[wall:$cfg]}")" "$(median <<<"${col[oldcsv:$cfg]:-}")" "$pt" \
    "$(awk -v a="$st" -v b="$pt" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')"
done
echo "runs: $(for k in "${!col[@]}"; do printf '%s:%s; ' "$k" "${col[$k]# }"; done)"
perf=$(mpirun -q -np 2 --oversubscribe --bind-to none "$KD_BUILD/kd" train --data "$work/d.h5" --teacher "$work/t.h5" \
  --student 784-800-800-10 --batch 128 --epochs 100 --max-steps 300 --threads 1 --optimizer sgd --schedule const \
  --lr 0.01 --ckpt-epochs 0 --progress off --log-every 1000000 --force --out "$work/r" |
  sed -n 's/^final:.*samples_per_s=\([0-9]*\).*/\1/p')
echo "bench/perf.sh's setting (25,600 synthetic rows, 300 steps, no checkpoints), 2x1: $perf samples/s"
