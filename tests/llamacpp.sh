#!/bin/bash
# tests/llamacpp.sh: the real llama.cpp for the GGUF tests, fetched from the npm registry once and cached outside
# git: the prebuilt CPU libraries of @node-llama-cpp/linux-x64@3.22.1 (libllama.v0.5.0.so, libggml*.so, one
# libggml-cpu-*.so per CPU family) and the headers of the same build, from the llama.cpp source bundle inside
# node-llama-cpp@3.22.1 (llama/gitRelease.bundle: include/llama.h, ggml/include/*.h). Prints the cache
# directory (lib/, include/) on its last line and exits 0, or prints "skip: REASON" and exits 77 (no network,
# no npm, not x86-64). KD_CACHE (default ~/.cache/kd) holds it; nothing is written inside the repository.
set -u
version=3.22.1
cache=${KD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kd}/llama.cpp-node-$version
skip() { echo "skip: $*"; exit 77; }
if [ -e "$cache/lib/libllama.v0.5.0.so" ] && [ -e "$cache/include/llama.h" ]; then
  echo "$cache"
  exit 0
fi
[ "$(uname -m)" = x86_64 ] || skip "llama.cpp's prebuilt CPU libraries on npm are for x86-64 (this machine: $(uname -m))"
command -v npm >/dev/null 2>&1 || skip "npm is not installed (node's npm fetches llama.cpp's prebuilt libraries)"
command -v git >/dev/null 2>&1 || skip "git is not installed (llama.cpp's headers come from a git bundle)"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kd-llamacpp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
echo "fetching llama.cpp $version from the npm registry into $cache" >&2
timeout 300 npm pack --silent "@node-llama-cpp/linux-x64@$version" > pack1.log 2>&1 ||
  skip "the npm registry could not be reached for @node-llama-cpp/linux-x64@$version: $(tail -n 1 pack1.log)"
timeout 600 npm pack --silent "node-llama-cpp@$version" > pack2.log 2>&1 ||
  skip "the npm registry could not be reached for node-llama-cpp@$version: $(tail -n 1 pack2.log)"
mkdir -p stage/lib stage/include
tar xzf node-llama-cpp-linux-x64-$version.tgz --wildcards 'package/bins/linux-x64/*.so' || exit 1
cp package/bins/linux-x64/*.so stage/lib/
tar xzf node-llama-cpp-$version.tgz package/llama/gitRelease.bundle || exit 1
git clone -q --bare package/llama/gitRelease.bundle src.git || exit 1
git --git-dir=src.git show HEAD:include/llama.h > stage/include/llama.h || exit 1
for h in $(git --git-dir=src.git ls-tree --name-only HEAD ggml/include/ | grep '\.h$'); do
  git --git-dir=src.git show "HEAD:$h" > "stage/include/$(basename "$h")" || exit 1
done
mkdir -p "$(dirname "$cache")"
rm -rf "$cache"
mv stage "$cache" || exit 1
echo "$cache"
