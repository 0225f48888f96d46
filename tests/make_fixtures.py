#!/usr/bin/python3
"""Write the HDF5 fixtures of test_data: one reference file (float32 x,
int32 y, float32 logits) and the same rows stored with other dtypes, chunking
and filters, as numpy/h5py users write them. Values are exact in every
dtype used (integers 0..255, logits in steps of 1/8), so reads must match
the reference bit for bit."""
import os
import sys

import h5py
import numpy as np

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(7)
N, D, C = 37, 5, 4
x = rng.integers(0, 256, size=(N, D)).astype(np.float32)
y = rng.integers(0, C, size=N).astype(np.int32)
logits = (rng.integers(-64, 65, size=(N, C)) / 8.0).astype(np.float32)


def write(name, xt, yt, lt, **kw):
    with h5py.File(os.path.join(out, name), "w") as f:
        f.create_dataset("train/x", data=x.astype(xt), **kw)
        f.create_dataset("train/y", data=y.astype(yt), **kw)
        f.create_dataset("train/logits", data=logits.astype(lt), **kw)


write("ref.h5", np.float32, np.int32, np.float32)
write("f16_gzip.h5", np.float16, np.int64, np.float16, compression="gzip", chunks=True)
write("f64_gzip_shuffle.h5", np.float64, np.int64, np.float64, compression="gzip", shuffle=True, chunks=True)
write("u8.h5", np.uint8, np.uint8, np.float64)
write("i16_chunked.h5", np.int16, np.int16, np.float32, compression="gzip", compression_opts=9, shuffle=True)
with h5py.File(os.path.join(out, "f32_small_chunks.h5"), "w") as f:
    f.create_dataset("train/x", data=x, chunks=(3, 2), compression="gzip")
    f.create_dataset("train/y", data=y.astype(np.int64).reshape(N, 1), chunks=(5, 1))
    f.create_dataset("train/logits", data=logits, chunks=(7, 4), fletcher32=True)
try:
    write("szip.h5", np.float32, np.int32, np.float32, compression="szip", chunks=True)
except Exception as err:  # an h5py without the szip encoder
    print("szip fixture skipped:", err)
with h5py.File(os.path.join(out, "y_float_whole.h5"), "w") as f:
    f["train/x"] = x
    f["train/y"] = y.astype(np.float64)
    f["train/logits"] = logits
with h5py.File(os.path.join(out, "y_float_fraction.h5"), "w") as f:
    f["train/x"] = x
    f["train/y"] = y.astype(np.float32) + np.float32(0.5)
write("lzf.h5", np.float32, np.int32, np.float32, compression="lzf", chunks=True)
with open(os.path.join(out, "not_hdf5.h5"), "w") as f:
    f.write("this is not an HDF5 file\n")
with h5py.File(os.path.join(out, "short_logits.h5"), "w") as f:
    f.create_dataset("train/logits", data=logits[:-1])
# Files with one bad value for the validation checks of a shard of rows
# [10, 20): label 9 at row 13, -1 (unlabelled) at row 13, NaN at x[11, 2].
for name, edit in (("label9.h5", "y9"), ("unlabelled.h5", "y-1"), ("nan.h5", "nan")):
    xe, ye = x.copy(), y.copy()
    if edit == "y9":
        ye[13] = 9
    elif edit == "y-1":
        ye[13] = -1
    else:
        xe[11, 2] = np.nan
    with h5py.File(os.path.join(out, name), "w") as f:
        f["train/x"] = xe
        f["train/y"] = ye
with h5py.File(os.path.join(out, "half.h5"), "w") as f:  # float32 values and numpy's float16 of them
    v = np.concatenate([rng.normal(scale=s, size=4000) for s in (1e-6, 1e-3, 1, 30, 3e4)]).astype(np.float32)
    edges = np.array([0, -0.0, 65504, 65519.99, 65520, 1e9, -1e9, 5.96e-8, 2.98e-8, 2.99e-8, 6.1e-5, 6.0975e-5,
                      3.9999976, 2.0009766, 2.00146484, 1 + 2 ** -11, 1 + 3 * 2 ** -11, np.inf, -np.inf], np.float32)
    v = np.concatenate([v, edges, np.nextafter(edges, np.float32(np.inf))]).astype(np.float32)
    f["f32"] = v
    f["f16_bits"] = v.astype(np.float16).view(np.uint16)
with h5py.File(os.path.join(out, "nd.h5"), "w") as f:  # 3-D and 4-D datasets, value = flat index
    f.create_dataset("t3", data=np.arange(5 * 3 * 4, dtype=np.int64).reshape(5, 3, 4), compression="gzip", chunks=(2, 3, 2))
    f["t4"] = np.arange(4 * 2 * 3 * 2, dtype=np.float16).reshape(4, 2, 3, 2)
    f["t5"] = np.zeros((2, 1, 1, 1, 1), dtype=np.float32)
print("fixtures written to", out)

# test_public_api: an MLP weights file as kd writes it (3 features, 4 hidden ReLU units, 2 classes) with its input
# normalisation, opened through libkd's public API only.
with h5py.File(os.path.join(out, "mlp_weights.h5"), "w") as f:
    f.attrs.update(kd_format="weights", format_version=1, kd_version="0.2.0", family="mlp", student="3-4-2",
                   activation="relu")
    f["model/layer0/weight"] = (np.arange(12, dtype=np.float32).reshape(4, 3) - 5) / 8
    f["model/layer0/bias"] = np.array([0.5, -0.25, 0.125, 0], np.float32)
    f["model/layer1/weight"] = (np.arange(8, dtype=np.float32).reshape(2, 4) - 3) / 4
    f["model/layer1/bias"] = np.array([0.25, -0.5], np.float32)
    f["preprocess/offset"] = np.array([1, 2, 3], np.float32)
    f["preprocess/scale"] = np.array([2, 4, 0.5], np.float32)
    f["preprocess"].attrs["kind"] = "standard"
