#!/bin/bash
# Online teachers and intermediate-layer distillation (issue 17):
#  - --teacher-model gives the same losses and weights as the same teacher's logits stored by kd logits
#    (f32), for a gpt and for an mlp;
#  - with MiniLM relations (teacher and student of different widths and head counts), TinyBERT hidden
#    states, attention maps (probabilities and scores): 2 ranks equal 1 rank to 1e-5;
#  - stop/resume bitwise across TinyBERT's two stages, the hidden-state projection resumed; a resume
#    with another teacher checkpoint is refused by its checksum;
#  - stored hidden states and attention maps (kd logits --hidden/--attn) give the online teacher's losses;
#  - a teacher of a padded vocabulary with --teacher-vocab-crop equals a file of its first logits; refusals;
#  - refused before training, on every rank, with one line and exit 2: a teacher file with --teacher-model,
#    --self-distill with it, layers out of range, head counts that cannot match, bad relation lists.
source "$(dirname "$0")/lib.sh"
"$PY" "$TESTS_DIR/make_tokens.py" fx > /dev/null || exit 1
"$KD" import text --in fx/corpus.txt --ctx 16 --doc-sep % --valid-frac 0.15 --test-frac 0.15 --out c.h5 > /dev/null ||
  exit 1

TG=(--batch 16 --threads 1 --progress off --optimizer adamw --lr 0.003)
kdrun 2 train --data c.h5 --student gpt:vocab=256,ctx=16,layers=2,dim=32,heads=4 "${TG[@]}" --epochs 1 --out tch \
  > /dev/null || fail "teacher"
kdrun 2 train --data c.h5 --student gpt:vocab=256,ctx=16,layers=2,dim=32,heads=4 "${TG[@]}" --epochs 1 --seed 7 \
  --out tch2 > /dev/null || fail "second teacher"
kdrun 2 logits --ckpt tch --data c.h5 --dtype f32 --out tl.h5 > /dev/null || fail "kd logits f32"

S2=(--data c.h5 --student gpt:vocab=256,ctx=16,layers=2,dim=16,heads=2 --threads 1 --progress off --lr 0.003
  --temperature 2 --alpha 0.5 --log-every 1 --epochs 2 --batch 16)
# Rank counts see the same rows in a step when a step is a whole epoch (each rank shuffles its own shard);
# SGD, as AdamW turns the last-bit noise of a near-zero gradient into a whole step of either sign.
W2=(--data c.h5 --student gpt:vocab=256,ctx=16,layers=2,dim=16,heads=2 --threads 1 --progress off --lr 0.5
  --optimizer sgd --temperature 2 --alpha 0.5 --log-every 1 --train-rows 32 --batch 32)
# 1. online == stored (SGD: the weights move linearly with the gradient)
kdrun 1 train "${W2[@]}" --epochs 6 --teacher tl.h5 --out st > st.log || fail "stored logits run"
kdrun 1 train "${W2[@]}" --epochs 6 --teacher-model tch:best --out on > on.log || fail "online run"
expect "online teacher (gpt) == its stored f32 logits: losses per step 1e-5" cols st on loss ce kd
expect "online teacher (gpt) == its stored f32 logits: weights 1e-5" close st/final.h5 on/final.h5 --rtol 1e-5
expect "the banner names the online teacher and its checksum" grep -q '^teacher: online gpt .* checksum [0-9a-f]\{16\}' on.log
expect "step_ms has the teacher's phase" grep -Eq '^step_ms: gather=[0-9.]+ generate=[0-9.]+ teacher=[0-9.]+ forward' on.log
# 1a. A teacher whose vocabulary is the student's padded with unused ids (300 for 256 byte ids):
# --teacher-vocab-crop 256 keeps its first 256 logits, renormalised: the same run as a file of those logits.
kdrun 2 train --data c.h5 --student gpt:vocab=300,ctx=16,layers=2,dim=32,heads=4 "${TG[@]}" --epochs 1 --out tch300 \
  > /dev/null || fail "padded teacher"
