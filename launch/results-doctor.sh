#!/bin/bash
# launch/results-doctor.sh: kd doctor on the settings of docs/results.md, against what those runs measured.
# Seed 1's teachers are trained as launch/results.sh, results-text.sh and results-sparse.sh train them, in the
# same folders (checkpoints/results*/: a teacher either script made is reused, and theirs reuse these), then
# kd doctor runs with each setting's own student options and its verdict, T and alpha are set beside the
# measured outcome: did distillation beat training from scratch, and which T and alpha were best (within the
# seed-to-seed spread of docs/results.md); then on the Fashion-MNIST row and width settings the thresholds were
# not set on, and against a T x alpha sweep. Writes checkpoints/results-doctor/summary.md, summary-heldout.md and
# sweep.md (copied into docs/results.md) and each report's JSON. About 40 minutes on 2 cores when no teacher exists yet.
set -u -o pipefail
source "$(dirname "$0")/common.sh"
kd_need_packages "${KD_BUILD_PKGS[@]}" "${KD_TEST_PKGS[@]}" dataset-fashion-mnist fortunes || exit 1
[ -x "$KD_BUILD/kd" ] || kd_build || exit 1
KD=$KD_BUILD/kd
run() { "$KD_ROOT/launch/local.sh" 2 "$@"; }
OUT=$KD_ROOT/checkpoints/results-doctor
mkdir -p "$OUT" || exit 1
start=$(date +%s)

# Fashion-MNIST (launch/results.sh): teacher 784-1200-1200-10, seed 1.
FR=$KD_ROOT/checkpoints/results
FM=/usr/share/datasets/fashion-mnist
FDATA=$FR/fashion-mnist.h5
mkdir -p "$FR" || exit 1
[ -e "$FDATA" ] || "$KD" import idx --images $FM/train-images-idx3-ubyte.gz --labels $FM/train-labels-idx1-ubyte.gz \
  --test-images $FM/t10k-images-idx3-ubyte.gz --test-labels $FM/t10k-labels-idx1-ubyte.gz --out "$FDATA" || exit 1
if [ ! -e "$FR/teacher1/final.h5" ]; then
  run train --data "$FDATA" --student 784-1200-1200-10 --dropout 0.3 --epochs 15 --lr 0.05 --weight-decay 5e-4 \
    --val-rows 5000 --seed 1 --force --progress off --out "$FR/teacher1" > "$FR/teacher1.log" || exit 1
fi
[ -e "$FR/teacher1.h5" ] || run logits --ckpt "$FR/teacher1:best" --data "$FDATA" --out "$FR/teacher1.h5" || exit 1

# Text, bytes (launch/results-text.sh): teacher gpt 4x192, seed 1, dense float16 logits.
TR=$KD_ROOT/checkpoints/results-text
TDATA=$TR/fortunes.h5 TTENTH=$TR/fortunes-tenth.h5
mkdir -p "$TR" || exit 1
kd_fortunes_data "$TDATA" "$TTENTH" > /dev/null || exit 1
TOPT=(--optimizer adamw --lr 2e-3 --warmup 50 --beta2 0.99 --weight-decay 0.1 --clip 1 --batch 32 --progress off
  --ckpt-epochs 0)
if [ ! -e "$TR/teacher1/final.h5" ]; then
  run train --data "$TDATA" --student gpt:vocab=256,ctx=128,layers=4,dim=192,heads=4 --epochs 3 --eval-every 284 \
    --log-every 142 --seed 1 "${TOPT[@]}" --force --out "$TR/teacher1" > "$TR/teacher1.log" || exit 1
fi
[ -e "$TR/teacher1-logits.h5" ] ||
  run logits --ckpt "$TR/teacher1:best" --data "$TDATA" --dtype f16 --out "$TR/teacher1-logits.h5" || exit 1
[ -e "$TR/teacher1-logits-tenth.h5" ] ||
  run logits --ckpt "$TR/teacher1:best" --data "$TTENTH" --dtype f16 --out "$TR/teacher1-logits-tenth.h5" || exit 1

# Text, BPE 4,096 (launch/results-sparse.sh): teacher gpt 4x192, seed 1; top-128 + 32 draws, 12 draws, top-32.
SR=$KD_ROOT/checkpoints/results-sparse
SDATA=$SR/fortunes-bpe.h5
mkdir -p "$SR" || exit 1
kd_fortunes_data "$SDATA" "$SR/fortunes-bpe-tenth.h5" bpe:4096 > "$SR/import.log" || { cat "$SR/import.log"; exit 1; }
S_ROWS=$(/usr/bin/python3 -c "import h5py,sys; print(h5py.File(sys.argv[1])['train/tokens'].shape[0])" "$SDATA")
if [ ! -e "$SR/teacher1/final.h5" ]; then
  run train --data "$SDATA" --student gpt:vocab=4096,ctx=128,layers=4,dim=192,heads=4 --epochs 3 \
    --eval-every $(((S_ROWS + 31) / 32)) --log-every 100 --seed 1 "${TOPT[@]}" --force --out "$SR/teacher1" \
    > "$SR/teacher1.log" || exit 1
