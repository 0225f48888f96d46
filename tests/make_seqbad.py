#!/usr/bin/python3
"""make_seqbad.py DIR data|teachers: fixtures of test_seqbad.sh, the bad-input matrix of the sequence paths.

data:     good.h5, prompt-completion token rows (V = 13, rows of 10: source, <sep>, target, <end>, pads) with a
          "symbols" tokenizer record, /train (16 rows) and /valid (8 rows), plus one broken copy per data case.
          Rank 1 of 2 holds /train rows 8..15, so "rank 1 only" problems sit at row 11.
teachers: from the teacher files kd logits wrote (t.h5 dense, tk.h5 top-k, sp.h5 sampled, in.h5 hidden states
          and attention maps) and the run's final.h5, one broken copy per teacher and --init case."""
import os
import shutil
import sys

import h5py
import numpy as np

out, what = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
V, T = 13, 10
PAD, SEP, END = 0, 1, 2
rng = np.random.default_rng(5)


def p(name):
    return os.path.join(out, name)


def rows(n):
    tokens = np.zeros((n, T), np.int64)
    mask = np.zeros((n, T), np.int8)
    for r in range(n):
        src = rng.integers(4, 9, size=rng.integers(2, 4))      # source symbols 4..8
        tgt = rng.integers(9, V, size=rng.integers(1, 4))      # target symbols 9..12
        seq = list(src) + [SEP] + list(tgt) + [END]
        tokens[r, :len(seq)] = seq
        mask[r, len(src) + 1:len(seq)] = 1
    return tokens, mask


def vlen(names):
    a = np.empty(len(names), dtype=object)
    for i, n in enumerate(names):
        a[i] = np.frombuffer(n.encode(), np.uint8)
    return a


def tokenizer(f, vocab=V, **ids):
    g = f.create_group("tokenizer")
    g.attrs["kind"] = "symbols"
    attrs = dict(pad_id=PAD, sep_id=SEP, end_id=END, unk_id=3, target_id0=9)
    attrs.update(ids)
    for k, v in attrs.items():
        g.attrs[k] = np.int64(v)
    names = ["<pad>", "<sep>", "<end>", "<unk>"] + [chr(ord("a") + i) for i in range(vocab - 4)]
    g.create_dataset("vocab", data=vlen(names), dtype=h5py.vlen_dtype(np.uint8))


def data(name, train=None, valid=None, tok=True, **edits):
    with h5py.File(p(name), "w") as f:
        for split, (t, m) in (("train", train), ("valid", valid)):
            f[f"{split}/tokens"] = t
            f[f"{split}/mask"] = m
        if tok:
            tokenizer(f, **(tok if isinstance(tok, dict) else {}))
        for k, v in edits.items():
            path = k.replace("__", "/")
            if path in f:
                del f[path]
            f[path] = v


if what == "data":
    train, valid = rows(16), rows(8)
    data("good.h5", train, valid)
    t = train[0].copy(); t[11, 3] = V + 4
    data("id_big.h5", (t, train[1]), valid)
    t = train[0].copy(); t[11, 0] = -1
    data("id_neg.h5", (t, train[1]), valid)
    data("id_float.h5", train, valid, train__tokens=train[0].astype(np.float32))
    data("tokens_1d.h5", train, valid, train__tokens=train[0][:, 0].copy(), train__mask=train[1][:, 0].copy())
    data("one_pos.h5", (train[0][:, :1], train[1][:, :1]), (valid[0][:, :1], valid[1][:, :1]))
    data("mask_zero.h5", (train[0], np.zeros_like(train[1])), valid)
    data("mask_first.h5", (train[0], np.eye(1, T, 0, dtype=np.int8).repeat(16, 0)), valid)  # only position 0
    data("mask_shape.h5", train, valid, train__mask=train[1][:, :T - 1].copy())
    data("valid_zero.h5", train, (valid[0], np.zeros_like(valid[1])))
    data("long.h5", (np.pad(train[0], ((0, 0), (0, 6))), np.pad(train[1], ((0, 0), (0, 6)))), valid)
    data("tok_big.h5", train, valid, tok=dict(vocab=V + 7))
    t = np.minimum(train[0], 10); t[11, 2] = 11
    data("tok_small.h5", (t, train[1]), (np.minimum(valid[0], 10), valid[1]), tok=dict(vocab=11, target_id0=9))
    data("tok_end.h5", train, valid, tok=dict(end_id=99))
    data("empty.h5", (train[0][:0], train[1][:0]), valid)
    data("notok.h5", train, valid, tok=False)
    t = train[0].copy(); t[11] = np.where(t[11] == SEP, 4, t[11])  # row 11 loses its separator
    data("no_sep.h5", (t, train[1]), valid)
    data("shuffled.h5", (train[0][::-1].copy(), train[1][::-1].copy()), valid)  # the same rows in another order
    with open(p("empty.txt"), "w"):
        pass
    with open(p("seps.txt"), "w") as f:
        f.write("%\n%\n")
    with open(p("empty.tsv"), "w") as f:
        f.write("# only a comment\n\n")
    with open(p("bad.tsv"), "w") as f:
        f.write("cat\tk a t\ndog\n")
    # a data file of another tokenizer with as many ids: the same kind, other entries
    with h5py.File(p("other_tok.h5"), "w") as f:
        for split, (t, m) in (("train", train), ("valid", valid)):
            f[f"{split}/tokens"] = t
            f[f"{split}/mask"] = m
        tokenizer(f)
        names = ["<pad>", "<sep>", "<end>", "<unk>"] + [chr(ord("m") + i) for i in range(V - 4)]
        del f["tokenizer/vocab"]
        f["tokenizer"].create_dataset("vocab", data=vlen(names), dtype=h5py.vlen_dtype(np.uint8))
    sys.exit(0)

