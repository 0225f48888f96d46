#!/bin/bash
# On-policy distillation (issue 32, item 2): kd train --on-policy LAMBDA with an online teacher.
#  - lambda 1 with a batch of every row: 1 and 2 ranks sample the same completions and end with the same weights
#    (1e-5); every step is on-policy (no hard-label CE logged), the banner says so, step_ms shows generate;
#  - lambda 0.5: about half the steps, the same ones on every run; stopped and resumed, bitwise;
#  - --on-policy 0 is the run without it, bit for bit;
#  - the chunked loss of a large vocabulary (vocab 300) with jsd:0.5 on-policy; a llama student;
#  - --divergence reverse-sampled (the sampled-token estimator): 1 and 2 ranks agree, dense and chunked alike,
#    and it trains differently from the exact reverse KL;
#  - prompt-completion rows (kd import pairs) keep their prompts and sample completions;
#  - kd generate --data --prompt-tokens (the evaluation of on-policy text students): text rows keep their first N
#    tokens and are continued to the row's end, the same file on 1 and 2 ranks; greedy continuations equal kd
#    generate --prompt's; kd eval scores exactly the new tokens; refused without --data (exit 2) and a text file
#    without it named (exit 1);
#  - refused with one line and exit 2: no --teacher-model, an mlp student, --rollout options without it,
#    born-again generations (taught by snapshots after the first), reverse-sampled without --on-policy or where its
#    draws would not come from the loss's softmax (a temperature, top-k, dropout, a padded vocabulary).
source "$(dirname "$0")/lib.sh"
"$PY" "$TESTS_DIR/make_tokens.py" fx > /dev/null || exit 1
"$KD" import text --in fx/corpus.txt --ctx 16 --doc-sep % --valid-frac 0.15 --test-frac 0.15 --out c.h5 > /dev/null ||
  exit 1
T=(--data c.h5 --threads 1 --progress off --batch 16 --optimizer adamw --lr 0.003 --epochs 1)
kdrun 2 train "${T[@]}" --student gpt:vocab=256,ctx=16,layers=2,dim=32,heads=4 --out tch > /dev/null || fail "teacher"
kdrun 2 train "${T[@]}" --student gpt:vocab=300,ctx=16,layers=1,dim=32,heads=4 --out tch300 > /dev/null ||
  fail "teacher, vocab 300"
W=(train --data c.h5 --student gpt:vocab=256,ctx=16,layers=2,dim=16,heads=2 --threads 1 --progress off --lr 0.5
   --optimizer sgd --temperature 1 --alpha 0.5 --log-every 1 --teacher-model tch)
# 1. Every step on-policy; a step holds every row, so 1 and 2 ranks decode the same groups of rows.
kdrun 1 "${W[@]}" --train-rows 32 --batch 32 --epochs 4 --divergence reverse --on-policy 1 --out a1 > a1.log ||
  fail "on-policy, 1 rank"
kdrun 2 "${W[@]}" --train-rows 32 --batch 32 --epochs 4 --divergence reverse --on-policy 1 --out a2 > a2.log ||
  fail "on-policy, 2 ranks"
expect "on-policy: 1 and 2 ranks end with the same weights (1e-5)" close a1/final.h5 a2/final.h5 --rtol 1e-5
expect "on-policy: 1 and 2 ranks log the same losses (1e-5)" cols a1 a2 loss kd
expect "lambda 1: no step has a hard label (ce empty), every step a soft loss" "$PY" -c "
import csv
rows = list(csv.DictReader(open('a2/metrics.csv')))
assert len(rows) == 4 and all(r['ce'] == '' and float(r['kd']) > 0 for r in rows), rows"
expect "the banner describes the on-policy steps" grep -q '^on-policy: 1 of the steps train on the student' a2.log
expect "step_ms shows the generation" grep -Eq '^step_ms: gather=[0-9.]+ generate=[0-9.]+ teacher=' a2.log
kdrun 2 "${W[@]}" --train-rows 32 --batch 32 --epochs 4 --divergence reverse --out off > /dev/null || fail "off-policy"
expect "sampled completions train differently from the data's" \
  bash -c "! \"$PY\" \"$TESTS_DIR/compare_weights.py\" a2/final.h5 off/final.h5 --rtol 1e-3 > /dev/null"

