"""check_divergence.py TEST_DIVERGENCE: kd's generalized JSD (and its ends, forward and reverse KL) against a
numpy implementation of TRL's generalized_jsd_loss on fixed logits: log-softmax of logits / T on both sides, the
mixture's log-probabilities as logsumexp(log p_s + log(1 - beta), log p_t + log beta), and
beta * KL(p_t || M) + (1 - beta) * KL(p_s || M) summed over the classes; beta 0 is KL(p_t || p_s) and beta 1
KL(p_s || p_t). (kd scales by T^2 in the loss; the value compared here is the divergence itself.)"""
import os
import subprocess
import sys
import tempfile

import numpy as np


def log_softmax(z):
    z = z - z.max()
    return z - np.log(np.exp(z).sum())


def kl(log_target, log_input):  # torch.nn.functional.kl_div(input, target, log_target=True), summed
    return float((np.exp(log_target) * (log_target - log_input)).sum())


def trl_jsd(zs, zt, beta, T):
    ls, lt = log_softmax(zs / T), log_softmax(zt / T)
    if beta == 0:
        return kl(lt, ls)
    if beta == 1:
        return kl(ls, lt)
    lm = np.logaddexp(ls + np.log(1 - beta), lt + np.log(beta))
    return beta * kl(lt, lm) + (1 - beta) * kl(ls, lm)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "jsd.txt")
        subprocess.run([sys.argv[1], "--dump", path], check=True)
        rows = [line.split() for line in open(path)]
    worst, n = 0.0, 0
    for r in rows:
        name, T, value = r[0], float(r[1]), float(r[2])
        # the logits are kd's float32 values (printed with 9 digits: parsed back as float32 exactly)
        z = np.array([float(v) for v in r[3:]], dtype=np.float32).astype(np.float64)
        zs, zt = z[: len(z) // 2], z[len(z) // 2:]
        beta = {"forward": 0.0, "reverse": 1.0}.get(name, None)
        beta = float(name.split(":")[1]) if beta is None else beta
        ref = trl_jsd(zs, zt, beta, T)
        err = abs(value - ref) / max(1e-12, abs(ref))
        worst = max(worst, err)
        n += 1
        if err > 1e-10:
            print(f"FAIL {name} T={T}: kd {value!r}, numpy (TRL's formula) {ref!r}")
    print(f"check_divergence: {n} values against numpy, worst relative difference {worst:.3g}")
    sys.exit(0 if n >= 20 and worst <= 1e-10 else 1)


main()
