#!/bin/bash
# kd doctor on synthetic cases built to trigger each finding, and one that triggers none:
#  - none: a Gaussian mixture (kd synth) whose Bayes teacher beats a 16-16-4 student from scratch by
#    about 6 points, a soft teacher, one distribution: every finding ok, verdict distil; its statistics
#    equal on 1 and 2 ranks;
#  - capacity (note): --teacher-params ten times the student's tenfold;
#  - margin (WARN): a teacher of other data (another seed's centres): the verdict is not to distil;
#  - fit (note): 200 labelled rows, the student overfits them; fit (WARN): a linear student on
#    clustered classes cannot fit them;
#  - dark knowledge (note): a sharp teacher (kd synth --teacher-temperature 0.2), T > 1 suggested;
#  - shift: transfer rows noisier than the evaluation split (WARN), and the reverse (note);
#  - all-correct (WARN): only the rows the teacher gets right kept;
#  - sparse: top-2 of 4 classes renormalised (WARN, do not distil), with the tail (WARN, T = 1), top-4
#    (ok);
#  - token rows: statistics per target token (a gpt student, a teacher file of token logits);
#  - the report's numbers against a numpy reference; usage errors exit 2 with one line.
source "$(dirname "$0")/lib.sh"
"$KD" synth --out d.h5 --teacher-out t.h5 --train 4000 --test 1000 --dim 16 --classes 4 --clusters 4 --separation 3 \
  --teacher-temperature 2 > /dev/null || exit 1