kdrun 2 logits --ckpt tch300 --data c.h5 --dtype f32 --out tl300.h5 > /dev/null || fail "its logits"
"$PY" -c "
import h5py
with h5py.File('tl300.h5') as f, h5py.File('tl256.h5', 'w') as g:
    assert f['train/logits'].shape[2] == 300
    g['train/logits'] = f['train/logits'][:, :, :256]" || fail "the first 256 logits"
kdrun 1 train "${W2[@]}" --epochs 2 --teacher tl256.h5 --out stc > /dev/null || fail "stored first 256 logits"
kdrun 1 train "${W2[@]}" --epochs 2 --teacher-model tch300 --teacher-vocab-crop 256 --out onc > onc.log ||
  fail "online, --teacher-vocab-crop"
expect "--teacher-vocab-crop 256 == the teacher's first 256 logits stored: losses 1e-5" cols stc onc loss ce kd
expect "--teacher-vocab-crop 256 == the teacher's first 256 logits stored: weights 1e-5" close stc/final.h5 onc/final.h5 \
  --rtol 1e-5
expect "the banner says the teacher is cropped" grep -q '^teacher: its first 256 of 300 logits' onc.log
later expect_usage_error "a padded teacher without --teacher-vocab-crop, the option named" "teacher-vocab-crop N" \
  train "${W2[@]}" --epochs 1 --teacher-model tch300 --out bad10
later expect_usage_error "--teacher-vocab-crop other than the student's vocabulary" "it must be the student's vocabulary" \
  train "${W2[@]}" --epochs 1 --teacher-model tch300 --teacher-vocab-crop 255 --out bad11
later expect_usage_error "--teacher-vocab-crop without an online teacher" "teacher-vocab-crop goes with --teacher-model" \
  train "${W2[@]}" --epochs 1 --teacher tl256.h5 --teacher-vocab-crop 256 --out bad12
"$KD" synth --out d.h5 --train 600 --test 100 --dim 12 --classes 4 > /dev/null || exit 1
M=(--data d.h5 --batch 32 --threads 1 --progress off --log-every 1 --epochs 1)
kdrun 1 train "${M[@]}" --student 12-32-4 --out mt > /dev/null || fail "mlp teacher"
kdrun 1 logits --ckpt mt --data d.h5 --dtype f32 --out ml.h5 > /dev/null || fail "mlp logits"
kdrun 2 train "${M[@]}" --student 12-8-4 --max-steps 5 --teacher ml.h5 --out mst > /dev/null || fail "mlp stored"
kdrun 2 train "${M[@]}" --student 12-8-4 --max-steps 5 --teacher-model mt/final.h5 --out mon > /dev/null ||
  fail "mlp online"
expect "online teacher (mlp) == its stored f32 logits" cols mst mon loss ce kd
kdrun 2 train "${M[@]}" --student 12-8-4 --max-steps 3 --teacher-model mt --labelled-fraction 0.5 --out mlf > /dev/null
expect "an online teacher teaches unlabelled rows (--labelled-fraction)" test -e mlf/final.h5
kdrun 1 train "${M[@]}" --student 12-32-4 --normalize standard --out mtn > /dev/null || fail "normalised mlp teacher"
kdrun 1 logits --ckpt mtn --data d.h5 --dtype f32 --out mln.h5 > /dev/null || fail "its logits"
kdrun 2 train "${M[@]}" --student 12-8-4 --max-steps 5 --normalize standard --teacher mln.h5 --out mnst > /dev/null
kdrun 2 train "${M[@]}" --student 12-8-4 --max-steps 5 --normalize standard --teacher-model mtn --out mnon > /dev/null
expect "a normalising teacher and student: online == kd logits (which applies the teacher's /preprocess)" \
  cols mnst mnon loss ce kd
normalised_refused() {
  kdrun 2 train "${M[@]}" --student 12-8-4 --max-steps 5 --teacher-model mtn --out mnb > mnb.log 2>&1
  expect "a teacher trained on normalised rows, a student on raw ones: refused (exit 2)" \
    test $? -eq 2 -a -n "$(grep 'reads inputs normalised as its /preprocess says (standard)' mnb.log)"
}
later normalised_refused

