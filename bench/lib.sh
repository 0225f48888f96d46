# Sourced by the bench/*.sh scripts: builds kd when needed, makes a scratch directory $work (removed
# on exit) holding the synthetic set every benchmark trains on ($work/d.h5: BENCH_ROWS rows of 784
# features, 10 classes; $work/t.h5: its teacher logits), and prints the machine lines.
source "$(dirname "${BASH_SOURCE[0]}")/../launch/common.sh"
[ -x "$KD_BUILD/kd" ] || kd_build || exit 1
BENCH_ROWS=25600
work=$(mktemp -d "${TMPDIR:-/tmp}/kd-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$KD_BUILD/kd" synth --out "$work/d.h5" --teacher-out "$work/t.h5" --train $BENCH_ROWS --test 0 --dim 784 \
  --classes 10 >/dev/null || exit 1

# bench_header [EXTRA]: the OpenBLAS kernels kd runs and the host, EXTRA appended to the host line.
bench_header() {
  echo "blas: OpenBLAS $(OPENBLAS_VERBOSE=2 "$KD_BUILD/kd" --version 2>&1 >/dev/null | sed -n 's/^Core: //p') kernels${OPENBLAS_CORETYPE:+ (OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE)}"
  echo "host: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')${1:+; $1}"
}

# bench_tokens V T [N]: $work/g.h5, N (default 1,024) training rows (and 16 test rows) of T random token ids
# below V, and $work/gt.h5, their float16 teacher logits [N, T, V] (the GPT benchmarks' set).
bench_tokens() {
  /usr/bin/python3 - "$work" "$1" "$2" "${3:-1024}" <<'PY'
import sys, h5py, numpy as np
work, V, T, N = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = np.random.default_rng(1)
with h5py.File(f"{work}/g.h5", "w") as f:
    for split, n in (("train", N), ("test", 16)):
        f[f"{split}/tokens"] = rng.integers(0, V, size=(n, T)).astype(np.int32)
with h5py.File(f"{work}/gt.h5", "w") as f:
    f["train/logits"] = (3 * rng.normal(size=(N, T, V))).astype(np.float16)
PY
}
