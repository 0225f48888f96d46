"""lm_rows.py ROWS DATA TEACHER: the streaming benchmarks' set (bench/stream.sh, bench/eval_stream.sh): token rows
[ROWS, 64] of random ids below 512 in DATA (/train/tokens), and in TEACHER dense float16 teacher logits
[ROWS, 64, 512] (64 KiB a row) that make the next token likely; written in blocks of 512 rows."""
import sys

import h5py
import numpy as np

n, T, V = int(sys.argv[1]), 64, 512
rng = np.random.default_rng(1)
with h5py.File(sys.argv[2], "w") as d, h5py.File(sys.argv[3], "w") as t:
    tok = d.create_dataset("train/tokens", (n, T), np.int32)
    lg = t.create_dataset("train/logits", (n, T, V), np.float16)
    for a in range(0, n, 512):
        b = min(n, a + 512)
        ids = rng.integers(0, V, (b - a, T), dtype=np.int32)
        tok[a:b] = ids
        z = rng.standard_normal((b - a, T, V), dtype=np.float32)
        z[np.arange(b - a)[:, None], np.arange(T - 1)[None, :], ids[:, 1:]] += 4.0  # the next token is likely
        lg[a:b] = z.astype(np.float16)