fi
for S in 12 32; do
  f=$SR/sparse1-s$S.h5
  topk=()
  [ $S = 32 ] && topk=(--topk 128)
  [ -e "$f" ] || run logits --ckpt "$SR/teacher1:best" --data "$SDATA" --dtype f16 "${topk[@]}" --sample $S \
    --sample-temperature 2 --seed 1 --out "$f" > /dev/null || exit 1
done
if [ ! -e "$SR/sparse1-k32.h5" ]; then # the first 32 of the top-128 (as results-sparse.sh cuts them)
  /usr/bin/python3 - "$SR/sparse1-s32.h5" "$SR/sparse1-k32.h5" <<'PY' || exit 1
import os, sys, h5py
src, dst = sys.argv[1:3]
with h5py.File(src, "r") as a, h5py.File(dst + ".tmp", "w") as b:
    def copy(name, d):
        if isinstance(d, h5py.Dataset) and "/topk/" in name:
            v = d[()]
            b[name] = v[..., :32] if name.endswith(("topk/ids", "topk/logits")) else v
    a.visititems(copy)
    b.attrs.update(dict(a.attrs))
os.replace(dst + ".tmp", dst)
PY
fi
echo "teachers and files ready after $(($(date +%s) - start)) s"

# case NAME HELPED T-SPREAD ALPHA-SPREAD -- DOCTOR-ARGS: one kd doctor report and its line of the summary.
# HELPED: yes/no, what the results measured; the spreads: the T and alpha values within the best measured
# setting's seed-to-seed spread ("-" where none was swept or distillation never beat scratch).
echo "| setting | measured: KD vs scratch | doctor's verdict | flags (WARN) | T: doctor / best measured | alpha: doctor / best measured | agrees |" > "$OUT/summary.md"
echo "|---|---|---|---|---|---|---|" >> "$OUT/summary.md"
case_() {
  local name=$1 helped=$2 tset=$3 aset=$4
  shift 5
  local json="$OUT/$name.json"
  if [ ! -s "$json" ]; then
    run doctor "$@" --json > "$json.tmp" 2> "$OUT/$name.err" || { echo "kd doctor failed: $name" >&2; cat "$OUT/$name.err" >&2; return 1; }
    mv "$json.tmp" "$json"
  fi
  /usr/bin/python3 - "$json" "$name" "$helped" "$tset" "$aset" >> "$OUT/summary.md" <<'PY'
import json, sys
path, name, helped, tset, aset = sys.argv[1:]
r = json.load(open(path))
v = r["verdict"]
warn = [f["key"] for f in r["findings"] if f["level"] == "WARN"]
use = v["use_kd"]
# a setting where KD did not help must be flagged (a WARN finding, or the verdict not to distil); one where it
# helped must not be
ok = (use and not warn) if helped.startswith("yes") else (not use or bool(warn))
def within(x, s):
    return s == "-" or (x is not None and any(abs(x - float(t)) < 1e-9 for t in s.split(",")))
t_ok, a_ok = (within(v["temperature"], tset), within(v["alpha"], aset)) if use else (True, True)
ok = ok and t_ok and a_ok
fmt = lambda x: "-" if x is None else "%g" % x
print("| %s | %s | %s | %s | %s / %s | %s / %s | %s |" % (name, helped, "distil" if use else "do not distil",
      ", ".join(warn) or "none", fmt(v["temperature"]) if use else "-", tset, fmt(v["alpha"]) if use else "-", aset,
      "yes" if ok else "**no**"))
PY
  return 0
}
F=(--data "$FDATA" --teacher "$FR/teacher1.h5" --val-rows 5000 --student 784-32-10 --lr 0.05 --batch 128 --seed 1)
case_ fmnist-all "no (-0.81 points)" - - -- "${F[@]}" || exit 1
case_ fmnist-5% "yes (+3.40)" 2,4,8,20 0,0.1 -- "${F[@]}" --train-rows 2750 || exit 1
case_ fmnist-5%-labels-95%-unlabelled "yes (+5.04)" - - -- "${F[@]}" --labelled-fraction 0.05 || exit 1
G=(--student gpt:vocab=256,ctx=128,layers=2,dim=80,heads=2 --seed 1 "${TOPT[@]}")
case_ text-all "yes (+0.101 bpb)" 1,2 0.25 -- --data "$TDATA" --teacher "$TR/teacher1-logits.h5" "${G[@]}" || exit 1
case_ text-tenth "yes (+0.215 bpb)" 1,2 0,0.25 -- --data "$TTENTH" --teacher "$TR/teacher1-logits-tenth.h5" "${G[@]}" ||
  exit 1