# 2. intermediate losses: 2 ranks == 1 rank
I=(--teacher-model tch --attn-relations q-q,k-k,v-v --hidden-map uniform --attn-weight 2 --hidden-weight 0.5)
kdrun 1 train "${W2[@]}" --epochs 5 "${I[@]}" --out r1 > r1.log || fail "relations + hidden, 1 rank"
kdrun 2 train "${W2[@]}" --epochs 5 "${I[@]}" --out r2 > /dev/null || fail "relations + hidden, 2 ranks"
expect "relations (student 16 wide, 2 heads; teacher 32, 4) + hidden states: 2 ranks == 1 rank" \
  cols r1 r2 loss kd relation hidden
expect "... weights 1e-5" close r1/final.h5 r2/final.h5 --rtol 1e-5
expect "the relation and hidden losses are logged and not zero" "$PY" -c "
import csv
r = list(csv.DictReader(open('r1/metrics.csv')))
assert all(float(x['relation']) > 0 and float(x['hidden']) > 0 for x in r), r[0]"
expect "the banner describes the terms" grep -q 'relation (MiniLM: KL of q-q k-k v-v relations, 2 relation heads, layers 2:2)' r1.log
S4=(--data c.h5 --student gpt:vocab=256,ctx=16,layers=2,dim=16,heads=4 --threads 1 --progress off --lr 0.003
  --optimizer adamw --temperature 2 --alpha 0.5 --log-every 1 --train-rows 32 --batch 32 --epochs 4 --teacher-model tch)
for k in mse mse-scores; do
  kdrun 1 train "${S4[@]}" --attn-loss $k --attn-map 1:2,2:1 --out a1 --force > /dev/null || fail "attn $k, 1 rank"
  kdrun 2 train "${S4[@]}" --attn-loss $k --attn-map 1:2,2:1 --out a2 --force > /dev/null || fail "attn $k, 2 ranks"
  expect "attention maps ($k): 2 ranks == 1 rank" cols a1 a2 loss attn
done

# 3. two stages, stop/resume bitwise
P=("${S2[@]}" --optimizer adamw --teacher-model tch --hidden-map 1:1,2:2 --attn-relations k-k --intermediate-epochs 1 --ckpt-every 3 --keep 20
  --train-rows 96)
kdrun 2 train "${P[@]}" --out u > u.log || fail "two-stage run"
kdrun 2 train "${P[@]}" --max-steps 3 --out p > /dev/null || fail "two-stage, stopped"
cp -r p pc
kdrun 2 train --resume p > /dev/null || fail "two-stage, resumed"
expect "two stages: stop/resume == uninterrupted, bitwise" close u/final.h5 p/final.h5 --exact
expect "... and the projection /aux/hidden/weight too" "$PY" -c "
import h5py, numpy as np
a = h5py.File('u/' + open('u/latest').read().strip())['aux/hidden/weight'][()]
b = h5py.File('p/' + open('p/latest').read().strip())['aux/hidden/weight'][()]
assert np.array_equal(a, b)"
expect "stage 1 trains the intermediate losses alone, stage 2 the logits alone" "$PY" -c "
import csv
r = list(csv.DictReader(open('u/metrics.csv')))
e1, e2 = [x for x in r if x['epoch'] == '1'], [x for x in r if x['epoch'] == '2']
assert e1 and e2
assert all(float(x['hidden']) > 0 and float(x['relation']) > 0 for x in e1)
assert all(float(x['hidden']) == 0 and float(x['relation']) == 0 for x in e2)"
expect "stage 1 leaves what is above the mapped layers alone: ln_f is still 1 and 0 at step 3" "$PY" -c "
import h5py, numpy as np
f = h5py.File('u/ckpt-00000003.h5')
assert f['model/transformer/ln_f/weight'][()].min() == 1 and f['model/transformer/ln_f/weight'][()].max() == 1
assert not f['model/transformer/ln_f/bias'][()].any()"
kdrun 1 train "${S2[@]}" --optimizer adamw --teacher-model tch --hidden-map 0:0 --intermediate-epochs 1 --ckpt-every 1 \
  --max-steps 2 --out h0 > /dev/null || fail "two stages on hidden state 0 alone"
