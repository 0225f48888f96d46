#!/bin/bash
# launch/results-inter.sh: intermediate-layer distillation of the text demo's GPT (docs/results.md, "Online
# teachers, attention relations and hidden states"), on 2 ranks. Data and teachers as
# launch/results-text.sh (fortunes, bytes as tokens, rows of 128; teachers gpt 4x192, 4 heads, 1.85 M
# parameters, seeds 1-3; trained here when missing). Every student learns from the teacher of its seed,
# online (--teacher-model TEACHER:best), T 2, alpha 0.5:
#   scratch     no teacher                                      student 2x80, 2 heads (187 k)
#   kd          logit KD, online teacher                        2x80, 2 heads
#   minilm      + MiniLM q-q, k-k, v-v relations, last layers   2x80, 2 heads (2 relation heads)
#   hidden      + TinyBERT hidden states, uniform map 0:0,1:2,2:4 2x80, 2 heads
#   hidden-attn + TinyBERT hidden states and attention maps     2x80, 4 heads (maps need the teacher's heads)
#   scratch4    no teacher                                      2x80, 4 heads (the baseline of hidden-attn)
#   two-stage   hidden states + relations alone for the first half of the epochs, then logit KD alone
# on all training rows (2 epochs) and on a tenth of them (every 10th row, 10 epochs); 3 seeds. Runs are
# cached under checkpoints/results-inter/ (a rerun does what is missing; --fresh redoes all); figures in
# checkpoints/results-inter/results.csv, summarised by bench/summarise_inter.py into
# docs/results-inter-tables.md. Set KD_SEEDS="1" to run fewer seeds.
set -u -o pipefail
source "$(dirname "$0")/common.sh"
kd_need_packages "${KD_BUILD_PKGS[@]}" "${KD_TEST_PKGS[@]}" fortunes || exit 1
[ -x "$KD_BUILD/kd" ] || kd_build || exit 1
R=$KD_ROOT/checkpoints/results-inter
RT=$KD_ROOT/checkpoints/results-text
[ "${1:-}" = --fresh ] && rm -rf "$R"
mkdir -p "$R/s" "$RT" || exit 1
KD=$KD_BUILD/kd
run() { "$KD_ROOT/launch/local.sh" 2 "$@"; }
start=$(date +%s)
CSV=$R/results.csv
[ -e "$CSV" ] || echo "size,config,seed,test_bpb,valid_bpb,steps,step_ms,teacher_ms,loss_ms,tokens_per_s,tag" > "$CSV"

DATA=$RT/fortunes.h5 TENTH=$RT/fortunes-tenth.h5
kd_fortunes_data "$DATA" "$TENTH" || exit 1

V=256 CTX=128
TEACHER=gpt:vocab=$V,ctx=$CTX,layers=4,dim=192,heads=4
S2=gpt:vocab=$V,ctx=$CTX,layers=2,dim=80,heads=2
S4=gpt:vocab=$V,ctx=$CTX,layers=2,dim=80,heads=4
OPT=(--optimizer adamw --lr 2e-3 --warmup 50 --beta2 0.99 --weight-decay 0.1 --clip 1 --batch 32
  --progress off --ckpt-epochs 0)

bpb() {
  local json
  json=$("$KD" eval --ckpt "$1:best" --data "$DATA" ${2:+--split $2} --json) || return 1
  sed -n 's/.*"bpb": \([0-9.]*\).*/\1/p' <<<"$json" | grep . || { echo "no bpb from kd eval of $1" >&2; return 1; }
}
phase() { sed -n "s/^step_ms:.* $1=\([0-9.]*\).*/\1/p" "$2"; }
step_total() { sed -n 's/^step_ms: //p' "$1" | tr ' ' '\n' | awk -F= '{s += $2} END {printf "%.1f", s}'; }
record() { # SIZE CONFIG SEED DIR
  local tag steps test valid
  tag=$(basename "$4")
  grep -q ",$tag\$" "$CSV" && return 0
  steps=$(sed -n 's/^final: steps=\([0-9]*\).*/\1/p' "$4.log")
  test=$(bpb "$4") && valid=$(bpb "$4" valid) || return 1
  echo "$1,$2,$3,$test,$valid,$steps,$(step_total "$4.log"),$(phase teacher "$4.log"),$(phase loss "$4.log"),$(sed -n 's/^final:.* tokens_per_s=\([0-9]*\).*/\1/p' "$4.log"),$tag" >> "$CSV"
}

SEEDS=${KD_SEEDS:-1 2 3}
for seed in $SEEDS; do
  T=$RT/teacher$seed
  if [ ! -e "$T/final.h5" ]; then
    run train --data "$DATA" --student "$TEACHER" --epochs 3 --eval-every 284 --log-every 142 --seed $seed \
      "${OPT[@]}" --force --out "$T" > "$T.log" || exit 1
  fi
done

# student SIZE CONFIG SEED: one run, cached by its tag.
student() {
  local size=$1 config=$2 seed=$3 data=$DATA epochs=2 every=284 stu=$S2 half=1
  local tag="$size-$config-$seed" extra=()
  [ "$size" = tenth ] && { data=$TENTH epochs=10 every=57 half=5; }
  local kd=(--teacher-model "$RT/teacher$seed:best" --temperature 2 --alpha 0.5)
  case $config in
    scratch) ;;
    scratch4) stu=$S4 ;;
    kd) extra=("${kd[@]}") ;;
    minilm) extra=("${kd[@]}" --attn-relations q-q,k-k,v-v) ;;
    hidden) extra=("${kd[@]}" --hidden-map uniform) ;;
    hidden-attn) stu=$S4 extra=("${kd[@]}" --hidden-map uniform --attn-loss mse) ;;
    two-stage) extra=("${kd[@]}" --hidden-map uniform --attn-relations q-q,k-k,v-v --intermediate-epochs $half) ;;
  esac
  if [ ! -e "$R/s/$tag/final.h5" ]; then
    run train --data "$data" --student "$stu" --epochs $epochs --eval-every $every --log-every $every \
      --seed "$seed" "${OPT[@]}" "${extra[@]}" --force --out "$R/s/$tag" > "$R/s/$tag.log" 2>&1 ||
      { echo "failed: $tag (see $R/s/$tag.log)" >&2; return 1; }
  fi
  record "$size" "$config" "$seed" "$R/s/$tag"
}

for seed in $SEEDS; do
  for size in tenth full; do
    for config in scratch kd minilm hidden hidden-attn scratch4 two-stage; do
      student $size $config $seed || exit 1
    done
  done
  echo "seed $seed done: $(( $(date +%s) - start )) s"
done
/usr/bin/python3 "$KD_ROOT/bench/summarise_inter.py" "$CSV" "$KD_ROOT/docs/results-inter-tables.md" "$RT/results.csv" || exit 1
echo "results: $CSV, docs/results-inter-tables.md   wall time: $(( $(date +%s) - start )) s"
