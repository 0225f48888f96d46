#!/usr/bin/python3
"""compare_weights.py A.h5 B.h5 (--exact | --rtol X): every /model dataset of
A equals B's bit for bit, or within X relative to the tensor's largest value."""
import sys

import h5py
import numpy as np

a_path, b_path, mode = sys.argv[1], sys.argv[2], sys.argv[3]
rtol = float(sys.argv[4]) if mode == "--rtol" else 0.0
names = []
with h5py.File(a_path, "r") as a, h5py.File(b_path, "r") as b:
    a["model"].visit(lambda n: names.append(n) if isinstance(a["model"][n], h5py.Dataset) else None)
    if not names:
        sys.exit(f"{a_path}: no datasets under /model")
    worst = 0.0
    for n in names:
        x, y = a["model"][n][()], b["model"][n][()]
        if x.shape != y.shape:
            sys.exit(f"/model/{n}: shapes {x.shape} vs {y.shape}")
        if mode == "--exact":
            if not np.array_equal(x.view(np.uint32), y.view(np.uint32)):
                sys.exit(f"/model/{n}: not bitwise equal")
        else:
            rel = float(np.max(np.abs(x.astype(np.float64) - y)) / max(np.max(np.abs(x)), 1e-30))
            worst = max(worst, rel)
            if rel > rtol:
                sys.exit(f"/model/{n}: relative difference {rel:.3g} > {rtol:g}")
print(f"{len(names)} tensors equal ({mode}{' worst %.3g' % worst if mode == '--rtol' else ''})")
