#!/usr/bin/python3
"""check_safetensors.py: Hugging Face models in safetensors, read and written here with numpy only (the
test's own reader and writer of the format: an 8-byte little-endian header length, a JSON header, the
tensors' bytes), and their forward passes written from transformers' documented architectures:
GPT2LMHeadModel (Conv1D weights [in, out], gelu_new, tied head) and LlamaForCausalLM (rotate_half RoPE,
repeat_kv, RMSNorm, SwiGLU).

  check DIR DATA PRED.h5 DTYPE TOL   kd export's DIR (model.safetensors, config.json): the layout (header padded
                                     to 8 with spaces, contiguous offsets, __metadata__, every tensor of DTYPE,
                                     the names and shapes of the architecture) and the forward's logits of
                                     DATA's /test rows against kd predict's (PRED.h5) within TOL of max |logit|
  write DIR KIND                     a model written here: gpt2 (names without "transformer.", F32/F16/BF16
                                     mixed, GPT-2's attn.bias buffers), llama-sharded (GQA, untied, BF16 and
                                     F16, two shards and model.safetensors.index.json, rotary inv_freq buffers),
                                     llama-tied (F32, multi-query, lm_head.weight stored equal to the embedding)
  forward DIR IN DATA PRED.h5 TOL    that model's forward (IN: its safetensors file or index) against kd predict
  bad DIR GPT2 LLAMA                 broken variants of the gpt2 and llama-tied models in GPT2 and LLAMA;
                                     DIR/cases.tsv lists each: name, --in, --config, then the strings its
                                     one-line error must hold (the file it names first)
"""
import json
import math
import os
import struct
import sys

import h5py
import numpy as np

# ---- the format ----

