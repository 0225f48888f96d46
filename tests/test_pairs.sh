#!/bin/bash
# kd import pairs (src/data/pairs.c):
#  - a small Festival-format CMU file (the MNCL header, a word with two pronunciations apart in the file,
#    a capital letter, syllables without a vowel) gives exactly the rows, masks, vocabulary and tokenizer
#    record worked out by hand below;
#  - tsv input split by source: no source in two splits, a source's rows consecutive, two imports and one
#    on 2 ranks byte-identical in their datasets, held-out symbols unseen in training become <unk>;
#  - malformed lines are one error naming FILE:LINE, exit 1, no output file; --ctx too small names the line;
#  - the real dictionary of festlex-cmu, when installed: its size, row lengths and split fractions.
source "$(dirname "$0")/lib.sh"
cat > small.out <<'EOF'
MNCL
("a" dt (((ax) 0)))
("a" n (((ey) 1)))
("ab" nil (((ae b) 1)))
("Bc" nil (((b iy) 1) ((s iy) 0)))
("hmm" nil (((hh m) 0) ((m) 1)))
("b" nil (((b iy) 1)))
("ab" v (((ax b) 0)))
EOF
"$KD" import pairs --in small.out --format cmudict-festival --valid-frac 0 --test-frac 0 --out small.h5 > small.log ||
  fail "import the small CMU file"
expect "the import says what it wrote (vocabulary, rows, syllables without a vowel)" \
  grep -q 'vocabulary 19: 6 source characters, 9 target symbols; rows of 8): train 5 words, 7 rows; valid 0, 0; test 0, 0; 2 syllables without a vowel' small.log
expect "small CMU file: the rows, masks, vocabulary and tokenizer record worked out by hand" "$PY" - <<'PY'
import h5py, numpy as np
f = h5py.File("small.h5", "r")
vocab = [bytes(v).decode() for v in f["tokenizer/vocab"][()]]
assert vocab == ["<pad>", "<sep>", "<end>", "<unk>", "B", "a", "b", "c", "h", "m",
                 "ae1", "ax0", "b", "ey1", "hh", "iy0", "iy1", "m", "s"], vocab
a = dict(f["tokenizer"].attrs)
assert a["kind"] == "symbols" and (a["pad_id"], a["sep_id"], a["end_id"], a["unk_id"], a["target_id0"]) == (0, 1, 2, 3, 10), a
rows = [[5, 1, 11, 2], [5, 1, 13, 2], [5, 6, 1, 10, 12, 2], [5, 6, 1, 11, 12, 2],  # "ab" twice, together
        [4, 7, 1, 12, 16, 18, 15, 2], [8, 9, 9, 1, 14, 17, 17, 2], [6, 1, 12, 16, 2]]
want = np.zeros((7, 8), np.int64); mask = np.zeros((7, 8), np.uint8)
for i, r in enumerate(rows):
    want[i, :len(r)] = r
    mask[i, r.index(1) + 1:len(r)] = 1
t, m = f["train/tokens"][()], f["train/mask"][()]
assert t.dtype == np.uint8 and m.dtype == np.uint8
assert np.array_equal(t, want), t
assert np.array_equal(m, mask), m
assert "valid" not in f and "test" not in f
assert "kd import pairs" in f.attrs["generator"]
PY

"$PY" - <<'PY'
import random
rng = random.Random(3)
words = sorted({"".join(rng.choice("abcdefg") for _ in range(rng.randint(1, 7))) for _ in range(400)})
lines = ["# a comment", ""] + ["%s\t%s" % (w, " ".join(c.upper() for c in w)) for w in words]
lines += ["%s\t%s" % (w, "X " + " ".join(c.upper() for c in w)) for w in words[::7]]  # second references, apart
lines.append("zq\tZ Q")  # 'z', 'q' exist only here: <unk> wherever this lands outside /train
open("w.tsv", "w").write("\n".join(lines) + "\n")
PY
P=(import pairs --in w.tsv --valid-frac 0.2 --test-frac 0.2)
"$KD" "${P[@]}" --out t1.h5 > t1.log || fail "import tsv"
"$KD" "${P[@]}" --out t2.h5 > /dev/null || fail "import tsv again"
kdrun 2 "${P[@]}" --out t3.h5 > /dev/null || fail "import tsv on 2 ranks"
expect "tsv: no source in two splits, a source's rows consecutive, <unk>; three imports identical" "$PY" - <<'PY'
import h5py, numpy as np
fs = [h5py.File("t%d.h5" % i, "r") for i in (1, 2, 3)]
f = fs[0]
vocab = [bytes(v).decode() for v in f["tokenizer/vocab"][()]]
t0 = int(f["tokenizer"].attrs["target_id0"])
seen = {}
for s in ("train", "valid", "test"):
    T = f[s + "/tokens"][()]
    for g in fs[1:]:
        assert np.array_equal(T, g[s + "/tokens"][()]) and np.array_equal(f[s + "/mask"][()], g[s + "/mask"][()]), s
    assert len(T) > 30, (s, len(T))
    srcs = [tuple(r[:list(r).index(1)]) for r in T]
    done = set()
    for i, k in enumerate(srcs):
        assert seen.setdefault(k, s) == s, "a source in two splits"
        if i and srcs[i - 1] != k:
            assert k not in done, "a source's rows are apart"
            done.add(srcs[i - 1])
    if s == "train":
        assert all(x < t0 for r in srcs for x in r if x > 3), "source ids below target_id0"
