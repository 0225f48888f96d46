#!/bin/bash
# What a new user tripped over (issue 13), on 2 ranks unless stated:
#  1. a stop inside generation 1 of --generations 3 names the command that continues the whole chain, and
#     following it (or --resume DIR/gen1) trains the last generation and prints the table;
#  2. kd eval --split valid evaluates the rows --val-rows held out, reproducing training's figures, with
#     the run's own --normalize and --temperature;
#  3. one warning each: inputs far from unit scale, a diverging loss, --alpha/--temperature without a
#     teacher, more ranks than cores;
#  4. numbers in their shortest round-trip form (a contradiction at resume, --json); an unknown option
#     names the nearest one; resuming a finished run says it is complete;
#  5. kd synth's teacher file carries a data fingerprint; kd synth refuses an existing output without --force.
source "$(dirname "$0")/lib.sh"
"$KD" synth --out d.h5 --teacher-out t.h5 --train 6000 --test 500 --dim 24 --classes 5 >/dev/null || exit 1

# 1. Generation chains.
G=(train --data d.h5 --teacher t.h5 --student 24-512-512-5 --epochs 4 --generations 3 --val-rows 500 --batch 50
   --threads 1 --progress off --ckpt-every 20)
stop_in_gen1() { # stop_in_gen1 DIR: start a chain, SIGUSR1 its ranks inside generation 1; prints the exit code
  kdrun 2 "${G[@]}" --out "$1" > "$1.log" 2>&1 &
  local mpid=$!
  for _ in $(seq 1000); do [ -e "$1/gen1/ckpt-00000020.h5" ] && break; sleep 0.02; done
  signal_ranks USR1 "$1"
  wait "$mpid"
  echo $?
}
rc=$(stop_in_gen1 ban)
expect "a stop inside generation 1 exits 75 (got $rc)" test "$rc" -eq 75
expect "the hint names the chain, not the generation" grep -q "of generation 1; checkpoint written; continue the chain with: kd train --resume ban$" ban.log
hint=$(sed -n 's/.*continue the chain with: kd train --resume //p' ban.log)
kdrun 2 train --resume "$hint" > ban2.log 2>&1 || fail "following the hint"
expect "following the hint trains generation 2" test -e ban/gen2/final.h5
expect "and prints the generation table" grep -q "^born-again generations" ban2.log
rc=$(stop_in_gen1 ban_b)
kdrun 2 train --resume ban_b/gen1 > ban_b2.log 2>&1 || fail "--resume DIR/gen1"
expect "--resume DIR/gen1 continues the chain to the last generation" test -e ban_b/gen2/final.h5
expect "and prints the table" grep -q "^born-again generations" ban_b2.log

# 2. The held-out split, with normalised inputs far from unit scale and a temperature of the run's own.
"$PY" - <<'PY'
import h5py
with h5py.File("d.h5") as f, h5py.File("t.h5") as t, h5py.File("big.h5", "w") as g, h5py.File("bigt.h5", "w") as u:
    for s in ("train", "test"):
        g[f"{s}/x"] = (f[f"{s}/x"][()] * 40 + 120).astype("uint8")   # pixel-like: 0..255
        g[f"{s}/y"] = f[f"{s}/y"][()]
        u[f"{s}/logits"] = t[f"{s}/logits"][()]                     # as another tool writes it: no fingerprint
PY
V=(train --data big.h5 --teacher bigt.h5 --student 24-64-5 --epochs 2 --val-rows 600 --temperature 2 --threads 1
   --progress off)
