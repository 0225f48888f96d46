#!/bin/bash
# The teacher pipeline end to end on 2 ranks: a teacher trained on synthetic data, its logits written
# by kd logits (parallel) equal to kd predict's (1 rank), a student distilled from them; teacher files
# for other data refused on every rank with exit 1 (row count, fingerprint); an h5py-written teacher
# file accepted with a notice; unlabelled rows (semi-supervised) train, and are refused without a teacher.
source "$(dirname "$0")/lib.sh"
"$KD" synth --out d.h5 --train 8000 --test 1000 --dim 32 --classes 6 --seed 5 >/dev/null || exit 1
"$KD" synth --out other.h5 --train 8000 --test 1000 --dim 32 --classes 6 --seed 6 >/dev/null || exit 1
kdrun 2 train --data d.h5 --student 32-256-256-6 --dropout 0.2 --epochs 4 --val-rows 1000 --threads 1 \
  --progress off --out teacher > teacher.log || fail "teacher training"
kdrun 2 logits --ckpt teacher:best --data d.h5 --out t.h5 > logits.log || fail "kd logits"
kdrun 1 predict --ckpt teacher:best --data d.h5 --out p_test.h5 > /dev/null || fail "kd predict test"
kdrun 1 predict --ckpt teacher:best --data d.h5 --split train --out p_train.h5 > /dev/null || fail "kd predict train"
expect "kd logits on 2 ranks == kd predict on 1 rank" "$PY" -c "
import h5py, numpy as np
t = h5py.File('t.h5', 'r')
for split, p in (('train', 'p_train.h5'), ('test', 'p_test.h5')):
    a, b = t[split + '/logits'][()], h5py.File(p, 'r')[split + '/logits'][()]
    assert a.shape == b.shape, (split, a.shape, b.shape)
    err = np.max(np.abs(a - b)) / max(1.0, np.max(np.abs(b)))
    assert err < 1e-5, (split, err)
assert t.attrs['rows_train'] == 8000 and t.attrs['rows_test'] == 1000
assert t.attrs['source_checkpoint'].startswith('teacher/ckpt-') and len(t.attrs['data_fingerprint']) == 16
"
# Under load: 4 ranks on 2 cores, messages of 7 rows: the same file.
KD_LOGITS_CHUNK_ROWS=7 kdrun 4 logits --ckpt teacher:best --data d.h5 --out t4.h5 > /dev/null || fail "kd logits, 4 ranks"
expect "kd logits on 4 oversubscribed ranks in 7-row messages == on 2 ranks" "$PY" -c "
import h5py, numpy as np
a, b = h5py.File('t.h5', 'r'), h5py.File('t4.h5', 'r')
for s in ('train', 'test'):
    x, y = a[s + '/logits'][()], b[s + '/logits'][()]
    assert np.max(np.abs(x - y)) <= 1e-5 * max(1.0, np.max(np.abs(x))), s
"
kdrun 2 train --data d.h5 --teacher t.h5 --student 32-16-6 --epochs 4 --val-rows 1000 --threads 1 --progress off \
  --out student > student.log || fail "student distillation"
expect "student reports teacher agreement" grep -q "test_agreement=0\.[0-9]*" student.log
expect "kd teacher file: no provenance notice" test "$(grep -c 'carries no data fingerprint' student.log)" -eq 0

# Other data of the same shape: the fingerprint tells.
out=$(kdrun 2 train --data other.h5 --teacher t.h5 --student 32-16-6 --epochs 1 --out o1 2>&1 >/dev/null)
rc=$?
expect "teacher for other data: exit 1 (got $rc)" test $rc -eq 1
expect "teacher for other data: named" grep -q "computed from other data" <<<"$out"
# Other row count.
"$KD" synth --out short.h5 --train 7000 --test 1000 --dim 32 --classes 6 --seed 5 >/dev/null
out=$(kdrun 2 train --data short.h5 --teacher t.h5 --student 32-16-6 --epochs 1 --out o2 2>&1 >/dev/null)
rc=$?
expect "teacher with another row count: exit 1 (got $rc)" test $rc -eq 1
expect "row counts named" grep -q "has 8000 rows but /train/x in short.h5 has 7000" <<<"$out"
# A teacher file written with h5py (no fingerprint): accepted with a notice.
"$PY" -c "
import h5py
with h5py.File('t.h5', 'r') as a, h5py.File('plain.h5', 'w') as b:
    b['train/logits'] = a['train/logits'][()].astype('float64')
"
kdrun 2 train --data d.h5 --teacher plain.h5 --student 32-16-6 --epochs 1 --threads 1 --progress off \
  --out plain > plain.log || fail "h5py teacher file"
expect "h5py teacher file: one notice" test "$(grep -c 'carries no data fingerprint' plain.log)" -eq 1
# Semi-supervised: labels on 5% of rows, teacher logits on all.
kdrun 2 train --data d.h5 --teacher t.h5 --student 32-16-6 --epochs 2 --labelled-fraction 0.05 --threads 1 \
  --progress off --out semi > semi.log || fail "semi-supervised run"
expect "semi-supervised run ends" grep -q "^final: " semi.log
out=$(kdrun 2 train --data d.h5 --student 32-16-6 --labelled-fraction 0.05 --out semi2 2>&1 >/dev/null)
expect "unlabelled rows without a teacher: exit 2" test $? -eq 2
"$PY" -c "
import h5py
with h5py.File('d.h5', 'r') as a, h5py.File('neg.h5', 'w') as b:
    b['train/x'] = a['train/x'][()]
    y = a['train/y'][()]
    y[17] = -1
    b['train/y'] = y
    z = y.copy(); z[17] = -2
    with h5py.File('neg2.h5', 'w') as c:
        c['train/x'] = a['train/x'][()]
        c['train/y'] = z
"
out=$(kdrun 2 train --data neg.h5 --student 32-16-6 --epochs 1 --out n1 2>&1 >/dev/null)
expect "-1 without a teacher: exit 1" test $? -eq 1
expect "-1 without a teacher: named" grep -q "row 17 is -1 (unlabelled), which needs a teacher" <<<"$out"
cp t.h5 t_neg.h5
out=$(kdrun 2 train --data neg2.h5 --teacher t_neg.h5 --student 32-16-6 --epochs 1 --out n2 2>&1 >/dev/null)
expect "label -2: exit 1" test $? -eq 1
expect "label -2: named" grep -q "holds label -2" <<<"$out"
finish
