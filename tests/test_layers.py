#!/usr/bin/python3
"""test_layers.py ROOT: the code map of docs/usage.md holds. libkd's folders
form a layered order (the way data flows); a file includes headers of its own
folder or of folders before it, never after, so the structure has no cycles.
The shared internal headers (src/kd) count as the folder that implements them,
the public header (include/kd/libkd.h) as src/api. Only the driver (src/cmd)
exits: no exit() or MPI_Abort() in the library."""
import os
import re
import sys

ORDER = ["core", "nn", "data", "models", "loss", "optim", "ckpt", "infer", "interop", "api", "train", "cmd"]
SHARED = {"error": "core", "data": "data", "teacher": "data", "model": "models", "registry": "models",
          "loss": "loss", "ckpt": "ckpt", "infer": "infer", "train": "train", "kd": "cmd", "libkd": "api"}
root = sys.argv[1]
bad = []
files = []
for d in ORDER:
    for f in sorted(os.listdir(os.path.join(root, "src", d))):
        files.append((d, os.path.join(root, "src", d, f)))
for where in (("src", "kd"), ("include", "kd")):
    for f in sorted(os.listdir(os.path.join(root, *where))):
        name = f[:-2]
        if name not in SHARED or (where[0] == "include") != (name == "libkd"):
            bad.append(f"{'/'.join(where)}/{f}: a header the layer map does not know there")
            continue
        files.append((SHARED[name], os.path.join(root, *where, f)))
for mod in os.listdir(os.path.join(root, "src")):
    if os.path.isdir(os.path.join(root, "src", mod)) and mod not in ORDER + ["kd"]:
        bad.append(f"src/{mod}: a folder the layer map does not know")
    elif os.path.isfile(os.path.join(root, "src", mod)):
        bad.append(f"src/{mod}: a source outside the folders")
edges = 0
for mod, path in files:
    rel = os.path.relpath(path, root)
    text = open(path).read()
    for inc in re.findall(r'#include "([^"]+)"', text):
        top, _, rest = inc.partition("/")
        dep = SHARED.get(rest[:-2]) if top == "kd" else top if top in ORDER else None
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
