#!/bin/bash
# bench/bitwise.sh [--kd BIN] [--old OLD_BIN]: runs a fixed set of small kd commands and prints the
# SHA-256 of the value bytes of every dataset they write (final.h5, every checkpoint's /model, /aux,
# /optim, teacher and predict files) and of metrics.csv without its timing columns
# (bench/bitwise_hash.py). Two builds that print the same lines computed the same bits. With --old,
# a run stopped by the old binary is resumed by both binaries ("xresume-old", "xresume-new": the
# lines must agree). The lines of the build before the restructure of issue 12 (and, for the language models
# added by issue 27, of the build before the llama family) are in
# bench/bitwise.ref (on the project's 2-core machine, OPENBLAS_CORETYPE=Haswell; the two kd generate lines,
# lmg.h5 and lmb.h5, are those of issue 32's decoder, whose cached attention sums in lanes: the same tokens
# as before it on the G2P teacher's 5,314 test rows, greedy and beam 5, scores within 7e-6); compare with
#   bench/bitwise.sh | diff bench/bitwise.ref -
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
KD=$ROOT/build/kd
OLD=""
while [ $# -gt 0 ]; do
  case $1 in
    --kd) KD=$(realpath "$2"); shift 2 ;;
    --old) OLD=$(realpath "$2"); shift 2 ;;
    *) echo "usage: bench/bitwise.sh [--kd BIN] [--old OLD_BIN]" >&2; exit 2 ;;
  esac
