#!/bin/bash
# launch/results.sh: every Fashion-MNIST experiment behind docs/results.md, on 2 ranks.
# Runs are cached under checkpoints/results/ (a rerun only does what is missing; --fresh redoes all),
# their figures collected in checkpoints/results/results.csv, summarised by bench/summarise.py into
# docs/results-tables.md and plotted with gnuplot into docs/img/*.svg. About 20 minutes on 2 cores.
set -u -o pipefail
source "$(dirname "$0")/common.sh"
kd_need_packages "${KD_BUILD_PKGS[@]}" "${KD_TEST_PKGS[@]}" dataset-fashion-mnist gnuplot-nox || exit 1
[ -x "$KD_BUILD/kd" ] || kd_build || exit 1
R=$KD_ROOT/checkpoints/results
[ "${1:-}" = --fresh ] && rm -rf "$R"
mkdir -p "$R" "$KD_ROOT/docs/img" || exit 1
KD=$KD_BUILD/kd
run() { "$KD_ROOT/launch/local.sh" 2 "$@"; }
FM=/usr/share/datasets/fashion-mnist
DATA=$R/fashion-mnist.h5
CSV=$R/results.csv
[ -e "$CSV" ] || echo "group,param,seed,mode,test_acc,test_agreement,steps,tag" > "$CSV"

if [ ! -e "$DATA" ]; then
  "$KD" import idx --images $FM/train-images-idx3-ubyte.gz --labels $FM/train-labels-idx1-ubyte.gz \
    --test-images $FM/t10k-images-idx3-ubyte.gz --test-labels $FM/t10k-labels-idx1-ubyte.gz --out "$DATA" || exit 1
fi

# Teachers: 784-1200-1200-10 with dropout, one per seed; their logits for every row.
TEACHER=(--student 784-1200-1200-10 --dropout 0.3 --epochs 15 --lr 0.05 --weight-decay 5e-4)
for seed in 1 2 3; do
  if [ ! -e "$R/teacher$seed/final.h5" ]; then
    run train --data "$DATA" "${TEACHER[@]}" --val-rows 5000 --seed $seed --force --progress off \
      --out "$R/teacher$seed" > "$R/teacher$seed.log" || exit 1
    acc=$(sed -n 's/^final: .*test_acc=\([0-9.]*\).*/\1/p' "$R/teacher$seed.log")
    echo "teacher,784-1200-1200-10,$seed,teacher,$acc,,,teacher$seed" >> "$CSV"
  fi
  [ -e "$R/teacher$seed.h5" ] || run logits --ckpt "$R/teacher$seed:best" --data "$DATA" --out "$R/teacher$seed.h5" || exit 1
done

# student GROUP PARAM SEED MODE ARGS...: one student run (MODE scratch or kd), cached by its tag.
student() {
  local group=$1 param=$2 seed=$3 mode=$4
  shift 4
  local tag="$group-$param-$seed-$mode" extra=()
  [ -e "$R/s/$tag/final.h5" ] && return 0
  [ "$mode" = kd ] && extra=(--teacher "$R/teacher$seed.h5")
  run train --data "$DATA" --val-rows 5000 --lr 0.05 --batch 128 --seed "$seed" --ckpt-epochs 0 --force \
    --progress off "${extra[@]}" "$@" --out "$R/s/$tag" > "$R/s/$tag.log" 2>&1 || { echo "failed: $tag" >&2; return 1; }
  local line acc agr steps
  line=$(grep '^final:' "$R/s/$tag.log")
  acc=$(sed -n 's/.*test_acc=\([0-9.]*\).*/\1/p' <<<"$line")
  agr=$(sed -n 's/.*test_agreement=\([0-9.]*\).*/\1/p' <<<"$line")
  steps=$(sed -n 's/.*steps=\([0-9]*\).*/\1/p' <<<"$line")
  echo "$group,$param,$seed,$mode,$acc,$agr,$steps,$tag" >> "$CSV"
}
mkdir -p "$R/s"
# Epochs per training-set size, so every run takes about the same number of steps (matched compute).
epochs_for() { case $1 in 550) echo 1500 ;; 2750) echo 300 ;; 11000) echo 75 ;; *) echo 15 ;; esac; }

