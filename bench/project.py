#!/usr/bin/python3
"""project.py [--gpt] [--net NAME GB_PER_S ALPHA_US] [GFLOPS_PER_NODE]: alpha-beta projection of kd's data-parallel step beyond one box.

Per step and node: compute = F * b / R (F model FLOPs per row, b rows per node, R the node's GFLOP/s
as measured: bench/perf.sh for the MLPs, bench/gpt.sh for the GPT), and a ring allreduce of the
4P-byte gradient:
    T_ar = 2 (p - 1) / p * 4P / BW + 2 (p - 1) * alpha
Efficiency = compute / (compute + T_ar) without overlap, compute / max(compute, T_ar) with perfect
overlap (buckets started during the backward pass can hide at most the backward's share, about
2/3 of the step: we print that bound too).

Networks: 100 Gb/s InfiniBand (12.5 GB/s, alpha 2 us) and 10 Gb/s Ethernet (1.25 GB/s, 30 us) are
assumed figures; --net adds one of measured bus bandwidth and per-hop latency (bench/multinode.sh passes
what bench_allreduce measured over veth TCP between namespace nodes). R is measured on this machine.

MLPs: F = 6P per row (sample). --gpt: the reference GPT student, F = T * (6P + 12 L T D) per row
(sequence of T = 128 tokens), weak scaling at 32 sequences per node, strong at 512 in all."""
import sys

if any(a in ("-h", "--help") for a in sys.argv[1:]):
    print(__doc__)
    sys.exit(0)
nets = {"100 Gb/s InfiniBand": (12.5e9, 2e-6), "10 Gb/s Ethernet": (1.25e9, 30e-6)}
measured = []
args, argv = [], sys.argv[1:]
while argv:
    a = argv.pop(0)
    if a == "--net":
        try:
            name, gbs, alpha_us = argv[0], float(argv[1]), float(argv[2])
        except (IndexError, ValueError):
            print("project.py: --net NAME GB_PER_S ALPHA_US (e.g. --net 'veth TCP' 2.1 25)", file=sys.stderr)
            sys.exit(2)
        del argv[:3]
        nets[name] = (gbs * 1e9, alpha_us * 1e-6)
        measured.append(f"{name}: {gbs:g} GB/s, alpha {alpha_us:g} us (measured)")
    elif a != "--gpt":
        args.append(a)
try:
    rate = float(args[0]) if args else None
except ValueError:
    print(f"project.py: {args[0]!r} is not a rate in GFLOP/s (usage: project.py [--gpt] [GFLOPS_PER_NODE])",
          file=sys.stderr)
    sys.exit(2)
gpt = "--gpt" in sys.argv[1:]
if gpt:
    # measured: reference GPT, 2 ranks x 1 thread, bench/gpt.sh
    R = rate * 1e9 if rate else 162e9
    P, T, L, D = 3257856, 128, 4, 256
    models = {"gpt:vocab=256,ctx=128,layers=4,dim=256,heads=4": (P, T * (6 * P + 12 * L * T * D))}
    scalings = (("weak: 32 sequences per node", lambda p: 32), ("strong: global batch 512 sequences", lambda p: 512 / p))
else:
    R = rate * 1e9 if rate else 154e9  # measured: reference student, 2 ranks x 1 thread (bench/perf.sh)
    models = {"reference 784-800-800-10": (1276810, 6 * 1276810), "large 784-4096-4096-10": (20037642, 6 * 20037642)}
    scalings = (("weak: 128 rows per node", lambda p: 128), ("strong: global batch 4096", lambda p: 4096 / p))
print(f"node compute rate R = {R / 1e9:.0f} GFLOP/s (2-core box, measured); InfiniBand and Ethernet figures assumed"
      + "".join(f"; {m}" for m in measured) + "\n")
for mname, (P, F) in models.items():
    for scaling, per_node in scalings:
        print(f"{mname}, {scaling}")
        print(f"{'nodes':>6} {'compute ms':>11} " + " ".join(f"{n[:22]:>22} {'eff':>5} {'overlap':>7}" for n in nets))
        for p in (1, 8, 16, 32, 64, 128, 256, 512):
            b = per_node(p)
            tc = F * b / R
            row = f"{p:>6} {tc * 1e3:>11.2f} "
            for bw, alpha in nets.values():
                tar = 0.0 if p == 1 else 2 * (p - 1) / p * 4 * P / bw + 2 * (p - 1) * alpha
                eff = tc / (tc + tar)
                ov = tc / max(tc, tar + tc / 3) if p > 1 else 1.0  # backward (2/3 of compute) can hide comm
                row += f"{tar * 1e3:>19.2f} ms {eff:>5.2f} {ov:>7.2f} "
            print(row)
        print()
