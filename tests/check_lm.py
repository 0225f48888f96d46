#!/usr/bin/python3
"""check_lm.py WEIGHTS DATA PREDICTED.h5 EVAL.json: the numpy forward pass of
docs/examples/gpt_forward.py or llama_forward.py (by the weights' family),
reading the weights by their documented names, reproduces kd predict's logits
of /test to 1e-4 (relative to the largest), and the NLL, accuracy and bits per
byte it computes over the target tokens equal kd eval --json's."""
import json
import os
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "docs", "examples"))
import gpt_forward  # noqa: E402
import llama_forward  # noqa: E402

weights, data, predicted, ev_path = sys.argv[1:5]
with h5py.File(weights, "r") as f:
    family = f.attrs["family"]
    family = family.decode() if isinstance(family, bytes) else family
g = {"gpt": gpt_forward, "llama": llama_forward}[family]
w, cfg = g.load(weights)
with h5py.File(data, "r") as f:
    tokens = f["test/tokens"][()].astype(np.int64)
    mask = f["test/mask"][()] != 0
    vocab = f["tokenizer/vocab"][()]
z = g.forward({k: v.astype(np.float64) for k, v in w.items()}, cfg, tokens)
with h5py.File(predicted, "r") as f:
    theirs = f["test/logits"][()]
assert theirs.shape == z.shape, (theirs.shape, z.shape)
err = np.max(np.abs(theirs - z)) / max(1.0, np.max(np.abs(z)))
assert err < 1e-4, f"kd predict differs from the numpy forward by {err:g}"
lp = z - z.max(-1, keepdims=True)
lp -= np.log(np.exp(lp).sum(-1, keepdims=True))
tgt = mask[:, 1:]
ids = tokens[:, 1:]
nll = -np.take_along_axis(lp[:, :-1], ids[..., None], -1)[..., 0]
acc = (z[:, :-1].argmax(-1) == ids)
nbytes = np.array([len(v) for v in vocab])[ids]
want = {"nll": nll[tgt].mean(), "accuracy": acc[tgt].mean(), "bpb": nll[tgt].sum() / np.log(2) / nbytes[tgt].sum(),
        "tokens": int(tgt.sum())}
got = json.load(open(ev_path))
for k, v in want.items():
    assert abs(got[k] - v) <= 1e-5 * max(1.0, abs(v)), f"{k}: kd eval {got[k]}, numpy {v}"
print(f"{family}: numpy forward == kd predict (max abs diff / max |logit| {err:.2g}); kd eval == numpy: {want}")