done
PY=/usr/bin/python3
HASH="$PY $ROOT/bench/bitwise_hash.py"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
work=$(mktemp -d "${TMPDIR:-/tmp}/kd-bitwise.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
run() { # run NP BIN ARGS...: quiet, fail loudly
  local np=$1 bin=$2
  shift 2
  mpirun -q -np "$np" --oversubscribe --bind-to none "$bin" "$@" > log.txt 2>&1 || { echo "FAILED: $*" >&2; cat log.txt >&2; exit 1; }
}
hash_run() { # hash_run NAME DIR: final.h5, checkpoints, metrics.csv of a run directory
  local f
  for f in "$2"/final.h5 "$2"/ckpt-*.h5 "$2"/metrics.csv; do
    [ -e "$f" ] && $HASH "$f" | sed "s|^$2/|$1/|"
  done
}
"$KD" synth --out s.h5 --teacher-out st.h5 --train 3000 --test 500 --dim 32 --classes 6 >/dev/null || exit 1
$PY - <<'PY'
import h5py, numpy as np
rng = np.random.default_rng(3)
N, V, D, C = 2400, 300, 20, 5
w = rng.normal(size=(D, C))
def rows(n):
    x = rng.normal(size=(n, D))
    z = x @ w
    return x, z.argmax(1), 2.0 * z
with h5py.File("hw.h5", "w") as f, h5py.File("hwt.h5", "w") as t:
    for split, n in (("train", N), ("valid", V), ("test", V)):
        x, y, z = rows(n)
        f.create_dataset(f"{split}/x", data=x.astype(np.float32), compression="gzip", chunks=True)
        f.create_dataset(f"{split}/y", data=y.astype(np.int64))
        t.create_dataset(f"{split}/logits", data=z.astype(np.float16), compression="gzip", chunks=True)
PY
C=(--epochs 2 --batch 60 --threads 1 --progress off --log-every 10 --ckpt-every 40 --keep 2)
S=(--data s.h5 --teacher st.h5 --student 32-48-6)
for np in 1 2 3; do
  run $np "$KD" train "${S[@]}" "${C[@]}" --out kd$np
  hash_run kd$np kd$np
done
run 2 "$KD" train --data hw.h5 --teacher hwt.h5 --student 20-40-40-5 "${C[@]}" --out h5py
hash_run h5py h5py
run 2 "$KD" train "${S[@]}" "${C[@]}" --optimizer adamw --lr 0.003 --clip 0.5 --dropout 0.2 --warmup 15 \
  --weight-decay 0.01 --val-rows 300 --out adamw
hash_run adamw adamw
run 2 "$KD" train "${S[@]}" "${C[@]}" --activation gelu --weight-init xavier --nesterov --train-rows 2000 \
  --labelled-fraction 0.5 --overlap on --shard-optimizer on --out misc
hash_run misc misc
run 2 "$KD" train --data s.h5 --student 32-64-64-6 "${C[@]}" --out teacher
run 2 "$KD" logits --ckpt teacher --data s.h5 --features 2 --out tf.h5
$HASH tf.h5
run 2 "$KD" train --data s.h5 --teacher tf.h5 --student 32-16-16-6 "${C[@]}" --epochs 3 --hint-layer 2 --hint-weight 0.5 \
  --hint-epochs 1 --out hint
hash_run hint hint
run 2 "$KD" train --data s.h5 --student 32-48-6 "${C[@]}" --epochs 3 --self-distill --teacher-ckpt latest \
  --refresh-every 1 --labelled-fraction 0.5 --snapshot-logits snap.h5 --out selfd
hash_run selfd selfd
$HASH snap.h5
run 2 "$KD" train --data s.h5 --student 32-48-6 "${C[@]}" --generations 2 --out gens
hash_run gens0 gens/gen0
hash_run gens1 gens/gen1
run 2 "$KD" train "${S[@]}" "${C[@]}" --dropout 0.1 --max-steps 70 --out stop
run 2 "$KD" train --resume stop
hash_run resume stop
run 1 "$KD" predict --ckpt kd2 --data s.h5 --out pred.h5
$HASH pred.h5
# Language models (gpt; the llama family's issue extended the set with these, recorded before its change):
# KD against float16 logits, an online teacher with MiniLM relations, sampled sparse logits, the chunked
# large-vocabulary loss, and kd generate --data greedy and beam.
$PY - <<'PY'
import h5py, numpy as np
rng = np.random.default_rng(7)
V, T = 24, 16
def rows(n):  # prompt-completion rows: source 4..13, <sep> 1, target 14..23, <end> 2, pads 0
    tok, mask = np.zeros((n, T), np.int32), np.zeros((n, T), np.int8)
    for r in range(n):
        src, tgt = rng.integers(4, 14, size=rng.integers(3, 7)), rng.integers(14, V, size=rng.integers(2, 6))
        seq = list(src) + [1] + list(tgt) + [2]
        tok[r, :len(seq)] = seq
        mask[r, len(src) + 1:len(seq)] = 1
    return tok, mask
with h5py.File("lm.h5", "w") as f:
    for split, n in (("train", 480), ("valid", 64)):
        t, m = rows(n)
        f[f"{split}/tokens"], f[f"{split}/mask"] = t, m
    g = f.create_group("tokenizer")
    g.attrs.update(kind="symbols", pad_id=0, sep_id=1, end_id=2, unk_id=3, target_id0=14)
    voc = np.empty(V, dtype=object)
    for i in range(V):
        voc[i] = np.frombuffer(("<%d>" % i).encode(), np.uint8)
    g.create_dataset("vocab", data=voc, dtype=h5py.vlen_dtype(np.uint8))
PY
L=(--epochs 2 --batch 32 --threads 1 --progress off --log-every 5 --ckpt-every 15 --keep 2 --optimizer adamw --lr 0.003)
run 2 "$KD" train --data lm.h5 --student gpt:vocab=24,ctx=16,layers=2,dim=32,heads=4 "${L[@]}" --dropout 0.1 --out lmt
hash_run lmt lmt
run 2 "$KD" logits --ckpt lmt --data lm.h5 --dtype f16 --out lmt.h5
$HASH lmt.h5
run 2 "$KD" train --data lm.h5 --teacher lmt.h5 --student gpt:vocab=24,ctx=16,layers=1,dim=16,heads=2 "${L[@]}" \
  --temperature 2 --alpha 0.5 --out lmkd
hash_run lmkd lmkd
run 2 "$KD" train --data lm.h5 --teacher-model lmt --student gpt:vocab=24,ctx=16,layers=1,dim=16,heads=2 "${L[@]}" \
  --attn-relations q-q,k-k,v-v --relation-heads 2 --attn-map 1:2 --out lmrel
hash_run lmrel lmrel
run 2 "$KD" logits --ckpt lmt --data lm.h5 --sample 6 --sample-temperature 2 --seed 4 --out lms.h5
$HASH lms.h5
run 2 "$KD" train --data lm.h5 --teacher lms.h5 --sparse-kd sampled --temperature 2 \
  --student gpt:vocab=24,ctx=16,layers=1,dim=16,heads=2 "${L[@]}" --out lmsp
hash_run lmsp lmsp
run 2 "$KD" train --data lm.h5 --teacher lmt.h5 --student gpt:vocab=24,ctx=16,layers=1,dim=16,heads=2 "${L[@]}" \
  --loss-chunk 40 --out lmch
hash_run lmch lmch
run 2 "$KD" generate --ckpt lmt --data lm.h5 --split valid --decode greedy --batch 16 --out lmg.h5
$HASH lmg.h5
run 2 "$KD" generate --ckpt lmt --data lm.h5 --split valid --decode beam:3 --nbest 2 --batch 16 --out lmb.h5
$HASH lmb.h5
if [ -n "$OLD" ]; then
  run 2 "$OLD" train "${S[@]}" "${C[@]}" --dropout 0.1 --max-steps 70 --out xo
  cp -r xo xn
  run 2 "$OLD" train --resume xo
  run 2 "$KD" train --resume xn
  hash_run xresume-old xo | sed 's/^xresume-old/xresume/' > xo.txt
  hash_run xresume-new xn | sed 's/^xresume-new/xresume/' > xn.txt
  if cmp -s xo.txt xn.txt; then echo "xresume: the old binary's checkpoint resumes bitwise as the old binary does ($(wc -l < xo.txt) files)"
  else echo "xresume: DIFFERENT"; diff xo.txt xn.txt; fi
fi
