#!/bin/bash
# Sequence-level distillation: kd generate --data and kd eval --decode on prompt-completion rows
# (kd import pairs, a reversal task: "abc" -> "C B A") with a tiny gpt trained here:
#  - kd generate writes the same datasets on 1 and on 2 ranks (greedy, beam with n-best, an odd --batch);
#  - the n-best scores equal the summed log-probabilities of those sequences recomputed by a full forward
#    pass (kd logits on rows made of the hypotheses), and the n-best are sorted by logp / len^A;
#  - beam:1 == greedy; the decoded rows keep the prompts, mask exactly target + end, copy /valid, /test and
#    /tokenizer, and train a student (Seq-KD); --select closest keeps the n-best hypothesis nearest the
#    reference (checked against an edit distance written here); Word-KD on those rows from the online
#    teacher (--teacher-model) equals Word-KD from the teacher's stored logits of them;
#  - kd eval --decode: PER / WER equal those recomputed here from kd generate's greedy output on /test, with
#    words that have two references scored against the closer; the same on 1 and 2 ranks; --json;
#  - usage errors exit 2, bad rows exit 1 naming the row, on 2 ranks.
source "$(dirname "$0")/lib.sh"
# The reference token edit distance (unit costs) of the checks below, written independently of kd's.
cat > seqref.py <<'PY'
def ed(a, b):
    d = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        prev, d[0] = d[0], i
        for j in range(1, len(b) + 1):
            cur = min(d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] != b[j - 1]))
            prev, d[j] = d[j], cur
    return d[len(b)]
PY
"$PY" - <<'PY' || exit 1
import random
rng = random.Random(5)
letters = "abcdef"
words = set()
while len(words) < 1500:
    words.add("".join(rng.choice(letters) for _ in range(rng.randint(2, 6))))
with open("rev.tsv", "w") as f:
    for w in sorted(words):
        f.write("%s\t%s\n" % (w, " ".join(c.upper() for c in reversed(w))))
        if w.startswith("ab"):  # a second reference for some words
            f.write("%s\t%s\n" % (w, " ".join(c.upper() for c in w)))
PY
"$KD" import pairs --in rev.tsv --format tsv --out rev.h5 --valid-frac 0.1 --test-frac 0.1 > /dev/null ||
  { fail "import pairs"; finish; exit 1; }
GPT=gpt:vocab=$("$PY" -c "import h5py; print(len(h5py.File('rev.h5')['tokenizer/vocab']))"),ctx=16,layers=2,dim=48,heads=4
kdrun 2 train --data rev.h5 --student "$GPT" --epochs 25 --lr 0.004 --batch 64 --threads 1 --progress off \
  --out tch > tch.log 2>&1 || { fail "train the teacher: $(tail -3 tch.log)"; finish; exit 1; }

G=(generate --ckpt tch --data rev.h5)
kdrun 1 "${G[@]}" --decode greedy --out g1.h5 > g1.log || fail "generate greedy, 1 rank"
kdrun 2 "${G[@]}" --decode greedy --out g2.h5 > /dev/null || fail "generate greedy, 2 ranks"
kdrun 1 "${G[@]}" --decode beam:1 --out b1.h5 > /dev/null || fail "generate beam:1"
kdrun 1 "${G[@]}" --decode beam:4 --nbest 4 --batch 7 --out n1.h5 > /dev/null || fail "generate beam:4, 1 rank"
kdrun 2 "${G[@]}" --decode beam:4 --nbest 4 --batch 7 --out n2.h5 > /dev/null || fail "generate beam:4, 2 ranks"
KD_GENERATE_ROUND_BATCHES=3 kdrun 2 "${G[@]}" --decode beam:4 --nbest 4 --batch 7 --out n2r.h5 > /dev/null ||
  fail "generate beam:4, 2 ranks, rounds of 3 batches"
kdrun 2 "${G[@]}" --decode beam:4 --nbest 4 --select closest --out c2.h5 > /dev/null || fail "generate --select closest"
kdrun 2 "${G[@]}" --split test --decode greedy --out gt.h5 > /dev/null || fail "generate greedy on /test"
expect "generate prints rows, the decoder and sequences/s" \
  grep -Eq '^kd generate: [0-9]+ rows of /train decoded \(greedy, n-best 1\) in [0-9.]+ s on 1 rank: [0-9.]+ sequences/s' g1.log

