#!/usr/bin/python3
"""summarise_inter.py RESULTS.csv OUT.md [TEXT_RESULTS.csv]: the tables of docs/results.md's section on
online teachers and intermediate-layer distillation, from launch/results-inter.sh's CSV: per data size
and configuration, held-out (test) bits per byte as mean +- sample std over the seeds run, the
validation bpb, and rank 0's milliseconds per step (all, the teacher's forward, the loss and terms).
TEXT_RESULTS.csv (launch/results-text.sh's) adds the teachers' own bits per byte."""
import csv
import statistics as st
import sys

rows = list(csv.DictReader(open(sys.argv[1])))
out = sys.argv[2]
teachers = []
if len(sys.argv) > 3:
    teachers = [float(r["test_bpb"]) for r in csv.DictReader(open(sys.argv[3])) if r["group"] == "teacher"]

ORDER = ["scratch", "kd", "minilm", "hidden", "two-stage", "scratch4", "hidden-attn"]
WHAT = {
    "scratch": "from scratch (no teacher)",
    "kd": "logit KD, online teacher",
    "minilm": "logit KD + MiniLM relations (q-q, k-k, v-v; last layers 2:4; 2 relation heads)",
    "hidden": "logit KD + TinyBERT hidden states (0:0, 1:2, 2:4; projection 80 -> 192)",
    "two-stage": "TinyBERT two stages: hidden states + relations alone, then logit KD alone",
    "scratch4": "from scratch (no teacher)",
    "hidden-attn": "logit KD + TinyBERT hidden states + attention maps (mse, 1:2, 2:4)",
}
STUDENT = {c: "2x80, 2 heads" for c in ORDER}
STUDENT["scratch4"] = STUDENT["hidden-attn"] = "2x80, 4 heads"


def fmt(xs):
    if not xs:
        return "-"
    if len(xs) == 1:
        return f"{xs[0]:.4f}"
    return f"{st.mean(xs):.4f} +- {st.stdev(xs):.4f}"


lines = ["<!-- written by bench/summarise_inter.py from launch/results-inter.sh's results.csv -->", ""]
if teachers:
    lines += [f"Teachers (gpt 4x192, 4 heads, 1.85 M parameters): test bits per byte {fmt(teachers)} "
              f"({len(teachers)} seeds).", ""]
for size, title in (("full", "All training rows (18,177 rows of 128 bytes), 2 epochs = 1,136 steps"),
                    ("tenth", "A tenth of the rows (every 10th, 1,817 rows), 10 epochs = 560 steps")):
    sel = [r for r in rows if r["size"] == size]
    if not sel:
        continue
    lines += [f"**{title}**", "",
              "| student | configuration | seeds | test bpb | valid bpb | ms/step | teacher ms | loss + terms ms |",
              "|---|---|---|---|---|---|---|---|"]
    for c in ORDER:
        rs = [r for r in sel if r["config"] == c]
        if not rs:
            continue
        tb = [float(r["test_bpb"]) for r in rs]
        vb = [float(r["valid_bpb"]) for r in rs]
        mean = lambda k: f"{st.mean(float(r[k]) for r in rs):.0f}"
        lines.append(f"| {STUDENT[c]} | {WHAT[c]} | {len(rs)} | {fmt(tb)} | {fmt(vb)} | {mean('step_ms')} | "
                     f"{mean('teacher_ms')} | {mean('loss_ms')} |")
    lines.append("")
open(out, "w").write("\n".join(lines))
print(f"wrote {out}")
