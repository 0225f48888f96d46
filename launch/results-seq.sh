#!/bin/bash
# launch/results-seq.sh: sequence-level distillation (Kim & Rush 2016) on grapheme-to-phoneme conversion
# (docs/results.md, "Sequence-level distillation"), on 2 ranks. The CMU pronouncing dictionary of Debian's
# festlex-cmu (kd import pairs --format cmudict-festival: word letters -> phonemes with stress, split by
# word); one teacher gpt (KD_TEACHER, default 3x160, 4 heads), and a student gpt about a tenth of its size
# (KD_STUDENT, default 2x64, 2 heads) trained per seed 1-3 on
#   baseline         the references
#   wordkd           the references with the teacher's logits (kd logits; T 2, alpha 0.5)
#   seqkd            the teacher's beam-5 outputs (kd generate --decode beam:5)
#   seqinter         among the teacher's beam-5 n-best, the one closest to the reference (--select closest)
#   seqinter_wordkd  seqinter's rows with the teacher's logits on them (kd logits of that file)
# each scored by kd eval --decode greedy and beam:5 on /test (PER, WER, sequences/s); the teacher too.
# Runs are cached under checkpoints/results-seq/ (a rerun does what is missing; --fresh redoes all);
# figures in checkpoints/results-seq/results.csv, summarised by bench/summarise_seq.py into
# docs/results-seq-tables.md. KD_SEEDS="1" runs fewer seeds; KD_TEACHER_EPOCHS / KD_STUDENT_EPOCHS set the
# epochs (defaults 10 / 8); KD_SEQ_RECIPES="baseline" runs only those recipes (and writes no tables); KD_MAX_STEPS=N is a smoke test of the pipeline (every run stops after N steps,
# under checkpoints/results-seq-smoke/, no tables written into docs/).
set -u -o pipefail
source "$(dirname "$0")/common.sh"
kd_need_packages "${KD_BUILD_PKGS[@]}" "${KD_TEST_PKGS[@]}" festlex-cmu || exit 1
[ -x "$KD_BUILD/kd" ] || kd_build || exit 1
R=$KD_ROOT/checkpoints/results-seq
SMOKE=()
[ -n "${KD_MAX_STEPS:-}" ] && { R=$R-smoke SMOKE=(--max-steps "$KD_MAX_STEPS"); export KD_CKPT_PICK=latest; }
PICK=${KD_CKPT_PICK:-best} # a smoke run stops before its first evaluation
[ "${1:-}" = --fresh ] && rm -rf "$R"
mkdir -p "$R/s" || exit 1
KD=$KD_BUILD/kd
run() { "$KD_ROOT/launch/local.sh" 2 "$@"; }
start=$(date +%s)
CSV=$R/results.csv
[ -e "$CSV" ] || echo "model,recipe,seed,decode,per,wer,words,seq_per_s,params,epochs,train_s,tag" > "$CSV"

CMU=$(dpkg -L festlex-cmu | grep 'cmudict-0\.4\.out$' | head -1)
[ -n "$CMU" ] || { echo "results-seq: festlex-cmu has no cmudict-0.4.out" >&2; exit 1; }
DATA=$R/cmudict.h5
[ -e "$DATA" ] || "$KD" import pairs --in "$CMU" --format cmudict-festival --out "$DATA" > "$R/import.log" ||
  { cat "$R/import.log"; exit 1; }
read -r V W < <(/usr/bin/python3 -c "import h5py,sys; f=h5py.File(sys.argv[1]); print(len(f['tokenizer/vocab']), f['train/tokens'].shape[1])" "$DATA")
TEACHER=gpt:vocab=$V,ctx=$W,${KD_TEACHER:-layers=3,dim=160,heads=4}
STUDENT=gpt:vocab=$V,ctx=$W,${KD_STUDENT:-layers=2,dim=64,heads=2}
TE=${KD_TEACHER_EPOCHS:-10} SE=${KD_STUDENT_EPOCHS:-8}
OPT=(--optimizer adamw --lr 2e-3 --warmup 200 --beta2 0.99 --weight-decay 0.1 --clip 1 --batch 128
  --progress off --log-every 200)
