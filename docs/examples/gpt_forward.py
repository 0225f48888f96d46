#!/usr/bin/python3
"""A kd gpt student's forward pass in numpy, from its weights file (final.h5 or
a checkpoint) read by nanoGPT's state_dict names (docs/format.md):

    python3 gpt_forward.py final.h5 data.h5 [SPLIT] [ROWS]

prints the logits' shape and the NLL per target token of the first ROWS rows.
The same names load into a nanoGPT GPT: see load_into_nanogpt below."""
import sys

import h5py
import numpy as np


def load(path):
    """The weights as {name: array} and the config (vocab, ctx, layers, dim, heads)."""
    with h5py.File(path, "r") as f:
        cfg = dict(kv.split("=") for kv in f.attrs["student"].split(","))
        cfg = {k: int(v) for k, v in cfg.items()}
        w = {}
        f["model"].visititems(lambda n, d: w.__setitem__(n, d[()]) if isinstance(d, h5py.Dataset) else None)
    return w, cfg


def layernorm(x, g, b, eps=1e-5):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * g + b


def gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


def forward(w, cfg, tokens):
    """logits [B, T, V] of token rows [B, T], as nanoGPT's GPT(bias=True) in eval mode."""
    B, T = tokens.shape
    D, H = cfg["dim"], cfg["heads"]
    hd = D // H
    x = w["transformer/wte/weight"][tokens] + w["transformer/wpe/weight"][:T]
    causal = np.tril(np.ones((T, T), bool))
    for l in range(cfg["layers"]):
        p = f"transformer/h/{l}/"
        h = layernorm(x, w[p + "ln_1/weight"], w[p + "ln_1/bias"])
        qkv = h @ w[p + "attn/c_attn/weight"].T + w[p + "attn/c_attn/bias"]      # nn.Linear: x W^T + b
        q, k, v = (qkv[..., i * D:(i + 1) * D].reshape(B, T, H, hd).transpose(0, 2, 1, 3) for i in range(3))
        att = q @ k.transpose(0, 1, 3, 2) / np.sqrt(hd)
        att = np.where(causal, att, -np.inf)
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        y = (att @ v).transpose(0, 2, 1, 3).reshape(B, T, D)
        x = x + y @ w[p + "attn/c_proj/weight"].T + w[p + "attn/c_proj/bias"]
        h = layernorm(x, w[p + "ln_2/weight"], w[p + "ln_2/bias"])
        h = gelu_tanh(h @ w[p + "mlp/c_fc/weight"].T + w[p + "mlp/c_fc/bias"])
        x = x + h @ w[p + "mlp/c_proj/weight"].T + w[p + "mlp/c_proj/bias"]
    x = layernorm(x, w["transformer/ln_f/weight"], w["transformer/ln_f/bias"])
    return x @ w["transformer/wte/weight"].T                                     # the head tied to wte


def load_into_nanogpt(model, path):
    """Copy a kd gpt's weights into a nanoGPT GPT (torch), names with '/' -> '.'."""
    import torch
    w, _ = load(path)
    sd = {k.replace("/", "."): torch.from_numpy(v) for k, v in w.items()}
    sd["lm_head.weight"] = sd["transformer.wte.weight"]
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert not unexpected and all(k.endswith("attn.bias") for k in missing), (missing, unexpected)


if __name__ == "__main__":
    w, cfg = load(sys.argv[1])
    split = sys.argv[3] if len(sys.argv) > 3 else "test"
    rows = int(sys.argv[4]) if len(sys.argv) > 4 else 16
    with h5py.File(sys.argv[2], "r") as f:
        tokens = f[f"{split}/tokens"][:rows].astype(np.int64)
        mask = f[f"{split}/mask"][:rows] != 0 if f"{split}/mask" in f else np.ones_like(tokens, bool)
    z = forward({k: v.astype(np.float64) for k, v in w.items()}, cfg, tokens)
    lp = z - np.log(np.exp(z - z.max(-1, keepdims=True)).sum(-1, keepdims=True)) - z.max(-1, keepdims=True)
    tgt = mask[:, 1:]
    nll = -np.take_along_axis(lp[:, :-1], tokens[:, 1:, None], -1)[..., 0][tgt].mean()
    print(f"logits {z.shape}; NLL per target token {nll:.4f} over {tgt.sum()} targets")
