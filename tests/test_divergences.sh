#!/bin/bash
# kd train --divergence (issue 32, item 1): the soft term's divergence on real runs:
#  - reverse on an mlp (stored teacher logits): 1 and 2 ranks end alike (1e-5, a step being the epoch), a run
#    stopped and resumed ends bitwise, the checkpoint records the divergence and a resume keeps it; its losses
#    differ from forward's; the banner names it;
#  - jsd:0 is forward bit for bit, jsd:1 reverse;
#  - a gpt with a vocabulary over 256 (the chunked head and loss) with jsd:0.5 and skew:0.1: chunks of 8 positions
#    give the whole batch's weights (1e-5); an online teacher (--teacher-model) takes them too;
#  - refused with one line and exit 2: a sparse teacher file with reverse, a malformed --divergence.
source "$(dirname "$0")/lib.sh"
"$KD" synth --out d.h5 --teacher-out t.h5 --train 600 --test 100 --dim 12 --classes 4 > /dev/null || exit 1
M=(train --data d.h5 --teacher t.h5 --student 12-32-4 --threads 1 --progress off --optimizer sgd --lr 0.2
   --temperature 2 --alpha 0.3 --log-every 1)
# a step is the whole epoch (--batch 600), so 1 and 2 ranks see the same rows in each step
kdrun 1 "${M[@]}" --batch 600 --epochs 8 --divergence reverse --out r1 > r1.log || fail "reverse, 1 rank"
kdrun 2 "${M[@]}" --batch 600 --epochs 8 --divergence reverse --out r2 > r2.log || fail "reverse, 2 ranks"
expect "reverse: 1 and 2 ranks end with the same weights (1e-5)" close r1/final.h5 r2/final.h5 --rtol 1e-5
expect "reverse: 1 and 2 ranks log the same losses (1e-5)" cols r1 r2 loss ce kd
expect "the banner names the reverse KL" grep -q '^loss: 0.3 \* CE + 0.7 \* T^2 \* KL(student || teacher) at T = 2' r2.log
kdrun 2 "${M[@]}" --batch 60 --epochs 3 --divergence reverse --out rf > /dev/null || fail "reverse, full"
kdrun 2 "${M[@]}" --batch 60 --epochs 3 --divergence reverse --out rh --max-steps 13 > /dev/null || fail "reverse, half"
kdrun 2 train --resume rh > rh.log || fail "reverse, resumed"
expect "reverse: stopped and resumed, bitwise" close rf/final.h5 rh/final.h5 --exact
expect "a resume keeps the checkpoint's divergence" grep -q 'KL(student || teacher)' rh.log
expect "the checkpoint records --divergence" "$PY" -c "
import h5py
v = h5py.File('rh/final.h5')['config'].attrs['divergence']
assert (v.decode() if isinstance(v, bytes) else str(v)) == 'reverse', v"
kdrun 2 "${M[@]}" --batch 60 --epochs 3 --out ff > /dev/null || fail "forward"
kdrun 2 "${M[@]}" --batch 60 --epochs 3 --divergence jsd:0 --out j0 > /dev/null || fail "jsd:0"
kdrun 2 "${M[@]}" --batch 60 --epochs 3 --divergence jsd:1 --out j1 > /dev/null || fail "jsd:1"
expect "jsd:0 is forward, bit for bit" close ff/final.h5 j0/final.h5 --exact
expect "jsd:1 is reverse, bit for bit" close rf/final.h5 j1/final.h5 --exact
expect "reverse trains differently from forward" bash -c "! \"$PY\" \"$TESTS_DIR/compare_weights.py\" ff/final.h5 rf/final.h5 --rtol 1e-3 > /dev/null"

# The chunked head and loss of a large vocabulary, and an online teacher.
"$PY" "$TESTS_DIR/make_tokens.py" fx > /dev/null || exit 1
"$KD" import text --in fx/corpus.txt --ctx 16 --doc-sep % --valid-frac 0.15 --test-frac 0.15 --out c.h5 > /dev/null ||
  exit 1
G=(--data c.h5 --threads 1 --progress off --batch 16)
kdrun 2 train "${G[@]}" --student gpt:vocab=300,ctx=16,layers=1,dim=32,heads=4 --epochs 1 --optimizer adamw \
  --lr 0.003 --out tch > /dev/null || fail "gpt teacher"
kdrun 2 logits --ckpt tch --data c.h5 --dtype f32 --out tl.h5 > /dev/null || fail "kd logits"
S=(train "${G[@]}" --student gpt:vocab=300,ctx=16,layers=1,dim=16,heads=2 --epochs 1 --optimizer sgd --lr 0.5
   --temperature 2 --alpha 0.5 --log-every 1)
for dv in jsd:0.5 skew:0.1; do
  kdrun 2 "${S[@]}" --teacher tl.h5 --divergence $dv --loss-chunk 8 --out c8${dv/:/} > /dev/null || fail "$dv, chunks"
  kdrun 2 "${S[@]}" --teacher tl.h5 --divergence $dv --loss-chunk -1 --out cw${dv/:/} > /dev/null || fail "$dv, whole"
  expect "$dv: the chunked loss gives the whole batch's weights (1e-5)" \
    close c8${dv/:/}/final.h5 cw${dv/:/}/final.h5 --rtol 1e-5
done
kdrun 2 "${S[@]}" --teacher-model tch --divergence jsd:0.5 --out onj > onj.log || fail "online teacher, jsd:0.5"
expect "an online teacher with jsd:0.5 trains as its stored f32 logits (1e-5)" close onj/final.h5 c8jsd0.5/final.h5 --rtol 1e-5
expect "the banner names the JSD and its beta" grep -q 'T^2 \* JSD(beta 0.5) at T = 2' onj.log

# Refusals: one line, exit 2.
kdrun 1 logits --ckpt tch --data c.h5 --topk 8 --out k8.h5 > /dev/null || fail "kd logits --topk"
expect_usage_error "reverse with sparse teacher logits" "divergence reverse needs the teacher's probability of every id" \
  "${S[@]}" --teacher k8.h5 --divergence reverse --out bad1
expect_usage_error "a malformed --divergence" "divergence jsd:2: not forward, reverse" "${M[@]}" --divergence jsd:2 --out bad2
finish