S=(--student 16-16-4 --batch 64 --lr 0.05 --baseline-steps 600)
doctor() { # doctor NAME NP ARGS...: NAME.json
  local name=$1 np=$2
  shift 2
  kdrun "$np" doctor "$@" --json > "$name.json" 2> "$name.err" || { fail "$name: kd doctor failed"; cat "$name.err" >&2; }
}
# level NAME KEY: the finding's level (ok, note, WARN; "absent")
level() {
  "$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); print(next((f["level"] for f in r["findings"] if f["key"] == sys.argv[2]), "absent"))' \
    "$1.json" "$2" 2>/dev/null
}
verdict() { # use_kd T alpha
  "$PY" -c 'import json,sys; v=json.load(open(sys.argv[1]))["verdict"]; print(str(v["use_kd"]).lower(), "%g" % v["temperature"], "%g" % v["alpha"])' "$1.json" 2>/dev/null
}
flagged() { "$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); print(",".join(f["key"] for f in r["findings"] if f["level"] != "ok"))' "$1.json" 2>/dev/null; }

# None: every finding ok.
doctor none 1 --data d.h5 --teacher t.h5 "${S[@]}" --teacher-params 2000
expect "none: no finding flagged ($(flagged none))" test -z "$(flagged none)"
expect "none: every finding reported" test "$(flagged none)$(level none capacity)$(level none margin)$(level none fit)$(level none dark-knowledge)$(level none shift)$(level none all-correct)" = okokokokokok
expect "none: verdict distil ($(verdict none))" test "$(verdict none | cut -d' ' -f1)" = true
kdrun 1 doctor --data d.h5 --teacher t.h5 "${S[@]}" --teacher-params 2000 > none.txt 2>&1
expect "none: the text report ends with the verdict" grep -q "^verdict: distil, T = [0-9]*, alpha = 0.[0-9]*: " none.txt
# the teacher statistics against numpy, and the same on 2 ranks (the scan's sums; a 2-rank baseline trains apart)
doctor none2 2 --data d.h5 --teacher t.h5 "${S[@]}" --teacher-params 2000 --rows 0
doctor none1 1 --data d.h5 --teacher t.h5 "${S[@]}" --teacher-params 2000 --rows 0 --baseline-steps 0
expect "teacher statistics: 1 rank, 2 ranks and numpy agree" "$PY" - none1.json none2.json d.h5 t.h5 <<'PY'
import json, sys, h5py, numpy as np
a, b = (json.load(open(p)) for p in sys.argv[1:3])
z = h5py.File(sys.argv[4])["train/logits"][:].astype(np.float64)
y = h5py.File(sys.argv[3])["train/y"][:]
ref = {"positions": len(y), "agreement": float((z.argmax(1) == y).mean())}
off, non, ent = [], [], []
for T in (1, 2, 4, 8):
    p = np.exp((z - z.max(1, keepdims=True)) / T)
    p /= p.sum(1, keepdims=True)
    off.append(float((1 - p.max(1)).mean()))
    non.append(float((1 - p[np.arange(len(y)), y]).mean()))
    ent.append(float(-(p * np.log(p)).sum(1).mean()))
for r in (a, b):
    t = r["transfer"]
    assert t["positions"] == ref["positions"], (t["positions"], ref)
    assert abs(t["agreement"] - ref["agreement"]) < 1e-12, (t["agreement"], ref)
    assert np.allclose(t["off_target"], off, rtol=1e-9, atol=1e-12), (t["off_target"], off)
    assert np.allclose(t["non_target"], non, rtol=1e-9, atol=1e-12), (t["non_target"], non)
    assert np.allclose(t["entropy"], ent, rtol=1e-9, atol=1e-12), (t["entropy"], ent)
assert a["baseline"]["margin"] is None and b["baseline"]["margin"] is not None
PY

# A teacher checkpoint (--teacher-model) gives the statistics of its kd logits file, and its own size.
kdrun 2 train --data d.h5 --student 16-128-4 --epochs 2 --batch 64 --threads 1 --progress off --out tm > tm.log 2>&1 ||
  fail "training a teacher checkpoint"
kdrun 2 logits --ckpt tm:latest --data d.h5 --out tm.h5 > /dev/null 2>&1 || fail "kd logits of the teacher checkpoint"
doctor tmodel 2 --data d.h5 --teacher-model tm:latest "${S[@]}" --baseline-steps 0 --rows 0
doctor tfile 2 --data d.h5 --teacher tm.h5 "${S[@]}" --baseline-steps 0 --rows 0
expect "--teacher-model: the statistics of its logits file, and its size" "$PY" -c '
import json
a, b = json.load(open("tmodel.json")), json.load(open("tfile.json"))
assert a["teacher"] == "checkpoint" and a["teacher_params"] == 16 * 128 + 128 + 128 * 4 + 4, a["teacher_params"]
assert b["teacher_params"] == a["teacher_params"], b["teacher_params"]
for k in ("transfer", "eval"):
    x, y = a[k], b[k]
    assert x["positions"] == y["positions"] and abs(x["agreement"] - y["agreement"]) < 1e-9, (x, y)
    assert all(abs(p - q) < 1e-5 for p, q in zip(x["entropy"] + x["off_target"], y["entropy"] + y["off_target"])), (x, y)'

# Capacity: a teacher a hundred times the student.
doctor capacity 1 --data d.h5 --teacher t.h5 "${S[@]}" --baseline-steps 0 --teacher-params 100000
expect "capacity: note ($(level capacity capacity))" test "$(level capacity capacity)" = note

# Margin: a teacher of other data.
"$KD" synth --out other.h5 --teacher-out tother.h5 --train 4000 --test 1000 --dim 16 --classes 4 --clusters 4 \
  --separation 3 --seed 7 > /dev/null || exit 1
doctor margin 1 --data d.h5 --teacher tother.h5 "${S[@]}"
expect "margin: WARN ($(level margin margin))" test "$(level margin margin)" = WARN
expect "margin: verdict not to distil ($(verdict margin))" test "$(verdict margin | cut -d' ' -f1)" = false

# Fit: 200 labelled rows overfit; a linear student cannot fit clustered classes.
doctor overfit 1 --data d.h5 --teacher t.h5 --student 16-64-4 --batch 32 --lr 0.05 --baseline-steps 600 --train-rows 200
expect "fit: overfitting, note ($(level overfit fit))" test "$(level overfit fit)" = note
expect "fit: and distil ($(verdict overfit))" test "$(verdict overfit | cut -d' ' -f1)" = true
doctor small 1 --data d.h5 --teacher t.h5 --student 16-4 --batch 64 --lr 0.05 --baseline-steps 600
expect "fit: too small, WARN ($(level small fit))" test "$(level small fit)" = WARN
expect "fit: and not to distil ($(verdict small))" test "$(verdict small | cut -d' ' -f1)" = false

# Dark knowledge: a sharp teacher.
"$KD" synth --out d.h5 --teacher-out sharp.h5 --train 4000 --test 1000 --dim 16 --classes 4 --clusters 4 --separation 3 \
  --teacher-temperature 0.2 --force > /dev/null || exit 1
doctor sharp 1 --data d.h5 --teacher sharp.h5 "${S[@]}" --baseline-steps 0
expect "dark knowledge: note ($(level sharp dark-knowledge))" test "$(level sharp dark-knowledge)" = note
expect "dark knowledge: a T above 1 suggested ($(verdict sharp))" test "$(verdict sharp | cut -d' ' -f2)" -gt 1

# Shift: the same centres (separation x noise), transfer rows twice as noisy as the evaluation rows; then the reverse.
"$KD" synth --out noisy.h5 --teacher-out tnoisy.h5 --train 4000 --test 1000 --dim 16 --classes 4 --clusters 4 \
  --noise 2 --separation 1.5 --teacher-temperature 2 > /dev/null || exit 1
"$PY" - <<'PY' || fail "building the shifted files"
import h5py
def mix(out_d, out_t, train_from, test_from):
    with h5py.File(out_d, "w") as d, h5py.File(out_t, "w") as t:
        for split, (df, tf) in (("train", train_from), ("test", test_from)):
            with h5py.File(df) as a, h5py.File(tf) as b:
                d[split + "/x"], d[split + "/y"], t[split + "/logits"] = a[split + "/x"][:], a[split + "/y"][:], b[split + "/logits"][:]
mix("off.h5", "toff.h5", ("noisy.h5", "tnoisy.h5"), ("d.h5", "t.h5"))
mix("on.h5", "ton.h5", ("d.h5", "t.h5"), ("noisy.h5", "tnoisy.h5"))
PY
"$KD" synth --out d.h5 --teacher-out t.h5 --train 4000 --test 1000 --dim 16 --classes 4 --clusters 4 --separation 3 \
  --teacher-temperature 2 --force > /dev/null || exit 1
doctor off 1 --data off.h5 --teacher toff.h5 "${S[@]}" --baseline-steps 0
expect "shift: transfer rows off the teacher's distribution, WARN ($(level off shift))" test "$(level off shift)" = WARN
doctor on 1 --data on.h5 --teacher ton.h5 "${S[@]}" --baseline-steps 0
expect "shift: a teacher sharper on the transfer rows, note ($(level on shift))" test "$(level on shift)" = note

# All-correct: only the rows the teacher gets right.
"$PY" - <<'PY' || fail "building the filtered files"
import h5py
with h5py.File("d.h5") as a, h5py.File("t.h5") as b, h5py.File("right.h5", "w") as d, h5py.File("tright.h5", "w") as t:
    z, y = b["train/logits"][:], a["train/y"][:]
    keep = z.argmax(1) == y
    d["train/x"], d["train/y"], t["train/logits"] = a["train/x"][:][keep], y[keep], z[keep]
    for k in ("x", "y"):
        d["test/" + k] = a["test/" + k][:]
    t["test/logits"] = b["test/logits"][:]
PY
doctor right 1 --data right.h5 --teacher tright.h5 "${S[@]}" --baseline-steps 0
expect "all-correct: WARN ($(level right all-correct))" test "$(level right all-correct)" = WARN

# Sparse: top-2 of the 4 classes (ids, logits, lse), and all 4.
"$PY" - <<'PY' || fail "building the top-k files"
import h5py, numpy as np
with h5py.File("t.h5") as b:
    for K in (2, 4):
        with h5py.File("top%d.h5" % K, "w") as t:
            for split in ("train", "test"):
                z = b[split + "/logits"][:].astype(np.float64)
                ids = np.argsort(-z, axis=1, kind="stable")[:, :K]
                m = z.max(1, keepdims=True)
                t[split + "/topk/ids"] = ids.astype(np.int32)
                t[split + "/topk/logits"] = np.take_along_axis(z, ids, 1).astype(np.float32)
                t[split + "/topk/lse"] = (m[:, 0] + np.log(np.exp(z - m).sum(1))).astype(np.float32)
PY
doctor top2 1 --data d.h5 --teacher top2.h5 "${S[@]}" --baseline-steps 0 --sparse-kd topk
expect "sparse: top-2 renormalised, WARN ($(level top2 sparse))" test "$(level top2 sparse)" = WARN
expect "sparse: and not to distil with it ($(verdict top2))" test "$(verdict top2 | cut -d' ' -f1)" = false
doctor tail2 1 --data d.h5 --teacher top2.h5 "${S[@]}" --baseline-steps 0 --sparse-kd tail
expect "sparse: top-2 + tail, WARN and T = 1 ($(level tail2 sparse); $(verdict tail2))" \
  test "$(level tail2 sparse) $(verdict tail2 | cut -d' ' -f1,2)" = "WARN true 1"
doctor top4 1 --data d.h5 --teacher top4.h5 "${S[@]}" --baseline-steps 0 --sparse-kd topk
expect "sparse: top-4 of 4 holds the mass, ok ($(level top4 sparse))" test "$(level top4 sparse)" = ok
expect "sparse: top-4 gives the dense file's statistics" "$PY" -c '
import json, sys
a, b = json.load(open("top4.json"))["transfer"], json.load(open("capacity.json"))["transfer"]
assert abs(a["captured_mass"] - 1) < 1e-5 and all(abs(x - y) < 1e-5 for x, y in zip(a["entropy"], b["entropy"])), (a, b)'

# Token rows: a byte-level text file and a teacher file of token logits [N, T, 256].
"$PY" "$TESTS_DIR/make_tokens.py" fx > /dev/null || exit 1
"$KD" import text --in fx/corpus.txt --ctx 16 --doc-sep % --valid-frac 0.15 --test-frac 0.15 --out c.h5 > /dev/null ||
  exit 1
"$PY" - <<'PY' || fail "building the token teacher file"
import h5py, numpy as np
rng = np.random.default_rng(1)
with h5py.File("c.h5") as d, h5py.File("tc.h5", "w") as t:
    for split in ("train", "valid", "test"):
        tok = d[split + "/tokens"][:]
        z = rng.normal(0, 1, tok.shape + (256,)).astype(np.float32)
        nxt = np.roll(tok, -1, axis=1)
        np.put_along_axis(z, nxt[..., None], 4.0, axis=2)  # the next byte likely: a teacher that knows the text
        t[split + "/logits"] = z
PY
doctor tokens 2 --data c.h5 --teacher tc.h5 --student gpt:vocab=256,ctx=16,layers=1,dim=16,heads=2 --batch 8 \
  --baseline-steps 20 --optimizer adamw --lr 1e-3
expect "tokens: statistics per target token" "$PY" -c '
import json, h5py, numpy as np
r = json.load(open("tokens.json"))
tok = h5py.File("c.h5")["train/tokens"]
assert r["tokens"] and r["classes"] == 256, r
assert r["transfer"]["positions"] > tok.shape[0] * 2, (r["transfer"]["positions"], tok.shape)
assert r["baseline"]["metric"] == "nll" and r["baseline"]["margin"] > 0, r["baseline"]
assert any(f["key"] == "margin" for f in r["findings"]), r["findings"]'

# Checked as kd train checks: another class count, labels outside the classes; shard sets refused.
expect_usage_error "a student of other outputs" "^kd: error: kd doctor: the teacher (t.h5) has 4 outputs per row or position but --student 16-16-3 has 3" \
  doctor --data d.h5 --teacher t.h5 --student 16-16-3
"$PY" -c 'import h5py, shutil; shutil.copy("d.h5", "bady.h5"); f = h5py.File("bady.h5", "r+"); y = f["train/y"]; y[5] = 9' ||
  fail "building the bad labels"
expect_exit 1 "a label outside the classes" "^kd: error.*bady.h5: /train/y row 5 holds label 9, outside \[0, 4)" \
  doctor --data bady.h5 --teacher t.h5 --student 16-16-4 --baseline-steps 0
expect_usage_error "a set of shard files" "^kd: error: kd doctor: --data d.h5,d.h5: a set of shard files; name one shard" \
  doctor --data d.h5,d.h5 --teacher t.h5 --student 16-16-4
# A dense file without the evaluation split's logits: the baseline runs, the margin is not measured; --work kept
# and reused.
"$PY" -c 'import h5py; a = h5py.File("t.h5"); b = h5py.File("tnotest.h5", "w"); b["train/logits"] = a["train/logits"][:]' ||
  fail "building the teacher file without /test"
doctor notest 2 --data d.h5 --teacher tnotest.h5 "${S[@]}" --baseline-steps 100 --work wk
doctor notest2 2 --data d.h5 --teacher tnotest.h5 "${S[@]}" --baseline-steps 100 --work wk
expect "no evaluation logits: the baseline ran, no margin, and --work was reused" "$PY" -c '
import json, os
for n in ("notest", "notest2"):
    r = json.load(open(n + ".json"))
    assert r["baseline"]["student"] is not None and r["baseline"]["margin"] is None, r["baseline"]
    assert "not measured" in r["verdict"]["why"], r["verdict"]
assert os.path.exists("wk/baseline/final.h5")'

# Usage errors.
expect_usage_error "no teacher" "^kd: error: kd doctor: --teacher FILE or --teacher-model CKPT is required" \
  doctor --data d.h5 --student 16-16-4
expect_usage_error "two teachers" "^kd: error: kd doctor: --teacher and --teacher-model: name one teacher" \
  doctor --data d.h5 --teacher t.h5 --teacher-model x.h5
expect_usage_error "a bad option value" "^kd: error: .*--baseline-steps" \
  doctor --data d.h5 --teacher t.h5 --baseline-steps -3
finish
