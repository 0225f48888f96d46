#!/usr/bin/python3
"""project.py [GFLOPS_PER_NODE]: alpha-beta projection of kd's data-parallel step beyond one box.

Per step and node: compute = 6 * P * b / R (P parameters, b rows per node, R the node's GFLOP/s as
measured by bench/perf.sh), and a ring allreduce of the 4P-byte gradient:
    T_ar = 2 (p - 1) / p * 4P / BW + 2 (p - 1) * alpha
Efficiency = compute / (compute + T_ar) without overlap, compute / max(compute, T_ar) with perfect
overlap (buckets started during the backward pass can hide at most the backward's share, about
2/3 of the step: we print that bound too)."""
import sys

R = float(sys.argv[1]) * 1e9 if len(sys.argv) > 1 else 154e9  # measured: reference student, 2 ranks x 1 thread (bench/perf.sh)
nets = {"100 Gb/s InfiniBand": (12.5e9, 2e-6), "10 Gb/s Ethernet": (1.25e9, 30e-6)}
models = {"reference 784-800-800-10": 1276810, "large 784-4096-4096-10": 20037642}
print(f"node compute rate R = {R / 1e9:.0f} GFLOP/s (2-core box, measured); bandwidths and latencies as stated\n")
for mname, P in models.items():
    for scaling, per_node in (("weak: 128 rows per node", lambda p: 128), ("strong: global batch 4096", lambda p: 4096 / p)):
        print(f"{mname}, {scaling}")
        print(f"{'nodes':>6} {'compute ms':>11} " + " ".join(f"{n[:22]:>22} {'eff':>5} {'overlap':>7}" for n in nets))
        for p in (1, 8, 16, 32, 64, 128, 256, 512):
            b = per_node(p)
            tc = 6 * P * b / R
            row = f"{p:>6} {tc * 1e3:>11.2f} "
            for bw, alpha in nets.values():
                tar = 0.0 if p == 1 else 2 * (p - 1) / p * 4 * P / bw + 2 * (p - 1) * alpha
                eff = tc / (tc + tar)
                ov = tc / max(tc, tar + tc / 3) if p > 1 else 1.0  # backward (2/3 of compute) can hide comm
                row += f"{tar * 1e3:>19.2f} ms {eff:>5.2f} {ov:>7.2f} "
            print(row)
        print()