KDL=(--temperature 2 --alpha 0.5)

score() { kd_score_decode "$CSV" "$DATA" "$@"; }

# The teacher (seed 1), its logits on the references, its beam-5 outputs (best and closest).
T=$R/teacher
if [ ! -e "$T/final.h5" ]; then
  t0=$(date +%s)
  run train --data "$DATA" --student "$TEACHER" --epochs "$TE" --seed 1 "${OPT[@]}" "${SMOKE[@]}" --force \
    --out "$T" > "$T.log" 2>&1 || { tail -3 "$T.log"; exit 1; }
  echo "$(( $(date +%s) - t0 ))" > "$T.seconds"
fi
score teacher references 1 "$T" "$TE" "$(cat "$T.seconds")" || exit 1
gen() { # OUT ARGS...: kd generate over /train, its summary line kept
  [ -e "$1" ] && return 0
  local out=$1
  shift
  run generate --ckpt "$T:$PICK" --data "$DATA" --out "$out" "$@" > "${out%.h5}.log" || return 1
  cat "${out%.h5}.log"
}
RECIPES=${KD_SEQ_RECIPES:-baseline wordkd seqkd seqinter seqinter_wordkd}
wants() { [[ " $RECIPES " == *" $1 "* ]]; }
logits() { # DATA: the teacher's float16 logits on it, beside it
  local l=${1%.h5}-logits.h5
  [ -e "$l" ] || run logits --ckpt "$T:$PICK" --data "$1" --dtype f16 --out "$l" > /dev/null
}
if wants seqkd; then gen "$R/seqkd.h5" --decode beam:5 --nbest 5 || exit 1; fi
if wants seqinter || wants seqinter_wordkd; then
  gen "$R/seqinter.h5" --decode beam:5 --nbest 5 --select closest || exit 1
fi
if wants wordkd; then logits "$DATA" || exit 1; fi
if wants seqinter_wordkd; then logits "$R/seqinter.h5" || exit 1; fi
echo "teacher and its files: $(( $(date +%s) - start )) s"

# student RECIPE SEED: one run, cached by its tag.
student() {
  local recipe=$1 seed=$2 data=$DATA extra=() tag="$1-$2"
  case $recipe in
    baseline) ;;
    wordkd) extra=("${KDL[@]}" --teacher "$R/cmudict-logits.h5") ;;
    seqkd) data=$R/seqkd.h5 ;;
    seqinter) data=$R/seqinter.h5 ;;
    seqinter_wordkd) data=$R/seqinter.h5 extra=("${KDL[@]}" --teacher "$R/seqinter-logits.h5") ;;
  esac
  if [ ! -e "$R/s/$tag/final.h5" ]; then
    local t0
    t0=$(date +%s)
    run train --data "$data" --student "$STUDENT" --epochs "$SE" --seed "$seed" "${OPT[@]}" "${extra[@]}" \
      "${SMOKE[@]}" --force --out "$R/s/$tag" > "$R/s/$tag.log" 2>&1 ||
      { echo "failed: $tag (see $R/s/$tag.log)" >&2; return 1; }
    echo "$(( $(date +%s) - t0 ))" > "$R/s/$tag.seconds"
  fi
  score student "$recipe" "$seed" "$R/s/$tag" "$SE" "$(cat "$R/s/$tag.seconds")"
}

for seed in ${KD_SEEDS:-1 2 3}; do
  for recipe in $RECIPES; do
    student $recipe "$seed" || exit 1
  done
  echo "seed $seed done: $(( $(date +%s) - start )) s"
done
[ -n "${KD_SEQ_RECIPES:-}" ] && exit 0 # a subset (launch/results-onpolicy.sh's baselines): no tables
TABLES=$KD_ROOT/docs/results-seq-tables.md
[ ${#SMOKE[@]} -gt 0 ] && TABLES=$R/tables.md
/usr/bin/python3 "$KD_ROOT/bench/summarise_seq.py" "$CSV" "$TABLES" "$R" || exit 1
cat "$TABLES"
echo "results: $CSV, $TABLES   wall time: $(( $(date +%s) - start )) s"
