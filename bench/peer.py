#!/usr/bin/python3
"""PyTorch peer of kd's training step, for bench/perf.sh and bench/gpt.sh.

MLP (the default): the same MLP (ReLU), the same KD loss (alpha * CE + (1 - alpha) * T^2 * KL, mean
over the global batch), SGD with momentum 0.9, the same global batch, on random inputs and teacher
logits. Prints one line: 'pytorch samples/s N'.

    peer.py --sizes 784-800-800-10 --batch 128 --threads 1 --steps 200 [--ranks 2]

GPT (--gpt V,T,L,D,H): nanoGPT's model (pre-LayerNorm blocks, tanh GELU, causal attention written
out as nanoGPT's non-flash path, lm_head tied to wte, no dropout), the per-token KD loss against the
teacher's logits (averaged over the global target count), AdamW (foreach). Prints 'pytorch tokens/s N'.

    peer.py --gpt 256,128,4,256,4 --batch 32 --threads 2 --steps 20

Llama (--llama V,T,L,D,H,G,F): Hugging Face's LlamaForCausalLM written out in plain tensor operations
(PyTorch 1.13 has neither an RMSNorm module nor a grouped-query attention kernel): RMSNorm, rotary
embeddings by rotate_half, H query heads sharing G key/value heads (HF's repeat_kv), attention as
nanoGPT's non-flash path, a SwiGLU MLP of width F, no biases, an untied lm_head; the same loss and
AdamW.

The teacher's logits are held as float32 in memory (PyTorch's best case: no conversion per step);
--teacher-f16 holds them as float16 and converts each batch, as kd's float16 teacher files are read.

With --ranks 2, two processes train with DistributedDataParallel over gloo (loopback only), each
with batch / 2 rows per step and --threads threads."""
import argparse
import math
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


class Block(torch.nn.Module):
    def __init__(self, D, H):
        super().__init__()
        self.H = H
        self.ln_1 = torch.nn.LayerNorm(D)
        self.c_attn = torch.nn.Linear(D, 3 * D)
        self.c_proj = torch.nn.Linear(D, D)
        self.ln_2 = torch.nn.LayerNorm(D)
        self.c_fc = torch.nn.Linear(D, 4 * D)
        self.mlp_proj = torch.nn.Linear(4 * D, D)

    def forward(self, x, causal):
        B, T, D = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(D, dim=2)
        q, k, v = (t.view(B, T, self.H, D // self.H).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = F.softmax(att.masked_fill(causal[:, :, :T, :T] == 0, float("-inf")), dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, D)
        x = x + self.c_proj(y)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(torch.nn.Module):
    def __init__(self, V, T, L, D, H):
        super().__init__()
        self.wte = torch.nn.Embedding(V, D)
        self.wpe = torch.nn.Embedding(T, D)
        self.h = torch.nn.ModuleList([Block(D, H) for _ in range(L)])
        self.ln_f = torch.nn.LayerNorm(D)
        self.register_buffer("causal", torch.tril(torch.ones(T, T)).view(1, 1, T, T))

    def forward(self, idx):
        x = self.wte(idx) + self.wpe(torch.arange(idx.size(1)))
        for b in self.h:
            x = b(x, self.causal)
        return self.ln_f(x) @ self.wte.weight.t()


class RMSNorm(torch.nn.Module):
    def __init__(self, D, eps):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(D))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate_half(x):
    h = x.size(-1) // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class LlamaBlock(torch.nn.Module):
    def __init__(self, D, H, G, F, eps):
        super().__init__()
        self.H, self.G, self.hd = H, G, D // H
        self.input_layernorm = RMSNorm(D, eps)
        self.q_proj = torch.nn.Linear(D, H * self.hd, bias=False)
        self.k_proj = torch.nn.Linear(D, G * self.hd, bias=False)
        self.v_proj = torch.nn.Linear(D, G * self.hd, bias=False)
        self.o_proj = torch.nn.Linear(H * self.hd, D, bias=False)
        self.post_attention_layernorm = RMSNorm(D, eps)
        self.gate_proj = torch.nn.Linear(D, F, bias=False)
        self.up_proj = torch.nn.Linear(D, F, bias=False)
        self.down_proj = torch.nn.Linear(F, D, bias=False)

    def forward(self, x, causal, cos, sin):
        B, T, D = x.shape
        h = self.input_layernorm(x)
        q = self.q_proj(h).view(B, T, self.H, self.hd).transpose(1, 2)
        k = self.k_proj(h).view(B, T, self.G, self.hd).transpose(1, 2)
        v = self.v_proj(h).view(B, T, self.G, self.hd).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        rep = self.H // self.G  # HF's repeat_kv
        k = k[:, :, None].expand(B, self.G, rep, T, self.hd).reshape(B, self.H, T, self.hd)
        v = v[:, :, None].expand(B, self.G, rep, T, self.hd).reshape(B, self.H, T, self.hd)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.hd))
        att = F.softmax(att.masked_fill(causal[:, :, :T, :T] == 0, float("-inf")), dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, self.H * self.hd)
        x = x + self.o_proj(y)
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class Llama(torch.nn.Module):
    def __init__(self, V, T, L, D, H, G, Fw, eps=1e-5, theta=10000.0):
        super().__init__()
        self.embed_tokens = torch.nn.Embedding(V, D)
        self.layers = torch.nn.ModuleList([LlamaBlock(D, H, G, Fw, eps) for _ in range(L)])
        self.norm = RMSNorm(D, eps)
        self.lm_head = torch.nn.Linear(D, V, bias=False)
        hd = D // H
        inv_freq = 1.0 / theta ** (torch.arange(0, hd, 2).float() / hd)
        emb = torch.cat([torch.outer(torch.arange(T).float(), inv_freq)] * 2, dim=-1)
        self.register_buffer("cos", emb.cos())
        self.register_buffer("sin", emb.sin())
        self.register_buffer("causal", torch.tril(torch.ones(T, T)).view(1, 1, T, T))

    def forward(self, idx):
        T = idx.size(1)
        x = self.embed_tokens(idx)
        for b in self.layers:
            x = b(x, self.causal, self.cos[:T], self.sin[:T])
        return self.lm_head(self.norm(x))