held = [list(r[:6]) for s in ("valid", "test") for r in f[s + "/tokens"][()]]
assert ("z" in vocab[:t0]) != ([3, 3, 1, 3, 3, 2] in held), "zq: in training, or held out as <unk>"
PY
expect "tsv: the import reports held-out symbols unseen in training" grep -Eq 'unseen symbols: valid [0-9]+, test [0-9]+$' t1.log

# malformed lines: FILE:LINE, exit 1, nothing written
bad_case() { # NAME FORMAT CONTENT WHAT
  printf '%b' "$3" > "bad-$1.txt"
  "$KD" import pairs --in "bad-$1.txt" --format "$2" --out "bad-$1.h5" > /dev/null 2> "bad-$1.err"
  local rc=$?
  if [ $rc -eq 1 ] && [ "$(wc -l < "bad-$1.err")" -eq 1 ] && grep -q "bad-$1.txt:2: $4" "bad-$1.err" &&
    [ ! -e "bad-$1.h5" ]; then ok "malformed: $1"; else fail "malformed: $1 (exit $rc: $(cat "bad-$1.err"))"; fi
}
bad_case notab tsv 'ab\tA B\nabc A B C\n' "no tab"
bad_case nosource tsv 'ab\tA B\n\tA B\n' "empty source"
bad_case notarget tsv 'ab\tA B\nabc\t   \n' "empty target"
bad_case stress cmudict-festival 'MNCL\n("abc" nil (((ax) x)))\n' "a syllable's stress must be one digit"
bad_case paren cmudict-festival 'MNCL\n("abc" nil (((ax) 0))\n' "unbalanced parentheses"
bad_case entry cmudict-festival 'MNCL\nabc nil\n' "expected"
bad_case quote cmudict-festival 'MNCL\n("abc nil (((ax) 0)))\n' "unterminated word"
"$KD" import pairs --in small.out --format cmudict-festival --ctx 5 --out ctx.h5 > /dev/null 2> ctx.err
rc=$?
expect "--ctx smaller than a row: exit 1 naming the line and the length" \
  bash -c "[ $rc -eq 1 ] && grep -q \"small.out:4: 'ab' takes 6 tokens\" ctx.err && [ ! -e ctx.h5 ]"
"$KD" import pairs --in small.out --format cmudict-festival --out small.h5 > /dev/null 2> exists.err
rc=$?
expect "an existing --out without --force: exit 2" bash -c "[ $rc -eq 2 ] && grep -q -- '--force' exists.err"

CMU=/usr/share/festival/dicts/cmu/cmudict-0.4.out
if [ -r "$CMU" ]; then
  "$KD" import pairs --in "$CMU" --format cmudict-festival --out cmu.h5 > cmu.log || fail "import the CMU dictionary"
  expect "the CMU dictionary: 105,901 rows, at most 44 tokens, about 15.6 on average, ~5% valid and test" \
    "$PY" - <<'PY'
import h5py, numpy as np
f = h5py.File("cmu.h5", "r")
n = {s: len(f[s + "/tokens"]) for s in ("train", "valid", "test")}
assert sum(n.values()) == 105901, n
for s in ("valid", "test"):
    assert 0.04 < n[s] / 105901 < 0.06, n
lens = np.concatenate([(f[s + "/tokens"][()] > 0).sum(1) for s in n])
assert lens.max() == 44 and abs(lens.mean() - 15.6) < 0.1, (lens.max(), lens.mean())
assert len(f["tokenizer/vocab"]) == 110
PY
  expect "... 115 syllables without a vowel reported" grep -q '115 syllables without a vowel' cmu.log
else
  echo "skip: $CMU not installed (festlex-cmu)"
fi
finish
