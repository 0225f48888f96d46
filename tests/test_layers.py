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

ORDER = ["core", "nn", "data", "models", "loss", "optim", "ckpt", "infer", "interop", "api", "train", "doctor", "cmd"]
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
# Within a folder, the files call each other's functions in one direction only (no cycle of calls between
# files: the trainer's entry point sits above its chain of generations, which sits above one run).
calls = 0
for d in ORDER:
    folder = os.path.join(root, "src", d)
    sources = {f: re.sub(r"/\*.*?\*/", "", open(os.path.join(folder, f)).read(), flags=re.S)
               for f in sorted(os.listdir(folder)) if f.endswith(".c")}
    defined = {}
    for f, text in sources.items():
        for m in re.finditer(r"^(?!static)[A-Za-z_][\w \*]*?\b(\w+)\s*\([^;{]*\)\s*\{", text, re.M):
            defined.setdefault(m.group(1), f)
    graph = {f: sorted({g for fn, g in defined.items() if g != f and re.search(r"\b" + fn + r"\s*\(", text)})
             for f, text in sources.items()}
    calls += sum(len(v) for v in graph.values())
    state = {}

    def visit(f, path):
        state[f] = 1
        for g in graph[f]:
            if state.get(g) == 1:
                bad.append(f"src/{d}: files call each other in a cycle: {' -> '.join(path[path.index(g):] + [g])}")
            elif not state.get(g):
                visit(g, path + [g])
        state[f] = 2

    for f in graph:
        if not state.get(f):
            visit(f, [f])
for b in bad:
    print("FAIL:", b)
print(f"{len(files)} files, {edges} includes between layers and {calls} calls between files checked: "
      f"{'ok' if not bad else f'{len(bad)} problems'}")
sys.exit(1 if bad else 0)