# 2. lambda 0.5: the same steps on-policy in every run; a resume continues bitwise; lambda 0 is no on-policy.
H=("${W[@]}" --batch 16 --epochs 2 --divergence jsd:0.5 --ckpt-every 5)
kdrun 2 "${H[@]}" --on-policy 0.5 --out hf > /dev/null || fail "lambda 0.5"
kdrun 2 "${H[@]}" --on-policy 0.5 --out hh --max-steps 12 > /dev/null || fail "lambda 0.5, stopped"
kdrun 2 train --resume hh > /dev/null || fail "lambda 0.5, resumed"
expect "lambda 0.5: stopped and resumed, bitwise" close hf/final.h5 hh/final.h5 --exact
expect "lambda 0.5: between a quarter and three quarters of the steps on-policy, the same ones after a resume" "$PY" -c "
import csv
a = [r['ce'] == '' for r in csv.DictReader(open('hf/metrics.csv'))]
b = [r['ce'] == '' for r in csv.DictReader(open('hh/metrics.csv'))]
assert a == b and len(a) > 20 and 0.25 * len(a) < sum(a) < 0.75 * len(a), (sum(a), len(a))"
kdrun 2 "${H[@]}" --on-policy 0 --out z0 > /dev/null || fail "lambda 0"
kdrun 2 "${H[@]}" --out z > /dev/null || fail "no on-policy"
expect "--on-policy 0 is the run without it, bit for bit" close z0/final.h5 z/final.h5 --exact

# 3. The chunked loss (vocab over 256) on-policy, 1 and 2 ranks.
C=(train --data c.h5 --student gpt:vocab=300,ctx=16,layers=1,dim=16,heads=2 --threads 1 --progress off --lr 0.5
   --optimizer sgd --temperature 1 --log-every 1 --teacher-model tch300 --train-rows 32 --batch 32 --epochs 3
   --divergence jsd:0.5 --on-policy 1 --loss-chunk 8 --rollout-max-new 6 --rollout-top-k 20)
kdrun 1 "${C[@]}" --out k1 > /dev/null || fail "chunked on-policy, 1 rank"
kdrun 2 "${C[@]}" --out k2 > k2.log || fail "chunked on-policy, 2 ranks"
expect "chunked loss on-policy: 1 and 2 ranks agree (1e-5)" close k1/final.h5 k2/final.h5 --rtol 1e-5
expect "the banner gives the rollout's limits" grep -q 'up to 6 new tokens at temperature 1, top-k' k2.log

# 3a. The sampled-token estimator: the same draws on 1 and 2 ranks, on the chunked path as on the dense one (a
# student of the tokenizer's 256 ids: a padded vocabulary is refused, its padding ids never being drawn).
RS=(train --data c.h5 --student gpt:vocab=256,ctx=16,layers=1,dim=16,heads=2 --threads 1 --progress off --lr 0.5
    --optimizer sgd --temperature 1 --log-every 1 --teacher-model tch --train-rows 32 --batch 32 --epochs 3
    --divergence reverse-sampled --on-policy 1 --loss-chunk 8 --rollout-max-new 6)
kdrun 1 "${RS[@]}" --out rs1 > /dev/null || fail "reverse-sampled, chunked, 1 rank"
kdrun 2 "${RS[@]}" --out rs2 > rs2.log || fail "reverse-sampled, chunked, 2 ranks"
expect "reverse-sampled (chunked): 1 and 2 ranks agree (1e-5)" close rs1/final.h5 rs2/final.h5 --rtol 1e-5
kdrun 2 "${RS[@]}" --loss-chunk -1 --out rs3 > /dev/null || fail "reverse-sampled, dense"
expect "reverse-sampled: the dense and the chunked loss agree (1e-4)" close rs2/final.h5 rs3/final.h5 --rtol 1e-4
expect "the banner names the sampled estimator" grep -q 'KL(student || teacher) (sampled on on-policy rows)' rs2.log
RV=("${RS[@]/reverse-sampled/reverse}")
kdrun 2 "${RV[@]}" --out rv2 > /dev/null || fail "reverse, chunked"
expect "reverse-sampled trains differently from the exact reverse KL" \
  bash -c "! \"$PY\" \"$TESTS_DIR/compare_weights.py\" rs2/final.h5 rv2/final.h5 --rtol 1e-3 > /dev/null"

