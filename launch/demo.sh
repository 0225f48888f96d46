#!/bin/bash
# The main job: install, build, write a synthetic data set with a teacher's
# logits, then train the same student twice on 2 ranks (from scratch, and
# distilled from the teacher) and print the comparison.
set -u -o pipefail
source "$(dirname "$0")/common.sh"
kd_need_packages "${KD_BUILD_PKGS[@]}" || exit 1
kd_build || exit 1
out=$KD_ROOT/checkpoints/demo
mkdir -p "$out" || exit 1
KD=$KD_BUILD/kd
run() { "$KD_ROOT/launch/local.sh" 2 "$@"; }

echo "== 1. synthetic data: 20000 train / 4000 test rows, 64 features, 10 classes; teacher = Bayes classifier"
"$KD" synth --out "$out/synth.h5" --teacher-out "$out/synth-teacher.h5" --seed 1 | tee "$out/synth.log" || exit 1
common=(--data "$out/synth.h5" --student 64-128-10 --epochs 10 --batch 128 --lr 0.05 --seed 1 --force)
echo "== 2. student 64-128-10 from scratch (hard labels), 2 ranks"
run train "${common[@]}" --out "$out/scratch" | tee "$out/scratch.log" || exit 1
echo "== 3. the same student distilled from the teacher (T=4, alpha=0.1), 2 ranks"
run train "${common[@]}" --teacher "$out/synth-teacher.h5" --temperature 4 --alpha 0.1 --out "$out/kd" |
  tee "$out/kd.log" || exit 1

field() { sed -n "s/^final: .*$1=\([0-9.]*\).*/\1/p" "$2"; }
teacher=$(sed -n 's/^kd synth: teacher test accuracy \([0-9.]*\).*/\1/p' "$out/synth.log")
echo
echo "== result (test split, 4000 rows)"
printf '%-34s %s\n' "model" "test accuracy"
printf '%-34s %s\n' "teacher (Bayes classifier)" "$teacher"
printf '%-34s %s\n' "student 64-128-10, from scratch" "$(field test_acc "$out/scratch.log")"
printf '%-34s %s  (agreement with teacher %s)\n' "student 64-128-10, distilled" "$(field test_acc "$out/kd.log")" \
  "$(field test_agreement "$out/kd.log")"
echo "outputs: $out/{scratch,kd}/ (metrics.csv, final.h5)"
