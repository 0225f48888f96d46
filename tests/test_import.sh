#!/bin/bash
# kd import idx: a round trip on small IDX files the test writes (plain and gzip), and malformed or
# mismatched files rejected with a clear error and exit 1.
source "$(dirname "$0")/lib.sh"
"$PY" "$TESTS_DIR/make_idx.py" idx || exit 1
for ext in idx idx.gz; do
  "$KD" import idx --images "idx/img.$ext" --labels "idx/lab.$ext" --test-images idx/test_img.idx.gz \
    --test-labels idx/test_lab.idx.gz --out "d_$ext.h5" >/dev/null || fail "import ($ext)"
  expect "round trip ($ext)" "$PY" -c "
import h5py, numpy as np
f = h5py.File('d_$ext.h5', 'r')
x, y = np.load('idx/x.npy'), np.load('idx/y.npy')
assert f['train/x'].dtype == np.float32 and f['train/x'].shape == (13, 20)
assert np.array_equal(f['train/x'][()], x), 'x differs'
assert np.array_equal(f['train/y'][()], y), 'y differs'
assert np.array_equal(f['test/x'][()], x[:6]) and np.array_equal(f['test/y'][()], y[:6])
assert f['train/x'][()].max() <= 1.0 and f['train/x'][()].min() >= 0.0
"
done
bad() { # bad NEEDLE IMAGES LABELS
  local out rc
  out=$("$KD" import idx --images "$2" --labels "$3" --out bad.h5 2>&1)
  rc=$?
  if [ $rc -eq 1 ] && printf '%s' "$out" | grep -qF -- "$1" && [ ! -e bad.h5 ]; then
    ok "rejected: $1"
  else
    fail "wanted exit 1 naming '$1' and no output file; got $rc: $out"
  fi
}
bad "not an IDX file" idx/bad_magic.idx idx/lab.idx
bad "element type 0x0c is not supported" idx/bad_type.idx idx/lab.idx
bad "truncated IDX file" idx/truncated.idx idx/lab.idx
bad "data continues past" idx/trailing.idx idx/lab.idx
bad "has 13 images but" idx/img.idx idx/lab_short.idx
bad "needs at least 2 dimensions" idx/img_1d.idx idx/lab.idx
bad "No such file" idx/none.idx idx/lab.idx
out=$("$KD" import idx --images idx/img.idx --labels idx/lab.idx 2>&1)
expect "missing --out is a usage error" test $? -eq 2
finish
