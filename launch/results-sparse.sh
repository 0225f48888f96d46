#!/bin/bash
# launch/results-sparse.sh: sparse teacher logits at a large vocabulary (docs/results.md, "Large
# vocabularies: sparse teacher logits"), on 2 ranks. The fortune files of Debian's fortunes package with a
# byte-level BPE of 4,096 tokens learnt on the training split (kd import text --tokenizer bpe:4096), rows
# of 128 tokens; a teacher gpt 4x192, 4 heads, per seed 1-3 (trained here when missing), and a student
# gpt 2x80, 2 heads, trained on
#   scratch      no teacher
#   dense        dense KD through the online teacher (--teacher-model; stored dense logits at V = 4,096
#                would take 8 KB per token)
#   topk1 .. topk128   the teacher's top-K logits, K in 1, 8, 32, 128, renormalised (--sparse-kd topk)
#   tail32       top-32 with the tail bin (--sparse-kd tail)
#   sampled4 .. sampled32   S in 4, 12, 32 draws from the teacher's softmax at T (--sparse-kd sampled)
# all at T = 2, alpha = 0.5, on all training rows (1 epoch) and on a tenth of them (every 10th row,
# 6 epochs); 3 seeds; 5,070 s on 2 cores (2026-12-02). Figures per run: held-out bits per byte, the expected calibration error of the
# student's next-token distribution (kd eval, 15 bins), the teacher file's bytes per token, the step time.
# Runs are cached under checkpoints/results-sparse/ (a rerun does what is missing; --fresh redoes all);
# figures in checkpoints/results-sparse/results.csv, summarised by bench/summarise_sparse.py into
# docs/results-sparse-tables.md. Set KD_SEEDS="1" to run fewer seeds; KD_MAX_STEPS=N (a smoke test of the
# pipeline: every run stops after N steps, under checkpoints/results-sparse-smoke/, no tables written).
set -u -o pipefail
source "$(dirname "$0")/common.sh"
kd_need_packages "${KD_BUILD_PKGS[@]}" "${KD_TEST_PKGS[@]}" fortunes || exit 1
[ -x "$KD_BUILD/kd" ] || kd_build || exit 1
R=$KD_ROOT/checkpoints/results-sparse
SMOKE=()
[ -n "${KD_MAX_STEPS:-}" ] && { R=$R-smoke SMOKE=(--max-steps "$KD_MAX_STEPS" --eval-every 1); }
[ "${1:-}" = --fresh ] && rm -rf "$R"
mkdir -p "$R/s" || exit 1
KD=$KD_BUILD/kd
run() { "$KD_ROOT/launch/local.sh" 2 "$@"; }
start=$(date +%s)
CSV=$R/results.csv
[ -e "$CSV" ] || echo "size,config,seed,test_bpb,valid_bpb,test_ece,file_bytes,steps,step_ms,loss_ms,tokens_per_s,tag" > "$CSV"

V=4096 CTX=128
DATA=$R/fortunes-bpe.h5 TENTH=$R/fortunes-bpe-tenth.h5
kd_fortunes_data "$DATA" "$TENTH" "bpe:$V" > "$R/import.log" || { cat "$R/import.log"; exit 1; }
TEACHER=gpt:vocab=$V,ctx=$CTX,layers=4,dim=192,heads=4
STUDENT=gpt:vocab=$V,ctx=$CTX,layers=2,dim=80,heads=2
OPT=(--optimizer adamw --lr 2e-3 --warmup 50 --beta2 0.99 --weight-decay 0.1 --clip 1 --batch 32
  --progress off --ckpt-epochs 0)
TRAIN_ROWS=$(/usr/bin/python3 -c "import h5py,sys; print(h5py.File(sys.argv[1])['train/tokens'].shape[0])" "$DATA")
STEPS_EPOCH=$(( (TRAIN_ROWS + 31) / 32 ))

eval_json() { "$KD" eval --ckpt "$1:best" --data "$DATA" ${2:+--split $2} --json; }
field() { sed -n "s/.*\"$1\": \([0-9.]*\).*/\1/p" <<<"$2" | grep . || { echo "no $1 from kd eval" >&2; return 1; }; }
phase() { sed -n "s/^step_ms:.* $1=\([0-9.]*\).*/\1/p" "$2"; }
step_total() { sed -n 's/^step_ms: //p' "$1" | tr ' ' '\n' | awk -F= '{s += $2} END {printf "%.1f", s}'; }
# file_bytes FILE GROUP: bytes per token of /train/GROUP's datasets
file_bytes() {
  /usr/bin/python3 - "$1" "$2" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    g = f["train/" + sys.argv[2]]
    n = g["ids"].shape[0] * g["ids"].shape[1]
    print("%.0f" % (sum(d.dtype.itemsize * d.size for d in g.values()) / n))
PY
}
record() { # SIZE CONFIG SEED DIR BYTES
  local tag steps test valid
  tag=$(basename "$4")
  grep -q ",$tag\$" "$CSV" && return 0
  steps=$(sed -n 's/^final: steps=\([0-9]*\).*/\1/p' "$4.log")
  test=$(eval_json "$4") && valid=$(eval_json "$4" valid) || return 1
  echo "$1,$2,$3,$(field bpb "$test"),$(field bpb "$valid"),$(field ece "$test"),$5,$steps,$(step_total "$4.log"),$(phase loss "$4.log"),$(sed -n 's/^final:.* tokens_per_s=\([0-9]*\).*/\1/p' "$4.log"),$tag" >> "$CSV"
}

