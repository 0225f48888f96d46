#!/bin/bash
# launch/results-text.sh: the language-model experiments behind docs/results.md ("Distilling a GPT on
# text"), on 2 ranks. Data: the fortune files of Debian's fortunes package (as ./launch/demo.sh text),
# bytes as tokens, rows of 128. Runs are cached under checkpoints/results-text/ (a rerun only does what
# is missing; --fresh redoes all), their figures collected in checkpoints/results-text/results.csv,
# summarised by bench/summarise_text.py into docs/results-text-tables.md and plotted with gnuplot into
# docs/img/text-*.svg. 6,095 s (1 h 42 min) on 2 cores, measured 2026-12-02.
#
#   teachers   gpt layers=4, dim=192, heads=4 (1.85 M parameters), 3 epochs, seeds 1, 2, 3
#   students   gpt layers=2, dim=80, heads=2 (187 k, a tenth), from scratch and distilled (T 2, alpha 0.5)
#              from the teacher of the same seed, on all training rows (4 epochs) and on a tenth of
#              them (every 10th row, 40 epochs: the same steps)
#   sweeps     temperature T in {1, 2, 4, 8} (alpha 0.5) and alpha in {0, 0.25, 0.5, 0.75} (T 2), seed 1,
#              both data sizes
# Every figure is the bits per byte of the checkpoint with the best validation loss (DIR:best).
# A part of it (what launch/results-onpolicy-text.sh reuses): KD_TEXT_SEEDS="1" KD_TEXT_SIZES="full"
# KD_TEXT_MAIN_ONLY=1 trains those teachers and main students only, with no tables. KD_MAX_STEPS=N is a smoke
# test (every run stops after N steps, under checkpoints/results-text-smoke/, no tables).
set -u -o pipefail
source "$(dirname "$0")/common.sh"
kd_need_packages "${KD_BUILD_PKGS[@]}" "${KD_TEST_PKGS[@]}" fortunes gnuplot-nox || exit 1
[ -x "$KD_BUILD/kd" ] || kd_build || exit 1
R=$KD_ROOT/checkpoints/results-text
SEEDS=${KD_TEXT_SEEDS:-1 2 3} SIZES=${KD_TEXT_SIZES:-full tenth} SMOKE=()
# the sweeps and tables need seed 1 and both sizes
[[ " $SEEDS " == *" 1 "* && " $SIZES " == *" full "* && " $SIZES " == *" tenth "* ]] || KD_TEXT_MAIN_ONLY=1
[ -n "${KD_MAX_STEPS:-}" ] && R=$R-smoke SMOKE=(--max-steps "$KD_MAX_STEPS" --eval-every "$KD_MAX_STEPS") KD_TEXT_MAIN_ONLY=1
[ "${1:-}" = --fresh ] && rm -rf "$R"
mkdir -p "$R/s" "$KD_ROOT/docs/img" || exit 1
KD=$KD_BUILD/kd
run() { "$KD_ROOT/launch/local.sh" 2 "$@"; }
start=$(date +%s)
CSV=$R/results.csv
[ -e "$CSV" ] || echo "group,param,seed,mode,test_bpb,valid_bpb,steps,tag" > "$CSV"

DATA=$R/fortunes.h5 TENTH=$R/fortunes-tenth.h5
kd_fortunes_data "$DATA" "$TENTH" || exit 1

V=256 CTX=128
TEACHER=gpt:vocab=$V,ctx=$CTX,layers=4,dim=192,heads=4
STUDENT=gpt:vocab=$V,ctx=$CTX,layers=2,dim=80,heads=2
OPT=(--optimizer adamw --lr 2e-3 --warmup 50 --beta2 0.99 --weight-decay 0.1 --clip 1 --batch 32
  --progress off --ckpt-epochs 0 "${SMOKE[@]}")

# bpb DIR [SPLIT]: bits per byte of DIR's best checkpoint on the test (or the valid) split.
bpb() {
  local json
  json=$("$KD" eval --ckpt "$1:best" --data "$DATA" ${2:+--split $2} --json) || return 1
  sed -n 's/.*"bpb": \([0-9.]*\).*/\1/p' <<<"$json" | grep . || { echo "no bpb from kd eval of $1" >&2; return 1; }
}
# recorded TAG: whether the CSV has TAG's line.
recorded() { grep -q ",$1\$" "$CSV"; }
# record GROUP PARAM SEED MODE DIR: one CSV line for the finished run in DIR (log DIR.log), once.
record() {
  local steps test valid tag
  tag=$(basename "$5")
  recorded "$tag" && return 0
  steps=$(sed -n 's/^final: steps=\([0-9]*\).*/\1/p' "$5.log")
  test=$(bpb "$5") && valid=$(bpb "$5" valid) || return 1
  echo "$1,$2,$3,$4,$test,$valid,$steps,$tag" >> "$CSV"
}