expect "1 rank == 2 ranks (greedy; beam 4 with n-best at --batch 7, also written in rounds of 3 batches); beam:1 == greedy" "$PY" - <<'PY'
import h5py, numpy as np
def same(a, b, names):
    fa, fb = h5py.File(a, "r"), h5py.File(b, "r")
    for n in names:
        assert np.array_equal(fa[n][()], fb[n][()]), (a, b, n)
        assert fa[n].dtype == fb[n].dtype, n
same("g1.h5", "g2.h5", ["train/tokens", "train/mask", "train/nbest_scores", "train/nbest_tokens", "train/nbest_lengths"])
same("n1.h5", "n2.h5", ["train/tokens", "train/mask", "train/nbest_scores", "train/nbest_tokens", "train/nbest_lengths"])
same("n1.h5", "n2r.h5", ["train/tokens", "train/mask", "train/nbest_scores", "train/nbest_tokens", "train/nbest_lengths"])
same("g1.h5", "b1.h5", ["train/tokens", "train/mask"])
PY

expect "decoded rows: prompts kept, mask = target + end, splits and tokenizer copied, n-best sorted" "$PY" - <<'PY'
import h5py, numpy as np
src, g, n = h5py.File("rev.h5", "r"), h5py.File("g1.h5", "r"), h5py.File("n1.h5", "r")
tk = src["tokenizer"].attrs
sep, end, pad = int(tk["sep_id"]), int(tk["end_id"]), int(tk["pad_id"])
assert g["tokenizer"].attrs["kind"] == "symbols"
for s in ("valid", "test"):
    assert np.array_equal(g[s + "/tokens"][()], src[s + "/tokens"][()]), s
T, M, S = g["train/tokens"][()], g["train/mask"][()], src["train/tokens"][()]
assert T.shape == S.shape and T.dtype == np.uint8
ends = 0
for r in range(len(T)):
    p = list(S[r]).index(sep) + 1
    assert list(T[r][:p]) == list(S[r][:p]), r
    m = np.nonzero(M[r])[0]
    assert len(m) >= 1 and m[0] == p and list(m) == list(range(p, p + len(m))), (r, m)
    assert all(T[r][p + len(m):] == pad), r
    ends += T[r][m[-1]] == end
assert ends > 0.9 * len(T), ends
sc, ln = n["train/nbest_scores"][()], n["train/nbest_lengths"][()]
assert sc.shape == (len(T), 4) and ln.shape == (len(T), 4)
A = 1.0
norm = np.where(ln > 0, sc / np.maximum(ln, 1) ** A, -np.inf)
assert np.all(np.diff(norm, axis=1) <= 1e-12), "n-best sorted by logp / len"
assert np.all(sc <= 0) and np.all(ln[:, 0] > 0)
# the beam's best mostly scores at least as well as greedy under the same ranking (not always: the greedy
# path can fall out of the beam)
gsc = g["train/nbest_scores"][()][:, 0] / g["train/nbest_lengths"][()][:, 0]
assert np.mean(norm[:, 0] >= gsc - 1e-5) > 0.95 and norm[:, 0].mean() > gsc.mean(), np.mean(norm[:, 0] >= gsc - 1e-5)
PY

# Rows made of each hypothesis, scored by a full forward pass (kd logits, float32).
"$PY" - <<'PY' || fail "make the hypothesis rows"
import h5py, numpy as np
src, n = h5py.File("rev.h5", "r"), h5py.File("n1.h5", "r")
sep = int(src["tokenizer"].attrs["sep_id"])
S, H, L = src["train/tokens"][()], n["train/nbest_tokens"][()], n["train/nbest_lengths"][()]
rows, masks = [], []
for r in range(0, len(S), 5):
    p = list(S[r]).index(sep) + 1
    for k in range(H.shape[1]):
        t = np.zeros(S.shape[1], np.int32); m = np.zeros(S.shape[1], np.uint8)
        t[:p] = S[r][:p]; t[p:p + L[r, k]] = H[r, k, :L[r, k]]; m[p:p + L[r, k]] = 1
        rows.append(t); masks.append(m)
with h5py.File("hyp.h5", "w") as f:
    f["train/tokens"], f["train/mask"] = np.array(rows), np.array(masks)
    src.copy("tokenizer", f)
