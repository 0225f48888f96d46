#!/usr/bin/python3
"""test_layers.py ROOT: the code map of docs/usage.md holds. libkd's folders
form a layered order (the way data flows); a file includes headers of its own
folder or of folders before it, never after, so the structure has no cycles.
Public headers (include/kd) count as the folder that implements them. Only
the driver (src/cmd) exits: no exit() or MPI_Abort() in the library."""
import os
import re
import sys

ORDER = ["core", "nn", "data", "models", "loss", "optim", "ckpt", "infer", "interop", "train", "cmd"]
PUBLIC = {"error": "core", "data": "data", "teacher": "data", "model": "models", "registry": "models",
          "loss": "loss", "ckpt": "ckpt", "infer": "infer", "train": "train", "kd": "cmd"}
root = sys.argv[1]
bad = []
files = []
for d in ORDER:
    for f in sorted(os.listdir(os.path.join(root, "src", d))):
        files.append((d, os.path.join(root, "src", d, f)))
for f in sorted(os.listdir(os.path.join(root, "include", "kd"))):
    name = f[:-2]
    if name not in PUBLIC:
        bad.append(f"include/kd/{f}: a public header the layer map does not know")
        continue
    files.append((PUBLIC[name], os.path.join(root, "include", "kd", f)))
for mod in os.listdir(os.path.join(root, "src")):
    if os.path.isdir(os.path.join(root, "src", mod)) and mod not in ORDER:
        bad.append(f"src/{mod}: a folder the layer map does not know")
    elif os.path.isfile(os.path.join(root, "src", mod)):
        bad.append(f"src/{mod}: a source outside the folders")
edges = 0
for mod, path in files:
    rel = os.path.relpath(path, root)
    text = open(path).read()
    for inc in re.findall(r'#include "([^"]+)"', text):
        top, _, rest = inc.partition("/")
        dep = PUBLIC.get(rest[:-2]) if top == "kd" else top if top in ORDER else None
        if dep is None:
            continue
        edges += 1
        if ORDER.index(dep) > ORDER.index(mod):
            bad.append(f"{rel} ({mod}) includes {inc} ({dep}), a later layer")
    if mod != "cmd" and re.search(r"\b(exit|_exit|abort|MPI_Abort)\s*\(", re.sub(r"/\*.*?\*/", "", text, flags=re.S)):
        bad.append(f"{rel}: the library exits (exit/abort/MPI_Abort); return an error code instead")
for b in bad:
    print("FAIL:", b)
print(f"{len(files)} files, {edges} includes between layers checked: {'ok' if not bad else f'{len(bad)} problems'}")
sys.exit(1 if bad else 0)
