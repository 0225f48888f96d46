#!/bin/bash
# The text demo (./launch/demo.sh text), on 2 ranks: distillation of a small GPT on real text.
#   1. import the fortune files of Debian's fortunes packages (not the .dat indexes, not the .u8 links
#      that duplicate them), documents split at '%' lines, bytes as tokens, rows of 128;
#   2. train a teacher GPT on them with kd;  3. write its logits for every row (float16);
#   4. train a student of about a tenth of its parameters from scratch, then distilled from those logits,
#      with the same data, steps and optimizer;
#   5. print held-out bits per byte of each, and a sample from each (kd generate).
#
#   ./launch/demo.sh text           reuses finished steps under checkpoints/demo-text/
#   ./launch/demo.sh text --fresh   redoes everything
#
# Sizes chosen to fit about 15 minutes on 2 cores: the teacher is gpt layers=4, dim=192 (1.85 M
# parameters) for 2 epochs, the students gpt layers=2, dim=80 (187 k) for 4 epochs: 795 s measured
# (2026-12-02). docs/results.md (launch/results-text.sh) has 3 seeds, a tenth of the data and the sweeps.
set -u -o pipefail
source "$(dirname "$0")/common.sh"
kd_need_packages "${KD_BUILD_PKGS[@]}" fortunes || exit 1
kd_build || exit 1
out=$KD_ROOT/checkpoints/demo-text
[ "${1:-}" = --fresh ] && rm -rf "$out"
mkdir -p "$out" || exit 1
KD=$KD_BUILD/kd
run() { "$KD_ROOT/launch/local.sh" 2 "$@"; }
start=$(date +%s)
step() { echo; echo "== $*"; }

DATA=$out/fortunes.h5
FDIR=$(dpkg -L fortunes 2>/dev/null | grep -m1 '/fortunes/[^/]*\.dat$' | xargs -r dirname)
FDIR=${FDIR:-/usr/share/games/fortunes}
mapfile -t FILES < <(find "$FDIR" -maxdepth 1 -type f ! -name '*.dat' ! -name '*.u8' | sort)
step "1. import ${#FILES[@]} fortune files from $FDIR (documents split at '%' lines)"
if [ -e "$DATA" ]; then echo "reusing $DATA"; else
  "$KD" import text --in "${FILES[@]}" --doc-sep % --ctx 128 --out "$DATA" || exit 1
fi

V=256 CTX=128
TEACHER=gpt:vocab=$V,ctx=$CTX,layers=4,dim=192,heads=4
STUDENT=gpt:vocab=$V,ctx=$CTX,layers=2,dim=80,heads=2
OPT=(--optimizer adamw --lr 2e-3 --warmup 50 --beta2 0.99 --weight-decay 0.1 --clip 1 --batch 32 --seed 1
  --log-every 50 --progress off)
step "2. teacher $TEACHER, 2 epochs"
if [ -e "$out/teacher/final.h5" ]; then echo "reusing $out/teacher"; else
  if [ -e "$out/teacher/latest" ]; then # an interrupted earlier demo: continue it
    run train --resume "$out/teacher" | tee "$out/teacher.log" || exit 1
  else
    run train --data "$DATA" --student "$TEACHER" --epochs 2 "${OPT[@]}" --force --out "$out/teacher" |
      tee "$out/teacher.log" || exit 1
  fi
fi

step "3. teacher logits for every row, float16 (kd logits, 2 ranks)"
if [ -e "$out/teacher-logits.h5" ]; then echo "reusing $out/teacher-logits.h5"; else
  run logits --ckpt "$out/teacher:best" --data "$DATA" --dtype f16 --out "$out/teacher-logits.h5" || exit 1
fi

# student NAME ARGS...: the student, same data, steps, optimizer and seed for both runs.
student() {
  local name=$1
  shift
  if [ -e "$out/$name/final.h5" ]; then echo "reusing $out/$name"; return 0; fi
  run train --data "$DATA" --student "$STUDENT" --epochs 4 "${OPT[@]}" --force --out "$out/$name" "$@" |
    tee "$out/$name.log" | grep -E '^(valid|test|final):' || return 1
}
step "4. student $STUDENT, 4 epochs: from scratch, then distilled (T = 2, alpha = 0.5)"
student scratch || exit 1
student kd --teacher "$out/teacher-logits.h5" --temperature 2 --alpha 0.5 || exit 1

# bpb DIR: test bits per byte of DIR's best checkpoint, 4 decimals ("n/a" if kd eval failed).
bpb() {
  local v
  v=$("$KD" eval --ckpt "$1:best" --data "$DATA" --json | sed -n 's/.*"bpb": \([0-9.]*\).*/\1/p')
  if [ -n "$v" ]; then printf '%.4f' "$v"; else echo n/a; fi
}
params() { sed -n 's/.*(\([0-9]*\) parameters).*/\1/p' "$out/$1.log" | head -1; }
PROMPT="The secret of"
echo
echo "== result: bits per byte on the held-out test documents ($(( $(date +%s) - start )) s so far)"
printf '%-10s %-40s %11s %14s\n' model spec parameters "test bits/byte"
printf '%-10s %-40s %11s %14s\n' teacher "$TEACHER" "$(params teacher)" "$(bpb "$out/teacher")"
printf '%-10s %-40s %11s %14s\n' scratch "$STUDENT" "$(params scratch)" "$(bpb "$out/scratch")"
printf '%-10s %-40s %11s %14s\n' distilled "$STUDENT" "$(params kd)" "$(bpb "$out/kd")"
for m in teacher scratch kd; do
  echo
  echo "-- $m, sampled at temperature 0.8 from \"$PROMPT\":"
  "$KD" generate --ckpt "$out/$m:best" --prompt "$PROMPT" --max-new 240 --temperature 0.8 --top-k 40 --seed 7 ||
    exit 1
done
echo
echo "outputs: $out   wall time: $(( $(date +%s) - start )) s"
