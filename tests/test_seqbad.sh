#!/bin/bash
# The bad-input matrix of the sequence paths (issue 26), on 2 ranks, each case under a 20-second limit (a hang
# fails it; a few cases at once, each in its own directory, as most of a failing case's time is mpiexec waiting
# out its ranks' exit): the exit code (2 when the arguments alone decide, 1 when reading files or running does),
# exactly one "kd: error" line, and it is the last line, naming the file, dataset, row, position or value; nothing
# already in an output place changed (a run directory's checkpoints, an existing teacher, prediction or data
# file), and a failed training run leaves no final.h5. Token rows, masks, tokenizer records, teacher files
# (dense, top-k, sampled, hidden states and attention maps), --init files, online teachers, imports, kd logits,
# eval, predict, generate --data, eval --decode and resume.
source "$(dirname "$0")/lib.sh"
"$PY" "$TESTS_DIR/make_seqbad.py" b data || exit 1
G=(--student gpt:vocab=13,ctx=10,layers=1,dim=8,heads=2 --epochs 1 --batch 4 --threads 1 --progress off)
# What the cases must leave alone: a finished run, its teacher files, and files in the output places. (The
# reference run and the dense teacher also show progress: in place on a terminal, and lines in a log.)
kdrun 2 train --data b/good.h5 "${G[@]}" --epochs 2 --progress on --progress-every 0.001 --out keep > keep.log 2>&1 ||
  { fail "reference run"; finish; exit 1; }
expect "--progress on redraws one line in place" grep -q $'\r  step [0-9]*/8' keep.log
PL=(--progress lines --progress-every 0.0001)
progress_line() { grep -Eq "^  kd [a-z]+ .*/[0-9]+ (rows|words) \([0-9]+%\)" "$1"; }
kdrun 2 logits --ckpt keep --data b/good.h5 --out b/t.h5 "${PL[@]}" > t.log 2>&1 || fail "dense teacher"
expect "kd logits: a progress line (--data b/good.h5 --out b/t.h5)" progress_line t.log
kdrun 2 logits --ckpt keep --data b/good.h5 --topk 4 --out b/tk.h5 > /dev/null || fail "top-k teacher"
kdrun 2 logits --ckpt keep --data b/good.h5 --sample 4 --out b/sp.h5 > /dev/null || fail "sampled teacher"
kdrun 2 logits --ckpt keep --data b/good.h5 --hidden 1 --attn 1 --out b/in.h5 > /dev/null || fail "stored hidden states"
cp keep/final.h5 b/final.h5
"$PY" "$TESTS_DIR/make_seqbad.py" b teachers || exit 1
cp b/t.h5 existing.h5
# A teacher of another tokenizer with the same 13 ids, and a wider teacher that reads only 6 positions.
kdrun 2 train --data b/other_tok.h5 "${G[@]}" --out other > /dev/null 2>&1 || fail "other-tokenizer teacher"
"$PY" - <<'PY' || fail "a short-context teacher"
import h5py, numpy as np
# The context-6 teacher is trained on rows cut to 6 positions.
with h5py.File("b/good.h5") as f, h5py.File("b/six.h5", "w") as g:
    for s in ("train", "valid"):
        g[f"{s}/tokens"] = f[f"{s}/tokens"][:, :6]
        g[f"{s}/mask"] = f[f"{s}/mask"][:, :6]
    f.copy("tokenizer", g)
PY
kdrun 2 train --data b/six.h5 --student gpt:vocab=13,ctx=6,layers=1,dim=8,heads=2 --epochs 1 --batch 4 --threads 1 \
  --progress off --out six > /dev/null 2>&1 || fail "context-6 teacher"
kdrun 2 train --data b/good.h5 --student gpt:vocab=14,ctx=10,layers=1,dim=8,heads=2 --epochs 1 --batch 4 --threads 1 \
  --progress off --out v14 > /dev/null 2>&1 || fail "vocabulary-14 run"
