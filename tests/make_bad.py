#!/usr/bin/python3
"""make_bad.py DIR: a good data/teacher pair and one broken variant per case of test_badinput.
Rank 1 of 2 holds rows 100..199, so 'rank 1 only' problems sit at row 150."""
import os
import shutil
import sys

import h5py
import numpy as np

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(11)
N, D, C = 200, 8, 3
x = rng.normal(size=(N, D)).astype(np.float32)
y = rng.integers(0, C, size=N).astype(np.int32)
logits = rng.normal(size=(N, C)).astype(np.float32)


def p(name):
    return os.path.join(out, name)


def data(name, x=x, y=y, **extra):
    with h5py.File(p(name), "w") as f:
        if x is not None:
            f["train/x"] = x
        if y is not None:
            f["train/y"] = y
        for k, v in extra.items():
            f[k.replace("__", "/")] = v


def teacher(name, lg=logits, **extra):
    with h5py.File(p(name), "w") as f:
        f["train/logits"] = lg
        for k, v in extra.items():
            f[k.replace("__", "/")] = v


data("good.h5")
teacher("teacher.h5")
with open(p("not_hdf5.h5"), "w") as f:
    f.write("plain text, not HDF5\n")
shutil.copy(p("good.h5"), p("truncated.h5"))
os.truncate(p("truncated.h5"), os.path.getsize(p("good.h5")) // 2)
data("no_y.h5", y=None)
data("x_1d.h5", x=x[:, 0].copy())
data("x_3d.h5", x=x.reshape(N, 2, 4))
data("y_short.h5", y=y[:-1])
teacher("logits_short.h5", lg=logits[:-5])
bad = y.copy(); bad[150] = C
data("label_big.h5", y=bad)
bad = y.copy(); bad[150] = -3
data("label_neg.h5", y=bad)
bad = y.copy(); bad[150] = -1
data("label_unlabelled.h5", y=bad)
teacher("logits_c4.h5", lg=rng.normal(size=(N, 4)).astype(np.float32))
data("x_width9.h5", x=rng.normal(size=(N, 9)).astype(np.float32))
bad = x.copy(); bad[150, 3] = np.nan
data("x_nan.h5", x=bad)
bad = x.copy(); bad[150, 3] = np.inf
data("x_inf.h5", x=bad)
bad = logits.copy(); bad[150, 1] = np.nan
teacher("logits_nan.h5", lg=bad)
bad = logits.astype(np.float64); bad[150, 1] = 1e300  # beyond float32: infinite once read
teacher("logits_inf.h5", lg=bad)
data("empty.h5", x=np.zeros((0, D), np.float32), y=np.zeros(0, np.int32))
data("one_row.h5", x=x[:1], y=y[:1])
bad = y.astype(np.float32); bad[150] = 1.5
data("label_fraction.h5", y=bad)