# slice SRC DST K STEP: a teacher file's top-k datasets cut to their first K slots (K 0: every dataset as it
# is), /train's rows every STEP-th (1: all)
slice() {
  /usr/bin/python3 - "$@" <<'PY'
import os, sys, h5py
src, dst, K, step = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
with h5py.File(src, "r") as a, h5py.File(dst + ".tmp", "w") as b:
    def copy(name, d):
        if not isinstance(d, h5py.Dataset) or (K and "/topk/" not in name):
            return
        v = d[()]
        if name.startswith("train/"):
            v = v[::step]
        if K and name.endswith(("topk/ids", "topk/logits")):
            v = v[..., :K]
        b[name] = v
        b[name].attrs.update(dict(d.attrs))
    a.visititems(copy)
    for g in ("train/sampled", "valid/sampled", "test/sampled"):
        if g in a and g in b:
            b[g].attrs.update(dict(a[g].attrs))
    b.attrs.update(dict(a.attrs))
    if step > 1:
        b.attrs["rows_train"] = (a.attrs.get("rows_train", 0) + step - 1) // step
        b.attrs.pop("data_fingerprint", None)  # the rows differ from the file kd logits fingerprinted
os.replace(dst + ".tmp", dst)
PY
}

SEEDS=${KD_SEEDS:-1 2 3}
# The teacher of each seed and its sparse files: top-128 (with lse) once, the smaller K sliced from it (ids
# are largest first, so the first K slots are the top-K); each S drawn on its own (draws at T = 2).
for seed in $SEEDS; do
  T=$R/teacher$seed
  if [ ! -e "$T/final.h5" ]; then
    run train --data "$DATA" --student "$TEACHER" --epochs 3 --eval-every "$STEPS_EPOCH" --log-every 100 \
      --seed $seed "${OPT[@]}" "${SMOKE[@]}" --force --out "$T" > "$T.log" || exit 1
  fi
  record full teacher $seed "$T" $((2 * V)) || exit 1
  for S in 4 12 32; do
    f=$R/sparse$seed-s$S.h5
    [ -e "$f" ] && continue
    topk=(); [ $S = 32 ] && topk=(--topk 128)
    run logits --ckpt "$T:best" --data "$DATA" --dtype f16 "${topk[@]}" --sample $S --sample-temperature 2 \
      --seed $seed --out "$f" > /dev/null || exit 1
  done
  # the files of the tenth: their /train rows every 10th, as the tenth's data
  for f in "$R"/sparse$seed-s*.h5; do
    case $f in *-tenth.h5) continue ;; esac
    [ -e "${f%.h5}-tenth.h5" ] || slice "$f" "${f%.h5}-tenth.h5" 0 10 || exit 1
  done
  for K in 1 8 32; do
    for part in "" -tenth; do
      [ -e "$R/sparse$seed-k$K$part.h5" ] || slice "$R/sparse$seed-s32$part.h5" "$R/sparse$seed-k$K$part.h5" $K 1 ||
        exit 1
    done
  done
done

# student SIZE CONFIG SEED: one run, cached by its tag.
student() {
  local size=$1 config=$2 seed=$3 data=$DATA epochs=1 every=$STEPS_EPOCH
  local tag="$size-$config-$seed" extra=() bytes=0 part=""
  [ "$size" = tenth ] && { data=$TENTH epochs=6 every=$(( (STEPS_EPOCH + 9) / 10 )) part=-tenth; }
  local kd=(--temperature 2 --alpha 0.5)
  case $config in
    scratch) ;;
    dense) extra=("${kd[@]}" --teacher-model "$R/teacher$seed:best") bytes=$((2 * V)) ;;
    topk128) extra=("${kd[@]}" --teacher "$R/sparse$seed-s32$part.h5" --sparse-kd topk) ;;
    topk*) extra=("${kd[@]}" --teacher "$R/sparse$seed-k${config#topk}$part.h5" --sparse-kd topk) ;;
    tail32) extra=("${kd[@]}" --teacher "$R/sparse$seed-k32$part.h5" --sparse-kd tail) ;;
    sampled*) extra=("${kd[@]}" --teacher "$R/sparse$seed-s${config#sampled}$part.h5" --sparse-kd sampled) ;;
  esac
  case $config in
    topk*|tail*) bytes=$(file_bytes "${extra[5]}" topk) || return 1 ;;
    sampled*) bytes=$(file_bytes "${extra[5]}" sampled) || return 1 ;;
  esac
  case $config in topk*) bytes=$((bytes - 4)) ;; esac # topk does not read the lse its file carries
  if [ ! -e "$R/s/$tag/final.h5" ]; then
    run train --data "$data" --student "$STUDENT" --epochs $epochs --eval-every $every --log-every $every \
      --seed "$seed" "${OPT[@]}" "${extra[@]}" "${SMOKE[@]}" --force --out "$R/s/$tag" > "$R/s/$tag.log" 2>&1 ||
      { echo "failed: $tag (see $R/s/$tag.log)" >&2; return 1; }
  fi
  record "$size" "$config" "$seed" "$R/s/$tag" "$bytes"
}

for seed in $SEEDS; do
  for size in tenth full; do
    for config in scratch dense topk1 topk8 topk32 topk128 tail32 sampled4 sampled12 sampled32; do
      student $size $config $seed || exit 1
    done
  done
  echo "seed $seed done: $(( $(date +%s) - start )) s"
done
[ ${#SMOKE[@]} -gt 0 ] && { /usr/bin/python3 "$KD_ROOT/bench/summarise_sparse.py" "$CSV" "$R/tables.md" && cat "$R/tables.md"; exit; }
/usr/bin/python3 "$KD_ROOT/bench/summarise_sparse.py" "$CSV" "$KD_ROOT/docs/results-sparse-tables.md" "$R" || exit 1
echo "results: $CSV, docs/results-sparse-tables.md   wall time: $(( $(date +%s) - start )) s"
