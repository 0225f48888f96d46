#!/usr/bin/python3
"""check_gguf.py: a GGUF file kd exported, run by the real llama.cpp (tests/llamacpp_check), against kd.

    check_gguf.py logits CHECK LIB MODEL.gguf DATA.h5 PREDICT.h5 ROWS TOL
        llama.cpp's logits at every position of the first ROWS rows of /test equal kd predict's within TOL
        (absolute); prints the largest difference.
    check_gguf.py greedy CHECK LIB MODEL.gguf KD CKPT N PROMPT...
        kd generate --decode greedy --print ids continues each PROMPT by N tokens; llama.cpp, fed kd's prompt
        ids, continues them the same, token for token, up to the first step where kd's top two logits lie
        closer than 2e-2 (there float rounding may choose either); prints the tokens compared (at least 5).
    check_gguf.py tokenize CHECK LIB MODEL.gguf KD CKPT DATA.h5
        llama.cpp's tokenization of held-out text (the /test documents of DATA.h5, decoded, and fixed ASCII
        and non-ASCII strings) equals kd's ids (kd generate --print ids of the same text).
    check_gguf.py tokenize_docs CHECK LIB MODEL.gguf KD CKPT TEXT
        llama.cpp's tokenization of each document of TEXT (documents between '%' lines) equals kd tokenize's
        with the checkpoint's tokenizer record.
Exit 1 with the reason when a comparison fails."""
import subprocess
import sys

import h5py
import numpy as np


def run_check(check, lib, model, *args):
    r = subprocess.run([check, lib, model, *args], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"llamacpp_check {' '.join(args)} failed: {r.stderr[-2000:]}")


def logits(check, lib, model, data, predict, rows, tol):
    rows, tol = int(rows), float(tol)
    t = h5py.File(data)["test/tokens"][:rows].astype(np.int32)
    np.concatenate([np.array(t.shape, np.int32), t.ravel()]).tofile("rows.bin")
    run_check(check, lib, model, "logits", "rows.bin", "logits.bin")
    kd = h5py.File(predict)["test/logits"][:rows]
    ll = np.fromfile("logits.bin", np.float32).reshape(kd.shape)
    diff = float(np.abs(ll - kd).max())
    print(f"logits: {rows} rows x {t.shape[1]} positions x {kd.shape[2]}: max |llama.cpp - kd| = {diff:.3g} "
          f"(max |logit| {float(np.abs(kd).max()):.3g}, tolerance {tol:g})")
    if not diff <= tol:
        sys.exit(f"llama.cpp's logits differ from kd's by {diff:g} > {tol:g}")


def kd_ids(kd, ckpt, text, new):
    p = subprocess.run([kd, "generate", "--ckpt", ckpt, "--prompt", text, "--max-new", str(new), "--decode", "greedy",
                        "--print", "ids"], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"kd generate failed: {p.stderr}")
    lines = p.stdout.split("\n")
    prompt = [int(x) for x in lines[0].split()[1:]]
    new = [(int(a), float(m)) for a, m in (x.split(":") for x in lines[1].split()[1:])]
    return prompt, new


def greedy(check, lib, model, kd, ckpt, n, *prompts):
    n, compared, steps = int(n), 0, 0
    for text in prompts:
        prompt, new = kd_ids(kd, ckpt, text, n)
        np.concatenate([np.array([1, len(prompt)], np.int32), np.array(prompt, np.int32)]).tofile("prompt.bin")
        run_check(check, lib, model, "greedy", "prompt.bin", str(len(new)), "greedy.bin")
        ll = np.fromfile("greedy.bin", np.int32)
        for k, ((ours, margin), theirs) in enumerate(zip(new, ll)):
            if margin < 2e-2:
                break
            if ours != theirs:
                sys.exit(f"greedy after {text!r}: token {k}: kd {ours}, llama.cpp {theirs} (kd's margin {margin:g})")
            compared += 1
        steps += len(new)
    print(f"greedy: {compared} of {steps} tokens compared, all equal ({len(prompts)} prompts)")
    if compared < 5:
        sys.exit(f"greedy: only {compared} tokens could be compared (kd's top two logits within 2e-2 earlier)")