sums() { md5sum keep/* existing.h5 2>/dev/null; }
before=$(sums)
cp -r keep again # the resume case's run (its checkpoint against other rows)
n=0
started=()

# case_ WANT_RC NEEDLE ARGS...: start a case on 2 ranks (KD_TEST_JOBS at a time: default 4, and 2 in the sanitizer
# pass, whose ranks keep the cores busy) in the directory c<n>: links to the shared inputs and its own copy of
# existing.h5. collect reports the cases started: the exit, one error line (the last), the needle, no o/final.h5.
jobs_default=4
[ "${KD_TEST_STRIDE:-1}" -gt 1 ] && jobs_default=2
case_() {
  local want=$1 needle=$2
  shift 2
  n=$((n + 1))
  # KD_TEST_STRIDE=S (the sanitizer pass, within CI's time): every S-th case only; all of them run in the main pass
  if [ "${KD_TEST_STRIDE:-1}" -gt 1 ] && [ $((n % KD_TEST_STRIDE)) -ne 0 ]; then return; fi
  while [ "$(jobs -rp | wc -l)" -ge "${KD_TEST_JOBS:-$jobs_default}" ]; do wait -n; done
  mkdir "c$n" && ln -s ../b ../keep ../six ../other ../v14 ../again "c$n"/ && cp existing.h5 "c$n"/ ||
    { fail "case $n: its directory"; return; }
  started+=("$n")
  (
    cd "c$n" || exit 1
    out=$(timeout -k 2 20 "$MPIEXEC" -q -np 2 --oversubscribe --bind-to none "$KD" "$@" 2>&1 >/dev/null)
    rc=$?
    lines=$(printf '%s\n' "$out" | grep -c '^kd: error')
    last=$(printf '%s\n' "$out" | grep -v '^$' | tail -n 1)
    if [ "$rc" -eq "$want" ] && [ "$lines" -eq 1 ] && [[ "$last" == "kd: error"* ]] && [[ "$last" == *"$needle"* ]] &&
       [ ! -e o/final.h5 ]; then
      printf 'ok\ncase %s: exit %s, %s\n' "$n" "$want" "'$needle'"
    else
      printf "fail\ncase %s: wanted exit %s and one last error line naming '%s'; got exit %s: %s (%s)\n" "$n" "$want" \
        "$needle" "$rc" "$out" "$*"
    fi > result
  ) &
}
T=(train "${G[@]}" --out o)
# Token rows and masks.
case_ 1 "b/id_big.h5: /train/tokens row 11 position 3 holds 17, outside the vocabulary [0, 13)" "${T[@]}" --data b/id_big.h5
case_ 1 "/train/tokens row 11 position 0 holds -1, outside the vocabulary" "${T[@]}" --data b/id_neg.h5
case_ 1 "dataset /train/tokens must hold integer token ids" "${T[@]}" --data b/id_float.h5
case_ 1 "dataset /train/tokens must be 2-D [rows, positions], it is 1-D" "${T[@]}" --data b/tokens_1d.h5
case_ 1 "/train/tokens rows have 1 positions (at least 2: a token and its target)" "${T[@]}" --data b/one_pos.h5
case_ 1 "no target positions in /train: /train/mask is all zeros" "${T[@]}" --data b/mask_zero.h5
case_ 1 "no target positions in /train" "${T[@]}" --data b/mask_first.h5
case_ 1 "/train/mask is [16, 9] but /train/tokens is [16, 10]" "${T[@]}" --data b/mask_shape.h5
case_ 1 "no target positions in /valid" "${T[@]}" --data b/valid_zero.h5
case_ 1 "/train/tokens rows have 16 positions but --student gpt:vocab=13,ctx=10" "${T[@]}" --data b/long.h5
case_ 1 "split /train is empty (0 rows)" "${T[@]}" --data b/empty.h5
# Tokenizer records.
case_ 1 "b/tok_big.h5: /tokenizer has 20 ids but --student gpt:vocab=13" "${T[@]}" --data b/tok_big.h5
case_ 1 "row 11 position 2 holds 11, outside the vocabulary [0, 11) (the ids of its /tokenizer record" "${T[@]}" \
  --data b/tok_small.h5
case_ 1 "b/tok_end.h5: /tokenizer attribute end_id = 99 is outside its vocabulary [0, 13)" "${T[@]}" --data b/tok_end.h5
# Teacher files: dense, top-k, sampled, stored hidden states and attention maps.
case_ 1 "b/t_vocab.h5: /train/logits are over a vocabulary of 14 but --student" "${T[@]}" --data b/good.h5 --teacher b/t_vocab.h5
case_ 1 "b/t_nan.h5: /train/logits row 11 position 3 column 2 is NaN" "${T[@]}" --data b/good.h5 --teacher b/t_nan.h5
case_ 1 "/train/logits has 13 rows but /train/tokens" "${T[@]}" --data b/good.h5 --teacher b/t_short.h5
case_ 1 "b/t_pos.h5: /train/logits" "${T[@]}" --data b/good.h5 --teacher b/t_pos.h5
case_ 1 "/train/topk/ids row 11 position 5 slot 1 is id 300, outside the vocabulary [0, 13)" "${T[@]}" --data b/good.h5 \
  --teacher b/tk_range.h5 --sparse-kd topk
case_ 1 "b/tk_dup.h5: /train/topk/ids row 11 position 5" "${T[@]}" --data b/good.h5 --teacher b/tk_dup.h5 --sparse-kd topk
case_ 1 "/train/topk/lse" "${T[@]}" --data b/good.h5 --teacher b/tk_nolse.h5 --sparse-kd tail
case_ 1 "b/sp_neg.h5: /train/sampled/counts row 11 position 4" "${T[@]}" --data b/good.h5 --teacher b/sp_neg.h5 \
  --sparse-kd sampled --temperature 1
case_ 1 "sample_temperature" "${T[@]}" --data b/good.h5 --teacher b/sp.h5 --sparse-kd sampled --temperature 2
case_ 1 "b/in_short.h5: dataset /train/hidden/1 is [16, 9, 8] but must be [rows, T, width]" "${T[@]}" --data b/good.h5 --teacher b/in_short.h5 --hidden-map 1:1
case_ 1 "b/in_nan.h5: /train/attn/1 row 11 head 0 query 4 key 2 is NaN" "${T[@]}" --data b/good.h5 --teacher b/in_nan.h5 \
  --attn-loss mse --attn-map 1:1
# --init files.
case_ 1 "b/init_nan.h5: /model/transformer/h/0/mlp/c_fc/weight row 3 column 1 is NaN" "${T[@]}" --data b/good.h5 \
  --init b/init_nan.h5
case_ 1 "/model/transformer/h/0/attn/extra is not a parameter of the student" "${T[@]}" --data b/good.h5 \
  --init b/init_extra.h5
case_ 1 "b/init_shape.h5: /model/transformer/wpe/weight is [8, 8], the student" "${T[@]}" --data b/good.h5 \
  --init b/init_shape.h5
# A run that cannot produce a finite loss stops at its first step, or after an epoch of skipped steps.
case_ 1 "step 1 (epoch 1): the loss is not finite" "${T[@]}" --data b/good.h5 --init b/init_huge.h5
case_ 1 "epoch 1: every one of its 4 steps had a non-finite loss or gradient and was skipped" "${T[@]}" --data b/good.h5 \
  --init b/init_huge.h5 --on-nonfinite skip
# Online teachers.
case_ 1 "/train/tokens rows have 10 positions but --teacher-model six" "${T[@]}" --data b/good.h5 --teacher-model six
case_ 2 "has 14 tokens in its vocabulary, the student 13" "${T[@]}" --data b/good.h5 --teacher-model v14
case_ 1 "--teacher-model other" "${T[@]}" --data b/good.h5 --teacher-model other
# kd logits, eval, predict: the same checks; the output file already there is left as it was.
case_ 1 "b/id_big.h5: /train/tokens row 11 position 3 holds 17, outside the vocabulary [0, 13)" logits --ckpt keep \
  --data b/id_big.h5 --out existing.h5
case_ 1 "b/tok_big.h5: /tokenizer has 20 ids but the student gpt:vocab=13" logits --ckpt keep --data b/tok_big.h5 \
  --out existing.h5
case_ 1 "is not the /tokenizer of b/other_tok.h5" logits --ckpt keep --data b/other_tok.h5 --out existing.h5
case_ 1 "/train/tokens rows have 10 positions but the student gpt:vocab=13,ctx=6" logits --ckpt six --data b/good.h5 \
  --out existing.h5
case_ 1 "b/id_neg.h5: /train/tokens row 11 position 0 holds -1" eval --ckpt keep --data b/id_neg.h5 --split train
case_ 1 "no target positions in /valid" eval --ckpt keep --data b/valid_zero.h5 --split valid
case_ 1 "b/id_big.h5: /train/tokens row 11 position 3 holds 17" predict --ckpt keep --data b/id_big.h5 --split train \
  --out existing.h5
# generate --data and eval --decode.
case_ 1 "b/no_sep.h5: /train/tokens row 11 has no separator (id 1)" generate --ckpt keep --data b/no_sep.h5 \
  --out existing.h5 --decode greedy
case_ 1 "b/id_big.h5: /train/tokens row 11 position 3 holds 17" generate --ckpt keep --data b/id_big.h5 \
  --out existing.h5 --decode greedy
case_ 1 "b/notok.h5: no /tokenizer record" eval --ckpt keep --data b/notok.h5 --split valid --decode greedy
case_ 1 "is not the /tokenizer of b/other_tok.h5" eval --ckpt keep --data b/other_tok.h5 --split valid --decode greedy
case_ 2 "beam:0" eval --ckpt keep --data b/good.h5 --split valid --decode beam:0
# Imports: an empty or unreadable input names the file.
case_ 1 "b/empty.txt: no text to import (the file is empty)" import text --in b/empty.txt --ctx 16 --out o.h5
case_ 1 "b/seps.txt: no text to import (only document separators)" import text --in b/seps.txt --doc-sep % --ctx 16 \
  --out o.h5
case_ 1 "b/none.txt: cannot read (No such file or directory)" import text --in b/none.txt --ctx 16 --out o.h5
case_ 1 "b/empty.tsv: no pairs to import (only blank and comment lines)" import pairs --in b/empty.tsv --out o.h5
case_ 1 "b/bad.tsv:2" import pairs --in b/bad.tsv --out o.h5
# Resume against other rows.
case_ 1 "b/shuffled.h5: /train rows differ from the data the checkpoint" train --resume again --data b/shuffled.h5 \
  --epochs 3
collect
rm -rf again
# A vocabulary larger than the tokenizer's is padding: it trains (bits per byte measured), and no decoder emits a
# padding id, even sampling at a temperature that makes every id nearly as likely. Progress inside an epoch and
# over long splits: lines in a log at --progress-every (this run's and its sampling's; the rest below).
kdrun 2 train --data b/good.h5 --student gpt:vocab=16,ctx=10,layers=1,dim=8,heads=2 --epochs 3 --batch 2 --threads 1 \
  --progress lines --progress-every 0.001 --out pad > pad.log 2>&1 || fail "a padded vocabulary trains"
expect "bits per byte of a padded vocabulary" grep -Eq "^eval: .* bpb [0-9.]+" pad.log
expect "kd train: progress lines with step/steps, loss, rate, ETA" \
  grep -Eq "^  step [0-9]+/24 \(epoch [1-3]/3, step [0-9]+/8\)  loss [0-9.]+  [0-9]+ tokens/s  ETA [0-9:]+$" pad.log
kdrun 2 generate --ckpt pad --data b/good.h5 --out pad_g.h5 --decode sample --temperature 50 --seed 3 --batch 1 \
  "${PL[@]}" > pad_g.log 2>&1 || fail "sampling a padded vocabulary"
expect "no padding id sampled" "$PY" -c "
import h5py, numpy as np
f = h5py.File('pad_g.h5')
t, m = f['train/tokens'][()], f['train/mask'][()]
assert t.max() < 13 and m.sum() >= 40, (t.max(), m.sum())  # 16 rows, some 4 sampled tokens each
"
expect "kd generate: a progress line (--data b/good.h5 --decode sample --batch 1)" progress_line pad_g.log
for cmd in "eval --ckpt keep --data b/good.h5 --split valid --batch 1" \
           "predict --ckpt keep --data b/good.h5 --split valid --batch 1 --out prog_p.h5" \
           "eval --ckpt keep --data b/good.h5 --split valid --decode greedy --batch 1"; do
  kdrun 2 $cmd "${PL[@]}" > p.log 2>&1
  expect "kd ${cmd%% *}: a progress line (${cmd#* --ckpt keep })" progress_line p.log
done
expect "at least 30 cases ($n)" test "$n" -ge 30
copies() { local f; for f in c*/existing.h5; do cmp -s existing.h5 "$f" || return 1; done; }
expect "no file in an output place changed" test "$(sums)" = "$before"
expect "... nor any case's copy of existing.h5" copies
expect "no import output was written" test -z "$(ls c*/o.h5 2>/dev/null)"
finish