B=(--data "$SDATA" --student gpt:vocab=4096,ctx=128,layers=2,dim=80,heads=2 --seed 1 --temperature 2 "${TOPT[@]}"
  --baseline-steps 200 --rows 1000)
case_ bpe-dense-online "yes (+0.051 bpb)" - - -- "${B[@]}" --teacher-model "$SR/teacher1:best" || exit 1
case_ bpe-sampled-12 "yes (+0.036 bpb)" 2 - -- "${B[@]}" --teacher "$SR/sparse1-s12.h5" --sparse-kd sampled || exit 1
case_ bpe-top-32-renormalised "no (-0.462 bpb)" - - -- "${B[@]}" --teacher "$SR/sparse1-k32.h5" --sparse-kd topk || exit 1
case_ bpe-top-128-renormalised "no (-0.217 bpb)" - - -- "${B[@]}" --teacher "$SR/sparse1-s32.h5" --sparse-kd topk ||
  exit 1
case_ "bpe-top-32-+-tail-at-T=2" "no (-0.379 bpb)" - - -- "${B[@]}" --teacher "$SR/sparse1-k32.h5" --sparse-kd tail ||
  exit 1
cat "$OUT/summary.md"

# Settings the thresholds were not set on: the Fashion-MNIST rows and capacity sweeps of docs/results.md
# (KD gain over scratch, 3 seeds), judged the same way.
main_summary=$OUT/summary.md
cp "$main_summary" "$OUT/summary-main.md"
echo "| setting | measured: KD vs scratch | doctor's verdict | flags (WARN) | T: doctor / best measured | alpha: doctor / best measured | agrees |" > "$OUT/summary.md"
echo "|---|---|---|---|---|---|---|" >> "$OUT/summary.md"
case_ fmnist-550-rows "yes (+4.29)" - - -- "${F[@]}" --train-rows 550 || exit 1
case_ fmnist-11000-rows "yes (+1.07)" - - -- "${F[@]}" --train-rows 11000 || exit 1
for w in 8:-4.44:2.26 16:-0.87:3.98 64:-0.71:3.63 128:-0.53:4.02 256:-0.63:3.83; do
  IFS=: read -r width all five <<<"$w"
  W=("${F[@]}" --student 784-$width-10)
  case_ "fmnist-all-w$width" "no ($all)" - - -- "${W[@]}" || exit 1
  case_ "fmnist-5%-w$width" "yes (+$five)" - - -- "${W[@]}" --train-rows 2750 || exit 1
done
mv "$OUT/summary.md" "$OUT/summary-heldout.md"
mv "$OUT/summary-main.md" "$OUT/summary.md"
cat "$OUT/summary-heldout.md"

# The doctor's T and alpha against a sweep of them on the 5% setting, in one job (kd sweep, 2 groups of 1 rank),
# the students as launch/results.sh trains them (seed 1, 300 epochs of 2,750 rows).
SW=$OUT/sweep-fmnist-5pct
if [ ! -s "$SW/summary.json" ]; then
  t0=$(date +%s)
  run sweep --grid "temperature=1,2,4,8 alpha=0,0.1,0.5,0.9" --group-ranks 1 --out "$SW" --force --data "$FDATA" \
    --teacher "$FR/teacher1.h5" --val-rows 5000 --student 784-32-10 --lr 0.05 --batch 128 --seed 1 --train-rows 2750 \
    --epochs 300 --ckpt-epochs 0 --progress off --threads 1 > "$SW.log" 2>&1 || { tail -20 "$SW.log"; exit 1; }
  echo "sweep of 16 settings: $(($(date +%s) - t0)) s" >> "$SW.log"
fi
/usr/bin/python3 - "$SW/summary.json" "$OUT/fmnist-5%.json" <<'PY' | tee "$OUT/sweep.md"
import json, sys
s, d = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))["verdict"]
rows = s["settings"]
print("| setting (T, alpha) | valid accuracy | test accuracy |")
print("|---|---|---|")
for r in rows:
    print("| %s | %.4f | %.4f |" % (r["setting"], r["valid_accuracy"], r["test_accuracy"]))
best = rows[0]
mine = next(r for r in rows if r["setting"] == "temperature=%g,alpha=%g" % (d["temperature"], d["alpha"]))
print("\nkd doctor's setting T = %g, alpha = %g: valid %.4f (rank %d of %d), test %.4f; the sweep's best %s: valid %.4f, test %.4f"
      % (d["temperature"], d["alpha"], mine["valid_accuracy"], mine["rank"], len(rows), mine["test_accuracy"],
         best["setting"], best["valid_accuracy"], best["test_accuracy"]))
PY
tail -1 "$SW.log"
count() { echo "$(grep -c '| yes |$' "$1") of $(($(grep -c '^| ' "$1") - 1))"; } # less the header
echo "kd doctor agrees with the measured outcome on $(count "$OUT/summary.md") settings the thresholds were set on," \
  "$(count "$OUT/summary-heldout.md") others; $(($(date +%s) - start)) s"
