#!/usr/bin/python3
"""Reproduce `kd predict` with h5py and numpy: load a kd checkpoint (or
final.h5) and compute the student's logits for /SPLIT/x of a data file.

    python3 predict_from_checkpoint.py CKPT.h5 DATA.h5 [SPLIT] [OUT.npy]
"""
import sys

import h5py
import numpy as np
from math import erf


def load_student(path):
    """Layers as (weight [out, in], bias [out]) pairs, and the activation."""
    with h5py.File(path, "r") as f:
        sizes = [int(s) for s in f.attrs["student"].split("-")]
        layers = [(f[f"model/layer{i}/weight"][()], f[f"model/layer{i}/bias"][()])
                  for i in range(len(sizes) - 1)]
        return layers, f.attrs["activation"]


def load_preprocess(path):
    """(offset, scale) of a run trained with --normalize, or None."""
    with h5py.File(path, "r") as f:
        if "preprocess" not in f:
            return None
        return f["preprocess/offset"][()], f["preprocess/scale"][()]


def normalize(pre, x):
    """The inputs as the student reads them: (x - offset) / scale, in float32."""
    x = x.astype(np.float32)
    return x if pre is None else (x - pre[0]) / pre[1]


def forward(layers, activation, x):
    h = x.astype(np.float32)
    for i, (w, b) in enumerate(layers):
        h = h @ w.T + b                      # nn.Linear: y = x W^T + b
        if i < len(layers) - 1:
            if activation == "relu":
                h = np.maximum(h, 0)
            else:                            # exact (erf) GELU, as nn.GELU()
                h = h * 0.5 * (1 + np.vectorize(erf)(h / np.sqrt(2)).astype(np.float32))
    return h


if __name__ == "__main__":
    ckpt, data = sys.argv[1], sys.argv[2]
    split = sys.argv[3] if len(sys.argv) > 3 else "test"
    layers, act = load_student(ckpt)
    pre = load_preprocess(ckpt)
    with h5py.File(data, "r") as f:
        logits = forward(layers, act, normalize(pre, f[f"{split}/x"][()]))
    if len(sys.argv) > 4:
        np.save(sys.argv[4], logits)
    print(f"{logits.shape[0]} rows, {logits.shape[1]} classes; first row: {np.round(logits[0], 4)}")
