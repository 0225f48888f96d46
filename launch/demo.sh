#!/bin/bash
# The main job, on 2 ranks: import Fashion-MNIST (Debian's dataset-fashion-mnist), train a teacher
# 784-1200-1200-10 with dropout, write its logits with kd logits, ask kd doctor whether distilling the
# student 784-32-10 will pay, then train it from scratch and distilled, with the same data, epochs and
# optimizer, and print one table.
#
#   ./launch/demo.sh           reuses finished steps under checkpoints/demo/
#   ./launch/demo.sh --fresh   redoes everything
#   ./launch/demo.sh text      the text demo instead: a GPT teacher and student on Debian's fortunes
#                              (launch/demo-text.sh; --fresh as above)
#
# The headline setting is the one where distillation pays on this data set: the student sees 5% of
# the training rows (2,750). With all 55,000 rows the teacher (about 89%) is too close to the student
# (about 87.5%) for its soft labels to add anything; the demo prints that row too.
set -u -o pipefail
if [ "${1:-}" = text ]; then
  shift
  exec "$(dirname "$0")/demo-text.sh" "$@"
fi
source "$(dirname "$0")/common.sh"
kd_need_packages "${KD_BUILD_PKGS[@]}" dataset-fashion-mnist || exit 1
kd_build || exit 1
out=$KD_ROOT/checkpoints/demo
[ "${1:-}" = --fresh ] && rm -rf "$out"
mkdir -p "$out" || exit 1
KD=$KD_BUILD/kd
run() { "$KD_ROOT/launch/local.sh" 2 "$@"; }
start=$(date +%s)
FM=$(dpkg -L dataset-fashion-mnist 2>/dev/null | grep -m1 'train-images-idx3-ubyte.gz$' | xargs -r dirname)
FM=${FM:-/usr/share/datasets/fashion-mnist}
DATA=$out/fashion-mnist.h5

step() { echo; echo "== $*"; }
step "1. import Fashion-MNIST from $FM"
if [ -e "$DATA" ]; then echo "reusing $DATA"; else
  "$KD" import idx --images "$FM/train-images-idx3-ubyte.gz" --labels "$FM/train-labels-idx1-ubyte.gz" \
    --test-images "$FM/t10k-images-idx3-ubyte.gz" --test-labels "$FM/t10k-labels-idx1-ubyte.gz" --out "$DATA" || exit 1
fi

step "2. teacher 784-1200-1200-10, dropout 0.3, 15 epochs on 55,000 rows (5,000 held out for validation)"
if [ -e "$out/teacher/final.h5" ]; then echo "reusing $out/teacher"; else
  if [ -e "$out/teacher/latest" ]; then # an interrupted earlier demo: continue it
    run train --resume "$out/teacher" | tee "$out/teacher.log" || exit 1
  else
    run train --data "$DATA" --student 784-1200-1200-10 --dropout 0.3 --epochs 15 --lr 0.05 --weight-decay 5e-4 \
      --val-rows 5000 --seed 1 --force --out "$out/teacher" | tee "$out/teacher.log" || exit 1
  fi
fi

step "3. teacher logits for every row (kd logits, 2 ranks)"
if [ -e "$out/teacher-logits.h5" ]; then echo "reusing $out/teacher-logits.h5"; else
  run logits --ckpt "$out/teacher:best" --data "$DATA" --out "$out/teacher-logits.h5" || exit 1
fi

# doctor NAME ARGS...: kd doctor's verdict on the student 784-32-10's run, before it trains (docs/usage.md).
doctor() {
  local name=$1
  shift
  run doctor --data "$DATA" --teacher "$out/teacher-logits.h5" --student 784-32-10 --lr 0.05 --batch 128 --seed 1 \
    --val-rows 5000 "$@" > "$out/doctor-$name.txt" || { cat "$out/doctor-$name.txt"; return 1; }
  grep -E '^  WARN|^verdict' "$out/doctor-$name.txt"
}
step "4. kd doctor, before training the student: will distillation pay with 2,750 rows, and with all 55,000?"
doctor small --train-rows 2750 || exit 1
doctor full || exit 1

# student NAME ARGS...: the student 784-32-10, same optimizer, lr, batch and seed for every run.
student() {
  local name=$1
  shift
  if [ -e "$out/$name/final.h5" ]; then echo "reusing $out/$name"; return 0; fi
  run train --data "$DATA" --student 784-32-10 --lr 0.05 --batch 128 --seed 1 --val-rows 5000 --ckpt-epochs 0 \
    --log-every 100 --force --out "$out/$name" "$@" | tee "$out/$name.log" | grep -E '^(test|final):' || return 1
}
KDARGS=(--teacher "$out/teacher-logits.h5" --temperature 4 --alpha 0.1)
step "5. student 784-32-10 on 2,750 rows (5%), 300 epochs: from scratch, then distilled (T=4, alpha=0.1)"
student small-scratch --train-rows 2750 --epochs 300 || exit 1
student small-kd --train-rows 2750 --epochs 300 "${KDARGS[@]}" || exit 1
step "6. the same student on all 55,000 rows, 15 epochs: from scratch, then distilled"
student full-scratch --epochs 15 || exit 1
student full-kd --epochs 15 "${KDARGS[@]}" || exit 1

field() { sed -n "s/^final: .*$1=\([0-9.]*\).*/\1/p" "$out/$2.log" 2>/dev/null; }
teacher=$("$KD" eval --ckpt "$out/teacher:best" --data "$DATA" --json | sed -n 's/.*"accuracy": \([0-9.]*\).*/\1/p')
pct() { awk -v a="${1:-0}" 'BEGIN { printf "%.2f%%", 100 * a }'; }
echo
echo "== result: Fashion-MNIST test set (10,000 images), 2 ranks"
printf '%-34s %-16s %-16s %-18s %-34s %s\n' "training rows seen by the student" "teacher" "student scratch" \
  "student distilled" "distilled: agreement with teacher" "kd doctor, before training"
for r in small:"2,750 (5%)" full:"55,000 (all)"; do
  n=${r%%:*}
  said=$(sed -n 's/^verdict: \(distil, T = [0-9.]*, alpha = [0-9.]*\|do not distil\).*/\1/p' "$out/doctor-$n.txt")
  printf '%-34s %-16s %-16s %-18s %-34s %s\n' "${r#*:}" "$(pct "$teacher")" "$(pct "$(field test_acc $n-scratch)")" \
    "$(pct "$(field test_acc $n-kd)")" "$(pct "$(field test_agreement $n-kd)")" "$said"
done
echo
echo "The teacher is 784-1200-1200-10 (2.4M parameters), the student 784-32-10 (25k). Distillation pays where"
echo "the student sees little labelled data (first row); with every row the teacher is too close to the student"
echo "to help (second row), which kd doctor says before any student trains. docs/results.md has 3 seeds, sweeps"
echo "and plots."
echo "outputs: $out   wall time: $(( $(date +%s) - start )) s"
