"""Tried for issue 31: does compiling the optimizer step (and the target update) with the losses pay?

    python docs/results/speed/compile_step.py --threads 2 --batch 1024

Variants of awac.py's update at door sizes (2x256), each precision: eager; `--compile on` (the losses compiled);
the same plus one compiled function for both Adam steps and the targets' lerp (Adam with foreach=True, since
inductor writes its own fused kernel; fused=True is what eager uses). Median updates/s of interleaved blocks.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
import awac  # noqa: E402


def build(precision: str, variant: str, batch: int):
    torch.manual_seed(0)
    args = awac.family_defaults(
        awac.Args(batch_size=batch, precision=precision, compile="off" if variant == "eager" else "on")
    )
    agent = awac.AWAC(39, 28, args, q_max=0.0)
    if variant != "losses+step":
        return agent.update
    agent.actor_opt = torch.optim.Adam(
        agent.actor.parameters(), args.actor_lr, weight_decay=args.actor_weight_decay, foreach=True
    )
    agent.critic_opt = torch.optim.Adam(agent.critic.parameters(), args.critic_lr, foreach=True)
    targets, params = list(agent.target_critic.parameters()), list(agent.critic.parameters())

    @torch.compile
    def step():
        agent.critic_opt.step()
        agent.actor_opt.step()
        torch._foreach_lerp_(targets, params, args.tau)

    def update(b):
        loss, metrics = agent.losses(b)
        agent.actor_opt.zero_grad(set_to_none=True)
        agent.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        step()
        return metrics

    return update


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--precision", nargs="+", default=["fp32", "bf16"])
    p.add_argument("--updates", type=int, default=200)
    p.add_argument("--blocks", type=int, default=3)
    a = p.parse_args()
    torch.set_flush_denormal(True)
    torch.set_num_threads(a.threads)
    rng, n = np.random.default_rng(0), 20_000
    buffer = awac.ReplayBuffer(39, 28, n, "cpu", 0)
    buffer.add(
        obs=rng.normal(size=(n, 39)),
        action=rng.uniform(-1, 1, (n, 28)),
        reward=-rng.integers(0, 2, n),
        next_obs=rng.normal(size=(n, 39)),
        terminated=np.zeros(n),
    )
    updates, warm = {}, {}
    for precision in a.precision:
        for variant in ("eager", "losses", "losses+step"):
            updates[precision, variant] = build(precision, variant, a.batch)
            t = time.perf_counter()
            for _ in range(20):
                updates[precision, variant](buffer.sample(a.batch))
            warm[precision, variant] = time.perf_counter() - t
    rates = {k: [] for k in updates}
    for _ in range(a.blocks):
        for k, update in updates.items():
            t = time.perf_counter()
            for _ in range(a.updates):
                update(buffer.sample(a.batch))
            rates[k].append(a.updates / (time.perf_counter() - t))
    print(f"threads {a.threads}, batch {a.batch}, median of {a.blocks} blocks of {a.updates}\n")
    print("| precision | compiled | updates/s | vs eager | warm-up s |\n|---|---|---|---|---|")
    for (precision, variant), r in rates.items():
        med, eager = statistics.median(r), statistics.median(rates[precision, "eager"])
        print(f"| {precision} | {variant} | {med:.1f} | {med / eager:.2f}x | {warm[precision, variant]:.1f} |")


if __name__ == "__main__":
    main()
