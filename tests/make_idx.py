#!/usr/bin/python3
"""make_idx.py DIR: small IDX files for test_import (plain and gzip, good
and malformed), and the expected arrays as .npy."""
import gzip
import os
import struct
import sys

import numpy as np

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(3)
imgs = rng.integers(0, 256, size=(13, 5, 4), dtype=np.uint8)
labs = rng.integers(0, 10, size=13, dtype=np.uint8)


def idx(arr, type_code=0x08):
    head = bytes([0, 0, type_code, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    return head + arr.tobytes()


def put(name, data, gz=False):
    opener = gzip.open if gz else open
    with opener(os.path.join(out, name), "wb") as f:
        f.write(data)


put("img.idx", idx(imgs))
put("lab.idx", idx(labs))
put("img.idx.gz", idx(imgs), gz=True)
put("lab.idx.gz", idx(labs), gz=True)
put("test_img.idx.gz", idx(imgs[:6]), gz=True)
put("test_lab.idx.gz", idx(labs[:6]), gz=True)
put("bad_magic.idx", b"\x01\x02" + idx(imgs)[2:])
put("bad_type.idx", idx(imgs.astype(np.int32), 0x0C))
put("truncated.idx", idx(imgs)[:-7])
put("trailing.idx", idx(imgs) + b"\x00\x00")
put("lab_short.idx", idx(labs[:12]))
put("img_1d.idx", idx(labs))
np.save(os.path.join(out, "x.npy"), (imgs.reshape(13, 20) / np.float32(255)).astype(np.float32))
np.save(os.path.join(out, "y.npy"), labs.astype(np.int32))
