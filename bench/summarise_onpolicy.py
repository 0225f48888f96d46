#!/usr/bin/python3
"""Tables of launch/results-onpolicy.sh: PER and WER (in %) at greedy and beam-5 decoding and the teacher's NLL
of the student's sampled completions, mean +- std over the seeds, for the teacher and baseline of
launch/results-seq.sh and each recipe that continues the baseline.
usage: summarise_onpolicy.py SEQ_RESULTS.csv RESULTS.csv SAMPLES.csv TABLES.md [RUN_DIR]"""
import csv
import sys

from summarise_seq import cell  # mean ± std of a figure over the seeds, as the sequence-level tables

RECIPES = [("references", "teacher (results-seq), trained on the references"),
           ("baseline", "baseline (results-seq): 8 epochs on the references"),
           ("continued", "+1 epoch on the references (no teacher)"),
           ("kd-jsd0.5", "+1 epoch, lambda 0: the references, jsd:0.5"),
           ("op0.5-reverse", "+1 epoch, lambda 0.5, reverse KL"),
           ("op1-reverse", "+1 epoch, lambda 1, reverse KL"),
           ("op0.5-jsd0.5", "+1 epoch, lambda 0.5, jsd:0.5"),
           ("op1-jsd0.5", "+1 epoch, lambda 1, jsd:0.5"),
           ("op0.5-forward", "+1 epoch, lambda 0.5, forward KL"),
           ("op1-forward", "+1 epoch, lambda 1, forward KL")]


def read(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    seq, res, samples, out = read(sys.argv[1]), read(sys.argv[2]), read(sys.argv[3]), sys.argv[4]
    seeds = sorted({r["seed"] for r in res}) or ["1"]
    rows = [r for r in seq if r["recipe"] in ("references", "baseline") and
            (r["recipe"] == "references" or r["seed"] in seeds)] + res
    lines = ["<!-- written by bench/summarise_onpolicy.py from launch/results-onpolicy.sh's CSVs -->",
             "Test PER and WER (%%) of the CMU dictionary G2P task, mean ± std over seeds %s (a single figure: "
             "one seed); the teacher's NLL (nats per token) of the student's sampled completions (temperature 1, "
             "one sample per /test word; the teacher's row: its own samples); training seconds of the extra epoch "
             "(2 ranks)." % ", ".join(seeds), "",
             "| model | recipe | seeds | PER greedy | WER greedy | PER beam 5 | WER beam 5 | teacher NLL of samples "
             "| train s |", "|---|---|---|---|---|---|---|---|---|"]
    for key, label in RECIPES:
        got = [r for r in rows if r["recipe"] == key]
        if not got:
            continue
        by = {d: [r for r in got if r["decode"] == d] for d in ("greedy", "beam:5")}
        nll = [float(s["teacher_nll"]) for s in samples if s["recipe"] == key]
        secs = [float(r["train_s"]) for r in by["greedy"]] if key not in ("references", "baseline") else []
        lines.append("| %s | %s | %d | %s | %s | %s | %s | %s | %s |" % (
            "teacher" if key == "references" else "student", label, len(by["greedy"]),
            cell([float(r["per"]) for r in by["greedy"]]), cell([float(r["wer"]) for r in by["greedy"]]),
            cell([float(r["per"]) for r in by["beam:5"]]), cell([float(r["wer"]) for r in by["beam:5"]]),
            cell(nll, 1.0, 4), cell(secs, 1.0, 0)))
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
