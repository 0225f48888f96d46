#!/bin/bash
# bench/stream.sh: streamed training rows against rows held in memory (issue 31). A synthetic writer makes
# token rows [N, 64] and dense float16 teacher logits [N, 64, 512] (64 KiB a row); a gpt student
# (vocab 512, ctx 64, 2 layers, dim 128) distils from them on 2 ranks x 1 thread for --steps steps:
#   memory       --stream off, the file in the page cache;
#   warm         --stream on, the file in the page cache;
#   cold         --stream on, the files evicted from the page cache (posix_fadvise DONTNEED) just before;
# each with --memory-budget BUDGET (default 96M: the teacher file is several times it), --runs runs, medians
# of tokens/s; the reader's busy share and the steps' wait (rank 0), the checked-before-step-1 pass, peak RSS of
# the largest rank. Then a file twice as large, streamed (warm): peak RSS stays where it was.
# Prints; asserts nothing.
#
#   bench/stream.sh [--rows N] [--steps N] [--runs N] [--budget SIZE]   (defaults 8192, 300, 3, 96M)
set -u
source "$(dirname "$0")/../launch/common.sh"
[ -x "$KD_BUILD/kd" ] || kd_build || exit 1
rows=8192 steps=300 runs=3 budget=96M
while [ $# -gt 0 ]; do
  case $1 in
    --rows) rows=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --budget) budget=$2; shift 2 ;;
    *) echo "bench/stream.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
work=$(mktemp -d "${TMPDIR:-/tmp}/kd-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
PY=/usr/bin/python3
write() { "$PY" "$(dirname "$0")/lm_rows.py" "$@"; } # write ROWS DATA TEACHER
evict() { "$PY" -c 'import os, sys
for p in sys.argv[1:]:
    fd = os.open(p, os.O_RDONLY); os.fsync(fd); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED); os.close(fd)' "$@"; }
warm() { cat "$@" > /dev/null; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" "$2"; }
run() { # run NAME DATA TEACHER ARGS...: one training run, its log in $work/NAME.log
  local name=$1 data=$2 teacher=$3
  shift 3
  mpirun -q -np 2 --bind-to core "$KD_BUILD/kd" train --data "$data" --teacher "$teacher" \
    --student gpt:vocab=512,ctx=64,layers=2,dim=128,heads=4 --batch 32 --epochs 1 --max-steps "$steps" \
    --threads 1 --progress off --optimizer adamw --lr 0.001 --memory-budget "$budget" --out "$work/$name" --force \
    "$@" > "$work/$name.log" 2>&1 || { echo "run $name failed:"; tail -3 "$work/$name.log"; exit 1; }
}
write "$rows" "$work/d.h5" "$work/t.h5" || exit 1
write $((2 * rows)) "$work/d2.h5" "$work/t2.h5" || exit 1
mib() { awk -v b="$(stat -c %s "$1")" 'BEGIN { printf "%.0f MiB", b / 1048576 }'; }
echo "host: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(free -g | awk '/Mem:/ {print $2}') GiB"
echo "files: $rows rows: data $(mib "$work/d.h5"), teacher $(mib "$work/t.h5") (float16 [N, 64, 512]); twice as large: teacher $(mib "$work/t2.h5"); --memory-budget $budget per rank"
echo "run: gpt vocab 512 ctx 64 layers 2 dim 128, batch 32, $steps steps, 2 ranks x 1 thread; $runs runs each, medians"
printf '%-8s %12s %12s %14s %14s %12s\n' mode tokens/s vs_memory reader_busy steps_waited peak_rss
base=
for mode in memory warm cold; do
  : > "$work/tps"; : > "$work/busy"; : > "$work/wait"; : > "$work/rss"
  for r in $(seq "$runs"); do
    case $mode in
      memory) warm "$work/d.h5" "$work/t.h5"; run m "$work/d.h5" "$work/t.h5" --stream off ;;
      warm) warm "$work/d.h5" "$work/t.h5"; run m "$work/d.h5" "$work/t.h5" --stream on ;;
      cold) evict "$work/d.h5" "$work/t.h5"; run m "$work/d.h5" "$work/t.h5" --stream on ;;
    esac
    field tokens_per_s "$work/m.log" >> "$work/tps"
    field peak_rss_mib "$work/m.log" >> "$work/rss"
    sed -n 's/.*busy \([0-9.]*\) s (\([0-9]*\)% of the training time).*/\2/p' "$work/m.log" >> "$work/busy"
    sed -n 's/.*the steps waited [0-9.]* s for it (\([0-9.]*\)%).*/\1/p' "$work/m.log" >> "$work/wait"
  done
  tps=$(median < "$work/tps")
  [ -z "$base" ] && base=$tps
  busy=- wait=-
  [ -s "$work/busy" ] && busy=$(median < "$work/busy")% wait=$(median < "$work/wait")%
  printf '%-8s %12.0f %12.3f %14s %14s %9s MiB\n' "$mode" "$tps" "$(awk -v a="$tps" -v b="$base" 'BEGIN { print a / b }')" \
    "$busy" "$wait" "$(median < "$work/rss")"
  [ "$mode" = cold ] && grep '^rows:' "$work/m.log" | sed 's/^/  /'
done
warm "$work/d2.h5" "$work/t2.h5"
run big "$work/d2.h5" "$work/t2.h5" --stream on
echo "twice the file, streamed (warm): tokens/s $(field tokens_per_s "$work/big.log"), peak RSS $(field peak_rss_mib "$work/big.log") MiB"
