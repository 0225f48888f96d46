#!/usr/bin/python3
"""PyTorch peer of kd's training step, for bench/perf.sh: the same MLP (ReLU), the same KD loss
(alpha * CE + (1 - alpha) * T^2 * KL, mean over the global batch), SGD with momentum 0.9, the same
global batch, on random inputs and teacher logits. Prints one line: 'pytorch samples/s N'.

    peer.py --sizes 784-800-800-10 --batch 128 --threads 1 --steps 200 [--ranks 2]

With --ranks 2, two processes train with DistributedDataParallel over gloo (loopback only), each
with batch / 2 rows per step and --threads threads."""
import argparse
import os
import time

import torch
import torch.nn.functional as F


def build(sizes):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def kd_loss(z, zt, y, T=4.0, alpha=0.1):
    ce = F.cross_entropy(z, y)
    kl = F.kl_div(F.log_softmax(z / T, 1), F.log_softmax(zt / T, 1), log_target=True, reduction="batchmean")
    return alpha * ce + (1 - alpha) * T * T * kl


def run(rank, args):
    torch.set_num_threads(args.threads)
    sizes = [int(s) for s in args.sizes.split("-")]
    b = args.batch // args.ranks
    if args.ranks > 1:
        torch.distributed.init_process_group("gloo", rank=rank, world_size=args.ranks)
    torch.manual_seed(rank)
    model = build(sizes)
    if args.ranks > 1:
        model = torch.nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    n = 8 * b
    x = torch.randn(n, sizes[0])
    zt = torch.randn(n, sizes[-1]) * 3
    y = torch.randint(0, sizes[-1], (n,))
    t0 = None
    for step in range(args.steps + args.warmup):
        if step == args.warmup:
            t0 = time.perf_counter()
        i = (step % 8) * b
        opt.zero_grad(set_to_none=True)
        loss = kd_loss(model(x[i:i + b]), zt[i:i + b], y[i:i + b])
        loss.backward()
        opt.step()
    dt = time.perf_counter() - t0
    if rank == 0:
        print(f"pytorch samples/s {args.steps * args.batch / dt:.0f}", flush=True)
    if args.ranks > 1:
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", default="784-800-800-10")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--ranks", type=int, default=1)
    a = p.parse_args()
    if a.ranks == 1:
        run(0, a)
    else:
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", "29517")
        torch.multiprocessing.spawn(run, args=(a,), nprocs=a.ranks)
