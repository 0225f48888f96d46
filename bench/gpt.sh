#!/bin/bash
# bench/gpt.sh: the reference GPT student, gpt:vocab=256,ctx=128,layers=4,dim=256,heads=4, global batch 32
# sequences, per-token KD (T = 2, alpha = 0.5) against float16 teacher logits, AdamW, against the PyTorch peer
# (bench/peer.py --gpt: nanoGPT's model, the same loss and optimizer), in the same run, interleaved:
#   kd on 1 rank x 2 threads, 1 x 1 and 2 ranks x 1; PyTorch on 1 x 2 threads and DDP 2 x 1;
#   tokens/s (median of --runs), model GFLOP/s (6 x parameters + 12 L T D per token, the tied head counted
#   once), the share of the 190 GFLOP/s sgemm roof, peak memory per rank against its bound (4 x parameters +
#   one step's activations + the rows held + 64 MiB, from kd's memory line), kd / PyTorch's best;
#   kd on 2 x 1 without OPENBLAS_CORETYPE (OpenBLAS's own kernel choice); 2 ranks / 1 rank;
#   rank 0's step kernel by kernel (kd train --profile). Prints; asserts nothing.
#
#   bench/gpt.sh [--runs N] [--steps S]     (defaults: 3 runs of 30 steps; about 10 minutes)
set -u
source "$(dirname "$0")/lib.sh"
runs=3 steps=30
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    *) echo "usage: bench/gpt.sh [--runs N] [--steps S]" >&2; exit 2 ;;
  esac
done
V=256 T=128 L=4 D=256 H=4 B=32
spec="gpt:vocab=$V,ctx=$T,layers=$L,dim=$D,heads=$H"
bench_tokens $V $T || exit 1
params=$((V * D + T * D + L * (12 * D * D + 13 * D) + 2 * D))
flop_tok=$((6 * params + 12 * L * T * D))
have_torch=1
/usr/bin/python3 -c "import torch" 2>/dev/null || { have_torch=0; echo "(python3-torch missing: apt-get install python3-torch for the PyTorch column)"; }

# kd_run NP THREADS [EXTRA...]: one training run's output
kd_run() {
  local np=$1 th=$2
  shift 2
  mpirun -q -np "$np" --oversubscribe --bind-to none "$KD_BUILD/kd" train --data "$work/g.h5" --teacher "$work/gt.h5" \
    --student "$spec" --batch $B --epochs 100 --max-steps "$steps" --threads "$th" --optimizer adamw --lr 3e-4 \
    --weight-decay 0.1 --alpha 0.5 --temperature 2 --schedule const --ckpt-epochs 0 --progress off \
    --log-every 1000000 --force --out "$work/r" "$@"
}
tps() { sed -n 's/^final:.*tokens_per_s=\([0-9]*\).*/\1/p'; }
torch_run() {
  /usr/bin/python3 "$(dirname "$0")/peer.py" --gpt "$V,$T,$L,$D,$H" --batch $B --threads "$2" --ranks "$1" \
    --steps "$steps" --warmup 3 2>/dev/null | sed -n 's/^pytorch tokens\/s //p'
}
median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print (NR ? (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) : 0) }'; }

bench_header "model $spec, $params parameters, $flop_tok FLOP per token; $runs interleaved runs of $steps steps"
declare -A got rss bound
for ((k = 0; k < runs; k++)); do
  for cfg in "1 2" "1 1" "2 1"; do
    set -- $cfg
    out=$(kd_run "$1" "$2")
    got[kd$1x$2]+=" $(tps <<<"$out")"
    rss[$1x$2]=$(sed -n 's/^final:.*peak_rss_mib=\([0-9]*\).*/\1/p' <<<"$out")
    # 4 x parameters (weights, gradients, two moments) + activations + rows held + 64 MiB: kd's memory line
    bound[$1x$2]=$(grep '^memory (rank 0)' <<<"$out" | grep -o '[0-9.]* MiB' | awk '{ s += $1 } END { printf "%.0f", s + 64 }')
  done
  if [ $have_torch = 1 ]; then
    got[torch1x2]+=" $(torch_run 1 2)"
    got[torch2x1]+=" $(torch_run 2 1)"
  fi
done
gflops() { awk -v t="$1" -v f=$flop_tok 'BEGIN { printf "%.1f", t * f / 1e9 }'; }
printf '%-8s %-7s %10s %8s %7s %9s %9s\n' who config "tokens/s" "GFLOP/s" "roof" "rss MiB" "bound"
best_torch=0 best_kd=0
for who in kd torch; do
  for cfg in 1x2 1x1 2x1; do
    [ -n "${got[$who$cfg]:-}" ] || continue
    m=$(median <<<"${got[$who$cfg]}")
    eval "${who}_$cfg=$m"
    [ $who = kd ] && best_kd=$(awk -v a=$best_kd -v b="$m" 'BEGIN { print (b > a ? b : a) }')
    [ $who = torch ] && best_torch=$(awk -v a=$best_torch -v b="$m" 'BEGIN { print (b > a ? b : a) }')
    printf '%-8s %-7s %10s %8s %6s%% %9s %9s\n' "$who" "$cfg" "$m" "$(gflops "$m")" \
      "$(awk -v t="$m" -v f=$flop_tok 'BEGIN { printf "%.0f", 100 * t * f / 190e9 }')" \
      "$([ $who = kd ] && echo "${rss[$cfg]}" || echo -)" "$([ $who = kd ] && echo "${bound[$cfg]}" || echo -)"
  done
done
echo "runs (tokens/s): $(for k in "${!got[@]}"; do printf '%s:%s; ' "$k" "${got[$k]# }"; done)"
[ $have_torch = 1 ] && echo "kd best / PyTorch best = $(awk -v a=$best_kd -v b=$best_torch 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')  (target 1.25)"
echo "kd 2 ranks x 1 / 1 rank x 1 = $(awk -v a="${kd_2x1:-0}" -v b="${kd_1x1:-0}" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')"
if [ -n "${OPENBLAS_CORETYPE:-}" ]; then
  t=$(env -u OPENBLAS_CORETYPE bash -c "$(declare -f kd_run); work='$work' KD_BUILD='$KD_BUILD' spec='$spec' B=$B steps=$steps kd_run 2 1" | tps)
  echo "kd 2x1 without OPENBLAS_CORETYPE (OpenBLAS picks its kernels): $t tokens/s, $(gflops "$t") GFLOP/s"
fi
echo "rank 0's step on 2 ranks x 1 thread, kernel by kernel (kd train --profile):"
kd_run 2 1 --profile | sed -n '/^step_ms:/p; /^profile/,$p'
