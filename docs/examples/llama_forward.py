#!/usr/bin/python3
"""A kd llama student's forward pass in numpy, from its weights file (final.h5 or a
checkpoint) read by Hugging Face's LlamaForCausalLM state_dict names (docs/format.md):

    python3 llama_forward.py final.h5 data.h5 [SPLIT] [ROWS]

prints the logits' shape and the NLL per target token of the first ROWS rows.
The same names load into a transformers LlamaForCausalLM: see load_into_hf below."""
import sys

import h5py
import numpy as np


def load(path):
    """The weights as {name: array} and the config (vocab, ctx, layers, dim, heads, kv_heads, ffn, rope_theta,
    norm_eps, tie)."""
    with h5py.File(path, "r") as f:
        cfg = dict(kv.split("=") for kv in f.attrs["student"].split(","))
        cfg = {k: float(v) if k in ("rope_theta", "norm_eps") else int(v) for k, v in cfg.items()}
        w = {}
        f["model"].visititems(lambda n, d: w.__setitem__(n, d[()]) if isinstance(d, h5py.Dataset) else None)
    return w, cfg


def rmsnorm(x, g, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * g


def rotate_half(x):
    h = x.shape[-1] // 2
    return np.concatenate([-x[..., h:], x[..., :h]], axis=-1)


def rope(x, theta):
    """x [B, heads, T, hd] turned as HF's apply_rotary_pos_emb: x cos + rotate_half(x) sin."""
    T, hd = x.shape[-2], x.shape[-1]
    inv_freq = 1.0 / theta ** (np.arange(0, hd, 2) / hd)
    ang = np.outer(np.arange(T), inv_freq)
    emb = np.concatenate([ang, ang], axis=-1)
    return x * np.cos(emb) + rotate_half(x) * np.sin(emb)


def silu(x):
    return x / (1 + np.exp(-x))


def forward(w, cfg, tokens):
    """logits [B, T, V] of token rows [B, T], as LlamaForCausalLM in eval mode."""
    B, T = tokens.shape
    D, H, G = cfg["dim"], cfg["heads"], cfg["kv_heads"]
    hd, eps = D // H, cfg["norm_eps"]
    x = w["model/embed_tokens/weight"][tokens]
    causal = np.tril(np.ones((T, T), bool))
    for l in range(cfg["layers"]):
        p = f"model/layers/{l}/"
        h = rmsnorm(x, w[p + "input_layernorm/weight"], eps)
        q = (h @ w[p + "self_attn/q_proj/weight"].T).reshape(B, T, H, hd).transpose(0, 2, 1, 3)
        k = (h @ w[p + "self_attn/k_proj/weight"].T).reshape(B, T, G, hd).transpose(0, 2, 1, 3)
        v = (h @ w[p + "self_attn/v_proj/weight"].T).reshape(B, T, G, hd).transpose(0, 2, 1, 3)
        q, k = rope(q, cfg["rope_theta"]), rope(k, cfg["rope_theta"])
        k, v = np.repeat(k, H // G, axis=1), np.repeat(v, H // G, axis=1)  # HF's repeat_kv: head h reads h // (H/G)
        att = q @ k.transpose(0, 1, 3, 2) / np.sqrt(hd)
        att = np.where(causal, att, -np.inf)
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        y = (att @ v).transpose(0, 2, 1, 3).reshape(B, T, H * hd)
        x = x + y @ w[p + "self_attn/o_proj/weight"].T
        h = rmsnorm(x, w[p + "post_attention_layernorm/weight"], eps)
        h = silu(h @ w[p + "mlp/gate_proj/weight"].T) * (h @ w[p + "mlp/up_proj/weight"].T)
        x = x + h @ w[p + "mlp/down_proj/weight"].T
    x = rmsnorm(x, w["model/norm/weight"], eps)
    head = w["model/embed_tokens/weight"] if cfg["tie"] else w["lm_head/weight"]
    return x @ head.T


def load_into_hf(model, path):
    """Copy a kd llama's weights into a transformers LlamaForCausalLM (torch), names with '/' -> '.'; its config:
    vocab_size, max_position_embeddings, num_hidden_layers, hidden_size, num_attention_heads,
    num_key_value_heads, intermediate_size, rope_theta, rms_norm_eps and tie_word_embeddings from cfg."""
    import torch
    w, cfg = load(path)
    sd = {k.replace("/", "."): torch.from_numpy(v) for k, v in w.items()}
    if cfg["tie"]:
        sd["lm_head.weight"] = sd["model.embed_tokens.weight"]
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert not unexpected and all(k.endswith("inv_freq") for k in missing), (missing, unexpected)


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
