#!/bin/bash
# bench/online.sh: what a teacher costs per step. The reference GPT student of bench/gpt.sh
# (gpt:vocab=256,ctx=128,layers=4,dim=256,heads=4), global batch 32 sequences, 2 ranks x 1 thread, AdamW,
# T = 2, alpha = 0.5, trained
#   none      without a teacher (hard labels),
#   stored    against stored float16 teacher logits [N, T, V] (--teacher FILE),
#   online    against an online teacher about 4x its size (gpt 8x368, 4 heads; --teacher-model),
#   relations the online teacher plus MiniLM q-q, k-k, v-v relations of the last layers,
#   hidden    the online teacher plus TinyBERT hidden states (uniform map, 5 pairs),
# interleaved over --runs runs: median tokens/s and step time, and rank 0's step phases (the teacher's
# forward is the `teacher` phase, the intermediate terms are in `loss`); then, when launch/results-text.sh's
# data and teachers exist, the step of each configuration of launch/results-inter.sh. Prints; asserts nothing.
#
#   bench/online.sh [--runs N] [--steps S]     (defaults: 3 runs of 15 steps; about 8 minutes)
set -u
source "$(dirname "$0")/lib.sh"
runs=3 steps=15
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    *) echo "usage: bench/online.sh [--runs N] [--steps S]" >&2; exit 2 ;;
  esac
done
V=256 T=128 B=32
spec="gpt:vocab=$V,ctx=$T,layers=4,dim=256,heads=4"
tspec="gpt:vocab=$V,ctx=$T,layers=8,dim=368,heads=4"
bench_tokens $V $T || exit 1
run() { mpirun -q -np 2 --oversubscribe --bind-to none "$KD_BUILD/kd" train --batch $B --threads 1 \
  --optimizer adamw --lr 3e-4 --alpha 0.5 --temperature 2 --schedule const --ckpt-epochs 0 --progress off \
  --log-every 1000000 --force "$@"; }
# the teacher: one step of training is enough to time it (its weights do not change the cost)
run --data "$work/g.h5" --student "$tspec" --epochs 1 --max-steps 1 --out "$work/teacher" > "$work/teacher.log" || { cat "$work/teacher.log"; exit 1; }
median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print (NR ? (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) : 0) }'; }
declare -A args tps ms phases
args[none]=""
args[stored]="--teacher $work/gt.h5"
args[online]="--teacher-model $work/teacher/final.h5"
args[relations]="--teacher-model $work/teacher/final.h5 --attn-relations q-q,k-k,v-v"
args[hidden]="--teacher-model $work/teacher/final.h5 --hidden-map uniform"
configs="none stored online relations hidden"
for ((k = 0; k < runs; k++)); do
  for c in $configs; do
    # shellcheck disable=SC2086
    out=$(run --data "$work/g.h5" --student "$spec" --epochs 100 --max-steps "$steps" --out "$work/r" ${args[$c]}) || { echo "$out"; exit 1; }
    tps[$c]+=" $(sed -n 's/^final:.*tokens_per_s=\([0-9]*\).*/\1/p' <<<"$out")"
    ms[$c]+=" $(sed -n 's/^step_ms: //p' <<<"$out" | tr ' ' '\n' | awk -F= '{ s += $2 } END { printf "%.1f", s }')"
    phases[$c]=$(sed -n 's/^step_ms: //p' <<<"$out")
    [ $k = 0 ] && [ $c = online ] && sp=$(grep -m1 '^teacher: online' <<<"$out")
  done
done
bench_header "student $spec; teacher $tspec; $runs interleaved runs of $steps steps, 2 ranks x 1 thread"
echo "${sp:-}"
printf '%-10s %10s %10s   %s\n' config "tokens/s" "step ms" "rank 0's phases, last run (ms per step)"
for c in $configs; do
  printf '%-10s %10s %10s   %s\n' "$c" "$(median <<<"${tps[$c]}")" "$(median <<<"${ms[$c]}")" "${phases[$c]}"
done
echo "runs (tokens/s): $(for c in $configs; do printf '%s:%s; ' "$c" "${tps[$c]# }"; done)"

# The configurations of launch/results-inter.sh on the text demo's corpus, when its data and teacher exist:
# each configuration's step, timed here on a quiet machine (the results' own runs share it with others).
RT=$KD_ROOT/checkpoints/results-text
[ -e "$RT/teacher1/best" ] && [ -e "$RT/fortunes.h5" ] || exit 0
S2=gpt:vocab=256,ctx=128,layers=2,dim=80,heads=2 S4=gpt:vocab=256,ctx=128,layers=2,dim=80,heads=4
KDT=(--teacher-model "$RT/teacher1:best")
declare -A targs tstu
targs[scratch]="" tstu[scratch]=$S2
targs[stored]="--teacher $RT/teacher1-logits.h5" tstu[stored]=$S2
targs[kd]="${KDT[*]}" tstu[kd]=$S2
targs[minilm]="${KDT[*]} --attn-relations q-q,k-k,v-v" tstu[minilm]=$S2
targs[hidden]="${KDT[*]} --hidden-map uniform" tstu[hidden]=$S2
targs[hidden-attn]="${KDT[*]} --hidden-map uniform --attn-loss mse" tstu[hidden-attn]=$S4
echo "the text demo's configurations (launch/results-inter.sh; teacher gpt 4x192 of seed 1), $((2 * steps)) steps, 2 ranks x 1 thread:"
printf '%-12s %10s %10s   %s\n' config "tokens/s" "step ms" "rank 0's phases (ms per step)"
for c in scratch stored kd minilm hidden hidden-attn; do
  # shellcheck disable=SC2086
  out=$(run --data "$RT/fortunes.h5" --student "${tstu[$c]}" --epochs 1 --max-steps $((2 * steps)) --out "$work/x" \
    ${targs[$c]} 2>&1) || { echo "$out" | tail -3; exit 1; }
  ph=$(sed -n 's/^step_ms: //p' <<<"$out")
  printf '%-12s %10s %10s   %s\n' "$c" "$(sed -n 's/^final:.*tokens_per_s=\([0-9]*\).*/\1/p' <<<"$out")" \
    "$(tr ' ' '\n' <<<"$ph" | awk -F= '{ s += $2 } END { printf "%.1f", s }')" "$ph"
done