kdrun 2 "${V[@]}" --out raw > raw.log 2>&1 || fail "run on raw pixels"
expect "warning: inputs far from unit scale" grep -q "warning: /train/x of big.h5 is far from unit scale (max |x| = 2" raw.log
kdrun 2 "${V[@]}" --normalize standard --out norm > norm.log 2>&1 || fail "run with --normalize standard"
expect "no scale warning with --normalize" test -z "$(grep 'far from unit scale' norm.log)"
expect "the normalisation is stored with the model" "$PY" -c "
import h5py
f = h5py.File('norm/final.h5', 'r')
assert f['preprocess'].attrs['kind'] == 'standard' and f['preprocess/scale'].shape == (24,)
"
want=$(sed -n 's/^valid: accuracy \([0-9.]*\) .* kl \([0-9.]*\) .*/\1 \2/p' norm.log)
for ck in norm norm/final.h5; do
  got=$("$KD" eval --ckpt $ck --data big.h5 --teacher bigt.h5 --split valid --json | "$PY" -c "
import json, sys
r = json.load(sys.stdin)
print('%.4f %.4f' % (r['accuracy'], r['kl']), r['n'])")
  expect "kd eval --split valid of $ck reproduces training's validation ($want: got $got)" test "$got" = "$want 600"
done
"$KD" eval --ckpt norm --data d.h5 --split valid > /dev/null 2>&1 # the held-out rows of another data file: fine
"$KD" eval --ckpt raw --data d.h5 --split bogus > bogus.log 2>&1
expect "a missing split is still an error" grep -q "dataset /bogus/x is missing" bogus.log

# 3. Warnings.
kdrun 2 train --data d.h5 --teacher t.h5 --student 24-32-5 --epochs 2 --lr 50 --log-every 5 --on-nonfinite skip \
  --threads 1 --progress off --out div > div.log 2>&1
expect "a diverging loss is reported once" test "$(grep -c 'warning: the run is diverging from step' div.log)" -eq 1
kdrun 2 train --data d.h5 --student 24-32-5 --epochs 1 --alpha 0.5 --temperature 2 --threads 1 --progress off \
  --out plain > plain.log 2>&1 || fail "run without a teacher"
expect "--alpha without a teacher" grep -q "warning: --alpha 0.5 has no effect without a teacher" plain.log
expect "--temperature without a teacher" grep -q "warning: --temperature 2 has no effect without a teacher" plain.log
over=$(($(nproc) + 1))
kdrun $over train --data d.h5 --student 24-32-5 --epochs 1 --threads 1 --progress off --out over > over.log 2>&1 ||
  fail "oversubscribed run"
expect "more ranks than cores: a warning, and the run goes on" grep -q "warning: $over ranks share $(nproc) cores" over.log

# 4. Numbers, suggestions, a finished run.
kdrun 2 train --resume plain --lr 0.1 > lr.log 2>&1
expect "the contradiction in shortest form" grep -q -- "--lr 0.1 contradicts the checkpoint (plain/ckpt-[0-9]*.h5 has --lr 0.05)" lr.log
"$KD" eval --ckpt plain --data d.h5 --json > e.json
expect "--json numbers in their shortest round-trip form (as Python's repr)" "$PY" -c "
import json, re
text = open('e.json').read()
json.loads(text)
nums = re.findall(r'\": (-?[0-9][-0-9.e+]*)', text)
assert len(nums) >= 4, text
for t in nums:
    assert len(t) <= len(repr(float(t))), (t, repr(float(t)))
"
expect "the checkpoint's /config in shortest form" "$PY" -c "
import h5py
c = h5py.File('plain/' + open('plain/latest').read().strip(), 'r')['config'].attrs
assert c['lr'] == '0.05' and c['beta2'] == '0.999', (c['lr'], c['beta2'])
"
kdrun 2 train --data d.h5 --student 24-32-5 --epoch 3 --out x > typo.log 2>&1
expect "an unknown option names the nearest" grep -q "unknown option '--epoch' (did you mean --epochs?" typo.log
kdrun 2 train --resume plain > done.log 2>&1 || fail "resume of a finished run"
expect "a finished run says it is complete" grep -q "kd: plain is complete: step [0-9]* of [0-9]*" done.log
expect "and does not evaluate again" test -z "$(grep '^final:' done.log)"

# 5. Provenance of kd's own files.
kdrun 2 train --data d.h5 --teacher t.h5 --student 24-32-5 --epochs 1 --threads 1 --progress off --out prov > prov.log 2>&1
expect "kd synth's teacher file carries a fingerprint" test -z "$(grep 'carries no data fingerprint' prov.log)"
"$KD" predict --ckpt prov --data d.h5 --split train --out pt.h5 > /dev/null
kdrun 2 train --data d.h5 --teacher pt.h5 --student 24-32-5 --epochs 1 --threads 1 --progress off --out prov2 > prov2.log 2>&1
expect "kd predict's output carries one" test -z "$(grep 'carries no data fingerprint' prov2.log)"
"$KD" synth --out d.h5 --train 100 > syn.log 2>&1
rc=$?
expect "kd synth refuses an existing output (exit $rc)" test "$rc" -eq 2 -a -n "$(grep 'pass --force' syn.log)"
expect "kd synth --force replaces it" quiet "$KD" synth --out d.h5 --train 100 --test 0 --force
finish
