#!/usr/bin/python3
"""Tables of launch/results-xtok.sh: summarise_xtok.py RESULTS.csv RUN_DIR > docs/results-xtok-tables.md.

Test bits per byte (best-validation checkpoint), mean and sample standard deviation over the seeds, per
student tokenizer and method; the gain over the student from scratch of the same seed; the seconds per run and
the loss's share of the step (rank 0's step_ms) of the first seed's runs."""
import csv
import os
import statistics
import sys

KINDS = [("bytes", "bytes (256)"), ("bpe1024", "kd BPE 1,024"), ("bpe4096", "kd BPE 4,096 (the teacher's)")]
METHODS = [("scratch", "scratch"), ("uld", "uld"), ("exact", "exact"), ("hybrid", "hybrid"),
           ("kd", "same-tokenizer KD")]


def mean_sd(xs):
    if not xs:
        return "—"
    if len(xs) == 1:
        return "%.4f" % xs[0]
    return "%.4f ± %.4f" % (statistics.mean(xs), statistics.stdev(xs))


def main():
    rows = list(csv.DictReader(open(sys.argv[1])))
    by = {}
    for r in rows:
        by.setdefault((r["student"], r["method"]), {})[r["seed"]] = r
    seeds = sorted({r["seed"] for r in rows}, key=int)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    print("<!-- written by bench/summarise_xtok.py from %s; do not edit -->" % os.path.relpath(sys.argv[1], root))
    print()
    print("Test bits per byte (lower is better), mean ± sd over seeds %s; the teacher (kd BPE 4,096, gpt 4x192) "
          "distilled into gpt 2x80 students, T 2, alpha 0.5." % ", ".join(seeds))
    print()
    print("| student tokenizer | " + " | ".join(m[1] for m in METHODS) + " |")
    print("|---" * (len(METHODS) + 1) + "|")
    for k, name in KINDS:
        cells = []
        for m, _ in METHODS:
            runs = by.get((k, m), {})
            cells.append(mean_sd([float(r["test_bpb"]) for r in runs.values()]))
        print("| %s | %s |" % (name, " | ".join(cells)))
    print()
    print("Gain over the student from scratch of the same seed (bits per byte, positive: better than scratch), "
          "and the seeds where it is positive:")
    print()
    print("| student tokenizer | " + " | ".join(m[1] for m in METHODS[1:]) + " |")
    print("|---" * len(METHODS) + "|")
    for k, name in KINDS:
        base = by.get((k, "scratch"), {})
        cells = []
        for m, _ in METHODS[1:]:
            runs = by.get((k, m), {})
            d = [float(base[s]["test_bpb"]) - float(r["test_bpb"]) for s, r in runs.items() if s in base]
            cells.append("%+.4f (%d of %d)" % (statistics.mean(d), sum(x > 0 for x in d), len(d)) if d else "—")
        print("| %s | %s |" % (name, " | ".join(cells)))
    print()
    first = seeds[0]
    print("Cost per run (2 ranks, this machine's 2 cores; seed %s's runs, the ones that ran alone on the machine): "
          "seconds (the run with its evaluations), and rank 0's loss phase and whole step in ms (the loss phase of "
          "a cross-tokenizer run is the CE, the pairing and the soft term "
          "at the aligned positions against the teacher's 4,096 logits):" % first)
    print()
    print("| student tokenizer | method | seconds | loss ms / step ms | loss share |")
    print("|---|---|---|---|---|")
    for k, name in KINDS:
        for m, mname in METHODS:
            r = by.get((k, m), {}).get(first)
            if not r:
                continue
            secs, lm, sm = float(r["train_s"]), float(r["loss_ms"]), float(r["step_ms"])
            print("| %s | %s | %.0f | %.1f / %.1f | %.0f%% |" % (name, mname, secs, lm, sm, 100 * lm / sm))


if __name__ == "__main__":
    main()