def texts_of(data):
    f = h5py.File(data)
    vocab = [bytes(v) for v in f["tokenizer/vocab"][()]]
    t, m = f["test/tokens"][()], f["test/mask"][()]
    # the test split's text: its first token, then every target (each once), cut into pieces of 200 bytes
    stream = bytearray(vocab[t[0, 0]])
    for r in range(min(len(t), 60)):
        stream += b"".join(vocab[x] for x, k in zip(t[r, 1:], m[r, 1:]) if k)
    docs = [bytes(stream[i:i + 200]) for i in range(0, min(len(stream), 2400), 200)]
    fixed = ["Hello world, it's a test!", "  leading spaces and trailing  ", "Numbers 12345 and 3.14159",
             "naïve café — 日本語 ünïcödé 😀🎉 emoji, “quotes” and über-straße\n", "tabs\tand\nnew\n\nlines",
             "What's up? I'll be there; we've done it, they'd say."]
    return [d.decode("utf-8", "ignore") for d in docs] + fixed


def llama_tokens(check, lib, model, texts):
    buf = [np.array([len(texts)], np.int32).tobytes()]
    for b in texts:
        buf += [np.array([len(b)], np.int32).tobytes(), b]
    open("texts.bin", "wb").write(b"".join(buf))
    run_check(check, lib, model, "tokenize", "texts.bin", "tokens.bin")
    out, pos, res = np.fromfile("tokens.bin", np.int32), 0, []
    for _ in texts:
        n = int(out[pos])
        res.append([int(x) for x in out[pos + 1:pos + 1 + n]])
        pos += 1 + n
    return res


def tokenize_docs(check, lib, model, kd, ckpt, text):
    p = subprocess.run([kd, "tokenize", "--tokenizer", ckpt, "--in", text, "--doc-sep", "%"], capture_output=True)
    if p.returncode != 0:
        sys.exit(f"kd tokenize failed: {p.stderr.decode()}")
    ours = [[int(x) for x in line.split()] for line in p.stdout.decode().split("\n")[:-1]]
    docs, cur = [], []
    for line in open(text, "rb").read().split(b"\n")[:-1]:
        if line == b"%":
            if cur:
                docs.append(b"".join(cur))
            cur = []
        else:
            cur.append(line + b"\n")
    if cur:
        docs.append(b"".join(cur))
    theirs = llama_tokens(check, lib, model, docs)
    if len(ours) != len(docs):
        sys.exit(f"tokenize_docs: kd gave {len(ours)} documents, the split {len(docs)}")
    for d, a, b in zip(docs, ours, theirs):
        if a != b:
            k = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            sys.exit(f"tokenization of {d[:40]!r} differs at token {k}: kd {a[k:k + 8]}, llama.cpp {b[k:k + 8]}")
    print(f"tokenize_docs: {len(docs)} documents, {sum(map(len, ours))} tokens, llama.cpp's ids == kd's")


def tokenize(check, lib, model, kd, ckpt, data):
    texts = texts_of(data)
    buf = [np.array([len(texts)], np.int32).tobytes()]
    for text in texts:
        b = text.encode()
        buf += [np.array([len(b)], np.int32).tobytes(), b]
    open("texts.bin", "wb").write(b"".join(buf))
    run_check(check, lib, model, "tokenize", "texts.bin", "tokens.bin")
    out, pos, total = np.fromfile("tokens.bin", np.int32), 0, 0
    for text in texts:
        n = int(out[pos])
        theirs = [int(x) for x in out[pos + 1:pos + 1 + n]]
        pos += 1 + n
        ours, _ = kd_ids(kd, ckpt, text, 1)
        if ours != theirs:
            k = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), min(len(ours), len(theirs)))
            sys.exit(f"tokenization of {text[:40]!r} differs at token {k}: kd {ours[k:k + 8]}, llama.cpp {theirs[k:k + 8]}")
        total += n
    print(f"tokenize: {len(texts)} texts, {total} tokens, llama.cpp's ids == kd's")


if __name__ == "__main__":
    {"logits": logits, "greedy": greedy, "tokenize": tokenize, "tokenize_docs": tokenize_docs}[sys.argv[1]](*sys.argv[2:])