PY
kdrun 2 logits --ckpt tch --data hyp.h5 --out hyp_t.h5 > /dev/null || fail "kd logits on the hypotheses"
expect "n-best scores == summed log-probabilities of a full forward pass (to 1e-4)" "$PY" - <<'PY'
import h5py, numpy as np
n, h, z = h5py.File("n1.h5", "r"), h5py.File("hyp.h5", "r"), h5py.File("hyp_t.h5", "r")["train/logits"][()].astype(np.float64)
T, M = h["train/tokens"][()], h["train/mask"][()]
lse = np.log(np.exp(z - z.max(-1, keepdims=True)).sum(-1)) + z.max(-1)
lp = np.zeros(len(T))
for i in range(len(T)):
    for p in np.nonzero(M[i])[0]:
        lp[i] += z[i, p - 1, T[i, p]] - lse[i, p - 1]
want = n["train/nbest_scores"][()][::5].reshape(-1)
ok = np.isfinite(want)
err = np.max(np.abs(lp[ok] - want[ok]))
assert ok.sum() > 100 and err < 1e-4, (ok.sum(), err)
print("n-best scores vs forward: max |diff| %.2e over %d hypotheses" % (err, ok.sum()))
PY

expect "--select closest keeps the n-best hypothesis nearest the reference" "$PY" - <<'PY'
import h5py, numpy as np
from seqref import ed
src, c = h5py.File("rev.h5", "r"), h5py.File("c2.h5", "r")
tk = src["tokenizer"].attrs
sep, end, pad = int(tk["sep_id"]), int(tk["end_id"]), int(tk["pad_id"])
S, T, M = src["train/tokens"][()], c["train/tokens"][()], c["train/mask"][()]
H, L = c["train/nbest_tokens"][()], c["train/nbest_lengths"][()]
moved = 0
for r in range(len(S)):
    p = list(S[r]).index(sep) + 1
    ref = [x for x in S[r][p:] if x not in (end, pad)]
    body = lambda k: [x for x in H[r, k, :L[r, k]] if x != end]
    ds = [ed(body(k), ref) for k in range(4) if L[r, k] > 0]
    best = ds.index(min(ds))
    got = [x for x in T[r][np.nonzero(M[r])[0]] if x != end]
    assert got == body(best), (r, got, body(best), ds)
    moved += best != 0
print("rows whose closest hypothesis is not the best:", moved)
PY

kdrun 2 train --data g1.h5 --student gpt:vocab=$("$PY" -c "import h5py; print(len(h5py.File('rev.h5')['tokenizer/vocab']))"),ctx=16,layers=1,dim=16,heads=2 \
  --epochs 1 --batch 64 --threads 1 --progress off --out st > st.log 2>&1
expect "a student trains on the decoded file (Seq-KD)" grep -q '^final:' st.log
# Seq-Inter + Word-KD: the online teacher on the selected rows == the teacher's stored f32 logits of them.
kdrun 2 logits --ckpt tch --data c2.h5 --dtype f32 --out c2_t.h5 > /dev/null || fail "kd logits of the Seq-Inter rows"
SW=(--data c2.h5 --student "$(sed 's/layers=2,dim=48,heads=4/layers=1,dim=16,heads=2/' <<<"$GPT")" --threads 1
  --progress off --optimizer sgd --lr 0.5 --temperature 2 --alpha 0.5 --log-every 1 --train-rows 64 --batch 64
  --epochs 3)
kdrun 1 train "${SW[@]}" --teacher c2_t.h5 --out swst > swst.log 2>&1 || fail "Seq-Inter + Word-KD, stored logits"
kdrun 1 train "${SW[@]}" --teacher-model tch --out swon > swon.log 2>&1 || fail "Seq-Inter + Word-KD, online"
expect "Seq-Inter + Word-KD: --teacher-model on the selected rows == their stored logits (losses per step, 1e-5)" \
  cols swst swon loss ce kd
expect "... the online run did run its teacher" grep -q '^teacher: online gpt' swon.log

kdrun 1 eval --ckpt tch --data rev.h5 --decode greedy --json > e1.json || fail "eval --decode greedy, 1 rank"
kdrun 2 eval --ckpt tch --data rev.h5 --decode greedy --json > e2.json || fail "eval --decode greedy, 2 ranks"
kdrun 2 eval --ckpt tch --data rev.h5 --decode beam:3 > e3.log || fail "eval --decode beam:3"
expect "eval --decode prints per, wer and sequences/s" \
  grep -Eq '^test \(beam:3\): per [0-9.]+  wer [0-9.]+  \([0-9]+ words, [0-9]+ references; .*sequences/s on 2 ranks$' e3.log