for seed in $SEEDS; do
  T=$R/teacher$seed
  if [ ! -e "$T/final.h5" ]; then
    run train --data "$DATA" --student "$TEACHER" --epochs 3 --eval-every 284 --log-every 142 --seed $seed \
      "${OPT[@]}" --force --out "$T" > "$T.log" || exit 1
  fi
  record teacher 4x192 $seed teacher "$T" || exit 1
  [ -e "$T-logits.h5" ] || run logits --ckpt "$T:best" --data "$DATA" --dtype f16 --out "$T-logits.h5" || exit 1
  [[ " $SIZES " != *" tenth "* ]] || [ -e "$T-logits-tenth.h5" ] ||
    run logits --ckpt "$T:best" --data "$TENTH" --dtype f16 --out "$T-logits-tenth.h5" || exit 1
done

# student GROUP PARAM SEED MODE SIZE ARGS...: one student run (MODE scratch or kd, SIZE full or tenth),
# cached by its tag; the teacher of the same seed.
student() {
  local group=$1 param=$2 seed=$3 mode=$4 size=$5
  shift 5
  local tag="$group-$size-$param-$seed-$mode" data=$DATA epochs=4 every=142 extra=()
  [ -e "$R/s/$tag/final.h5" ] && { record "$group" "$param" "$seed" "$mode" "$R/s/$tag"; return; }
  local logits=$R/teacher$seed-logits.h5
  if [ "$size" = tenth ]; then data=$TENTH epochs=40 every=142 logits=$R/teacher$seed-logits-tenth.h5; fi
  [ "$mode" = kd ] && extra=(--teacher "$logits")
  run train --data "$data" --student "$STUDENT" --epochs $epochs --eval-every $every --log-every $every \
    --seed "$seed" "${OPT[@]}" "${extra[@]}" "$@" --force --out "$R/s/$tag" > "$R/s/$tag.log" 2>&1 ||
    { echo "failed: $tag (see $R/s/$tag.log)" >&2; return 1; }
  record "$group" "$param" "$seed" "$mode" "$R/s/$tag"
}

for seed in $SEEDS; do
  for size in $SIZES; do
    student main 2x80 $seed scratch $size || exit 1
    student main 2x80 $seed kd $size --temperature 2 --alpha 0.5 || exit 1
  done
done
[ -n "${KD_TEXT_MAIN_ONLY:-}" ] && { echo "teachers and main students done: $(( $(date +%s) - start )) s"; exit 0; }
for size in full tenth; do
  for t in 1 4 8; do student temp "$t" 1 kd $size --temperature "$t" --alpha 0.5 || exit 1; done
  for a in 0 0.25 0.75; do student alpha "$a" 1 kd $size --temperature 2 --alpha "$a" || exit 1; done
done

/usr/bin/python3 "$KD_ROOT/bench/summarise_text.py" "$CSV" "$R" "$KD_ROOT/docs/results-text-tables.md" "$R/plot" ||
  exit 1
cd "$R/plot" || exit 1
gnuplot <<'GP' || exit 1
set terminal svg size 640,400 dynamic font "sans,11"
set grid
set key top right
set output "text-curves.svg"
set title "fortunes, student gpt 2x80 (187 k parameters), seed 1: validation bits per byte"
set xlabel "step"; set ylabel "validation bits per byte"
plot "curve-full-scratch.dat" with lines lw 2 title "all rows, from scratch", \
     "curve-full-kd.dat" with lines lw 2 title "all rows, distilled", \
     "curve-tenth-scratch.dat" with lines lw 2 dt 2 title "a tenth, from scratch", \
     "curve-tenth-kd.dat" with lines lw 2 dt 2 title "a tenth, distilled", \
     "curve-teacher.dat" with lines lw 1 lc rgb "black" title "teacher gpt 4x192"
set key top left
set output "text-temperature.svg"
set title "Temperature sweep (alpha = 0.5), seed 1: test bits per byte"
set xlabel "temperature T"; set ylabel "test bits per byte"; set logscale x 2; set xtics (1,2,4,8)
plot "temp-full.dat" using 1:2 with linespoints lw 2 title "all rows", \
     "temp-tenth.dat" using 1:2 with linespoints lw 2 title "a tenth of the rows"
unset logscale x; set xtics autofreq
set output "text-alpha.svg"
set title "Alpha sweep (T = 2), seed 1: test bits per byte (alpha 1 = from scratch)"
set xlabel "alpha (weight of the hard-label loss)"
plot "alpha-full.dat" using 1:2 with linespoints lw 2 title "all rows", \
     "alpha-tenth.dat" using 1:2 with linespoints lw 2 title "a tenth of the rows"
GP
cp ./text-*.svg "$KD_ROOT/docs/img/" || exit 1
echo "results: $CSV, docs/results-text-tables.md, docs/img/text-*.svg   wall time: $(( $(date +%s) - start )) s"
