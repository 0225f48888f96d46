#!/usr/bin/python3
"""make_tokens.py DIR: fixtures of the gpt tests, written with h5py as a PyTorch
user would: a text corpus of marked documents (corpus.txt, '%' lines between
them); eq.h5, 8 token rows of 10 with a mask that gives the first four rows
(rank 0's shard on 2 ranks) many more targets than the last four, and its
teacher logits [8, 10, 13] as float16 (eqt.h5); bad files for the error cases."""
import os
import sys

import h5py
import numpy as np

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(11)
words = "the quick brown fox jumps over a lazy dog while seven cats sleep and one bird sings".split()
with open(os.path.join(out, "corpus.txt"), "w") as f:
    for d in range(240):
        f.write(" ".join(rng.choice(words, size=rng.integers(4, 30))) + f" doc{d:03d}.\n%\n")
V, N, T = 13, 8, 10
tokens = rng.integers(0, V, size=(N, T))
mask = np.zeros((N, T), np.int8)
mask[:4, 1:] = 1
mask[4:, 1:3] = 1
with h5py.File(os.path.join(out, "eq.h5"), "w") as f:
    f["train/tokens"] = tokens.astype(np.int64)
    f["train/mask"] = mask
with h5py.File(os.path.join(out, "eqt.h5"), "w") as f:
    f.create_dataset("train/logits", data=(2 * rng.normal(size=(N, T, V))).astype(np.float16), compression="gzip")
with h5py.File(os.path.join(out, "bad_id.h5"), "w") as f:
    t = tokens.copy()
    t[5, 7] = V + 4
    f["train/tokens"] = t
with h5py.File(os.path.join(out, "long.h5"), "w") as f:
    f["train/tokens"] = rng.integers(0, V, size=(N, 40))
with h5py.File(os.path.join(out, "vocab_t.h5"), "w") as f:
    f["train/logits"] = rng.normal(size=(N, T, V + 1)).astype(np.float32)
with h5py.File(os.path.join(out, "inf_t.h5"), "w") as f:
    z = rng.normal(size=(N, T, V)).astype(np.float16)
    z[6, 3, 2] = np.inf
    f["train/logits"] = z
print("token fixtures written to", out)
