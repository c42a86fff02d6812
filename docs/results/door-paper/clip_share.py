"""How much of AWAC's actor update does the advantage clip flatten? Rolls nothing out: reads a door checkpoint's
critic and actor, draws uniform batches of 1,024 from its replay buffer as the update does (the prior data plus the
checkpoint's online transitions), and measures the advantage before the clip.

    python docs/results/door-paper/clip_share.py RESULTS/door-full/runs/door-binary__awac__0/checkpoint.pt

A(s, a) = min_i Q_i(s, a) - min_i Q_i(s, mean action), as awac.py's `advantage_weights` computes it before
`--advantage-clip` (rlkit's clip_score, 0.5 in the hand config; weights softmax(A / beta) over the batch, beta 0.5).
Per checkpoint, over 32 batches: the share of transitions whose advantage exceeds 0.5 (their weights are all equal
under the clip), that share among prior and among online transitions, the mean advantage of those above 0.5, and
the share of the batch's total weight carried by its top 1% (10 transitions) with the clip and without it.
A reading aid for the door report: it changes no run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from failure_modes import checkpoint_name, load_agent  # noqa: E402  (this directory is on sys.path)

from utils.datasets import load_dataset  # noqa: E402

CLIP, BATCH, BATCHES = 0.5, 1024, 32


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("checkpoints", nargs="+", type=Path)
    a = p.parse_args()
    torch.set_num_threads(1)
    prior = load_dataset("door-binary", "door-binary", progress=False)
    cols = ("share > 0.5", "prior > 0.5", "online > 0.5", "mean A above 0.5", "top 1% weight, clip", "without clip")
    print("| checkpoint | clip | online transitions | " + " | ".join(cols) + " |")
    print("|---|---|---|" + "---|" * len(cols))
    for path in a.checkpoints:
        ckpt, args, agent = load_agent(path)
        online = ckpt["online_data"]
        obs = torch.cat([torch.as_tensor(prior["observations"], dtype=torch.float32), online["obs"].float()])
        action = torch.cat([torch.as_tensor(prior["actions"], dtype=torch.float32), online["action"].float()])
        n_prior = len(prior["observations"])
        rng = np.random.default_rng(0)
        above, above_prior, above_online, a_above, top_clip, top_free = [], [], [], [], [], []
        with torch.no_grad():
            for _ in range(BATCHES):
                idx = torch.as_tensor(rng.integers(0, len(obs), BATCH))
                o, act = obs[idx], action[idx]
                adv = agent.critic(o, act).min(0).values - agent.critic(o, agent.actor(o).mean).min(0).values
                is_prior = idx < n_prior
                hi = adv > CLIP
                above.append(hi.float().mean())
                above_prior.append(hi[is_prior].float().mean())
                above_online.append(hi[~is_prior].float().mean() if (~is_prior).any() else torch.tensor(np.nan))
                if hi.any():
                    a_above.append(adv[hi].mean())
                for clip, out in ((CLIP, top_clip), (np.inf, top_free)):
                    w = torch.softmax(adv.clamp(max=clip) / args.beta, 0)
                    out.append(w.topk(BATCH // 100).values.sum())
        cells = [np.mean(x) for x in (above, above_prior, above_online, a_above, top_clip, top_free)]
        name = checkpoint_name(path)
        clip = f"{args.advantage_clip:g}"
        row = f"| {name} | {clip} | {len(online['reward']):,} | " + " | ".join(f"{c:.2f}" for c in cells) + " |"
        print(row, flush=True)


if __name__ == "__main__":
    main()
