#!/usr/bin/python3
"""Tables of launch/results-onpolicy.sh: PER and WER (in %) at greedy and beam-5 decoding and the teacher's NLL
of the student's sampled completions, mean +- std over the seeds, for the teacher and baseline of
launch/results-seq.sh and each recipe that continues the baseline.
usage: summarise_onpolicy.py SEQ_RESULTS.csv RESULTS.csv SAMPLES.csv TABLES.md [RUN_DIR]
       summarise_onpolicy.py --text TEXT.csv TABLES.md   (launch/results-onpolicy-text.sh: fortunes)"""
import csv
import math
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


TEXT_RECIPES = [("teacher", "teacher", "gpt 4x192 (results-text, seed 1)"),
                ("scratch", "student", "from scratch, 4 epochs (results-text)"),
                ("kd-logits", "student", "KD from the teacher's logits, T 2, alpha 0.5, 4 epochs (results-text)"),
                ("continued", "student", "from scratch +1 epoch on the data (no teacher)"),
                ("kd-forward", "student", "from scratch +1 epoch, lambda 0: the data, forward KL"),
                ("op0.5-jsd0.5", "student", "from scratch +1 epoch, lambda 0.5, jsd:0.5"),
                ("op1-reverse", "student", "from scratch +1 epoch, lambda 1, reverse KL"),
                ("op1-jsd0.5", "student", "from scratch +1 epoch, lambda 1, jsd:0.5")]


def text_tables(csv_path, out):
    rows = {r["recipe"]: r for r in read(csv_path)}
    lines = ["<!-- written by bench/summarise_onpolicy.py from launch/results-onpolicy-text.sh's CSV -->",
             "Fortunes text, seed 1 only: test and validation bits per byte of the best-validation checkpoint; the "
             "teacher's NLL of the model's sampled continuations (temperature 1) of the first 64 bytes of every "
             "/test row, in nats per byte and in bits per byte; training seconds of the extra epoch (2 ranks).", "",
             "| model | recipe | test bpb | valid bpb | teacher NLL of samples (nats/byte) | (bits/byte) | sampled "
             "bytes | train s |", "|---|---|---|---|---|---|---|---|"]
    for key, model, label in TEXT_RECIPES:
        r = rows.get(key)
        if r is None:
            continue
        nll = float(r["teacher_nll"])
        lines.append("| %s | %s | %.4f | %.4f | %.4f | %.4f | %s | %s |" % (
            model, label, float(r["test_bpb"]), float(r["valid_bpb"]), nll, nll / math.log(2), r["sample_tokens"],
            r["train_s"] or ""))
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--text":
        return text_tables(sys.argv[2], sys.argv[3])
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
