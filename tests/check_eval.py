#!/usr/bin/python3
"""check_eval.py CKPT DATA TEACHER PREDICTED.h5 EVAL.json T

Independent check of kd predict and kd eval: the h5py example's logits
(docs/examples/predict_from_checkpoint.py) must equal kd predict's, and
accuracy, NLL, ECE (15 bins), teacher agreement and KL(teacher || student) at
T computed here in float64 must equal kd eval --json's."""
import json
import os
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "docs", "examples"))
from predict_from_checkpoint import forward, load_preprocess, load_student, normalize  # noqa: E402

ckpt, data, teacher, predicted, ev_path, T = sys.argv[1:7]
T = float(T)
layers, act = load_student(ckpt)
with h5py.File(data, "r") as f:
    x, y = f["test/x"][()], f["test/y"][()]
mine = forward(layers, act, normalize(load_preprocess(ckpt), x))
with h5py.File(predicted, "r") as f:
    theirs = f["test/logits"][()]
assert theirs.shape == mine.shape, (theirs.shape, mine.shape)
err = np.max(np.abs(theirs - mine)) / max(1.0, np.max(np.abs(mine)))
assert err < 1e-5, f"kd predict differs from the h5py example by {err:g}"

z = theirs.astype(np.float64)
with h5py.File(teacher, "r") as f:
    zt = f["test/logits"][()].astype(np.float64)


def log_softmax(a):
    a = a - a.max(axis=1, keepdims=True)
    return a - np.log(np.exp(a).sum(axis=1, keepdims=True))


lp = log_softmax(z)
pred = z.argmax(1)
acc = float(np.mean(pred == y))
nll = float(-np.mean(lp[np.arange(len(y)), y]))
conf = np.exp(lp.max(1))
bins = np.minimum((conf * 15).astype(int), 14)
ece = 0.0
for b in range(15):
    m = bins == b
    if m.any():
        ece += abs(np.sum(pred[m] == y[m]) - np.sum(conf[m])) / len(y)
agree = float(np.mean(zt.argmax(1) == pred))
lps, lpt = log_softmax(z / T), log_softmax(zt / T)
kl = float(np.mean(np.sum(np.exp(lpt) * (lpt - lps), axis=1)))
with open(ev_path) as f:
    got = json.load(f)
want = {"accuracy": acc, "nll": nll, "ece": ece, "agreement": agree, "kl": kl, "n": len(y)}
for k, v in want.items():
    assert abs(got[k] - v) <= 1e-6 * max(1.0, abs(v)), f"{k}: kd eval {got[k]}, independent {v}"
print("kd predict == h5py example (max rel diff %.2g); kd eval == independent metrics: %s" % (err, want))