def read_st(path):
    """{name: float64 array}, the header, and the header length."""
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    head = json.loads(raw[8:8 + n].decode())
    data = raw[8 + n:]
    out = {}
    for name, t in head.items():
        if name == "__metadata__":
            continue
        b, e = t["data_offsets"]
        if t["dtype"] == "BF16":
            v = (np.frombuffer(data[b:e], "<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            v = np.frombuffer(data[b:e], {"F32": "<f4", "F16": "<f2"}[t["dtype"]])
        out[name] = v.astype(np.float64).reshape(t["shape"])
    return out, head, n


def bf16_bits(x):
    """float32 -> bfloat16 bits, rounded to nearest even (as torch)."""
    u = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def write_st(path, tensors):
    """tensors: [(name, array, dtype)] in file order."""
    head, blobs, at = {"__metadata__": {"format": "pt"}}, [], 0
    for name, v, dtype in tensors:
        if dtype == "BF16":
            b = bf16_bits(v).astype("<u2").tobytes()
        else:
            b = np.ascontiguousarray(v, {"F32": "<f4", "F16": "<f2"}[dtype]).tobytes()
        head[name] = {"dtype": dtype, "shape": list(np.shape(v)), "data_offsets": [at, at + len(b)]}
        blobs.append(b)
        at += len(b)
    write_raw(path, head, b"".join(blobs))


def write_raw(path, head, data, pad=True):
    h = json.dumps(head).encode()
    if pad:
        h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


# ---- the forward passes ----

def layernorm(x, w, b, eps):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * w + b


def gelu_new(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def attention(q, k, v):
    """q [B, H, T, hd], k and v [B, H, T, hd]: causal softmax(q k^T / sqrt(hd)) v."""
    T, hd = q.shape[-2], q.shape[-1]
    s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(hd)
    s = np.where(np.tril(np.ones((T, T), bool)), s, -np.inf)
    s = np.exp(s - s.max(-1, keepdims=True))
    return (s / s.sum(-1, keepdims=True)) @ v


def gpt2_forward(w, cfg, tokens):
    """GPT2LMHeadModel: Conv1D layers compute x @ W + b with W [in, out]."""
    p = "transformer." if "transformer.wte.weight" in w else ""
    B, T = tokens.shape
    D, H, eps = cfg["n_embd"], cfg["n_head"], cfg.get("layer_norm_epsilon", 1e-5)
    x = w[p + "wte.weight"][tokens] + w[p + "wpe.weight"][np.arange(T)]
    for l in range(cfg["n_layer"]):
        g = f"{p}h.{l}."
        a = layernorm(x, w[g + "ln_1.weight"], w[g + "ln_1.bias"], eps)
        qkv = a @ w[g + "attn.c_attn.weight"] + w[g + "attn.c_attn.bias"]
        q, k, v = (t.reshape(B, T, H, D // H).transpose(0, 2, 1, 3) for t in np.split(qkv, 3, axis=-1))
        y = attention(q, k, v).transpose(0, 2, 1, 3).reshape(B, T, D)
        x = x + y @ w[g + "attn.c_proj.weight"] + w[g + "attn.c_proj.bias"]
        m = layernorm(x, w[g + "ln_2.weight"], w[g + "ln_2.bias"], eps)
        m = gelu_new(m @ w[g + "mlp.c_fc.weight"] + w[g + "mlp.c_fc.bias"])
        x = x + m @ w[g + "mlp.c_proj.weight"] + w[g + "mlp.c_proj.bias"]
    x = layernorm(x, w[p + "ln_f.weight"], w[p + "ln_f.bias"], eps)
    return x @ w[p + "wte.weight"].T  # the tied lm_head


def rmsnorm(x, g, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * g


def rotate_half(x):
    h = x.shape[-1] // 2
    return np.concatenate([-x[..., h:], x[..., :h]], axis=-1)


def llama_forward(w, cfg, tokens):
    """LlamaForCausalLM: RMSNorm, RoPE (rotate_half, inv_freq = theta^(-2i/hd) and angles in float32 as HF),
    grouped-query attention through repeat_kv, SwiGLU."""
    B, T = tokens.shape
    D, H = cfg["hidden_size"], cfg["num_attention_heads"]
    G = cfg.get("num_key_value_heads", H)
    hd, eps, theta = D // H, cfg["rms_norm_eps"], cfg.get("rope_theta", 10000.0)
    inv_freq = (1.0 / theta ** (np.arange(0, hd, 2, dtype=np.int64).astype(np.float32) / hd)).astype(np.float32)
    ang = np.outer(np.arange(T, dtype=np.float32), inv_freq).astype(np.float32).astype(np.float64)
    cos, sin = np.cos(np.concatenate([ang, ang], -1)), np.sin(np.concatenate([ang, ang], -1))
    x = w["model.embed_tokens.weight"][tokens]
    for l in range(cfg["num_hidden_layers"]):
        g = f"model.layers.{l}."
        h = rmsnorm(x, w[g + "input_layernorm.weight"], eps)
        q = (h @ w[g + "self_attn.q_proj.weight"].T).reshape(B, T, H, hd).transpose(0, 2, 1, 3)
        k = (h @ w[g + "self_attn.k_proj.weight"].T).reshape(B, T, G, hd).transpose(0, 2, 1, 3)
        v = (h @ w[g + "self_attn.v_proj.weight"].T).reshape(B, T, G, hd).transpose(0, 2, 1, 3)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        k, v = np.repeat(k, H // G, axis=1), np.repeat(v, H // G, axis=1)  # repeat_kv
        y = attention(q, k, v).transpose(0, 2, 1, 3).reshape(B, T, H * hd)
        x = x + y @ w[g + "self_attn.o_proj.weight"].T
        h = rmsnorm(x, w[g + "post_attention_layernorm.weight"], eps)
        gate = h @ w[g + "mlp.gate_proj.weight"].T
        x = x + (gate / (1 + np.exp(-gate)) * (h @ w[g + "mlp.up_proj.weight"].T)) @ w[g + "mlp.down_proj.weight"].T
    x = rmsnorm(x, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings", False) else w["lm_head.weight"]
    return x @ head.T


def forward(w, cfg, tokens):
    return (gpt2_forward if cfg["model_type"] == "gpt2" else llama_forward)(w, cfg, tokens)


def compare(w, cfg, data, pred, tol, what):
    with h5py.File(data, "r") as f:
        tokens = f["test/tokens"][()].astype(np.int64)
    with h5py.File(pred, "r") as f:
        theirs = f["test/logits"][()]
    z = forward(w, cfg, tokens)
    assert theirs.shape == z.shape, (theirs.shape, z.shape)
    err = float(np.max(np.abs(theirs - z)) / np.max(np.abs(z)))
    assert err < tol, f"{what}: kd predict's logits differ from the numpy forward by {err:.3g} of max |logit| (> {tol})"
    print(f"{what}: numpy {cfg['architectures'][0]} forward == kd predict: max |diff| / max |logit| = {err:.2g} "
          f"over {z.size} logits")


# ---- kd's export ----

def expected_names(cfg):
    """{name: shape} of the architecture, as transformers' state_dict has them (minus buffers, tied heads)."""
    if cfg["model_type"] == "gpt2":
        D, L, V, T = cfg["n_embd"], cfg["n_layer"], cfg["vocab_size"], cfg["n_positions"]
        s = {"transformer.wte.weight": [V, D], "transformer.wpe.weight": [T, D],
             "transformer.ln_f.weight": [D], "transformer.ln_f.bias": [D]}
        for l in range(L):
            for k, shape in {"ln_1.weight": [D], "ln_1.bias": [D], "attn.c_attn.weight": [D, 3 * D],
                             "attn.c_attn.bias": [3 * D], "attn.c_proj.weight": [D, D], "attn.c_proj.bias": [D],
                             "ln_2.weight": [D], "ln_2.bias": [D], "mlp.c_fc.weight": [D, 4 * D],
                             "mlp.c_fc.bias": [4 * D], "mlp.c_proj.weight": [4 * D, D], "mlp.c_proj.bias": [D]}.items():
                s[f"transformer.h.{l}.{k}"] = shape
        return s
    D, L, V, F = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["vocab_size"], cfg["intermediate_size"]
    H, G = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = D // H
    s = {"model.embed_tokens.weight": [V, D], "model.norm.weight": [D]}
    if not cfg["tie_word_embeddings"]:
        s["lm_head.weight"] = [V, D]
    for l in range(L):
        for k, shape in {"input_layernorm.weight": [D], "self_attn.q_proj.weight": [H * hd, D],
                         "self_attn.k_proj.weight": [G * hd, D], "self_attn.v_proj.weight": [G * hd, D],
                         "self_attn.o_proj.weight": [D, H * hd], "post_attention_layernorm.weight": [D],
                         "mlp.gate_proj.weight": [F, D], "mlp.up_proj.weight": [F, D],
                         "mlp.down_proj.weight": [D, F]}.items():
            s[f"model.layers.{l}.{k}"] = shape
    return s


def check(d, data, pred, dtype, tol):
    cfg = json.load(open(os.path.join(d, "config.json")))
    path = os.path.join(d, "model.safetensors")
    w, head, n = read_st(path)
    raw = open(path, "rb").read()
    assert n % 8 == 0 and raw[8:8 + n].decode().rstrip(" ").endswith("}"), "the header is not padded with spaces to 8"
    assert head["__metadata__"] == {"format": "pt"}, head["__metadata__"]
    spans = sorted(tuple(t["data_offsets"]) for k, t in head.items() if k != "__metadata__")
    assert spans[0][0] == 0 and all(a[1] == b[0] for a, b in zip(spans, spans[1:])) and spans[-1][1] == len(raw) - 8 - n, \
        "the tensors are not contiguous"
    want = expected_names(cfg)
    got = {k: t["shape"] for k, t in head.items() if k != "__metadata__"}
    assert got == want, f"names or shapes differ from the architecture's: {set(got) ^ set(want)}"
    assert all(t["dtype"] == dtype for k, t in head.items() if k != "__metadata__"), "not every tensor is " + dtype
    torch_dtype = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[dtype]
    assert cfg["torch_dtype"] == torch_dtype, cfg["torch_dtype"]
    if cfg["model_type"] == "gpt2":
        assert cfg["architectures"] == ["GPT2LMHeadModel"] and cfg["activation_function"] == "gelu_new"
        assert cfg["n_inner"] is None and cfg["tie_word_embeddings"] is True and cfg["n_ctx"] == cfg["n_positions"]
    else:
        assert cfg["architectures"] == ["LlamaForCausalLM"] and cfg["hidden_act"] == "silu"
        assert cfg["attention_bias"] is False and cfg["mlp_bias"] is False and cfg["rope_scaling"] is None
        assert cfg["head_dim"] == cfg["hidden_size"] // cfg["num_attention_heads"]
    compare(w, cfg, data, pred, tol, f"{d} ({dtype})")


# ---- models written here ----

def gpt2_model(rng, V=256, T=16, D=24, L=2):
    r = lambda *s: rng.normal(0, 0.3, s)
    t = [("wte.weight", r(V, D), "F16"), ("wpe.weight", r(T, D), "BF16")]
    for l in range(L):
        g = f"h.{l}."
        t += [(g + "ln_1.weight", 1 + r(D), "F32"), (g + "ln_1.bias", r(D), "F32"),
              (g + "attn.bias", np.tril(np.ones((T, T)))[None, None], "F32"),  # GPT-2's causal-mask buffer
              (g + "attn.masked_bias", np.array(-1e4), "F32"),
              (g + "attn.c_attn.weight", r(D, 3 * D), "BF16"), (g + "attn.c_attn.bias", r(3 * D), "F16"),
              (g + "attn.c_proj.weight", r(D, D), "F16"), (g + "attn.c_proj.bias", r(D), "BF16"),
              (g + "ln_2.weight", 1 + r(D), "BF16"), (g + "ln_2.bias", r(D), "F16"),
              (g + "mlp.c_fc.weight", r(D, 4 * D), "F32"), (g + "mlp.c_fc.bias", r(4 * D), "F32"),
              (g + "mlp.c_proj.weight", r(4 * D, D), "F16"), (g + "mlp.c_proj.bias", r(D), "F32")]
    t += [("ln_f.weight", 1 + r(D), "F32"), ("ln_f.bias", r(D), "F32")]
    cfg = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": V, "n_positions": T, "n_ctx": T,
           "n_embd": D, "n_layer": L, "n_head": 4, "n_inner": None, "activation_function": "gelu_new",
           "layer_norm_epsilon": 1e-5, "resid_pdrop": 0.1, "scale_attn_weights": True, "torch_dtype": "float32"}
    return t, cfg


def llama_model(rng, tie, V=256, T=16, D=32, L=2, H=4, G=2, F=40, theta=10000.0, eps=1e-6, dtypes=("BF16", "F16")):
    r = lambda *s: rng.normal(0, 0.3, s)
    hd = D // H
    t = [("model.embed_tokens.weight", r(V, D), dtypes[0])]
    for l in range(L):
        g = f"model.layers.{l}."
        t += [(g + "input_layernorm.weight", 1 + r(D), dtypes[1]), (g + "self_attn.q_proj.weight", r(H * hd, D), dtypes[0]),
              (g + "self_attn.k_proj.weight", r(G * hd, D), dtypes[1]), (g + "self_attn.v_proj.weight", r(G * hd, D), dtypes[0]),
              (g + "self_attn.o_proj.weight", r(D, H * hd), dtypes[1]),
              (g + "self_attn.rotary_emb.inv_freq", 1.0 / theta ** (np.arange(0, hd, 2) / hd), "F32"),
              (g + "post_attention_layernorm.weight", 1 + r(D), dtypes[0]), (g + "mlp.gate_proj.weight", r(F, D), dtypes[1]),
              (g + "mlp.up_proj.weight", r(F, D), dtypes[0]), (g + "mlp.down_proj.weight", r(D, F), dtypes[1])]
    t += [("model.norm.weight", 1 + r(D), dtypes[0])]
    t += [("lm_head.weight", t[0][1], t[0][2]) if tie else ("lm_head.weight", r(V, D), dtypes[1])]
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": V, "max_position_embeddings": T,
           "num_hidden_layers": L, "hidden_size": D, "num_attention_heads": H, "num_key_value_heads": G,
           "intermediate_size": F, "rope_theta": theta, "rms_norm_eps": eps, "tie_word_embeddings": tie,
           "hidden_act": "silu", "attention_bias": False, "mlp_bias": False, "rope_scaling": None,
           "pretraining_tp": 1, "torch_dtype": "bfloat16"}
    return t, cfg


def write_model(d, kind):
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng({"gpt2": 1, "llama-sharded": 2, "llama-tied": 3}[kind])
    if kind == "gpt2":
        t, cfg = gpt2_model(rng)
        write_st(os.path.join(d, "model.safetensors"), t)
    elif kind == "llama-sharded":
        t, cfg = llama_model(rng, tie=False)
        half = len(t) // 2
        names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
        write_st(os.path.join(d, names[0]), t[:half])
        write_st(os.path.join(d, names[1]), t[half:])
        index = {"metadata": {"total_size": 0}, "weight_map": {n: names[i >= half] for i, (n, _, _) in enumerate(t)}}
        json.dump(index, open(os.path.join(d, "model.safetensors.index.json"), "w"), indent=2)
    else:
        t, cfg = llama_model(rng, tie=True, D=24, H=4, G=1, F=36, theta=500.0, eps=1e-5, dtypes=("F32", "F32"))
        write_st(os.path.join(d, "model.safetensors"), t)
    json.dump(cfg, open(os.path.join(d, "config.json"), "w"), indent=2)
    kinds = sorted({dt for _, _, dt in t})
    print(f"{d}: a {kind} model of {len(t)} tensors ({', '.join(kinds)})")


def forward_of(d, path, data, pred, tol):
    cfg = json.load(open(os.path.join(d, "config.json")))
    if path.endswith(".json"):
        w = {}
        for f in sorted(set(json.load(open(path))["weight_map"].values())):
            w.update(read_st(os.path.join(d, f))[0])
    else:
        w = read_st(path)[0]
    compare(w, cfg, data, pred, tol, f"{path} (written by numpy)")


# ---- broken files ----

def read_header(p):
    raw = open(p, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n]), raw[8 + n:]


class Cases:
    """Broken files in d, each with the strings its one-line error must hold (the file it names among them)."""

    def __init__(self, d):
        self.d, self.rows = d, []

    def path(self, name, ext=".safetensors"):
        return os.path.join(self.d, name + ext)

    def add(self, name, cfg, want, names_config=False, index=None):
        c = self.path(name, ".json")
        json.dump(cfg, open(c, "w"))
        inp = index or self.path(name)
        self.rows.append([name, inp, c, c if names_config else inp] + want)

    def raw(self, name, cfg, want, raw):
        open(self.path(name), "wb").write(raw)
        self.add(name, cfg, want)

    def head(self, name, cfg, want, head, data, pad=True):
        write_raw(self.path(name), head, data, pad)
        self.add(name, cfg, want)

    def tensors(self, name, cfg, want, t, names_config=False):
        write_st(self.path(name), t)
        self.add(name, cfg, want, names_config)


def edited(head, fn):
    h = json.loads(json.dumps(head))
    fn(h)
    return h


def layout_cases(c, good):
    """The file format: each broken file of GOOD's gpt2 model (names without "transformer.")."""
    src = os.path.join(good, "model.safetensors")
    raw = open(src, "rb").read()
    head, data = read_header(src)
    cfg = json.load(open(os.path.join(good, "config.json")))
    last = max((k for k in head if k != "__metadata__"), key=lambda k: head[k]["data_offsets"][1])
    c.raw("truncated", cfg, [f"tensor {last}:", "the file is truncated"], raw[:-40])
    c.raw("header_past_end", cfg, ["header length 1099511627776 runs past the end"], struct.pack("<Q", 1 << 40) + raw[8:])
    c.raw("short", cfg, ["too short for a safetensors file"], raw[:5])
    c.raw("bad_json", cfg, ["not valid JSON at byte"], struct.pack("<Q", 16) + b'{"wte.weight": {' + data)
    a, b = head["h.0.ln_1.weight"]["data_offsets"]
    c.head("overlap", cfg, ["tensor h.0.ln_1.bias:", "overlap those of tensor h.0.ln_1.weight"],
           edited(head, lambda h: h["h.0.ln_1.bias"].__setitem__("data_offsets", [b - 8, b - 8 + (b - a)])), data)
    c.head("out_of_range", cfg, ["tensor wpe.weight:", "run past the end of the data"],
           edited(head, lambda h: h["wpe.weight"].__setitem__("data_offsets", [len(data) + 64, len(data) + 832])), data)
    c.head("offsets_vs_shape", cfg, ["tensor ln_f.bias:", "hold 96 bytes, but F32 [25] takes 100"],
           edited(head, lambda h: h["ln_f.bias"].__setitem__("shape", [25])), data)
    c.head("unknown_dtype", cfg, ["tensor ln_f.weight:", 'unknown dtype "F99"'],
           edited(head, lambda h: h["ln_f.weight"].__setitem__("dtype", "F99")), data)
    shift = lambda h: [h[k].__setitem__("data_offsets", [x + 8, y + 8]) for k in h if k != "__metadata__"
                       for x, y in [h[k]["data_offsets"]]]
    c.head("gap", cfg, ["tensor wte.weight:", "leave a gap of 8 bytes after the header"], edited(head, shift),
           b"\0" * 8 + data)
    c.head("trailing", cfg, ["8 bytes after the end of the last tensor"], head, data + b"\0" * 8)
    dup = json.dumps(head)[:-1] + ', "h.0.ln_1.weight": ' + json.dumps(head["h.0.ln_1.weight"]) + "}"
    h = dup.encode() + b" " * (-len(dup) % 8)
    c.raw("twice", cfg, ["tensor h.0.ln_1.weight is in the header twice"], struct.pack("<Q", len(h)) + h + data)
    return cfg, head


def gpt_cases(c, good, cfg, head):
    """The tensors against the config, and configurations kd's gpt does not compute."""
    w = read_st(os.path.join(good, "model.safetensors"))[0]
    t = [(k, w[k], head[k]["dtype"]) for k in sorted(w, key=lambda k: head[k]["data_offsets"][0])]
    c.tensors("kd_orientation", cfg, ["tensor h.0.attn.c_attn.weight is BF16 [72, 24]", "needs [24, 72]"],
              [(k, v.T if k == "h.0.attn.c_attn.weight" else v, dt) for k, v, dt in t])
    c.tensors("missing", cfg, ["tensor transformer.ln_f.bias is missing"], [x for x in t if x[0] != "ln_f.bias"])
    c.tensors("unexpected", cfg, ["tensor h.0.attn.extra.weight is not a parameter of"],
              t + [("h.0.attn.extra.weight", np.zeros(3), "F32")])
    c.tensors("nan", cfg, ["tensor h.1.ln_2.bias element 5 is NaN"],
              [(k, np.where(np.arange(v.size).reshape(v.shape) == 5, np.nan, v) if k == "h.1.ln_2.bias" else v, dt)
               for k, v, dt in t])
    c.tensors("int_dtype", cfg, ["tensor ln_f.weight is I32; kd reads F32, F16 and BF16"],
              [x for x in t if x[0] != "ln_f.weight"])
    h, r = read_header(c.path("int_dtype"))  # ln_f.weight added as I32 by hand: write_st writes floats only
    h["ln_f.weight"] = {"dtype": "I32", "shape": [24], "data_offsets": [len(r), len(r) + 96]}
    write_raw(c.path("int_dtype"), h, r + np.arange(24, dtype="<i4").tobytes())
    c.tensors("cfg_layers", dict(cfg, n_layer=1), ["tensor h.1.ln_1.weight is not a parameter of",
                                                   c.path("cfg_layers", ".json")], t)
    c.tensors("cfg_width", dict(cfg, n_embd=32), ["tensor wte.weight is F16 [256, 24]", "needs [256, 32]",
                                                  c.path("cfg_width", ".json")], t)
    for name, change, want in [("cfg_gelu", {"activation_function": "relu"}, 'activation_function is "relu"'),
                               ("cfg_inner", {"n_inner": 50}, "n_inner is 50"),
                               ("cfg_eps", {"layer_norm_epsilon": 1e-6}, "layer_norm_epsilon is 1e-06"),
                               ("cfg_type", {"model_type": "bert"}, 'model_type "bert"'),
                               ("cfg_missing", {"n_embd": None}, "n_embd is missing")]:
        c.tensors(name, dict(cfg, **change), [want], t, names_config=True)


def llama_cases(c, good):
    """Configurations kd's llama does not compute, a tied head that is not the embedding, broken indexes."""
    cfg = json.load(open(os.path.join(good, "config.json")))
    w, head, _ = read_st(os.path.join(good, "model.safetensors"))
    t = [(k, w[k], head[k]["dtype"]) for k in sorted(w, key=lambda k: head[k]["data_offsets"][0])]
    for name, change, want in [("cfg_attn_bias", {"attention_bias": True}, "attention_bias is true"),
                               ("cfg_mlp_bias", {"mlp_bias": True}, "mlp_bias is true"),
                               ("cfg_rope_scaling", {"rope_scaling": {"rope_type": "llama3", "factor": 8.0}},
                                "rope_scaling is set"),
                               ("cfg_act", {"hidden_act": "gelu"}, 'hidden_act is "gelu"'),
                               ("cfg_head_dim", {"head_dim": 8}, "head_dim is 8")]:
        c.tensors(name, dict(cfg, **change), [want], t, names_config=True)
    c.tensors("cfg_kv_heads", dict(cfg, num_key_value_heads=2),
              ["tensor model.layers.0.self_attn.k_proj.weight is F32 [6, 24]", "needs [12, 24]"], t)
    c.tensors("tied_differs", cfg, ["tensor lm_head.weight differs from model.embed_tokens.weight"],
              [(k, v * (1.5 if k == "lm_head.weight" else 1), dt) for k, v, dt in t])
    shards = [c.path("shard1"), c.path("shard2")]
    half = len(t) // 2
    write_st(shards[0], t[:half])
    write_st(shards[1], t[half:])
    wm = {k: os.path.basename(shards[i >= half]) for i, (k, _, _) in enumerate(t)}
    for name, m, want in [("index_wrong_shard", dict(wm, **{t[0][0]: os.path.basename(shards[1])}),
                           [f"weight_map puts tensor {t[0][0]} in {shards[1]}, which has no such tensor"]),
                          ("index_unlisted", {k: v for k, v in wm.items() if k != t[-1][0]},
                           [shards[1], f"tensor {t[-1][0]} is not in the weight_map"]),
                          ("index_path", dict(wm, **{t[0][0]: "../shard1.safetensors"}),
                           [f"weight_map puts tensor {t[0][0]} in \"../shard1.safetensors\": expected a file name"])]:
        idx = c.path(name, ".index.json")
        json.dump({"weight_map": m}, open(idx, "w"))
        c.add(name, cfg, want, index=idx)


def bad_cases(d, good_gpt, good_llama):
    os.makedirs(d, exist_ok=True)
    c = Cases(d)
    cfg, head = layout_cases(c, good_gpt)
    gpt_cases(c, good_gpt, cfg, head)
    llama_cases(c, good_llama)
    with open(os.path.join(d, "cases.tsv"), "w") as f:
        for r in c.rows:
            f.write("\t".join(r) + "\n")
    print(f"{len(c.rows)} broken files in {d}")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "check":
        check(args[0], args[1], args[2], args[3], float(args[4]))
    elif cmd == "write":
        write_model(args[0], args[1])
    elif cmd == "forward":
        forward_of(args[0], args[1], args[2], args[3], float(args[4]))
    elif cmd == "bad":
        bad_cases(args[0], args[1], args[2])
    else:
        sys.exit(f"unknown command {cmd}")
