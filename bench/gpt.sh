#!/bin/bash
# bench/gpt.sh: the reference language-model students, global batch 32 sequences of 128 tokens, per-token KD
# (T = 2, alpha = 0.5) against float16 teacher logits, AdamW, against the PyTorch peer (bench/peer.py: the same
# model, loss and optimizer), in the same run, interleaved:
#   gpt    gpt:vocab=256,ctx=128,layers=4,dim=256,heads=4 (nanoGPT's model in the peer)
#   llama  llama:vocab=256,ctx=128,layers=4,dim=256,heads=4,kv_heads=2,ffn=704 (LlamaForCausalLM written out
#          in plain tensor operations in the peer: PyTorch 1.13 has no RMSNorm module or GQA kernel)
#   every run does each model and configuration once (the machine's speed drifts between minutes: the models
#   see the same drift), and measures the sgemm roof (bench_sgemm on both cores) beside them;
#   kd on 1 rank x 2 threads, 1 x 1 and 2 ranks x 1; PyTorch on 1 x 2 threads and DDP 2 x 1 with the teacher's
#   logits held as float32 (no per-step conversion: PyTorch's best case), and DDP 2 x 1 with float16 logits
#   converted per step (the peer of earlier measurements);
#   tokens/s (median of --runs), model GFLOP/s (6 x the parameters that GEMMs touch + 12 L T D per token: a
#   tied head counted once, an untied one and not the embedding lookup), the share of the measured roof and
#   of the brief's 190 GFLOP/s, peak memory per rank against its bound (4 x parameters + one step's activations + the rows held +
#   64 MiB, from kd's memory line), kd / PyTorch's best; kd on 2 x 1 without OPENBLAS_CORETYPE (OpenBLAS's own
#   kernel choice); 2 ranks / 1 rank; rank 0's step kernel by kernel (kd train --profile). Prints; asserts
#   nothing.
#
#   bench/gpt.sh [--model gpt|llama|both] [--runs N] [--steps S]   (defaults: both, 3 runs of 30 steps; about
#                                                                   10 minutes a model)
set -u
source "$(dirname "$0")/lib.sh"
runs=3 steps=30 model=both
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    *) echo "usage: bench/gpt.sh [--model gpt|llama|both] [--runs N] [--steps S]" >&2; exit 2 ;;
  esac
done
V=256 T=128 L=4 D=256 H=4 B=32 G=2 F=704
bench_tokens $V $T || exit 1
have_torch=1
/usr/bin/python3 -c "import torch" 2>/dev/null || { have_torch=0; echo "(python3-torch missing: apt-get install python3-torch for the PyTorch column)"; }

# kd_run NP THREADS [EXTRA...]: one training run's output ($spec: the student)
kd_run() {
  local np=$1 th=$2
  shift 2
  mpirun -q -np "$np" --oversubscribe --bind-to none "$KD_BUILD/kd" train --data "$work/g.h5" --teacher "$work/gt.h5" \
    --student "$spec" --batch $B --epochs 100 --max-steps "$steps" --threads "$th" --optimizer adamw --lr 3e-4 \
    --weight-decay 0.1 --alpha 0.5 --temperature 2 --schedule const --ckpt-epochs 0 --progress off \
    --log-every 1000000 --force --out "$work/r" "$@"
}
tps() { sed -n 's/^final:.*tokens_per_s=\([0-9]*\).*/\1/p'; }
# torch_run RANKS THREADS [EXTRA...]: the peer's tokens/s ($peer: --gpt ... or --llama ...)
torch_run() {
  local np=$1 th=$2
  shift 2
  /usr/bin/python3 "$(dirname "$0")/peer.py" $peer --batch $B --threads "$th" --ranks "$np" --steps "$steps" \
    --warmup 3 "$@" 2>/dev/null | sed -n 's/^pytorch tokens\/s //p'
}
median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print (NR ? (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) : 0) }'; }