expect "stage 1 on hidden state 0 trains the embeddings (and nothing above them)" "$PY" -c "
import h5py, numpy as np
a, b = h5py.File('h0/ckpt-00000001.h5')['model'], h5py.File('h0/ckpt-00000002.h5')['model']
assert not np.array_equal(a['transformer/wte/weight'][()], b['transformer/wte/weight'][()])
for n in ('transformer/h/0/attn/c_attn/weight', 'transformer/ln_f/weight'):
    assert np.array_equal(a[n][()], b[n][()]), n"
checksum_refused() {
  kdrun 2 train --resume pc --teacher-model tch2 > ck.log 2>&1
  expect "resume with another teacher: refused by its checksum" grep -q "checksum .* differs" ck.log
}
later checksum_refused

# 4. stored intermediate targets == online
if kdrun 2 logits --ckpt tch:best --data c.h5 --dtype f32 --hidden 0,1,2 --attn 1,2 --out ti.h5 > /dev/null; then
  H=(--hidden-map 0:0,1:1,2:2 --attn-loss mse --attn-map 1:1,2:2)
  ST=(--data c.h5 --student gpt:vocab=256,ctx=16,layers=2,dim=16,heads=4 "${TG[@]}" --temperature 2 --alpha 0.5
    --log-every 1 --epochs 2 --max-steps 4)
  kdrun 1 train "${ST[@]}" --teacher-model tch:best "${H[@]}" --out io > /dev/null || fail "online, maps + hidden"
  kdrun 1 train "${ST[@]}" --teacher ti.h5 "${H[@]}" --out is > /dev/null || fail "stored, maps + hidden"
  expect "stored hidden states and attention maps == the online teacher's (losses 1e-5)" cols io is loss kd attn hidden
  "$PY" -c "
import shutil, h5py, numpy as np
shutil.copy('ti.h5', 'tw.h5')
with h5py.File('tw.h5', 'r+') as f:
    n, t, d = f['train/hidden/1'].shape
    del f['train/hidden/1']
    f['train/hidden/1'] = np.zeros((n, t, d + 1), np.float32)"
  width_refused() {
    kdrun 1 train "${ST[@]}" --teacher tw.h5 "${H[@]}" --out iw > iw.log 2>&1
    expect "a stored hidden state of another width: one clear error" \
      grep -q "hidden/1 has width 33, the other stored layers 32" iw.log
  }
  later width_refused
else
  fail "kd logits --hidden --attn"
fi

# 5. refused before training, on every rank
refused() { # WHAT PATTERN ARGS... (run with later: --out refused<N>, its log refused<N>.log)
  local what=$1 pat=$2 log=refused$nlater.log
  shift 2
  kdrun 2 train "${S2[@]}" "$@" --out "refused$nlater" --force > "$log" 2>&1
  local rc=$?
  if [ $rc -eq 2 ] && grep -q -- "$pat" "$log" && ! grep -q '^epoch\|^checkpoint' "$log"; then ok "$what"
  else fail "$what (exit $rc): $(head -c 400 "$log")"; fi
}
later refused "--teacher FILE with --teacher-model" "exclude each other" --teacher tl.h5 --teacher-model tch
later refused "--self-distill with --teacher-model" "exclude each other" --self-distill --teacher-model tch
later refused "teacher layer out of range" "teacher layer 5 of the pair 2:5 is out of range" --teacher-model tch \
  --attn-relations q-q --attn-map 2:5
later refused "student layer out of range" "student layer 3" --teacher-model tch --attn-relations q-q --attn-map 3:1
later refused "mse with head counts that differ" "the student has 2 heads, the teacher 4" --teacher-model tch \
  --attn-loss mse
later refused "hidden state out of range" "hidden-map 0:9 is out of range" --teacher-model tch --hidden-map 0:9
later refused "relation heads that do not divide the widths" "relation-heads 3 must divide" --teacher-model tch \
  --attn-relations v-v --relation-heads 3
later refused "an unknown relation" "'q-k' is not one of" --teacher-model tch --attn-relations q-k
later refused "relations from stored targets" "needs the teacher's queries" --teacher tl.h5 --attn-relations q-q
settle
finish
