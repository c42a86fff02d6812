"""Where the time of AWAC's update and of an online step goes: torch.profiler over the update, and the other costs
of a step (acting, the environment, the buffer), on this machine.

    python -m utils.speed_profile                           # door sizes, batch 1024, 2 threads, the default precision
    python -m utils.speed_profile --precision fp32 bf16 --threads 1 2

Table 1 profiles `--updates` updates of `awac.AWAC.update` (door-binary's dimensions, random data: an update's cost
does not depend on the values) after 20 warm-up updates, and splits the profiled wall time by the self CPU time of
each torch op on the calling thread: matrix products (mm, addmm, bmm, baddbmm and their oneDNN kernels), casts
(_to_copy, copy_), the optimizer and target update (_fused_adam_, _foreach_*), the other elementwise ops and
reductions, and the rest, outside any op: Python, autograd and the dispatcher. The profiler adds its own cost to the
last share; the update's rate without the profiler is printed beside it.

Table 2 times, one call at a time, what an online step adds to its update: `actor.act` on one observation (a
sample), `env.step` (random actions, reset at the end of each episode), `buffer.add` of one transition and
`buffer.sample(batch)`. A driver tool: run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import importlib
import time

import numpy as np
import torch

CATEGORIES = (  # (share, op-name fragments), the first match wins
    ("matrix products", ("mm", "addmm", "bmm", "matmul", "linear", "mkldnn", "onednn")),
    ("casts", ("_to_copy", "copy_", "aten::to")),
    ("optimizer + targets", ("_fused_adam", "_foreach")),
)


def category(name: str) -> str:
    """The share an op of this name counts under: one of CATEGORIES' names, or "elementwise + reductions"."""
    return next((c for c, parts in CATEGORIES if any(p in name for p in parts)), "elementwise + reductions")


def make_agent(precision: str, batch: int, obs_dim: int, act_dim: int):
    """An AWAC agent at door sizes (2x256, eager) and a buffer of 20,000 random transitions. awac.py is loaded by
    name, as utils.speed loads it: a driver tool, which no algorithm file imports."""
    awac = importlib.import_module("awac")

    torch.manual_seed(0)
    args = awac.family_defaults(awac.Args(batch_size=batch, precision=precision, compile="off"))
    agent = awac.AWAC(obs_dim, act_dim, args, q_max=0.0)
    rng, n = np.random.default_rng(0), 20_000
    buffer = awac.ReplayBuffer(obs_dim, act_dim, n, "cpu", 0)
    buffer.add(
        obs=rng.normal(size=(n, obs_dim)),
        action=rng.uniform(-1, 1, (n, act_dim)),
        reward=-rng.integers(0, 2, n),
        next_obs=rng.normal(size=(n, obs_dim)),
        terminated=np.zeros(n),
    )
    return agent, buffer


def profile_update(precision: str, batch: int, updates: int, obs_dim: int, act_dim: int) -> dict[str, float]:
    """{share name: fraction of the profiled wall time}, plus "ms per update" (profiled) and "ms unprofiled"."""
    from torch.profiler import ProfilerActivity, profile

    agent, buffer = make_agent(precision, batch, obs_dim, act_dim)
    for _ in range(20):
        agent.update(buffer.sample(batch))
    t = time.perf_counter()
    for _ in range(updates):
        agent.update(buffer.sample(batch))
    plain = (time.perf_counter() - t) / updates
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t = time.perf_counter()
        for _ in range(updates):
            agent.update(buffer.sample(batch))
        wall = time.perf_counter() - t
    shares = dict.fromkeys([c for c, _ in CATEGORIES] + ["elementwise + reductions"], 0.0)
    for event in prof.key_averages():
        if event.key.startswith("aten::") or "mkldnn" in event.key:
            shares[category(event.key)] += event.self_cpu_time_total / 1e6
    shares = {k: v / wall for k, v in shares.items()}
    shares["Python, autograd, dispatch"] = 1.0 - sum(shares.values())
    return shares | {"ms per update": 1e3 * wall / updates, "ms unprofiled": 1e3 * plain}