# ---- teachers: broken copies of what kd logits and kd train wrote ----


def copy_edit(src, dst, edit):
    shutil.copyfile(p(src), p(dst))
    with h5py.File(p(dst), "r+") as f:
        edit(f)


def put(f, path, v):
    attrs = dict(f[path].attrs) if path in f else {}
    if path in f:
        del f[path]
    f[path] = v
    f[path].attrs.update(attrs)


def vocab14(f):
    z = f["train/logits"][()]
    put(f, "train/logits", np.concatenate([z, z[:, :, :1]], axis=2))


def nan_at(f):
    z = f["train/logits"][()]
    z[11, 3, 2] = np.nan
    put(f, "train/logits", z)


copy_edit("t.h5", "t_vocab.h5", vocab14)
copy_edit("t.h5", "t_nan.h5", nan_at)
copy_edit("t.h5", "t_short.h5", lambda f: put(f, "train/logits", f["train/logits"][:-3]))
copy_edit("t.h5", "t_pos.h5", lambda f: put(f, "train/logits", f["train/logits"][:, :-1]))


def topk_range(f):
    ids = f["train/topk/ids"][()].astype(np.int64)
    ids[11, 5, 1] = 300
    put(f, "train/topk/ids", ids)


def topk_dup(f):
    ids = f["train/topk/ids"][()]
    ids[11, 5, 1] = ids[11, 5, 0]
    put(f, "train/topk/ids", ids)


def counts_neg(f):
    c = f["train/sampled/counts"][()].astype(np.int32)
    c[11, 4, 0] = -2
    put(f, "train/sampled/counts", c)


copy_edit("tk.h5", "tk_range.h5", topk_range)
copy_edit("tk.h5", "tk_dup.h5", topk_dup)
copy_edit("tk.h5", "tk_nolse.h5", lambda f: f.__delitem__("train/topk/lse"))
copy_edit("sp.h5", "sp_neg.h5", counts_neg)


def hidden_short(f):  # 9 positions for rows of 10
    put(f, "train/hidden/1", f["train/hidden/1"][:, :-1])


def attn_nan(f):
    a = f["train/attn/1"][()]
    a[11, 0, 4, 2] = np.nan
    put(f, "train/attn/1", a)


copy_edit("in.h5", "in_short.h5", hidden_short)
copy_edit("in.h5", "in_nan.h5", attn_nan)


def weights_nan(f):
    w = f["model/transformer/h/0/mlp/c_fc/weight"][()]
    w[3, 1] = np.nan
    put(f, "model/transformer/h/0/mlp/c_fc/weight", w)


def weights_extra(f):  # as another tool writes weights: no kd_format, and a tensor the student lacks
    del f.attrs["kd_format"]
    f["model/transformer/h/0/attn/extra"] = np.zeros(3, np.float32)


def weights_huge(f):  # finite, but every forward's logits overflow: no step can have a finite loss
    for name, scale in (("model/transformer/wte/weight", 1e15), ("model/transformer/ln_f/weight", 1e30)):
        put(f, name, (f[name][()] * scale).astype(np.float32))


copy_edit("final.h5", "init_nan.h5", weights_nan)
copy_edit("final.h5", "init_huge.h5", weights_huge)
copy_edit("final.h5", "init_extra.h5", weights_extra)
copy_edit("final.h5", "init_shape.h5",
          lambda f: put(f, "model/transformer/wpe/weight", f["model/transformer/wpe/weight"][:-2]))
