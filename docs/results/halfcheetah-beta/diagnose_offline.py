"""Why AWAC's offline phase fails on HalfCheetah-v5 at lambda 2: what an AWAC checkpoint's critic and actor do on the
prior data and on the policy's own rollouts.

    python docs/results/halfcheetah-beta/diagnose_offline.py RUN/checkpoint_offline.pt [...] [--episodes 2]

For each checkpoint (written by awac.py; its dataset is rebuilt or read from the cache) it prints:
- on the prior data (the first 400 steps of each episode, so that the 1,000-step cut barely biases the discounted
  Monte Carlo return): the Monte Carlo return, min_i Q_i(s, a) of the data action, of the policy's mean and of a
  policy sample, and the mean |mu(s) - a| per action dimension, separately for the expert and the BC episodes;
- the advantage's standard deviation and the effective sample size (sum w)^2 / sum w^2 of the weights w on 50
  batches of the run's offline batch size (128: a weight put on one transition gives 1, equal weights 128);
- on `--episodes` deterministic rollouts of the policy: the return and min_i Q_i(s, mu(s)) against the discounted
  Monte Carlo return, over the first 400 steps.
"""
import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
import awac  # noqa: E402
from utils.datasets import default_dataset, episode_slices, load_dataset  # noqa: E402
from utils.envs import make_env  # noqa: E402


def discounted(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """sum_k gamma^k r_{t+k} for each t of one episode: (T,) -> (T,)."""
    out, acc = np.zeros(len(rewards)), 0.0
    for t in range(len(rewards) - 1, -1, -1):
        acc = rewards[t] + gamma * acc
        out[t] = acc
    return out


def diagnose(path: str, episodes: int) -> None:
    saved = torch.load(path, weights_only=True)
    fields = awac.Args.__dataclass_fields__
    args = awac.Args(**{k: tuple(v) if isinstance(v, list) else v for k, v in saved["args"].items() if k in fields})
    args = awac.family_defaults(awac.as_saved(args, saved["args"]))
    data = load_dataset(args.dataset or default_dataset(args.env_id), env_id=args.env_id, seed=args.dataset_seed,
                        progress=False)
    agent = awac.AWAC(data["observations"].shape[1], data["actions"].shape[1], args, None)
    agent.load_state_dict(saved["agent"])
    obs, action, mc, expert = [], [], [], []
    for i, s in enumerate(episode_slices(data)):  # the -awac datasets hold the 15 expert episodes first
        n = min(len(data["rewards"][s]), 400)
        obs.append(data["observations"][s][:n]), action.append(data["actions"][s][:n])
        mc.append(discounted(data["rewards"][s], args.gamma)[:n]), expert.append(np.full(n, i < 15))
    obs, action = torch.tensor(np.concatenate(obs)), torch.tensor(np.concatenate(action))
    mc, expert = np.concatenate(mc), np.concatenate(expert)
    with torch.no_grad():
        dist = agent.actor(obs)
        q = {name: agent.critic(obs, a).min(0).values.numpy() for name, a in
             (("a", action), ("mu", dist.mean), ("sample", dist.sample().clamp(-1, 1)))}
        gap = (dist.mean - action).abs().mean(-1).numpy()
    print(f"{path} (beta {args.beta})")
    for name, m in (("expert episodes", expert), ("BC episodes", ~expert)):
        print(f"  {name}: MC return {mc[m].mean():.0f}, Q(s,a) {q['a'][m].mean():.0f}, Q(s,mu) {q['mu'][m].mean():.0f},"
              f" Q(s,a~pi) {q['sample'][m].mean():.0f}, |mu(s)-a| {gap[m].mean():.3f}")
    gen, ess, adv_std = torch.Generator().manual_seed(0), [], []
    with torch.no_grad():
        for _ in range(50):
            idx = torch.randint(len(data["rewards"]), (args.offline_batch_size,), generator=gen)
            o = torch.as_tensor(data["observations"][idx.numpy()], dtype=torch.float32)
            a = torch.as_tensor(data["actions"][idx.numpy()], dtype=torch.float32)
            advantage, w = agent.advantage_weights(o, agent.critic(o, a), agent.actor(o))
            ess.append(float(w.sum() ** 2 / (w ** 2).sum())), adv_std.append(float(advantage.std()))
    print(f"  advantage std {np.mean(adv_std):.2f}; effective sample size of the weights per batch of "
          f"{args.offline_batch_size}: median {np.median(ess):.1f}")
    env = make_env(args.env_id)
    for ep in range(episodes):
        o, _ = env.reset(seed=1000 + ep)
        rewards, q_mu = [], []
        while True:
            with torch.no_grad():
                ot = torch.as_tensor(o, dtype=torch.float32)[None]
                mu = agent.actor(ot).mean
                q_mu.append(float(agent.critic(ot, mu).min(0).values))
            o, r, terminated, truncated, _ = env.step(mu[0].numpy())
            rewards.append(r)
            if terminated or truncated:
                break
        ret = discounted(np.array(rewards), args.gamma)
        print(f"  rollout {ep}: return {sum(rewards):.0f} over {len(rewards)} steps; first 400 steps: Q(s,mu) "
              f"{np.mean(q_mu[:400]):.0f}, MC return {ret[:400].mean():.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--episodes", type=int, default=2)
    cli = parser.parse_args()
    torch.set_num_threads(1)
    for checkpoint in cli.checkpoints:
        diagnose(checkpoint, cli.episodes)