def gpt_loss(z, zt, y, n_targets, T=2.0, alpha=0.5):
    """Per-token KD, summed over the rank's tokens and divided by the global target count."""
    z = z.reshape(-1, z.size(-1))
    zt = zt.reshape(-1, zt.size(-1)).float()
    ce = F.cross_entropy(z, y.reshape(-1), reduction="sum")
    kl = F.kl_div(F.log_softmax(z / T, 1), F.log_softmax(zt / T, 1), log_target=True, reduction="sum")
    return (alpha * ce + (1 - alpha) * T * T * kl) / n_targets


def start(rank, args, model):
    """Threads, the process group and DDP for rank's replica of model."""
    torch.set_num_threads(args.threads)
    if args.ranks > 1:
        torch.distributed.init_process_group("gloo", rank=rank, world_size=args.ranks)
        model = torch.nn.parallel.DistributedDataParallel(model)
    return model


def timed_steps(rank, args, opt, loss_of, per_step, unit):
    """args.warmup untimed steps, then args.steps timed ones; rank 0 prints the rate in unit/s."""
    t0 = None
    for step in range(args.steps + args.warmup):
        if step == args.warmup:
            t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss_of(step).backward()
        opt.step()
    dt = time.perf_counter() - t0
    if rank == 0:
        print(f"pytorch {unit}/s {args.steps * per_step / dt:.0f}", flush=True)
    if args.ranks > 1:
        torch.distributed.destroy_process_group()


def run_gpt(rank, args):
    if args.llama:
        V, T, L, D, H, G, Fw = (int(v) for v in args.llama.split(","))
        net = Llama(V, T, L, D, H, G, Fw)
    else:
        V, T, L, D, H = (int(v) for v in args.gpt.split(","))
        net = GPT(V, T, L, D, H)
    b = args.batch // args.ranks
    torch.manual_seed(rank)
    model = start(rank, args, net)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}],
                            lr=3e-4, foreach=True)
    n = 4 * b
    idx = torch.randint(0, V, (n, T))
    y = torch.randint(0, V, (n, T))
    zt = torch.randn(n, T, V) * 3
    if args.teacher_f16:
        zt = zt.half()  # converted to float32 batch by batch in gpt_loss

    def loss_of(step):
        i = (step % 4) * b
        return gpt_loss(model(idx[i:i + b]), zt[i:i + b], y[i:i + b], args.batch * T)
    timed_steps(rank, args, opt, loss_of, args.batch * T, "tokens")


def run(rank, args):
    if args.gpt or args.llama:
        return run_gpt(rank, args)
    sizes = [int(s) for s in args.sizes.split("-")]
    b = args.batch // args.ranks
    torch.manual_seed(rank)
    model = start(rank, args, build(sizes))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    n = 8 * b
    x = torch.randn(n, sizes[0])
    zt = torch.randn(n, sizes[-1]) * 3
    y = torch.randint(0, sizes[-1], (n,))

    def loss_of(step):
        i = (step % 8) * b
        return kd_loss(model(x[i:i + b]), zt[i:i + b], y[i:i + b])
    timed_steps(rank, args, opt, loss_of, args.batch, "samples")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", default="784-800-800-10")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--ranks", type=int, default=1)
    p.add_argument("--gpt", default="", help="V,T,L,D,H: the GPT peer instead of the MLP")
    p.add_argument("--llama", default="", help="V,T,L,D,H,G,F: the Llama peer instead of the MLP")
    p.add_argument("--teacher-f16", action="store_true", help="teacher logits held as float16, converted per step")
    a = p.parse_args()
    if a.ranks == 1:
        run(0, a)
    else:
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", "29517")
        torch.multiprocessing.spawn(run, args=(a,), nprocs=a.ranks)
