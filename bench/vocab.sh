#!/bin/bash
# bench/vocab.sh: large vocabularies. The reference GPT student (gpt:vocab=V,ctx=128,layers=4,dim=256,
# heads=4; the head tied to wte) at V = 256, 4096 and 32768, global batch 32 sequences, 2 ranks x 1 thread,
# AdamW, T = 2, alpha = 0.5, trained on hard labels alone (none), on stored dense float16 logits (dense),
# on top-k logits K = 32 with the tail bin (tail), and on S = 12 sampled ids (sampled), the sparse files
# written by kd logits from a teacher of the same shape: median tokens/s and step time over --runs runs,
# and rank 0's step by kernel (--profile) of the last run: the head GEMMs and the loss pass (chunked above
# 256 classes) against the rest; then the teacher file's bytes per token for each format. The dense
# files hold few rows at large V (64 at 32768: 537 MB). Prints; asserts nothing.
#
#   bench/vocab.sh [--runs N] [--steps S] [--vocabs "256 4096 32768"]   (defaults: 3 runs of 8 steps)
set -u
source "$(dirname "$0")/lib.sh"
runs=3 steps=8 vocabs="256 4096 32768"
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --vocabs) vocabs=$2; shift 2 ;;
    *) echo "usage: bench/vocab.sh [--runs N] [--steps S] [--vocabs \"V ...\"]" >&2; exit 2 ;;
  esac
done
T=128 B=32
run() { mpirun -q -np 2 --oversubscribe --bind-to none "$KD_BUILD/kd" train --batch $B --threads 1 \
  --optimizer adamw --lr 3e-4 --alpha 0.5 --temperature 2 --schedule const --ckpt-epochs 0 --progress off \
  --log-every 1000000 --force "$@"; }
median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print (NR ? (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) : 0) }'; }
bench_header "2 ranks x 1 thread; $runs interleaved runs of $steps steps per configuration"
for V in $vocabs; do
  N=$((V >= 32768 ? 64 : V >= 4096 ? 256 : 1024))
  bench_tokens $V $T $N || exit 1
  spec="gpt:vocab=$V,ctx=$T,layers=4,dim=256,heads=4"
  run --data "$work/g.h5" --student "$spec" --epochs 1 --max-steps 1 --out "$work/teacher" > "$work/teacher.log" ||
    { cat "$work/teacher.log"; exit 1; }
  mpirun -q -np 2 --oversubscribe --bind-to none "$KD_BUILD/kd" logits --ckpt "$work/teacher/final.h5" \
    --data "$work/g.h5" --topk 32 --sample 12 --sample-temperature 2 --dtype f16 --out "$work/gs.h5" > /dev/null || exit 1
  declare -A args tps ms prof
  args[none]=""
  args[dense]="--teacher $work/gt.h5"
  args[tail]="--teacher $work/gs.h5 --sparse-kd tail"
  args[sampled]="--teacher $work/gs.h5 --sparse-kd sampled"
  configs="none dense tail sampled"
  tps=() ms=() prof=()
  for ((k = 0; k < runs; k++)); do
    for c in $configs; do
      last=$([ $k = $((runs - 1)) ] && echo --profile)
      # shellcheck disable=SC2086
      out=$(run --data "$work/g.h5" --student "$spec" --epochs 100 --max-steps "$steps" --out "$work/r" ${args[$c]} $last) ||
        { echo "$out"; exit 1; }
      tps[$c]+=" $(sed -n 's/^final:.*tokens_per_s=\([0-9]*\).*/\1/p' <<<"$out")"
      ms[$c]+=" $(sed -n 's/^step_ms: //p' <<<"$out" | tr ' ' '\n' | awk -F= '{ s += $2 } END { printf "%.1f", s }')"
      [ -n "$last" ] && prof[$c]=$(awk '/^profile/ { on = 1 } on && /lm_head|loss:|trainer: loss|^  step/' <<<"$out")
      [ -n "$last" ] && [ $c = none ] && chunk=$(grep -o 'head GEMM and loss in chunks of [0-9]* positions ([0-9.]* MiB)' <<<"$out")
    done
  done
  echo
  echo "V = $V: student $spec $(grep -m1 -o "([0-9]* parameters)" "$work/teacher.log"); ${chunk:-the logits of the whole batch at once}"
  printf '  %-8s %10s %10s   %s\n' targets "tokens/s" "step ms" "runs (tokens/s)"
  for c in $configs; do
    printf '  %-8s %10s %10s   %s\n' "$c" "$(median <<<"${tps[$c]}")" "$(median <<<"${ms[$c]}")" "${tps[$c]# }"
  done
  for c in $configs; do echo "  rank 0's step, $c (--profile, ms per step, share):"; sed 's/^/  /' <<<"${prof[$c]}"; done
  /usr/bin/python3 - "$work/gt.h5" "$work/gs.h5" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r") as d, h5py.File(sys.argv[2], "r") as s:
    tokens = d["train/logits"].shape[0] * d["train/logits"].shape[1]
    size = lambda f, names: sum(f["train/" + n].dtype.itemsize * f["train/" + n].size for n in names) / tokens
    print("  teacher file bytes per token: dense f16 %.0f; top-k 32 (ids, f16 logits) %.0f, with lse %.0f; "
          "sampled 12 (ids, counts) %.0f" % (size(d, ["logits"]), size(s, ["topk/ids", "topk/logits"]),
                                             size(s, ["topk/ids", "topk/logits", "topk/lse"]),
                                             size(s, ["sampled/ids", "sampled/counts"])))
PY
  unset args tps ms prof
done
