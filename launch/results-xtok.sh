#!/bin/bash
# launch/results-xtok.sh: distillation across tokenizers on fortunes text (docs/results.md, "Different
# tokenizers"), on 2 ranks. The fortune files of Debian's fortunes package, imported three ways with the
# same documents in each split (so test bits per byte compare across tokenizers):
#   teacher   kd BPE of 4,096 ids, rows of 128 tokens; gpt layers=4, dim=192, heads=4, KD_XTOK_TEACHER_EPOCHS
#             (default 5) epochs, seed 1
#   students  gpt layers=2, dim=80, heads=2 on bytes (rows of 128 bytes) and on a kd BPE of 1,024 ids (rows of
#             128 tokens), each file carrying the teacher's tokens of its rows (kd import text
#             --teacher-tokenizer kd:TEACHER_DATA): from scratch, and distilled from the online teacher with
#             --cross-tokenizer uld, exact and hybrid (T 2, alpha 0.5);
#   reference the same student on the teacher's own BPE 4,096 rows: from scratch and with ordinary online KD
#             (T 2, alpha 0.5), the upper reference (no tokenizer gap)
# KD_XTOK_EPOCHS (default 2) epochs per student, seeds KD_XTOK_SEEDS (default "1 2 3"). Every figure is the test
# bits per byte of the checkpoint with the best validation loss (DIR:best); the log's step_ms gives the loss's
# share of the step. Runs are cached under checkpoints/results-xtok/ (a rerun does what is missing; --fresh
# redoes all), figures in its results.csv, summarised by bench/summarise_xtok.py into
# docs/results-xtok-tables.md. KD_MAX_STEPS=N is a smoke test (every run stops after N steps, under
# checkpoints/results-xtok-smoke/, no tables in docs/).
set -u -o pipefail
source "$(dirname "$0")/common.sh"
kd_need_packages "${KD_BUILD_PKGS[@]}" "${KD_TEST_PKGS[@]}" fortunes || exit 1
[ -x "$KD_BUILD/kd" ] || kd_build || exit 1
R=$KD_ROOT/checkpoints/results-xtok
SEEDS=${KD_XTOK_SEEDS:-1 2 3} EPOCHS=${KD_XTOK_EPOCHS:-2} TEPOCHS=${KD_XTOK_TEACHER_EPOCHS:-5} SMOKE=()
[ -n "${KD_MAX_STEPS:-}" ] && R=$R-smoke SMOKE=(--max-steps "$KD_MAX_STEPS" --eval-every "$KD_MAX_STEPS")
[ "${1:-}" = --fresh ] && rm -rf "$R"
mkdir -p "$R/s" || exit 1
run() { "$KD_ROOT/launch/local.sh" 2 "$@"; }
start=$(date +%s)
CSV=$R/results.csv
[ -e "$CSV" ] || echo "student,method,seed,test_bpb,valid_bpb,steps,train_s,loss_ms,step_ms,tag" > "$CSV"

# The three files: the teacher's BPE 4,096; bytes and BPE 1,024 with the teacher's tokens of each row.
mapfile -t FILES < <(kd_fortunes_files)
TDATA=$R/fortunes-bpe4096.h5
imp() { [ -e "$1" ] || "$KD_BUILD/kd" import text --in "${FILES[@]}" --doc-sep % --ctx 128 --out "$@" > "$1.log"; }
imp "$TDATA" --tokenizer bpe:4096 || exit 1
imp "$R/fortunes-bytes.h5" --tokenizer bytes --teacher-tokenizer "kd:$TDATA" || exit 1
imp "$R/fortunes-bpe1024.h5" --tokenizer bpe:1024 --teacher-tokenizer "kd:$TDATA" || exit 1
declare -A DATA=([bytes]=$R/fortunes-bytes.h5 [bpe1024]=$R/fortunes-bpe1024.h5 [bpe4096]=$TDATA)
declare -A VOCAB=([bytes]=256 [bpe1024]=1024 [bpe4096]=4096)

OPT=(--optimizer adamw --lr 2e-3 --warmup 50 --beta2 0.99 --weight-decay 0.1 --clip 1 --batch 32
  --progress off --ckpt-epochs 0 "${SMOKE[@]}")
T=$R/teacher
if [ ! -e "$T/final.h5" ]; then
  run train --data "$TDATA" --student gpt:vocab=4096,ctx=128,layers=4,dim=192,heads=4 --epochs "$TEPOCHS" \
    --eval-every 97 --log-every 97 --seed 1 "${OPT[@]}" --force --out "$T" > "$T.log" 2>&1 ||
    { echo "teacher failed (see $T.log)" >&2; exit 1; }
fi
echo "teacher: $(grep '^test:' "$T.log") ($(( $(date +%s) - start )) s so far)"

# bpb DIR DATA [SPLIT]: bits per byte of DIR's best checkpoint.
bpb() {
  run eval --ckpt "$1:best" --data "$2" --split "${3:-test}" --json --progress off |
    /usr/bin/python3 -c 'import json,sys; print("%.6f" % json.load(sys.stdin)["bpb"])'
}

# student KIND METHOD SEED: one student (scratch, uld, exact, hybrid, kd), trained and recorded once.
student() {
  local kind=$1 method=$2 seed=$3 tag="$1-$2-$3" d=$R/s/$1-$2-$3 extra=() t0 test valid steps ms
  grep -q ",$tag\$" "$CSV" && return 0
  case $method in
    scratch) ;;
    kd) extra=(--teacher-model "$T:best" --temperature 2 --alpha 0.5) ;;
    *) extra=(--teacher-model "$T:best" --temperature 2 --alpha 0.5 --cross-tokenizer "$method") ;;
  esac
  t0=$(date +%s)
  run train --data "${DATA[$kind]}" --student "gpt:vocab=${VOCAB[$kind]},ctx=128,layers=2,dim=80,heads=2" \
    --epochs "$EPOCHS" --eval-every 71 --log-every 71 --seed "$seed" "${OPT[@]}" "${extra[@]}" --force --out "$d" \
    > "$d.log" 2>&1 || { echo "failed: $tag (see $d.log)" >&2; return 1; }
  local secs=$(( $(date +%s) - t0 ))
  test=$(bpb "$d" "${DATA[$kind]}") && valid=$(bpb "$d" "${DATA[$kind]}" valid) || return 1
  steps=$(sed -n 's/^final: steps=\([0-9]*\).*/\1/p' "$d.log")
  # step_ms: the loss phase and the whole step (the sum of the phases), rank 0
  ms=$(sed -n 's/^step_ms: //p' "$d.log" | tr ' ' '\n' |
    awk -F= '{s += $2} $1 == "loss" {l = $2} END {printf "%.2f,%.2f", l, s}')
  echo "$kind,$method,$seed,$test,$valid,$steps,$secs,$ms,$tag" >> "$CSV"
  echo "$tag: test bpb $test ($secs s)"
}

for seed in $SEEDS; do
  for kind in bytes bpe1024; do
    for method in scratch uld exact hybrid; do student $kind $method "$seed" || exit 1; done
  done
  for method in scratch kd; do student bpe4096 $method "$seed" || exit 1; done
done
echo "all runs: $(( $(date +%s) - start )) s"
[ -n "${KD_MAX_STEPS:-}" ] && exit 0
/usr/bin/python3 "$KD_ROOT/bench/summarise_xtok.py" "$CSV" "$R" > "$KD_ROOT/docs/results-xtok-tables.md" || exit 1
echo "tables: docs/results-xtok-tables.md"