# The models: spec, peer arguments, parameters, model FLOP per token.
declare -A SPEC PEER PARAMS FLOP
SPEC[gpt]="gpt:vocab=$V,ctx=$T,layers=$L,dim=$D,heads=$H" PEER[gpt]="--gpt $V,$T,$L,$D,$H"
PARAMS[gpt]=$((V * D + T * D + L * (12 * D * D + 13 * D) + 2 * D))
FLOP[gpt]=$((6 * PARAMS[gpt] + 12 * L * T * D))
hd=$((D / H))
SPEC[llama]="llama:vocab=$V,ctx=$T,layers=$L,dim=$D,heads=$H,kv_heads=$G,ffn=$F" PEER[llama]="--llama $V,$T,$L,$D,$H,$G,$F"
PARAMS[llama]=$((2 * V * D + L * (D * D + 2 * G * hd * D + D * D + 3 * D * F + 2 * D) + D))
FLOP[llama]=$((6 * (PARAMS[llama] - V * D) + 12 * L * T * D)) # the embedding is a lookup, the untied head a GEMM
models=()
[ "$model" = gpt ] || [ "$model" = both ] && models+=(gpt)
[ "$model" = llama ] || [ "$model" = both ] && models+=(llama)
[ ${#models[@]} -gt 0 ] || { echo "bench/gpt.sh: --model gpt|llama|both" >&2; exit 2; }
sgemm_bin=$(ls "$KD_BUILD"/bench_sgemm "$KD_BUILD"/bench/bench_sgemm 2>/dev/null | head -1)
[ -n "$sgemm_bin" ] || cmake --build "$KD_BUILD" --target bench_sgemm >/dev/null 2>&1
sgemm_bin=$(ls "$KD_BUILD"/bench_sgemm "$KD_BUILD"/bench/bench_sgemm 2>/dev/null | head -1)
# roof: the sgemm rate on both cores at the large MLP's shapes (the project's roof measurement)
roof() { "$sgemm_bin" 2 512 784 4096 4096 10 | sed -n 's/.*: \([0-9.]*\) GFLOP.*/\1/p'; }

bench_header "$runs interleaved runs of $steps steps; every run does each model and configuration once"
declare -A got rss bound
roofs=""
for ((k = 0; k < runs; k++)); do
  roofs+=" $(roof)"
  for name in "${models[@]}"; do
    spec=${SPEC[$name]} peer=${PEER[$name]}
    for cfg in "1 2" "1 1" "2 1"; do
      set -- $cfg
      out=$(kd_run "$1" "$2")
      got[$name:kd:$1x$2]+=" $(tps <<<"$out")"
      rss[$name:$1x$2]=$(sed -n 's/^final:.*peak_rss_mib=\([0-9]*\).*/\1/p' <<<"$out")
      # 4 x parameters (weights, gradients, two moments) + activations + rows held + 64 MiB: kd's memory line
      bound[$name:$1x$2]=$(grep '^memory (rank 0)' <<<"$out" | grep -o '[0-9.]* MiB' | awk '{ s += $1 } END { printf "%.0f", s + 64 }')
    done
    if [ $have_torch = 1 ]; then
      got[$name:torch:1x2]+=" $(torch_run 1 2)"
      got[$name:torch:2x1]+=" $(torch_run 2 1)"
      got[$name:torch16:2x1]+=" $(torch_run 2 1 --teacher-f16)"
    fi
  done
done
R=$(median <<<"$roofs")
echo "sgemm roof measured in this run (2 threads, bench_sgemm at 784-4096-4096-10, batch 512): median $R GFLOP/s (runs:$roofs)"

for name in "${models[@]}"; do
  spec=${SPEC[$name]} peer=${PEER[$name]} flop_tok=${FLOP[$name]}
  echo "== $name: $spec, ${PARAMS[$name]} parameters, $flop_tok FLOP per token"
  gflops() { awk -v t="$1" -v f=$flop_tok 'BEGIN { printf "%.1f", t * f / 1e9 }'; }
  printf '%-8s %-9s %10s %8s %11s %9s %9s %9s\n' who config "tokens/s" "GFLOP/s" "roof($R)" "of 190" "rss MiB" "bound"
  best_torch=0 best_kd=0
  unset kd_1x1 kd_2x1 torch16_2x1
  for who in kd torch torch16; do
    for cfg in 1x2 1x1 2x1; do
      [ -n "${got[$name:$who:$cfg]:-}" ] || continue
      m=$(median <<<"${got[$name:$who:$cfg]}")
      eval "${who}_$cfg=$m"
      [ $who = kd ] && best_kd=$(awk -v a=$best_kd -v b="$m" 'BEGIN { print (b > a ? b : a) }')
      [ $who = torch ] && best_torch=$(awk -v a=$best_torch -v b="$m" 'BEGIN { print (b > a ? b : a) }')
      printf '%-8s %-9s %10s %8s %10s%% %8s%% %9s %9s\n' "$who" "$cfg$([ $who = torch16 ] && echo ' f16')" "$m" \
        "$(gflops "$m")" "$(awk -v t="$m" -v f=$flop_tok -v r="$R" 'BEGIN { printf "%.0f", 100 * t * f / (r * 1e9) }')" \
        "$(awk -v t="$m" -v f=$flop_tok 'BEGIN { printf "%.0f", 100 * t * f / 190e9 }')" \
        "$([ $who = kd ] && echo "${rss[$name:$cfg]}" || echo -)" "$([ $who = kd ] && echo "${bound[$name:$cfg]}" || echo -)"
    done
  done
  echo "runs (tokens/s): $(for k in "${!got[@]}"; do [[ $k == $name:* ]] && printf '%s:%s; ' "${k#$name:}" "${got[$k]# }"; done)"
  [ $have_torch = 1 ] && echo "kd best / PyTorch best (float32 teacher logits) = $(awk -v a=$best_kd -v b=$best_torch 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')  (target 1.25); kd 2x1 / PyTorch 2x1 with float16 logits converted per step = $(awk -v a="${kd_2x1:-0}" -v b="${torch16_2x1:-0}" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')"
  echo "kd 2 ranks x 1 / 1 rank x 1 = $(awk -v a="${kd_2x1:-0}" -v b="${kd_1x1:-0}" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')"
  if [ -n "${OPENBLAS_CORETYPE:-}" ]; then
    t=$(env -u OPENBLAS_CORETYPE bash -c "$(declare -f kd_run); work='$work' KD_BUILD='$KD_BUILD' spec='$spec' B=$B steps=$steps kd_run 2 1" | tps)
    echo "kd 2x1 without OPENBLAS_CORETYPE (OpenBLAS picks its kernels): $t tokens/s, $(gflops "$t") GFLOP/s"
  fi
  echo "rank 0's step on 2 ranks x 1 thread, kernel by kernel (kd train --profile):"
  kd_run 2 1 --profile | sed -n '/^step_ms:/p; /^profile/,$p'
done
