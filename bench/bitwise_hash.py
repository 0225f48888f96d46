#!/usr/bin/python3
"""bitwise_hash.py FILE...: one line per file, "NAME SHA-256". For an HDF5
file the hash covers the value bytes of every dataset (with its path, dtype
and shape), visited in sorted order; attributes and the file's own bytes are
left out, so two writers of the same tensors give the same hash. For
metrics.csv the hash covers every column except samples_per_s and elapsed_s."""
import hashlib
import sys

import h5py


def h5_hash(path):
    h = hashlib.sha256()
    with h5py.File(path, "r") as f:
        names = []
        f.visit(lambda n: names.append(n) if isinstance(f[n], h5py.Dataset) else None)
        for n in sorted(names):
            d = f[n][()]
            h.update(n.encode() + b"\0" + str(d.dtype).encode() + b"\0" + str(d.shape).encode() + b"\0")
            if d.dtype == object:  # variable-length values (a tokenizer's vocabulary): their bytes, not pointers
                for x in d.ravel():
                    b = bytes(x) if not isinstance(x, str) else x.encode()
                    h.update(len(b).to_bytes(8, "little") + b)
            else:
                h.update(d.tobytes())
    return h.hexdigest()


def csv_hash(path):
    h = hashlib.sha256()
    with open(path) as f:
        header = f.readline().rstrip("\n").split(",")
        drop = {i for i, c in enumerate(header) if c in ("samples_per_s", "elapsed_s")}
        for line in [",".join(header)] + [l.rstrip("\n") for l in f]:
            cells = line.split(",")
            h.update((",".join(c for i, c in enumerate(cells) if i not in drop) + "\n").encode())
    return h.hexdigest()


for p in sys.argv[1:]:
    print(p, csv_hash(p) if p.endswith(".csv") else h5_hash(p))
