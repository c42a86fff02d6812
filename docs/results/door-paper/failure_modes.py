"""Where door episodes fail: rolls out an AWAC checkpoint's policy on door-binary and sorts each episode by how far
the door got, from the door's own state in the observation (gymnasium-robotics AdroitHandDoorEnv._get_obs: index 27
is the latch's angle, 28 the door hinge's, in radians; the goal is a hinge angle of at least 1.35, `info["success"]`).

    python docs/results/door-paper/failure_modes.py --horizon 400 RESULTS/precision-fp32/runs/*/checkpoint.pt
    python docs/results/door-paper/failure_modes.py RESULTS/door-full/runs/*/checkpoint.pt --data door-human door-bc

Per checkpoint, with the mean action (as the evaluations) and with sampled actions (as the online phase acts), on
the evaluation's 50 initial states (seeds 1,000,000 + 1,000 x training seed + i): the fraction of episodes

- latch: the door never moved (hinge below 0.05 rad: the latch was not released, or the door not pulled);
- partial: the door moved but never reached 1.35;
- reached, lost: the goal was reached but not held to the last step;
- held: the goal held at the last step (`eval/success_final`);

and the median first step at which the door moved (of the episodes where it did: reaching the handle and releasing
the latch take this long), the median first step at the goal and the mean number of steps at the goal of the
episodes that reached it. `--data door-human door-bc` adds the same counts for the prior data's episodes (the
hinge angle of their next_observations, each episode to its own end: the human demonstrations run 223-300 steps).
With `--horizon 400`, the same policies also run past the task's 200 steps, and the table adds the fraction of
episodes at the goal by step 300 and 400 ("too slow or unable?"). Prints a markdown table. A reading aid for the
door report: it changes no run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

import awac  # noqa: E402
from utils.datasets import load_dataset  # noqa: E402
from utils.envs import make_env  # noqa: E402

LATCH, HINGE, GOAL, MOVED = 27, 28, 1.35, 0.05


def rollouts(
    actor: awac.GaussianActor, seed: int, episodes: int, deterministic: bool, horizon: int
) -> list[np.ndarray]:
    """Hinge angles (horizon,) of each episode, reset with the evaluation's seeds; sampled actions draw from
    torch's generator, seeded here so that the table repeats."""
    torch.manual_seed(seed)
    env = make_env("door-binary", max_episode_steps=horizon)
    angles = []
    for i in range(episodes):
        obs, _ = env.reset(seed=1_000_000 + 1000 * seed + i)
        done, hinge = False, []
        while not done:
            action = np.clip(actor.act(obs.astype(np.float32), deterministic), -1.0, 1.0)
            obs, _, terminated, truncated, _ = env.step(action)
            hinge.append(obs[HINGE])
            done = terminated or truncated
        angles.append(np.array(hinge))
    return angles


def load_agent(path: Path) -> tuple[dict, awac.Args, awac.AWAC]:
    """(the checkpoint, its resolved Args, the AWAC agent with its weights) of a door-binary checkpoint."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    args = awac.family_defaults(awac.Args(**{**ckpt["args"], "checkpoint": None, "eval_only": False}))
    agent = awac.AWAC(39, 28, args, q_max=0.0)
    agent.load_state_dict(ckpt["agent"])
    return ckpt, args, agent


def checkpoint_name(path: Path) -> str:
    """<experiment>/<run> for a run's checkpoint.pt, <copies>/<run>/<file> for a copy kept by snapshots.py."""
    if path.name == "checkpoint.pt":
        return f"{path.parent.parent.parent.name}/{path.parent.name}"
    return f"{path.parent.parent.name}/{path.parent.name}/{path.stem}"


def data_episodes(dataset: str) -> list[np.ndarray]:
    """Hinge angles of each episode of a dataset id (`utils.datasets.DATASETS`, built and cached on first use),
    split at its timeouts and terminals; the last episode ends with the data."""
    data = load_dataset(dataset, "door-binary", progress=False)
    ends = np.flatnonzero(np.logical_or(data["timeouts"], data["terminals"])) + 1
    return [a for a in np.split(data["next_observations"][:, HINGE], ends) if len(a)]


def classify(long: list[np.ndarray], horizon: int = 200) -> dict[str, float]:
    """Fractions of episodes per outcome within the task's `horizon`, the median first step at which the door
    moved and at the goal (of the episodes that got there) and the mean steps at the goal of the episodes that
    reached it; and, for episodes run longer, the fraction at the goal by step 300 and 400. Steps count from 1."""
    angles = [a[:horizon] for a in long]
    at_goal = [a >= GOAL for a in angles]
    moved = [a >= MOVED for a in angles]
    later = {
        f"goal by {n}": np.mean([(a[:n] >= GOAL).any() for a in long]) for n in (300, 400) if min(map(len, long)) >= n
    }
    reached = [g.any() for g in at_goal]
    return {
        "latch": np.mean([a.max() < MOVED for a in angles]),
        "partial": np.mean([MOVED <= a.max() < GOAL for a in angles]),
        "reached, lost": np.mean([r and not g[-1] for r, g in zip(reached, at_goal)]),
        "held": np.mean([g[-1] for g in at_goal]),
        "first step moved": np.median([m.argmax() + 1 for m in moved if m.any()])
        if any(m.any() for m in moved)
        else np.nan,
        "first step at goal": np.median([g.argmax() + 1 for g, r in zip(at_goal, reached) if r])
        if any(reached)
        else np.nan,
        "steps at goal": np.mean([g.sum() for g, r in zip(at_goal, reached) if r]) if any(reached) else np.nan,
        **later,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("checkpoints", nargs="*", type=Path)
    p.add_argument("--data", nargs="*", default=[], help="dataset ids whose episodes to count too (door-human door-bc)")
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--horizon", type=int, default=200, help="steps per rollout (the task has 200)")
    a = p.parse_args()
    torch.set_num_threads(1)
    counts = ("first step moved", "first step at goal", "steps at goal")
    keys = ("latch", "partial", "reached, lost", "held", *counts)
    keys += tuple(f"goal by {n}" for n in (300, 400) if a.horizon >= n)
    print("| checkpoint | step | actions | " + " | ".join(keys) + " |")
    print("|---|---|---|" + "---|" * len(keys))

    def cells(row: dict[str, float]) -> str:
        return " | ".join(
            "" if k not in row else "-" if np.isnan(row[k]) else f"{row[k]:.0f}" if k in counts else f"{row[k]:.2f}"
            for k in keys
        )

    for dataset in a.data:
        episodes = data_episodes(dataset)  # each to its own end: the human demonstrations run 223-300 steps
        print(f"| data: {dataset} | | data | {cells(classify(episodes, max(map(len, episodes))))} |")
    for path in a.checkpoints:
        ckpt, args, agent = load_agent(path)
        step = ckpt.get("counters", {}).get("env_step", "?")
        for deterministic in (True, False):
            row = classify(rollouts(agent.actor, args.seed, a.episodes, deterministic, a.horizon))
            print(f"| {checkpoint_name(path)} | {step} | {'mean' if deterministic else 'sampled'} | {cells(row)} |")


if __name__ == "__main__":
    main()
