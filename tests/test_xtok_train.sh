#!/bin/bash
# Training across two tokenizers (issue 33): kd train --teacher-model T --cross-tokenizer uld|exact|hybrid on a
# file imported with --teacher-tokenizer; the online teacher reads the file's teacher rows.
#  - one tokenizer on both sides (bytes/bytes): --cross-tokenizer exact is the ordinary online KD run (losses
#    and weights 1e-5, forward and reverse KL);
#  - a byte student and a kd BPE teacher (320 ids): each loss brings the student's soft term down; 2 ranks == 1
#    rank (losses and weights 1e-5); stopped and resumed, bitwise;
#  - refused with one line: the teacher of the other tokenizer without the option (exit 2, naming it), the option
#    without an online teacher, with --on-policy, streamed, on a file without teacher rows (exit 2), a teacher
#    checkpoint of another tokenizer than /teacher_tokenizer, offsets that do not increase, teacher rows past
#    the student's bytes, a teacher id past the teacher's vocabulary, a resume on other teacher rows (exit 1);
#  - kd logits --rows teacher: a teacher's logits of the file's teacher rows [N, Tt, Vt], equal to kd logits on
#    a file holding those rows; refused on a file without them.
source "$(dirname "$0")/lib.sh"
"$PY" "$TESTS_DIR/make_tokens.py" fx > /dev/null || exit 1
imp() { "$KD" import text --in fx/corpus.txt --doc-sep % --valid-frac 0.1 --test-frac 0.1 "$@" > /dev/null; }
imp --ctx 32 --tokenizer bpe:320 --out tdata.h5 || fail "the teacher's data"
imp --ctx 32 --tokenizer bytes --teacher-tokenizer kd:tdata.h5 --out x.h5 || fail "bytes student, bpe teacher"
imp --ctx 16 --tokenizer bytes --teacher-tokenizer bytes --out bb.h5 || fail "bytes on both sides"
imp --ctx 16 --tokenizer bytes --out plain.h5 || fail "no teacher rows"
G=(--threads 1 --progress off --optimizer adamw --lr 0.003 --batch 16)
kdrun 2 train --data tdata.h5 --student gpt:vocab=320,ctx=32,layers=2,dim=32,heads=4 "${G[@]}" --epochs 4 --out tch \
  > /dev/null || fail "bpe teacher"
kdrun 2 train --data bb.h5 --student gpt:vocab=256,ctx=16,layers=2,dim=32,heads=4 "${G[@]}" --epochs 1 --out tb \
  > /dev/null || fail "bytes teacher"

# 1. One tokenizer: exact == ordinary KD (the identity map; every target aligned with its own position).
W=(--student gpt:vocab=256,ctx=16,layers=2,dim=16,heads=2 --threads 1 --progress off --lr 0.5 --optimizer sgd
  --temperature 2 --alpha 0.3 --log-every 1 --train-rows 32 --batch 32 --epochs 4)
for div in forward reverse; do
  kdrun 1 train --data bb.h5 "${W[@]}" --teacher-model tb --divergence $div --out kd_$div > /dev/null ||
    fail "online KD, $div"
  kdrun 1 train --data bb.h5 "${W[@]}" --teacher-model tb --divergence $div --cross-tokenizer exact --out ex_$div \
    > ex_$div.log || fail "--cross-tokenizer exact, $div"
  expect "one tokenizer, $div: --cross-tokenizer exact == online KD (losses 1e-5)" cols kd_$div ex_$div loss ce kd
  expect "one tokenizer, $div: --cross-tokenizer exact == online KD (weights 1e-5)" \
    close kd_$div/final.h5 ex_$div/final.h5 --rtol 1e-5
done
expect "the banner says one tokenizer, every target aligned" \
  grep -q '^teacher: another tokenizer .*exact at aligned positions: 100.0% of the student' ex_forward.log

# 2. A bpe teacher of a byte student: each loss learns; 2 ranks == 1 (a step is the whole epoch).
X=(--data x.h5 --student gpt:vocab=256,ctx=32,layers=2,dim=16,heads=2 --threads 1 --progress off --lr 0.5
  --optimizer sgd --temperature 2 --alpha 0.3 --log-every 1 --train-rows 32 --batch 32 --epochs 6 --teacher-model tch)
