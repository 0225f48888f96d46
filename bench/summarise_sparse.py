#!/usr/bin/python3
"""summarise_sparse.py RESULTS.csv OUT.md [RESULTS_DIR]: the tables of docs/results.md's section on sparse
teacher logits, from launch/results-sparse.sh's CSV: per data size and configuration, held-out (test) bits
per byte and the expected calibration error of the student's next-token distribution as mean +- sample
std over the seeds run, the teacher file's bytes per token and rank 0's milliseconds per step; the
teachers' own figures first. RESULTS_DIR (for the row counts) is optional."""
import csv
import statistics as st
import sys

rows = list(csv.DictReader(open(sys.argv[1])))
out = sys.argv[2]
ORDER = ["scratch", "dense", "topk1", "topk8", "topk32", "topk128", "tail32", "sampled4", "sampled12", "sampled32"]
WHAT = {
    "scratch": "from scratch (no teacher)",
    "dense": "dense KD, online teacher",
    "tail32": "top-32 + tail bin (lse)",
}
for k in (1, 8, 32, 128):
    WHAT[f"topk{k}"] = f"top-{k}, renormalised"
for s in (4, 12, 32):
    WHAT[f"sampled{s}"] = f"sampled, S = {s} draws"


def fmt(xs, digits=4):
    if not xs:
        return "-"
    if len(xs) == 1:
        return f"{xs[0]:.{digits}f}"
    return f"{st.mean(xs):.{digits}f} +- {st.stdev(xs):.{digits}f}"


lines = ["<!-- written by bench/summarise_sparse.py from launch/results-sparse.sh's results.csv -->", ""]
teach = [r for r in rows if r["config"] == "teacher"]
if teach:
    lines += [f"Teachers (gpt 4x192, 4 heads, vocabulary 4,096): test bits per byte "
              f"{fmt([float(r['test_bpb']) for r in teach])}, ECE {fmt([float(r['test_ece']) for r in teach])} "
              f"({len(teach)} seeds).", ""]
for size, title in (("full", "All training rows, 1 epoch"), ("tenth", "A tenth of the rows (every 10th), 6 epochs")):
    sel = [r for r in rows if r["size"] == size and r["config"] != "teacher"]
    if not sel:
        continue
    steps = sel[0]["steps"]
    lines += [f"**{title} ({steps} steps)**", "",
              "| targets | seeds | test bpb | test ECE | teacher file bytes/token | ms/step | loss ms |",
              "|---|---|---|---|---|---|---|"]
    for c in ORDER:
        rs = [r for r in sel if r["config"] == c]
        if not rs:
            continue
        tb = [float(r["test_bpb"]) for r in rs]
        ece = [float(r["test_ece"]) for r in rs]
        mean = lambda k: f"{st.mean(float(r[k]) for r in rs):.0f}"
        lines.append(f"| {WHAT[c]} | {len(rs)} | {fmt(tb)} | {fmt(ece)} | {mean('file_bytes')} | {mean('step_ms')} | "
                     f"{mean('loss_ms')} |")
    lines.append("")
open(out, "w").write("\n".join(lines))
print(f"wrote {out}")
