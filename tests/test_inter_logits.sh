#!/bin/bash
# kd logits --hidden / --attn: a gpt teacher's hidden states /SPLIT/hidden/{l} [N, T, D] and attention
# probabilities /SPLIT/attn/{l} [N, H, T, T], usage: test_inter_logits.sh [KD] (else $KD).
#  - the datasets of every split, with their shapes, the dtype of --dtype and the groups' `layers`;
#  - 2 ranks write the same file as 1 rank, in rounds and messages of a few rows (uneven shards), with
#    the logits of a plain kd logits;
#  - attention rows sum to 1 over j <= i and are 0 beyond; hidden state 0 is wte[tokens] + wpe[positions]
#    of the checkpoint (1e-5); ln_f of hidden state L through the tied head gives the logits written (1e-4);
#  - f16 is the f32 tensors rounded to float16;
#  - bad --hidden / --attn lists and a non-gpt teacher: exit 2, one line, no file.
[ $# -ge 1 ] && KD=$1
source "$(dirname "$0")/lib.sh"

# 37 training rows (odd: uneven shards on 2 ranks), 11 valid, 9 test, of T = 12 positions over a vocabulary
# of 50, teacher ctx 16 (longer than the rows).
"$PY" - <<'EOF' || exit 1
import h5py, numpy as np
rng = np.random.default_rng(5)
with h5py.File("d.h5", "w") as f:
    for s, n in (("train", 37), ("valid", 11), ("test", 9)):
        f[s + "/tokens"] = rng.integers(0, 50, size=(n, 12)).astype(np.int32)
        m = np.ones((n, 12), np.uint8); m[:, 0] = 0; m[n // 2:, 9:] = 0
        f[s + "/mask"] = m
EOF
timeout -k 5 120 "$KD" train --data d.h5 --student gpt:vocab=50,ctx=16,layers=2,dim=24,heads=3 --batch 8 --epochs 1 --max-steps 3 \
  --optimizer adamw --lr 0.01 --threads 1 --progress off --out teach > teach.log 2>&1 || {
  fail "training the teacher: $(tail -3 teach.log)"
  finish
  exit 1
}

export KD_LOGITS_ROUND_ROWS=4 KD_LOGITS_CHUNK_ROWS=3 # many rounds, many messages
L=(logits --ckpt teach --data d.h5 --hidden 0,2 --attn 1,2 --batch 3)
kdrun 1 "${L[@]}" --dtype f32 --out t1.h5 > /dev/null || fail "kd logits --hidden --attn on 1 rank"
kdrun 2 "${L[@]}" --dtype f32 --out t2.h5 > /dev/null || fail "kd logits --hidden --attn on 2 ranks"
kdrun 2 "${L[@]}" --dtype f16 --out t16.h5 > /dev/null || fail "kd logits --hidden --attn --dtype f16 on 2 ranks"
unset KD_LOGITS_ROUND_ROWS KD_LOGITS_CHUNK_ROWS
timeout -k 5 60 "$KD" logits --ckpt teach --data d.h5 --dtype f32 --out t0.h5 > /dev/null || fail "kd logits alone"

expect "shapes, dtypes and layers of /SPLIT/hidden/{0,2} and /SPLIT/attn/{1,2}" "$PY" -c "
import h5py
d = h5py.File('d.h5')
for p, dt in (('t1.h5', 'float32'), ('t2.h5', 'float32'), ('t16.h5', 'float16')):
    f = h5py.File(p)
    for s in ('train', 'valid', 'test'):
        N, T = d[s + '/tokens'].shape
        assert f[s + '/logits'].shape == (N, T, 50) and f[s + '/logits'].dtype == dt, (p, s)
        assert sorted(f[s + '/hidden']) == ['0', '2'] and sorted(f[s + '/attn']) == ['1', '2'], (p, s)
        for l in ('0', '2'):
            assert f[s + '/hidden/' + l].shape == (N, T, 24) and f[s + '/hidden/' + l].dtype == dt, (p, s, l)
        for l in ('1', '2'):
            assert f[s + '/attn/' + l].shape == (N, 3, T, T) and f[s + '/attn/' + l].dtype == dt, (p, s, l)
        for g in ('hidden', 'attn'):
            assert int(f[s + '/' + g].attrs['layers']) == 2, (p, s, g)
"
expect "2 ranks write the same file as 1 rank (every dataset bitwise)" "$PY" -c "
import h5py, numpy as np
a, b = h5py.File('t1.h5'), h5py.File('t2.h5')
names = []
a.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
assert len(names) == 15, names
for n in names:
    assert np.array_equal(a[n][()], b[n][()]), n
"
expect "the logits are those of kd logits without --hidden/--attn (bitwise)" "$PY" -c "
import h5py, numpy as np
a, b = h5py.File('t0.h5'), h5py.File('t2.h5')
assert sorted(a) == ['test', 'train', 'valid'] and all(list(a[s]) == ['logits'] for s in a)
for s in a:
    assert np.array_equal(a[s + '/logits'][()], b[s + '/logits'][()]), s
"
expect "attention rows sum to 1 over j <= i and are 0 beyond" "$PY" -c "
import h5py, numpy as np
f = h5py.File('t2.h5')
for s in ('train', 'valid', 'test'):
    for l in ('1', '2'):
        a = f[s + '/attn/' + l][()].astype(np.float64)
        T = a.shape[-1]
        low = np.tril(np.ones((T, T), bool))
        assert np.all(a[..., ~low] == 0), (s, l)
        assert np.all(a >= 0), (s, l)
        assert np.abs(a.sum(-1) - 1).max() < 1e-5, (s, l, np.abs(a.sum(-1) - 1).max())
        assert a[..., 1:, :].max() < 1, (s, l)   # not all on one key: a real softmax
"
expect "hidden state 0 == wte[tokens] + wpe[positions]; ln_f(hidden L) @ wte^T == the logits" "$PY" -c "
import h5py, numpy as np
f, d = h5py.File('t2.h5'), h5py.File('d.h5')
ck = h5py.File(f.attrs['source_checkpoint'])
wte, wpe = ck['model/transformer/wte/weight'][()], ck['model/transformer/wpe/weight'][()]
g, b = ck['model/transformer/ln_f/weight'][()], ck['model/transformer/ln_f/bias'][()]
for s in ('train', 'valid', 'test'):
    tok = d[s + '/tokens'][()]
    want = wte[tok] + wpe[np.arange(tok.shape[1])]
    err = np.abs(f[s + '/hidden/0'][()] - want).max()
    assert err < 1e-5, (s, err)
    h = f[s + '/hidden/2'][()].astype(np.float64)
    ln = (h - h.mean(-1, keepdims=True)) / np.sqrt(h.var(-1, keepdims=True) + 1e-5) * g + b
    err = np.abs(ln @ wte.T - f[s + '/logits'][()]).max()
    assert err < 1e-4, (s, err)
"
expect "--dtype f16: the f32 hidden states and attention maps rounded to float16" "$PY" -c "
import h5py, numpy as np
a, b = h5py.File('t1.h5'), h5py.File('t16.h5')
for s in ('train', 'valid', 'test'):
    for n in ('hidden/0', 'hidden/2', 'attn/1', 'attn/2'):
        x, y = a[s + '/' + n][()], b[s + '/' + n][()]
        assert np.array_equal(x.astype(np.float16), y), (s, n, np.abs(x - y.astype(np.float32)).max())
"

# Usage errors: exit 2, one line naming the value, before anything is written.
bad() { # bad NP NEEDLE ARGS...: on NP ranks (0: kd alone, a singleton MPI process)
  local np=$1 needle=$2
  shift 2
  local out rc run=(timeout -k 2 20 "$MPIEXEC" -q -np "$np" --oversubscribe --bind-to none "$KD") where="$np ranks"
  [ "$np" -eq 0 ] && run=(timeout -k 2 20 "$KD") where="kd alone"
  rm -f bad.h5
  out=$("${run[@]}" "$@" --out bad.h5 2>&1 >/dev/null)
  rc=$?
  if [ $rc -eq 2 ] && [ "$(grep -c '^kd: error' <<<"$out")" -eq 1 ] && grep -qF -- "$needle" <<<"$out" &&
    [ -z "$(ls -A . | grep -F bad.h5)" ]; then
    ok "bad, $where: exit 2, '$needle', no file"
  else fail "bad, $where: wanted exit 2 and '$needle', no bad.h5, got $rc: $out"; fi
}
bad 2 "--attn 9: layer 9 is out of range: the teacher" logits --ckpt teach --data d.h5 --attn 9
bad 0 "--attn 0: layer 0 is out of range" logits --ckpt teach --data d.h5 --attn 0
bad 0 "--hidden 0,3: layer 3 is out of range" logits --ckpt teach --data d.h5 --hidden 0,3
bad 0 "--hidden 0,,1: not a list of layer numbers" logits --ckpt teach --data d.h5 --hidden 0,,1
bad 0 "--attn 1,x: not a list of layer numbers" logits --ckpt teach --data d.h5 --attn 1,x
bad 0 "--hidden 1,1: layer 1 is listed twice" logits --ckpt teach --data d.h5 --hidden 1,1
"$KD" synth --out feat.h5 --train 40 --test 0 --dim 6 --classes 3 > /dev/null || fail "kd synth"
"$KD" train --data feat.h5 --student 6-8-3 --batch 8 --epochs 1 --max-steps 1 --threads 1 --progress off \
  --out mlp > /dev/null 2>&1 || fail "training an mlp"
bad 0 "--hidden is for Transformer teachers" logits --ckpt mlp --data feat.h5 --hidden 1
finish