for k in uld exact hybrid; do
  kdrun 1 train "${X[@]}" --cross-tokenizer $k --out one_$k > one_$k.log || fail "$k, 1 rank"
  kdrun 2 train "${X[@]}" --cross-tokenizer $k --out two_$k > /dev/null || fail "$k, 2 ranks"
  expect "$k: 2 ranks == 1 rank (losses 1e-5)" cols one_$k two_$k loss ce kd
  expect "$k: 2 ranks == 1 rank (weights 1e-5)" close one_$k/final.h5 two_$k/final.h5 --rtol 1e-5
  expect "$k: the soft term comes down over 6 steps" "$PY" -c "
import csv
r = list(csv.DictReader(open('one_$k/metrics.csv')))
r = [x for x in r if x['kd']]
assert float(r[-1]['kd']) < float(r[0]['kd']), (r[0]['kd'], r[-1]['kd'])"
done
expect "the banner reports the aligned share and the shared ids" grep -Eq \
  '^teacher: another tokenizer \(gpt, 320 ids; rows of [0-9]+ tokens\), --cross-tokenizer uld at aligned positions: [1-9][0-9.]*% ' \
  one_uld.log
expect "... 256 ids spelt the same" grep -q '^teacher: 256 ids spelt the same by both vocabularies' one_uld.log

# 3. Stopped and resumed, bitwise.
R=(--data x.h5 --student gpt:vocab=256,ctx=32,layers=2,dim=16,heads=2 --threads 1 --progress off --lr 0.003
  --temperature 2 --alpha 0.3 --batch 16 --epochs 2 --train-rows 128 --ckpt-every 5 --teacher-model tch
  --cross-tokenizer hybrid)
kdrun 2 train "${R[@]}" --out rf > /dev/null || fail "hybrid, whole"
kdrun 2 train "${R[@]}" --out rh --max-steps 12 > /dev/null || fail "hybrid, stopped"
kdrun 2 train --resume rh > /dev/null || fail "hybrid, resumed"
expect "hybrid: stopped and resumed, bitwise" close rf/final.h5 rh/final.h5 --exact
cp x.h5 xr.h5 || fail "copy"
kdrun 2 train "${R[@]/x.h5/xr.h5}" --out rs --max-steps 4 > /dev/null || fail "hybrid, stopped on xr.h5"
imp --ctx 32 --tokenizer bytes --teacher-tokenizer kd:tdata.h5 --teacher-ctx 12 --force --out xr.h5 ||
  fail "xr.h5 imported again, teacher rows of 12"
out=$(kdrun 2 train --resume rs 2>&1)
rc=$?
expect "a resume on the same student rows with other teacher rows: exit 1 (got $rc)" test "$rc" -eq 1
expect "... one line naming the teacher rows" test "$(grep -c "/train rows and their teacher rows differ" <<< "$out")" -eq 1

# 4. kd logits --rows teacher: the teacher's logits of the teacher rows, as kd logits gives them on a file whose
# rows are those tokens.
kdrun 2 logits --ckpt tch --data x.h5 --rows teacher --out trl.h5 --progress off > /dev/null || fail "--rows teacher"
"$PY" -c "
import h5py
s, d = h5py.File('x.h5'), h5py.File('trows.h5', 'w')
for k in ('train', 'valid', 'test'):
    d[k + '/tokens'] = s[k + '/teacher_tokens'][()]
    d[k + '/mask'] = s[k + '/teacher_mask'][()]" || fail "the teacher rows as a file"
kdrun 2 logits --ckpt tch --data trows.h5 --out trl_ref.h5 --progress off > /dev/null || fail "logits of trows.h5"
expect "--rows teacher: the logits of the teacher rows, [N, Tt, 320], named as such" "$PY" -c "
import h5py, numpy as np, os
a, b, x = h5py.File('trl.h5'), h5py.File('trl_ref.h5'), h5py.File('x.h5')
assert a.attrs['source_rows'] == 'teacher' and a.attrs['source_data'] == 'x.h5', dict(a.attrs)
for k in ('train', 'valid', 'test'):
    assert a[k + '/logits'].shape == x[k + '/teacher_tokens'].shape + (320,), a[k + '/logits'].shape
    assert np.array_equal(a[k + '/logits'][()], b[k + '/logits'][()]), k
