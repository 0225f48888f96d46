#!/bin/bash
# bench/hftok.sh: kd's Hugging Face tokenizers against Hugging Face's own library (its Node bindings,
# tests/hf_encode.js; fetched by tests/hftokenizers.sh) on Debian's fortunes corpus (2.5 MB, 15,217
# documents), the Llama 3 and Qwen3 tokenizer.json: median seconds over --runs runs of
#   kd import text --tokenizer hf:FILE (the whole import: tokenizer.json read, three streams tokenized, rows
#     written; kd's tokenizer is single-threaded) and the tokenizing it reports;
#   kd tokenize (one encode per document, the tokenizer read once);
#   the library's encode, one call per document (its Promise per call included), and encodeBatch of 1,024
#     documents a call (its thread pool, both cores);
# the library's time excludes loading tokenizer.json. Prints; asserts nothing.
#
#   bench/hftok.sh [--runs N]   (default 5)
set -u
source "$(dirname "$0")/../launch/common.sh"
[ -x "$KD_BUILD/kd" ] || kd_build || exit 1
runs=5
[ "${1:-}" = --runs ] && runs=$2
cache=$(bash "$KD_ROOT/tests/hftokenizers.sh" | tail -n 1)
case $cache in skip:*) echo "bench/hftok.sh: ${cache#skip: }" >&2; exit 1 ;; esac
work=$(mktemp -d "${TMPDIR:-/tmp}/kd-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
fdir=$(dpkg -L fortunes | grep -m1 '/fortunes/[^/]*\.dat$' | xargs dirname)
for f in $(find "$fdir" -maxdepth 1 -type f ! -name '*.dat' ! -name '*.u8' | sort); do cat "$f"; printf '%%\n'; done \
  > "$work/fortunes.txt"
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
now() { date +%s.%N; }
echo "host: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'); node $(node --version)"
echo "corpus: $(stat -c %s "$work/fortunes.txt") bytes, $(grep -c '^%$' "$work/fortunes.txt") separators; $runs runs each, medians"
for m in llama3 qwen3; do
  tok=$cache/$m/tokenizer.json
  : > "$work/imp" ; : > "$work/enc" ; : > "$work/tok" ; : > "$work/hf1" ; : > "$work/hfb"
  for r in $(seq "$runs"); do
    t0=$(now)
    OPENBLAS_NUM_THREADS=1 "$KD_BUILD/kd" import text --in "$work/fortunes.txt" --doc-sep % --ctx 512 \
      --tokenizer "hf:$tok" --out "$work/i.h5" --force > "$work/imp.log" || exit 1
    awk -v a="$(now)" -v b="$t0" 'BEGIN { print a - b }' >> "$work/imp"
    sed -n 's/.*tokenized in \([0-9.]*\) s.*/\1/p' "$work/imp.log" >> "$work/enc"
    "$KD_BUILD/kd" tokenize --tokenizer "hf:$tok" --in "$work/fortunes.txt" --doc-sep % > /dev/null 2> "$work/tok.log"
    sed -n 's/.*text tokenized in \([0-9.]*\) s.*/\1/p' "$work/tok.log" >> "$work/tok"
    node "$KD_ROOT/tests/hf_encode.js" "$cache/node_modules" "$tok" "$work/fortunes.txt" --doc-sep % > /dev/null 2> "$work/hf.log"
    sed -n 's/.* bytes in \([0-9.]*\) s.*/\1/p' "$work/hf.log" >> "$work/hf1"
    HF_ENCODE_BATCH=1024 node "$KD_ROOT/tests/hf_encode.js" "$cache/node_modules" "$tok" "$work/fortunes.txt" --doc-sep % \
      > /dev/null 2> "$work/hfb.log"
    sed -n 's/.* bytes in \([0-9.]*\) s.*/\1/p' "$work/hfb.log" >> "$work/hfb"
  done
  imp=$(median < "$work/imp") enc=$(median < "$work/enc") tk=$(median < "$work/tok")
  hf1=$(median < "$work/hf1") hfb=$(median < "$work/hfb")
  printf '%s: kd import text %.2f s (tokenizing %.2f s of it); kd tokenize %.2f s; Hugging Face encode per document %.2f s, encodeBatch %.2f s; library/kd (per document, tokenizing) %.1fx\n' \
    "$m" "$imp" "$enc" "$tk" "$hf1" "$hfb" "$(awk -v a="$hf1" -v b="$tk" 'BEGIN { print a / b }')"
done