def step_costs(env_id: str, batch: int, calls: int) -> dict[str, float]:
    """Microseconds per call of what an online step adds to its update (see table 2)."""
    from utils.envs import make_env

    env = make_env(env_id, seed=0)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    agent, buffer = make_agent("fp32", batch, obs_dim, act_dim)
    obs, _ = env.reset(seed=0)
    out = {}
    t = time.perf_counter()
    for _ in range(calls):
        agent.actor.act(obs.astype(np.float32), deterministic=False)
    out["actor.act (one observation, a sample)"] = (time.perf_counter() - t) / calls
    rng, seconds = np.random.default_rng(0), 0.0
    for _ in range(calls):
        action = rng.uniform(-1, 1, act_dim)
        t = time.perf_counter()
        next_obs, reward, terminated, truncated, _ = env.step(action)
        seconds += time.perf_counter() - t
        obs = env.reset()[0] if terminated or truncated else next_obs
    out["env.step"] = seconds / calls
    t = time.perf_counter()
    for _ in range(calls):
        buffer.add(obs=obs, action=action, reward=reward, next_obs=next_obs, terminated=terminated)
    out["buffer.add (one transition)"] = (time.perf_counter() - t) / calls
    t = time.perf_counter()
    for _ in range(calls):
        buffer.sample(batch)
    out[f"buffer.sample({batch})"] = (time.perf_counter() - t) / calls
    return {k: 1e6 * v for k, v in out.items()}


def main(argv: list[str] | None = None) -> None:
    """`python -m utils.speed_profile [flags]`: prints the CPU kind, then tables 1 and 2 (see the module docstring)."""
    p = argparse.ArgumentParser(prog="python -m utils.speed_profile", description=__doc__.split("\n")[0])
    p.add_argument("--env-id", default="door-binary", help="task whose dimensions and environment are used")
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--threads", type=int, nargs="+", default=[2])
    p.add_argument("--precision", nargs="+", default=["auto"], choices=("auto", "fp32", "bf16"))
    p.add_argument("--updates", type=int, default=50, help="profiled updates per row")
    p.add_argument("--calls", type=int, default=2000, help="calls per row of table 2")
    a = p.parse_args(argv)
    torch.set_flush_denormal(True)  # as every training script does, before the first parallel op
    from utils.envs import make_env
    from utils.run.precision import cpu_kind, resolve_precision

    print(cpu_kind())
    env = make_env(a.env_id)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    print(f"\n### Profile of awac.py's update: {a.env_id} sizes, 2x256, batch {a.batch}, eager, {a.updates} updates\n")
    rows = []
    for threads in a.threads:
        torch.set_num_threads(threads)
        for precision in a.precision:
            precision = resolve_precision(precision, "cpu")
            rows.append((threads, precision, profile_update(precision, a.batch, a.updates, obs_dim, act_dim)))
    names = [k for k in rows[0][2] if not k.startswith("ms ")]
    print("| threads | precision | ms/update (profiled) | ms/update (unprofiled) | " + " | ".join(names) + " |")
    print("|---|---|---|---|" + "---|" * len(names))
    for threads, precision, r in rows:
        shares = " | ".join(f"{100 * r[k]:.0f}%" for k in names)
        print(f"| {threads} | {precision} | {r['ms per update']:.2f} | {r['ms unprofiled']:.2f} | {shares} |")
    torch.set_num_threads(max(a.threads))
    print(f"\n### What an online step adds to its update: {a.env_id}, {max(a.threads)} threads, {a.calls} calls each\n")
    print("| part | us per call |")
    print("|---|---|")
    for name, us in step_costs(a.env_id, a.batch, a.calls).items():
        print(f"| {name} | {us:.1f} |", flush=True)


if __name__ == "__main__":
    main()
