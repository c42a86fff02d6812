"""Measures AWAC's update throughput (updates/s) for a few batch sizes and thread counts, and prints a table.

    python -m utils.speed [--env-id pen-binary] [--batch-sizes 256 1024] [--threads 1 2] [--updates 300]

Each figure is the median of 3 timed blocks of `--updates` updates after a warm-up, on random data of the env's
dimensions (the update's cost does not depend on the values). A driver tool: no algorithm file imports it.
"""

import argparse
import statistics
import time

import numpy as np
import torch

import awac
from utils.envs import HAND_TASKS, make_env


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--env-id", default="pen-binary")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[256, 1024])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--hidden-dims", type=int, nargs="+", default=[256, 256])
    p.add_argument("--updates", type=int, default=300)
    a = p.parse_args()
    env = make_env(a.env_id)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    print(f"AWAC update throughput, {a.env_id} (obs {obs_dim}, act {act_dim}), hidden {a.hidden_dims}, "
          f"torch {torch.__version__}")
    print("| threads | batch | updates/s |\n|---|---|---|")
    for threads in a.threads:
        torch.set_num_threads(threads)
        for batch in a.batch_sizes:
            args = awac.Args(env_id=a.env_id, batch_size=batch, hidden_dims=tuple(a.hidden_dims))
            agent = awac.AWAC(obs_dim, act_dim, args, 0.0 if a.env_id in HAND_TASKS else None)
            buffer = awac.ReplayBuffer(obs_dim, act_dim, 10_000, "cpu", 0)
            rng = np.random.default_rng(0)
            buffer.add(obs=rng.normal(size=(10_000, obs_dim)), action=rng.uniform(-1, 1, (10_000, act_dim)),
                       reward=-rng.integers(0, 2, 10_000), next_obs=rng.normal(size=(10_000, obs_dim)),
                       terminated=np.zeros(10_000))
            for _ in range(20):
                agent.update(buffer.sample(batch))
            rates = []
            for _ in range(3):
                t = time.perf_counter()
                for _ in range(a.updates):
                    agent.update(buffer.sample(batch))
                rates.append(a.updates / (time.perf_counter() - t))
            print(f"| {threads} | {batch} | {statistics.median(rates):.0f} |", flush=True)


if __name__ == "__main__":
    main()