for seed in 1 2 3; do
  # Main comparison, both regimes: all 55,000 training rows, and 5% of them (2,750).
  for mode in scratch kd; do
    student main full $seed $mode --student 784-32-10 --epochs 15 --log-every 43 --eval-every 215
    student main rows2750 $seed $mode --student 784-32-10 --epochs 300 --train-rows 2750 --log-every 105 \
      --eval-every 315
  done
  # Temperature and alpha sweeps (KD only), on 5% of the rows and on all of them.
  for T in 1 2 4 8 20; do
    student temp-rows2750 "$T" $seed kd --student 784-32-10 --epochs 300 --train-rows 2750 --temperature $T
    student temp-full "$T" $seed kd --student 784-32-10 --epochs 15 --temperature $T
  done
  for a in 0 0.1 0.5 0.9; do
    student alpha-rows2750 "$a" $seed kd --student 784-32-10 --epochs 300 --train-rows 2750 --alpha $a
    student alpha-full "$a" $seed kd --student 784-32-10 --epochs 15 --alpha $a
  done
  # Capacity: one hidden layer of several widths, all rows and 5% of them.
  for w in 8 16 32 64 128 256; do
    for mode in scratch kd; do
      student width-full "$w" $seed $mode --student 784-$w-10 --epochs 15
      student width-rows2750 "$w" $seed $mode --student 784-$w-10 --epochs 300 --train-rows 2750
    done
  done
  # Labelled data: 1%, 5%, 20%, 100% of the training rows, same number of steps.
  for n in 550 2750 11000 55000; do
    for mode in scratch kd; do
      student rows "$n" $seed $mode --student 784-32-10 --epochs "$(epochs_for $n)" --train-rows $n
    done
  done
  # Semi-supervised: labels on 5% of the rows, teacher logits on all of them.
  student semi 0.05 $seed kd --student 784-32-10 --epochs 15 --labelled-fraction 0.05
  # Born-again generations of the demo student on 2,750 rows (generation 0 from labels).
  if [ ! -e "$R/s/gens-$seed/gen2/final.h5" ]; then
    run train --data "$DATA" --val-rows 5000 --lr 0.05 --batch 128 --seed "$seed" --ckpt-epochs 0 --force \
      --progress off --student 784-32-10 --epochs 300 --train-rows 2750 --generations 3 \
      --out "$R/s/gens-$seed" > "$R/s/gens-$seed.log" 2>&1 || { echo "failed: gens-$seed" >&2; exit 1; }
    sed -n 's/^  \([0-9]\) *\(0\.[0-9]*\)$/\1 \2/p' "$R/s/gens-$seed.log" | while read -r g a; do
      echo "gen,$g,$seed,kd,$a,,,gens-$seed" >> "$CSV"
    done
    a=$(sed -n 's/^  ensemble *\(0\.[0-9]*\).*/\1/p' "$R/s/gens-$seed.log")
    echo "gen,ensemble,$seed,kd,$a,,,gens-$seed" >> "$CSV"
  fi
  # FitNets hints: a thin deep student, from scratch, with KD, and with hints (teacher hidden layer 1,
  # 1,200 wide, into student hidden layer 2 through a learned regressor; 2/15 of the epochs on hints
  # alone) + KD. Gradient clipping for all three: KD alone otherwise collapses this student at lr 0.05.
  [ -e "$R/teacher$seed-f.h5" ] ||
    run logits --ckpt "$R/teacher$seed:best" --data "$DATA" --features 1 --out "$R/teacher$seed-f.h5" || exit 1
  THIN=(--student 784-32-32-32-32-10 --clip 5)
  HINT=(--teacher "$R/teacher$seed-f.h5" --hint-layer 2 --hint-weight 1)
  student thin full $seed scratch "${THIN[@]}" --epochs 15
  student thin full $seed kd "${THIN[@]}" --epochs 15
  student thin full $seed kd-hints "${THIN[@]}" --epochs 15 "${HINT[@]}" --hint-epochs 2
  student thin rows2750 $seed scratch "${THIN[@]}" --epochs 300 --train-rows 2750
  student thin rows2750 $seed kd "${THIN[@]}" --epochs 300 --train-rows 2750
  student thin rows2750 $seed kd-hints "${THIN[@]}" --epochs 300 --train-rows 2750 "${HINT[@]}" --hint-epochs 40
  # In-run snapshots (the best checkpoint so far teaches, refreshed every 5 epochs) against the plain run.
  student snapshot full $seed kd-snapshot --student 784-32-10 --epochs 15 --self-distill --teacher-ckpt best \
    --refresh-every 5 --alpha 0.5 --ckpt-epochs 1