# 3b. A llama student (its decoder's cache of grouped keys and values), taught by the gpt.
LL=(train --data c.h5 --student llama:vocab=256,ctx=16,layers=1,dim=16,heads=2,kv_heads=1,ffn=24 --threads 1
    --progress off --lr 0.5 --optimizer sgd --temperature 1 --log-every 1 --train-rows 32 --batch 32 --epochs 3
    --teacher-model tch --divergence reverse --on-policy 1)
kdrun 1 "${LL[@]}" --out l1 > /dev/null || fail "llama on-policy, 1 rank"
kdrun 2 "${LL[@]}" --out l2 > /dev/null || fail "llama on-policy, 2 ranks"
expect "llama on-policy: 1 and 2 ranks agree (1e-5)" close l1/final.h5 l2/final.h5 --rtol 1e-5

# 4. Prompt-completion rows: the prompts (the unmasked prefix) stay, completions are sampled.
"$PY" - <<'PY' || fail "pairs"
import random
random.seed(1)
w = set()
while len(w) < 200:
    w.add("".join(random.choice("abcdefgh") for _ in range(random.randint(2, 5))))
with open("rev.tsv", "w") as f:
    for x in sorted(w):
        f.write("%s\t%s\n" % (x, " ".join(c.upper() for c in reversed(x))))
PY
"$KD" import pairs --in rev.tsv --format tsv --out rev.h5 --valid-frac 0.1 --test-frac 0.1 > /dev/null || fail "import"
P=(--data rev.h5 --student gpt:vocab=20,ctx=16,layers=1,dim=32,heads=4 --batch 32 --threads 1 --progress off
   --optimizer adamw)
kdrun 2 train "${P[@]}" --epochs 6 --lr 0.004 --out rt > /dev/null || fail "pairs teacher"
kdrun 2 train "${P[@]}" --epochs 2 --lr 0.002 --teacher-model rt --on-policy 1 --temperature 1 --divergence reverse --log-every 1 \
  --out rs > rs.log || fail "pairs, on-policy"
expect "pairs on-policy: a finite soft loss" "$PY" -c "
import csv, math
r = [r for r in csv.DictReader(open('rs/metrics.csv')) if r['kd']][-1]
assert math.isfinite(float(r['kd'])) and float(r['kd']) > 0, r"

# 4a. Text rows continued after their first tokens (kd generate --data --prompt-tokens).
G=(generate --ckpt a1 --data c.h5 --split test --prompt-tokens 6 --progress off --batch 4)
kdrun 1 "${G[@]}" --decode sample --seed 3 --out g1.h5 > /dev/null || fail "generate --prompt-tokens, 1 rank"
kdrun 2 "${G[@]}" --decode sample --seed 3 --out g2.h5 > /dev/null || fail "generate --prompt-tokens, 2 ranks"
kdrun 2 "${G[@]}" --decode greedy --out gg.h5 > /dev/null || fail "generate --prompt-tokens, greedy"
expect "text continuations: the same file on 1 and 2 ranks; prompts kept, the rest of each row new, masked" "$PY" -c "
import h5py, numpy as np
src = h5py.File('c.h5')['test']
a, b = h5py.File('g1.h5')['test'], h5py.File('g2.h5')['test']
assert (a['tokens'][()] == b['tokens'][()]).all() and (a['mask'][()] == b['mask'][()]).all()
t0, m0, t, m = src['tokens'][()], src['mask'][()], a['tokens'][()], a['mask'][()]
W = t.shape[1]
changed = 0
for r in range(len(t)):
    L = max(p for p in range(W) if m0[r, p]) + 1
    P = min(6, L - 1)
    assert (t[r, :P] == t0[r, :P]).all(), r
    assert not m[r, :P].any() and m[r, P:].all(), (r, m[r])
    changed += (t[r, P:] != t0[r, P:]).any()
assert L < W, 'the last row of the split ends in padding'
assert changed > len(t) // 2, changed
"
# (the prompt passes through the command line: its 6 bytes must be printable ASCII, which the fixture's are)
kdrun 1 generate --ckpt a1 --prompt "$("$PY" -c "
import h5py
b = bytes(h5py.File('c.h5')['test/tokens'][0, :6])
assert all(32 <= c < 127 for c in b), b
print(b.decode(), end='')")" \
  --decode greedy --max-new 10 --print ids > gp.out || fail "generate --prompt, greedy"