"
expect_usage_error "--rows teacher on a file without teacher rows" "plain.h5 has no teacher rows" \
  logits --ckpt tb --data plain.h5 --rows teacher --out bad.h5
mkdir -p views
out=$(TMPDIR=$PWD/views kdrun 2 logits --ckpt tb --data x.h5 --rows teacher --out bad.h5 --progress off 2>&1)
rc=$?
expect "--rows teacher, a teacher that cannot read the teacher rows: exit 1 (got $rc)" test "$rc" -eq 1
expect "... one line naming the data file's teacher rows or record, not the temporary view" test \
  "$(grep -Ec "x.h5: /(train/teacher_tokens|teacher_tokenizer) " <<< "$out")" -eq 1 -a "$(grep -c teacher-rows- <<< "$out")" -eq 0
expect "... no view left behind, no output" test -z "$(ls views)" -a ! -e bad.h5

# 5. Refusals.
B=(train --data x.h5 --student gpt:vocab=256,ctx=32,layers=2,dim=16,heads=2 --threads 1 --progress off --epochs 1)
later expect_usage_error "a teacher of the other tokenizer without --cross-tokenizer" \
  "reads the tokens of x.h5's /teacher_tokenizer, not the student's /tokenizer: add --cross-tokenizer" \
  "${B[@]}" --teacher-model tch --out bad1
later expect_usage_error "--cross-tokenizer without an online teacher" "cross-tokenizer uld: it needs --teacher-model" \
  "${B[@]}" --cross-tokenizer uld --out bad2
later expect_usage_error "--cross-tokenizer with --on-policy" "cross-tokenizer uld: --on-policy" \
  "${B[@]}" --teacher-model tch --cross-tokenizer uld --on-policy 0.5 --out bad3
later expect_usage_error "--cross-tokenizer streamed" "holds the shard's teacher rows in memory" \
  "${B[@]}" --teacher-model tch --cross-tokenizer uld --stream on --out bad4
later expect_usage_error "--cross-tokenizer on a file without teacher rows" "plain.h5 has no /train/teacher_tokens" \
  train --data plain.h5 --student gpt:vocab=256,ctx=16,layers=1,dim=16,heads=2 --threads 1 --progress off \
  --teacher-model tb --cross-tokenizer exact --out bad5
expect_data_error() { expect_exit 1 "$@"; } # exit 1 (data) and one line naming it
later expect_data_error "a teacher checkpoint of another tokenizer than /teacher_tokenizer" \
  "its /tokenizer (bytes, 256 ids) is not the /teacher_tokenizer of x.h5" \
  "${B[@]}" --teacher-model tb --cross-tokenizer uld --out bad6
spoil() { # spoil OUT PYTHON: a copy of x.h5 with one change
  cp x.h5 "$1" && "$PY" -c "import h5py, numpy as np
f = h5py.File('$1', 'r+')
$2" || fail "spoil $1"
}
spoil dec.h5 "o = f['train/offsets']; r = o[5]; r[3] = r[2]; o[5] = r"
later expect_data_error "student offsets that do not increase" "dec.h5: /train/offsets row 5 position 3" \
  "${B[@]/x.h5/dec.h5}" --teacher-model tch --cross-tokenizer uld --out bad7
spoil past.h5 "o = f['train/teacher_offsets']; r = o[7]; n = int((r > 0).sum()); r[n - 1] = 10**6; o[7] = r"
later expect_data_error "teacher rows past the student row's bytes" \
  "past.h5: /train/teacher_offsets row 7: its last teacher token ends at byte 1000000" \
  "${B[@]/x.h5/past.h5}" --teacher-model tch --cross-tokenizer uld --out bad8
spoil big.h5 "t = f['train/teacher_tokens']; a = t[:].astype(np.int32); del f['train/teacher_tokens']
a[9, 0] = 999; f['train/teacher_tokens'] = a"
later expect_data_error "a teacher id past the teacher's vocabulary" \
  "big.h5: /train/teacher_tokens row 9 position 0 is 999, outside the teacher's vocabulary \[0, 320)" \
  "${B[@]/x.h5/big.h5}" --teacher-model tch --cross-tokenizer uld --out bad9
settle
finish
