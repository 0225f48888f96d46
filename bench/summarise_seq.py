#!/usr/bin/python3
"""Tables of launch/results-seq.sh: PER and WER (in %) at greedy and beam-5 decoding, mean +- std over the
seeds, in Kim & Rush's layout (teacher, then the student's recipes), and the decoding speed of kd eval
--decode on /test. usage: summarise_seq.py RESULTS.csv TABLES.md [RUN_DIR]"""
import csv
import statistics
import sys

RECIPES = [("references", "teacher, trained on the references"),
           ("baseline", "baseline: the references"),
           ("wordkd", "Word-KD: the references + the teacher's logits"),
           ("seqkd", "Seq-KD: the teacher's beam-5 outputs"),
           ("seqinter", "Seq-Inter: the n-best closest to the reference"),
           ("seqinter_wordkd", "Seq-Inter + Word-KD")]


def cell(vals, scale=100.0, digits=2):
    if not vals:
        return "-"
    m = statistics.mean(vals) * scale
    if len(vals) == 1:
        return "%.*f" % (digits, m)
    return "%.*f ± %.*f" % (digits, m, digits, statistics.stdev(vals) * scale)


def edit_distance(a, b):
    d = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        diag, d[0] = d[0], i
        for j in range(1, len(b) + 1):
            diag, d[j] = d[j], min(diag + (a[i - 1] != b[j - 1]), d[j - 1] + 1, d[j] + 1)
    return d[len(b)]


def targets(f):
    """Each /train row's target (the masked tokens without the end token), as tuples."""
    import numpy as np
    tok, mask = f["train/tokens"][()].astype(np.int64), f["train/mask"][()].astype(bool)
    end = int(f["tokenizer"].attrs["end_id"])
    return [tuple(int(x) for x in t[m] if x != end) for t, m in zip(tok, mask)]


def agreement(run_dir):
    """How far the decoded training files are from the references: the rows whose kept hypothesis is the
    row's own reference, and the token edit distance over the reference length (the teacher's PER on
    /train, one reference per row)."""
    import os
    import h5py
    path = os.path.join(run_dir, "cmudict.h5")
    if not os.path.exists(path):
        return []
    with h5py.File(path, "r") as f:
        ref = targets(f)
    out = ["", "The teacher's decoded training rows against the references (per row: a word with two "
           "pronunciations has two rows):", "", "| file | rows equal to their reference (%) | PER against "
           "the reference (%) |", "|---|---|---|"]
    for name, label in (("seqkd.h5", "Seq-KD: beam-5 best"), ("seqinter.h5", "Seq-Inter: n-best closest")):
        p = os.path.join(run_dir, name)
        if not os.path.exists(p):
            continue
        with h5py.File(p, "r") as f:
            hyp = targets(f)
        same = sum(h == r for h, r in zip(hyp, ref))
        edits = sum(edit_distance(h, r) for h, r in zip(hyp, ref))
        out.append("| %s | %.2f | %.2f |" % (label, 100.0 * same / len(ref), 100.0 * edits / sum(map(len, ref))))
    return out


def main():
    rows = list(csv.DictReader(open(sys.argv[1])))
    by = {}
    for r in rows:
        by.setdefault((r["model"], r["recipe"], r["decode"]), []).append(r)
    out = ["| model | recipe | parameters | PER greedy (%) | WER greedy (%) | PER beam 5 (%) | WER beam 5 (%) | "
           "seeds | training s (mean) |", "|---|---|---|---|---|---|---|---|---|"]
    for recipe, label in RECIPES:
        model = "teacher" if recipe == "references" else "student"
        g, b = by.get((model, recipe, "greedy"), []), by.get((model, recipe, "beam:5"), [])
        if not g and not b:
            continue
        ref = g or b
        out.append("| %s | %s | %s | %s | %s | %s | %s | %d | %.0f |" % (
            model, label, "{:,}".format(int(ref[0]["params"])),
            cell([float(r["per"]) for r in g]), cell([float(r["wer"]) for r in g]),
            cell([float(r["per"]) for r in b]), cell([float(r["wer"]) for r in b]),
            len(ref), statistics.mean(float(r["train_s"]) for r in ref)))
    out += ["", "Decoding speed (kd eval --decode on /test, 2 ranks, sequences/s; mean over runs):", "",
            "| model | greedy | beam 5 |", "|---|---|---|"]
    for model in ("teacher", "student"):
        sp = []
        for d in ("greedy", "beam:5"):
            v = [float(r["seq_per_s"]) for r in rows if r["model"] == model and r["decode"] == d]
            sp.append("{:,.0f}".format(statistics.mean(v)) if v else "-")
        out.append("| %s | %s | %s |" % (model, sp[0], sp[1]))
    if len(sys.argv) > 3:
        out += agreement(sys.argv[3])
    words = {r["words"] for r in rows}
    out += ["", "Test words: %s; PER = token edit distance / reference length summed over words, each word "
            "scored against its closest reference; WER = words not exactly right." % ", ".join(sorted(words))]
    open(sys.argv[2], "w").write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