expect "a greedy continuation of a row equals kd generate --prompt's of its first tokens (to the first near-tie)" "$PY" -c "
import h5py
lines = dict(l.split(': ', 1) for l in open('gp.out').read().splitlines())
src, g = h5py.File('c.h5')['test/tokens'][0], h5py.File('gg.h5')['test/tokens'][0]
assert [int(x) for x in lines['prompt'].split()] == list(src[:6]), lines['prompt']
n = 0
for pair in lines['new'].split():
    tok, margin = pair.split(':')
    assert int(tok) == g[6 + n], (n, pair, list(g))
    n += 1
    if float(margin) < 1e-4: break
assert n >= 3, n
"
kdrun 2 eval --ckpt tch --data g1.h5 --split test --json --progress off > ge.json || fail "eval of the continuations"
expect "kd eval of the continuations scores exactly their new tokens" "$PY" -c "
import h5py, json, math
j = json.load(open('ge.json'))
assert j['tokens'] == int(h5py.File('g1.h5')['test/mask'][()].sum()) and math.isfinite(j['nll']), j
"
later expect_usage_error "--prompt-tokens without --data" "prompt-tokens goes with --data" generate --ckpt a1 --prompt-tokens 4
text_refused() {
  local out
  out=$(kdrun 2 generate --ckpt a1 --data c.h5 --split test --out bad.h5 2>&1)
  expect "text rows without --prompt-tokens: exit 1 (got $?), one line naming it" \
    test "$?" -eq 1 -a "$(grep -c "prompt-tokens N" <<< "$out")" -eq 1
}
later text_refused

# 5. Refusals: one line, exit 2.
later expect_usage_error "--on-policy without an online teacher" "on-policy 1 needs an online teacher" \
  train --data c.h5 --student gpt:vocab=256,ctx=16,layers=1,dim=16,heads=2 --on-policy 1 --out bad1
later expect_usage_error "--on-policy with born-again generations" "on-policy with --generations 2: the generations after the first" \
  train --data c.h5 --student gpt:vocab=256,ctx=16,layers=1,dim=16,heads=2 --teacher-model tch --on-policy 1 \
  --generations 2 --out bad4
later expect_usage_error "--rollout options without --on-policy" "rollout options go with --on-policy" \
  train --data c.h5 --student gpt:vocab=256,ctx=16,layers=1,dim=16,heads=2 --rollout-top-k 5 --out bad2
later expect_usage_error "reverse-sampled without --on-policy" "reverse-sampled estimates the reverse KL from the student's own samples" \
  train --data c.h5 --student gpt:vocab=256,ctx=16,layers=1,dim=16,heads=2 --teacher-model tch --temperature 1 \
  --divergence reverse-sampled --out bad5
later expect_usage_error "reverse-sampled at T 2" "reverse-sampled is unbiased only when" \
  train --data c.h5 --student gpt:vocab=256,ctx=16,layers=1,dim=16,heads=2 --teacher-model tch --temperature 2 \
  --on-policy 1 --divergence reverse-sampled --out bad6
later expect_usage_error "reverse-sampled with a top-k rollout" "needs --temperature 1, --rollout-temperature 1 and no --rollout-top-k" \
  train --data c.h5 --student gpt:vocab=256,ctx=16,layers=1,dim=16,heads=2 --teacher-model tch --temperature 1 \
  --on-policy 1 --divergence reverse-sampled --rollout-top-k 5 --out bad7
later expect_usage_error "reverse-sampled with a padded vocabulary" "the rollout never draws the padding ids" \
  train --data c.h5 --student gpt:vocab=300,ctx=16,layers=1,dim=16,heads=2 --teacher-model tch300 --temperature 1 \
  --on-policy 1 --divergence reverse-sampled --out bad8
later expect_usage_error "reverse-sampled with dropout" "reverse-sampled with --dropout 0.1" \
  train --data c.h5 --student gpt:vocab=256,ctx=16,layers=1,dim=16,heads=2 --teacher-model tch --temperature 1 \
  --on-policy 1 --divergence reverse-sampled --dropout 0.1 --out bad9
"$KD" synth --out d.h5 --train 200 --test 50 --dim 8 --classes 3 > /dev/null || exit 1
kdrun 1 train --data d.h5 --student 8-16-3 --epochs 1 --batch 20 --threads 1 --progress off --out mt > /dev/null ||
  fail "mlp teacher"
later expect_usage_error "an mlp student on-policy" "on-policy samples tokens: it needs a gpt or llama student" \
  train --data d.h5 --student 8-16-3 --teacher-model mt --on-policy 1 --batch 20 --out bad3
settle
finish
