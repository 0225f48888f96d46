#!/bin/bash
# launch/results-onpolicy.sh: on-policy distillation (GKD, reverse KL) on grapheme-to-phoneme conversion
# (docs/results.md, "On-policy distillation"), on 2 ranks. It reuses launch/results-seq.sh's task, teacher
# and baseline students (running that script's baseline recipe first when they are missing: the CMU
# dictionary, a gpt 3x160 teacher, a gpt 2x64 student per seed trained 8 epochs on the references).
# Each baseline student's best checkpoint is then trained KD_FT_EPOCHS more epochs (default 1) per recipe:
#   continued        the references again (the control: the same extra steps without a teacher)
#   kd-jsd0.5        lambda 0: the references scored by the online teacher, jsd:0.5 (GKD's supervised KD)
#   op0.5-reverse    lambda 0.5, reverse KL
#   op1-reverse      lambda 1: every step on the student's own samples, reverse KL
#   op0.5-jsd0.5     lambda 0.5, jsd:0.5
#   op1-jsd0.5       lambda 1, jsd:0.5
#   op0.5-forward    lambda 0.5, forward KL (seed 1 only)
#   op1-forward      lambda 1, forward KL (seed 1 only)
# all with T = 1, alpha 0 (GKD's setting: the divergence alone), the rollout at temperature 1 up to the
# end token. Each student is scored by kd eval --decode greedy and beam:5 on /test (PER, WER), and by the
# teacher's NLL per token of the student's sampled completions of the /test words (kd generate --decode
# sample, then kd eval --ckpt TEACHER on them): the quantity on-policy training lowers; the teacher's NLL of
# its own samples (its entropy per token on these prompts) for scale.
# Runs are cached under checkpoints/results-onpolicy/ (a rerun does what is missing; --fresh redoes this
# script's runs, not results-seq's); figures in its results.csv and samples.csv, summarised by
# bench/summarise_onpolicy.py into docs/results-onpolicy-tables.md. KD_SEEDS="1" runs fewer seeds;
# KD_MAX_STEPS=N is a smoke test (every run stops after N steps, under *-smoke/, no tables in docs/). Runs are
# cached by recipe and seed alone: after changing KD_FT_EPOCHS or KD_STUDENT, rerun with --fresh.
set -u -o pipefail
source "$(dirname "$0")/common.sh"
kd_need_packages "${KD_BUILD_PKGS[@]}" "${KD_TEST_PKGS[@]}" festlex-cmu || exit 1
[ -x "$KD_BUILD/kd" ] || kd_build || exit 1
SEQ=$KD_ROOT/checkpoints/results-seq
R=$KD_ROOT/checkpoints/results-onpolicy
SMOKE=()
[ -n "${KD_MAX_STEPS:-}" ] && { SEQ=$SEQ-smoke R=$R-smoke SMOKE=(--max-steps "$KD_MAX_STEPS"); export KD_CKPT_PICK=latest; }
PICK=${KD_CKPT_PICK:-best} # a smoke run stops before its first evaluation
[ "${1:-}" = --fresh ] && rm -rf "$R"
mkdir -p "$R/s" || exit 1
SEEDS=${KD_SEEDS:-1 2 3}
run() { "$KD_ROOT/launch/local.sh" 2 "$@"; }
start=$(date +%s)

# The teacher and the baselines: results-seq.sh's own runs (its other recipes are not needed here).
KD_SEQ_RECIPES=baseline KD_SEEDS="$SEEDS" "$KD_ROOT/launch/results-seq.sh" > "$R/results-seq.log" 2>&1 ||
  { tail -5 "$R/results-seq.log"; exit 1; }
