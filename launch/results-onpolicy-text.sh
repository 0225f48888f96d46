#!/bin/bash
# launch/results-onpolicy-text.sh: on-policy distillation on fortunes text (docs/results.md, "On-policy
# distillation: text"), on 2 ranks, one seed. It reuses launch/results-text.sh's data, its seed-1 teacher
# (gpt 4x192) and its seed-1 students on all rows (gpt 2x80 from scratch, and distilled from the teacher's
# logits with T 2, alpha 0.5), running that script's part for them when they are missing. The student from
# scratch (its best checkpoint) is then trained KD_FT_EPOCHS more epochs (default 1) per recipe:
#   continued        the data again (the control: the same extra steps without a teacher)
#   kd-forward       lambda 0: the data scored by the online teacher, forward KL
#   op0.5-jsd0.5     lambda 0.5, jsd:0.5
#   op1-reverse      lambda 1: every step on the student's own continuations, reverse KL
#   op1-jsd0.5       lambda 1, jsd:0.5
# all with T = 1, alpha 0, a row's prompt its first 64 bytes (half the row) and the rollout at temperature 1
# to the row's end. Each student is scored by its test bits per byte (kd eval, best-validation checkpoint)
# and by the teacher's NLL of its sampled continuations of the /test rows' first 64 bytes (kd generate --data
# --prompt-tokens 64 --decode sample, then kd eval --ckpt TEACHER on them): the quantity on-policy training
# lowers; the teacher's NLL of its own continuations for scale.
# Runs are cached under checkpoints/results-onpolicy/text/ (a rerun does what is missing; --fresh redoes this
# script's runs, not results-text's); figures in its text.csv, summarised by bench/summarise_onpolicy.py into
# docs/results-onpolicy-text-tables.md. KD_MAX_STEPS=N is a smoke test (every run stops after N steps, under
# *-smoke/, no tables in docs/).
set -u -o pipefail
source "$(dirname "$0")/common.sh"
kd_need_packages "${KD_BUILD_PKGS[@]}" "${KD_TEST_PKGS[@]}" fortunes || exit 1
[ -x "$KD_BUILD/kd" ] || kd_build || exit 1
TXT=$KD_ROOT/checkpoints/results-text
R=$KD_ROOT/checkpoints/results-onpolicy/text
SMOKE=()
[ -n "${KD_MAX_STEPS:-}" ] && TXT=$TXT-smoke R=$R-smoke SMOKE=(--max-steps "$KD_MAX_STEPS" --eval-every "$KD_MAX_STEPS")
[ "${1:-}" = --fresh ] && rm -rf "$R"
mkdir -p "$R/s" || exit 1
run() { "$KD_ROOT/launch/local.sh" 2 "$@"; }
start=$(date +%s)

# The data, the teacher and the two students of seed 1: results-text.sh's own runs.
KD_TEXT_SEEDS=1 KD_TEXT_SIZES=full KD_TEXT_MAIN_ONLY=1 "$KD_ROOT/launch/results-text.sh" > "$R/results-text.log" 2>&1 ||
  { tail -5 "$R/results-text.log"; exit 1; }
echo "teacher and students (results-text): $(( $(date +%s) - start )) s"
DATA=$TXT/fortunes.h5 T=$TXT/teacher1 BASE=$TXT/s/main-full-2x80-1-scratch
STUDENT=gpt:vocab=256,ctx=128,layers=2,dim=80,heads=2 # results-text.sh's student
PROMPT=64
CSV=$R/text.csv
[ -e "$CSV" ] || echo "recipe,seed,test_bpb,valid_bpb,teacher_nll,sample_tokens,train_s,tag" > "$CSV"
FE=${KD_FT_EPOCHS:-1}
OPT=(--optimizer adamw --lr 5e-4 --warmup 50 --beta2 0.99 --weight-decay 0.1 --clip 1 --batch 32
  --eval-every 142 --log-every 142 --ckpt-epochs 0 --progress off)

# bpb DIR SPLIT: bits per byte of DIR's best checkpoint on SPLIT.
bpb() {
  run eval --ckpt "$1:best" --data "$DATA" --split "$2" --json --progress off |
    /usr/bin/python3 -c 'import json,sys; print("%.6f" % json.load(sys.stdin)["bpb"])'
}

# score RECIPE DIR SECONDS: one CSV line for DIR's best checkpoint (once): its test and valid bits per byte, the
# teacher's NLL per token (nats) of its sampled continuations of the /test rows.
score() {
  local tag test valid out j
  tag=$(basename "$2")
  grep -q ",$tag\$" "$CSV" && return 0
  out=$R/samples-$tag.h5
  run generate --ckpt "$2:best" --data "$DATA" --split test --prompt-tokens "$PROMPT" --decode sample --seed 1 \
    --progress off --out "$out" > /dev/null || return 1
  j=$(run eval --ckpt "$T:best" --data "$out" --split test --json --progress off) || return 1
  rm -f "$out"
  test=$(bpb "$2" test) && valid=$(bpb "$2" valid) || return 1
  /usr/bin/python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print("%s,1,%s,%s,%.6f,%d,%s,%s" % (sys.argv[2], sys.argv[3], sys.argv[4], j["nll"], j["tokens"], sys.argv[5], sys.argv[6]))' \
    "$j" "$1" "$test" "$valid" "$3" "$tag" >> "$CSV"
}

# student RECIPE: the student from scratch trained FE more epochs by RECIPE, cached by its tag.
student() {
  local recipe=$1 tag="$1-1"
  kd_recipe_args "$recipe" "$T:best"
  [[ $recipe == op* ]] && KD_RECIPE_ARGS+=(--prompt-tokens "$PROMPT")
  if [ ! -e "$R/s/$tag/final.h5" ]; then
    local t0
    t0=$(date +%s)
    run train --data "$DATA" --student "$STUDENT" --init "$BASE:best" --epochs "$FE" --seed 1 "${OPT[@]}" \
      "${KD_RECIPE_ARGS[@]}" "${SMOKE[@]}" --force --out "$R/s/$tag" > "$R/s/$tag.log" 2>&1 ||
      { echo "failed: $tag (see $R/s/$tag.log)" >&2; return 1; }
    echo "$(( $(date +%s) - t0 ))" > "$R/s/$tag.seconds"
  fi
  score "$recipe" "$R/s/$tag" "$(cat "$R/s/$tag.seconds")"
}

# the teacher (its own continuations: its entropy per token on these prompts), and results-text's two students
score teacher "$T" "" || exit 1
score scratch "$BASE" "" || exit 1
score kd-logits "$TXT/s/main-full-2x80-1-kd" "" || exit 1
for recipe in continued kd-forward op0.5-jsd0.5 op1-reverse op1-jsd0.5; do
  student "$recipe" || exit 1
  echo "$recipe done: $(( $(date +%s) - start )) s"
done
TABLES=$KD_ROOT/docs/results-onpolicy-text-tables.md
[ ${#SMOKE[@]} -gt 0 ] && TABLES=$R/tables.md
/usr/bin/python3 "$KD_ROOT/bench/summarise_onpolicy.py" --text "$CSV" "$TABLES" || exit 1
cat "$TABLES"
echo "results: $CSV, $TABLES   wall time: $(( $(date +%s) - start )) s"