done

/usr/bin/python3 "$KD_ROOT/bench/summarise.py" "$CSV" "$R" "$KD_ROOT/docs/results-tables.md" "$R/plot" || exit 1
cd "$R/plot" || exit 1
gnuplot <<'GP'
set terminal svg size 640,400 dynamic font "sans,11"
set grid
set key bottom right
set output "curves.svg"
set title "Fashion-MNIST, student 784-32-10 on 2,750 rows: validation accuracy"
set xlabel "step"; set ylabel "validation accuracy"
plot "curve-rows2750-scratch.dat" with lines lw 2 title "from scratch", \
     "curve-rows2750-kd.dat" with lines lw 2 title "distilled (T=4, alpha=0.1)"
set output "temperature.svg"
set title "Temperature sweep (alpha = 0.1), mean and std of 3 seeds"
set xlabel "temperature T"; set ylabel "test accuracy"; set logscale x; set xtics (1,2,4,8,20)
plot "temp-rows2750.dat" using 1:2:3 with yerrorlines lw 2 title "2,750 rows", \
     "temp-full.dat" using 1:2:3 with yerrorlines lw 2 title "55,000 rows"
unset logscale x; set xtics autofreq
set output "alpha.svg"
set title "Alpha sweep (T = 4), mean and std of 3 seeds"
set xlabel "alpha (weight of the hard-label loss)"
plot "alpha-rows2750.dat" using 1:2:3 with yerrorlines lw 2 title "2,750 rows", \
     "alpha-full.dat" using 1:2:3 with yerrorlines lw 2 title "55,000 rows"
set output "capacity.svg"
set title "Capacity: one hidden layer of width w (teacher 784-1200-1200-10)"
set xlabel "hidden width"; set logscale x 2
plot "width-full-scratch.dat" using 1:2:3 with yerrorlines lw 2 title "55,000 rows, scratch", \
     "width-full-kd.dat" using 1:2:3 with yerrorlines lw 2 title "55,000 rows, KD", \
     "width-rows2750-scratch.dat" using 1:2:3 with yerrorlines lw 2 dt 2 title "2,750 rows, scratch", \
     "width-rows2750-kd.dat" using 1:2:3 with yerrorlines lw 2 dt 2 title "2,750 rows, KD", \
     "teacher-width.dat" using 1:2 with lines lw 1 lc rgb "black" title "teacher"
set output "rows.svg"
set title "Training rows (same number of steps), student 784-32-10"
set xlabel "training rows"; set logscale x 10
plot "rows-scratch.dat" using 1:2:3 with yerrorlines lw 2 title "from scratch", \
     "rows-kd.dat" using 1:2:3 with yerrorlines lw 2 title "distilled", \
     "teacher-rows.dat" using 1:2 with lines lw 1 lc rgb "black" title "teacher"
GP
cp ./*.svg "$KD_ROOT/docs/img/" || exit 1
echo "results: $CSV, docs/results-tables.md, docs/img/*.svg"