echo "teacher and baselines (results-seq): $(( $(date +%s) - start )) s"
DATA=$SEQ/cmudict.h5 T=$SEQ/teacher
read -r V W < <(/usr/bin/python3 -c "import h5py,sys; f=h5py.File(sys.argv[1]); print(len(f['tokenizer/vocab']), f['train/tokens'].shape[1])" "$DATA")
STUDENT=gpt:vocab=$V,ctx=$W,${KD_STUDENT:-layers=2,dim=64,heads=2} # results-seq.sh's student
CSV=$R/results.csv SAMPLES=$R/samples.csv
[ -e "$CSV" ] || echo "model,recipe,seed,decode,per,wer,words,seq_per_s,params,epochs,train_s,tag" > "$CSV"
[ -e "$SAMPLES" ] || echo "recipe,seed,teacher_nll,tokens,tag" > "$SAMPLES"
FE=${KD_FT_EPOCHS:-1}
OPT=(--optimizer adamw --lr 5e-4 --warmup 50 --beta2 0.99 --weight-decay 0.1 --clip 1 --batch 128
  --progress off --log-every 100)

# teacher_nll RECIPE SEED DIR: the student samples a completion of every /test word (temperature 1), the
# teacher's NLL per completion token of them.
teacher_nll() {
  local tag out j
  tag=$(basename "$3")
  grep -q ",$tag\$" "$SAMPLES" && return 0
  out=$R/samples-$tag.h5
  run generate --ckpt "$3:$PICK" --data "$DATA" --split test --decode sample --seed 1 --progress off \
    --out "$out" > /dev/null || return 1
  j=$(run eval --ckpt "$T:$PICK" --data "$out" --split test --json --progress off) || return 1
  rm -f "$out"
  /usr/bin/python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print("%s,%.6f,%d,%s" % (sys.argv[2], j["nll"], j["tokens"], sys.argv[3]))' \
    "$j" "$1,$2" "$tag" >> "$SAMPLES"
}

# student RECIPE SEED: the baseline of SEED trained FE more epochs by RECIPE, cached by its tag.
student() {
  local recipe=$1 seed=$2 tag="$1-$2"
  kd_recipe_args "$recipe" "$T:$PICK"
  if [ ! -e "$R/s/$tag/final.h5" ]; then
    local t0
    t0=$(date +%s)
    run train --data "$DATA" --student "$STUDENT" --init "$SEQ/s/baseline-$seed:$PICK" --epochs "$FE" --seed "$seed" "${OPT[@]}" \
      "${KD_RECIPE_ARGS[@]}" "${SMOKE[@]}" --force --out "$R/s/$tag" > "$R/s/$tag.log" 2>&1 ||
      { echo "failed: $tag (see $R/s/$tag.log)" >&2; return 1; }
    echo "$(( $(date +%s) - t0 ))" > "$R/s/$tag.seconds"
  fi
  kd_score_decode "$CSV" "$DATA" student "$recipe" "$seed" "$R/s/$tag" "$FE" "$(cat "$R/s/$tag.seconds")" &&
    teacher_nll "$recipe" "$seed" "$R/s/$tag"
}

# the teacher's own samples, for scale (its entropy per token on these prompts; a sharper sampler can score lower)
teacher_nll references 1 "$T" || exit 1
for seed in $SEEDS; do
  recipes="continued kd-jsd0.5 op0.5-reverse op1-reverse op0.5-jsd0.5 op1-jsd0.5"
  [ "$seed" = 1 ] && recipes="$recipes op0.5-forward op1-forward"
  for recipe in $recipes; do student "$recipe" "$seed" || exit 1; done
  # the baseline itself: its samples' teacher NLL (its PER / WER are in results-seq's CSV)
  ln -sfn "$SEQ/s/baseline-$seed" "$R/s/baseline-$seed"
  teacher_nll baseline "$seed" "$R/s/baseline-$seed" || exit 1
  echo "seed $seed done: $(( $(date +%s) - start )) s"
done
TABLES=$KD_ROOT/docs/results-onpolicy-tables.md
[ ${#SMOKE[@]} -gt 0 ] && TABLES=$R/tables.md
/usr/bin/python3 "$KD_ROOT/bench/summarise_onpolicy.py" "$SEQ/results.csv" "$CSV" "$SAMPLES" "$TABLES" "$R" ||
  exit 1
cat "$TABLES"
echo "results: $CSV, $SAMPLES, $TABLES   wall time: $(( $(date +%s) - start )) s"