expect "eval --decode: PER / WER == recomputed from generate's greedy /test rows (closest reference); 1 == 2 ranks" \
  "$PY" - <<'PY'
import json, h5py, numpy as np
from seqref import ed
e1, e2 = json.load(open("e1.json")), json.load(open("e2.json"))
src, g = h5py.File("rev.h5", "r"), h5py.File("gt.h5", "r")
tk = src["tokenizer"].attrs
sep, end, pad = int(tk["sep_id"]), int(tk["end_id"]), int(tk["pad_id"])
S, T, M = src["test/tokens"][()], g["test/tokens"][()], g["test/mask"][()]
words, edits, reft, wrong, multi = {}, 0, 0, 0, 0
for r in range(len(S)):
    p = list(S[r]).index(sep) + 1
    key = tuple(S[r][:p])
    ref = [x for x in S[r][p:] if x not in (end, pad)]
    hyp = [x for x in T[r][np.nonzero(M[r])[0]] if x != end]
    words.setdefault(key, (hyp, []))[1].append(ref)
for hyp, refs in words.values():
    ds = [ed(hyp, x) for x in refs]
    k = ds.index(min(ds))
    edits += ds[k]; reft += len(refs[k]); wrong += ds[k] > 0; multi += len(refs) > 1
assert multi > 0, "the test split has words with two references"
assert e1["words"] == len(words) and e1["edits"] == edits and e1["reference_tokens"] == reft, (e1, edits, reft)
assert abs(e1["per"] - edits / reft) < 1e-6 and abs(e1["wer"] - wrong / len(words)) < 1e-6, (e1, edits / reft)
for k in ("per", "wer", "words", "references", "edits"):
    assert e1[k] == e2[k], k
assert e1["seq_per_s"] > 0 and e1["decode"] == "greedy"
print("test: per %.4f wer %.4f over %d words (%d with two references)" % (e1["per"], e1["wer"], len(words), multi))
PY

kdrun 1 generate --ckpt tch --prompt abcd --decode greedy > p.out 2> /dev/null || fail "generate --prompt abcd"
expect "generate --prompt on a symbols tokenizer: the source gets its separator, the target prints spaced" \
  grep -Eqx '[A-F]( [A-F])*' p.out

# Errors: usage (exit 2) and bad rows (exit 1 naming the row), every rank returning.
kdrun 2 "${G[@]}" --decode beam:2 --nbest 1 --select closest --out x.h5 > /dev/null 2> u1.err
expect "--select closest with --nbest 1: exit 2" test $? -eq 2
expect "... one line that says why" grep -q 'needs --nbest 2 or more' u1.err
kdrun 2 "${G[@]}" --decode greedy --nbest 3 --out x.h5 > /dev/null 2> u2.err
expect "--nbest 3 with greedy: exit 2" test $? -eq 2
kdrun 2 "${G[@]}" --decode beam:0 --out x.h5 > /dev/null 2> u3.err
rc=$?
expect "--decode beam:0: exit 2 naming it" bash -c "[ $rc -eq 2 ] && grep -q beam:0 u3.err"
kdrun 2 eval --ckpt tch --data rev.h5 --decode sample > /dev/null 2> u4.err
expect "eval --decode sample: exit 2" test $? -eq 2
"$PY" - <<'PY'
import h5py, numpy as np
with h5py.File("rev.h5", "r") as s, h5py.File("nosep.h5", "w") as f:
    t = s["train/tokens"][()]; t[3][t[3] == s["tokenizer"].attrs["sep_id"]] = 4
    f["train/tokens"], f["train/mask"] = t, s["train/mask"][()]
    s.copy("tokenizer", f)
with h5py.File("rev.h5", "r") as s, h5py.File("notok.h5", "w") as f:
    f["train/tokens"], f["train/mask"] = s["train/tokens"][()], s["train/mask"][()]
PY
kdrun 2 generate --ckpt tch --data nosep.h5 --out x.h5 > /dev/null 2> b1.err
expect "a row without a separator: exit 1" test $? -eq 1
expect "... naming the file and the row" grep -q 'nosep.h5: /train/tokens row 3 has no separator' b1.err
kdrun 2 generate --ckpt tch --data notok.h5 --out x.h5 > /dev/null 2> b2.err
rc=$?
expect "a file without /tokenizer: exit 1, one line" bash -c "[ $rc -eq 1 ] && [ \$(wc -l < b2.err) -eq 1 ] && grep -q 'no /tokenizer' b2.err"
expect "no output file after the errors" test ! -e x.h5
finish
