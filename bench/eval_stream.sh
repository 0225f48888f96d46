#!/bin/bash
# bench/eval_stream.sh: kd eval --teacher and kd predict over a split whose teacher file is large (issue 31).
# A synthetic writer makes token rows [N, 64] and dense float16 teacher logits [N, 64, 512] (64 KiB a row); a
# gpt student (vocab 512, ctx 64, 2 layers, dim 128) is trained for a few steps; then kd eval --teacher and
# kd predict --dtype f16 run over all N rows of /train, --runs times each (page cache warm), 1 process x 2
# OpenBLAS threads. Prints the median wall time, rows/s and the peak RSS (GNU time). With --old KD, the same
# for another kd binary (an A/B: that binary's eval and predict held the split in memory).
# Prints; asserts nothing.
#
#   bench/eval_stream.sh [--rows N] [--runs N] [--old PATH_TO_KD]   (defaults 4096, 3)
set -u
source "$(dirname "$0")/../launch/common.sh"
[ -x "$KD_BUILD/kd" ] || kd_build || exit 1
rows=4096 runs=3 old=
while [ $# -gt 0 ]; do
  case $1 in
    --rows) rows=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --old) old=$2; shift 2 ;;
    *) echo "bench/eval_stream.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
work=$(mktemp -d "${TMPDIR:-/tmp}/kd-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=2
PY=/usr/bin/python3
"$PY" "$(dirname "$0")/lm_rows.py" "$rows" "$work/d.h5" "$work/t.h5" || exit 1
"$KD_BUILD/kd" train --data "$work/d.h5" --teacher "$work/t.h5" --student gpt:vocab=512,ctx=64,layers=2,dim=128,heads=4 \
  --batch 32 --max-steps 20 --threads 2 --progress off --out "$work/run" > "$work/train.log" 2>&1 ||
  { echo "training failed:"; tail -3 "$work/train.log"; exit 1; }
mib() { awk -v b="$(stat -c %s "$1")" 'BEGIN { printf "%.0f MiB", b / 1048576 }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo "host: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(free -g | awk '/Mem:/ {print $2}') GiB"
echo "files: $rows rows: data $(mib "$work/d.h5"), teacher $(mib "$work/t.h5") (float16 [N, 64, 512]); $runs runs each, medians"
printf '%-8s %-8s %10s %10s %12s\n' kd command seconds rows/s peak_rss
measure() { # measure LABEL KD CMD ARGS...
  local label=$1 kd=$2 cmd=$3
  shift 3
  : > "$work/s"; : > "$work/m"
  for r in $(seq "$runs"); do
    cat "$work/d.h5" "$work/t.h5" > /dev/null
    rm -f "$work/pred.h5"
    /usr/bin/time -f '%e %M' -o "$work/time" "$kd" "$cmd" --ckpt "$work/run" --data "$work/d.h5" --split train "$@" \
      > "$work/$cmd.out" 2>&1 || { echo "$label $cmd failed:"; tail -3 "$work/$cmd.out"; return; }
    awk '{ print $1 }' "$work/time" >> "$work/s"
    awk '{ print $2 / 1024 }' "$work/time" >> "$work/m"
  done
  local s
  s=$(median < "$work/s")
  printf '%-8s %-8s %10.2f %10.0f %8.0f MiB\n' "$label" "$cmd" "$s" "$(awk -v n="$rows" -v s="$s" 'BEGIN { print n / s }')" \
    "$(median < "$work/m")"
  [ "$cmd" = eval ] && sed 's/^/           /' "$work/eval.out" | grep -v '^ *$' | tail -1
}
measure this "$KD_BUILD/kd" eval --teacher "$work/t.h5"
measure this "$KD_BUILD/kd" predict --dtype f16 --out "$work/pred.h5"
if [ -n "$old" ]; then
  measure old "$old" eval --teacher "$work/t.h5"
  measure old "$old" predict --dtype f16 --out "$work/pred.h5"
fi
