"""Behavior cloning (BC) and %BC: the floor every offline-to-online method starts from.

Maximum likelihood of the dataset's actions under a Gaussian policy, L(pi) = -E_(s,a)~D[log pi(a|s)]: AWAC's actor
update with every advantage weight equal to 1 (Nair et al. 2020, arXiv:2006.09359, eq. 10 with w = 1), with the
same policy network as awac.py, so `diff awac.py bc.py` shows exactly what the critic adds. `--top-fraction f`
keeps only the best fraction f of trajectories by undiscounted return before training (%BC: Chen et al. 2021,
"Decision Transformer", arXiv:2106.01345, Sec. 5; CORL `any_percent_bc.py`, whose BC-10% configs rank by
undiscounted return). No online phase.

Defaults: batch 256 and lr 3e-4 (CORL `any_percent_bc.py`), 2x256 networks, log-std in [-6, 0] and weight decay
1e-4 as AWAC's actor, 25,000 updates (AWAC's offline budget).
Deviations from CORL: a Gaussian trained by likelihood instead of a deterministic actor trained by MSE (the mean is
the same estimator; the likelihood also fits the spread, which the AWAC paper's BC baseline had); no observation
normalization (as in awac.py).

Layout: Args, networks, losses and update, buffer, evaluation, then `train()`, which reads like the paper's
Algorithm 1. The run bookkeeping (flags, run directory, metrics log, checkpoints, exact resume) lives in utils/run/.
Run:  python bc.py --env-id pen-binary --dataset pen-expert
      python bc.py --env-id door-binary --top-fraction 0.1
Logged (W&B and <run_dir>/metrics.csv): losses/actor, values/{log_prob_mean,log_std_mean}, eval/{return_mean,
return_std,normalized_score,success_final,success_any,success_rate,goal_step,goal_never,length_mean} (success:
utils.envs.SUCCESS_DEFINITIONS), charts/{offline_step,global_step,SPS}.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn as nn

from utils.datasets import default_dataset, episode_slices, load_dataset
from utils.envs import evaluate, make_env
from utils.run import FRACTION, NON_NEGATIVE, Run, cli, evaluate_only, setup


@dataclass
class Args:
    # Experiment and logging
    seed: int = 0
    """seed of torch, numpy, the environment and the batch sampling"""
    device: str = "cpu"
    """torch device, e.g. cpu or cuda"""
    threads: int = 0
    """torch CPU threads (0: torch's default); give parallel runs 1 each"""
    run_dir: str = "runs"
    """directory under which each run writes config.json, metrics.csv, checkpoint.pt and final.json"""
    run_name: str | None = None
    """name of the run's directory (default: <env_id>__bc__<seed>__<unix time>)"""
    wandb_mode: Literal["online", "offline", "disabled"] = "offline"
    """Weights & Biases mode: offline needs no account (upload later with `wandb sync`)"""
    wandb_project: str = "awac"
    """W&B project"""
    wandb_group: str | None = None
    """W&B group, e.g. an experiment name"""
    log_every: int = 1000
    """log training metrics every this many updates"""
    progress: bool = True
    """show a progress bar"""

    # Data and environment
    env_id: str = "door-binary"
    """a hand task (pen-binary, door-binary, relocate-binary, hammer-binary) or a gymnasium id"""
    dataset: str | None = None
    """dataset id or .npz/.hdf5 path (default: the env's, e.g. door-binary: 25 human demos + 500 BC episodes;
    HalfCheetah-v5: halfcheetah-awac)"""
    dataset_seed: int = 0
    """seed the generated dataset was built with (all training seeds share one dataset, as in the paper)"""
    data_dir: str | None = None
    """cache of generated datasets (default: $AWAC_DATA_DIR or ~/.cache/awac/datasets)"""

    # Algorithm
    offline_steps: int = 25_000
    """gradient updates on the dataset"""
    top_fraction: float = 1.0
    """keep the best fraction of trajectories by undiscounted return (%BC); 1.0 keeps all"""
    batch_size: int = 256
    """transitions per update"""
    hidden_dims: tuple[int, ...] = (256, 256)
    """hidden layer sizes of the policy"""
    actor_lr: float = 3e-4
    """Adam learning rate"""
    actor_weight_decay: float = 1e-4
    """L2 penalty of Adam (as AWAC's actor)"""
    min_log_std: float = -6.0
    """lower bound of the policy's log-std"""
    max_log_std: float = 0.0
    """upper bound of the policy's log-std"""

    # Evaluation and checkpoints
    eval_every: int = 5_000
    """evaluate every this many updates (and at the start and the end)"""
    eval_episodes: int = 10
    """episodes per evaluation, deterministic (mean) actions"""
    capture_video: bool = False
    """record the first episode of each evaluation as <run>/videos/<phase>-<step>.mp4 (W&B: eval/video); needs
    MuJoCo rendering (headless: MUJOCO_GL=egl)"""
    save_every: int = 25_000
    """write checkpoint.pt every this many updates (and at the end)"""
    checkpoint: str | None = None
    """checkpoint.pt to resume training from (in its own run directory), or to evaluate with --eval-only"""
    eval_only: bool = False
    """only evaluate the policy of --checkpoint"""


# Valid ranges of this script's own fields (utils.run checks the common ones); checked before any work.
CHECKS = {"top_fraction": FRACTION, "actor_weight_decay": NON_NEGATIVE}


# ----------------------------------------------------------------------------------------------- networks
class MLP(nn.Sequential):
    """ReLU MLP: (..., in_dim) -> (..., out_dim), float32 out. With `bf16`, the hidden layers run under bfloat16
    autocast (the CPU's AMX/AVX-512 units, a GPU's tensor cores) and the output layer in float32, so what follows
    (Q values, TD targets, advantages, log-probabilities, losses) keeps float32's precision."""

    def __init__(self, in_dim: int, out_dim: int, hidden_dims: tuple[int, ...], bf16: bool = False):
        layers, d = [], in_dim
        for h in hidden_dims:
            layers += [nn.Linear(d, h), nn.ReLU()]
            d = h
        super().__init__(*layers, nn.Linear(d, out_dim))
        self.bf16 = bf16

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        *hidden, out = self
        with torch.autocast(x.device.type, torch.bfloat16, enabled=self.bf16):
            for layer in hidden:
                x = layer(x)
        return out(x.float())


class GaussianActor(nn.Module):
    """pi(a|s) = N(tanh(f(s)), diag(sigma^2)) with a state-independent log sigma squashed into [min, max] by a
    sigmoid (rlkit GaussianPolicy, std_architecture="values"). Samples are not squashed."""

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden_dims: tuple[int, ...],
        min_log_std: float,
        max_log_std: float,
        bf16=False,
    ):
        super().__init__()
        self.net = MLP(obs_dim, act_dim, hidden_dims, bf16)
        self.log_std_logits = nn.Parameter(torch.zeros(act_dim))
        self.min_log_std, self.max_log_std = min_log_std, max_log_std

    def forward(self, obs: torch.Tensor) -> torch.distributions.Normal:
        """obs (B, obs_dim) -> a Normal over (B, act_dim)."""
        log_std = self.min_log_std + torch.sigmoid(self.log_std_logits) * (self.max_log_std - self.min_log_std)
        return torch.distributions.Normal(torch.tanh(self.net(obs)), log_std.exp(), validate_args=False)

    def log_prob(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """log pi(action|obs), summed over action dimensions: (B,)."""
        return self(obs).log_prob(action).sum(-1)

    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        """One action (act_dim,) for one observation (obs_dim,): the mean, or a sample."""
        dist = self(torch.as_tensor(obs, dtype=torch.float32, device=self.log_std_logits.device))
        return (dist.mean if deterministic else dist.sample()).cpu().numpy()


# ----------------------------------------------------------------------------------------------- loss, update
def top_trajectories(data: dict[str, Any], fraction: float) -> dict[str, Any]:
    """The rows of the best `fraction` of trajectories by undiscounted return, at least one trajectory, in their
    original order (%BC). Raises ValueError unless 0 < fraction <= 1."""
    if not 0 < fraction <= 1:
        raise ValueError(f"--top-fraction must be in (0, 1], got {fraction}")
    episodes = episode_slices(data)
    returns = np.array([data["rewards"][s].sum() for s in episodes])
    keep = np.sort(np.argsort(-returns, kind="stable")[: max(1, int(fraction * len(episodes)))])
    rows = np.concatenate([np.arange(episodes[i].start, episodes[i].stop) for i in keep])
    return {k: v[rows] if isinstance(v, np.ndarray) else v for k, v in data.items()}


class BC:
    """The policy and its optimizer; `update(batch)` is one maximum-likelihood step."""

    def __init__(self, obs_dim: int, act_dim: int, args: Args):
        self.actor = GaussianActor(obs_dim, act_dim, args.hidden_dims, args.min_log_std, args.max_log_std)
        self.actor.to(args.device)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), args.actor_lr, weight_decay=args.actor_weight_decay)

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One step of -E[log pi(a|s)] on a batch (obs, action; (B, ...)); metrics as 0-dim tensors."""
        log_prob = self.actor.log_prob(batch["obs"], batch["action"])
        actor_loss = -log_prob.mean()
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_opt.step()
        return {
            "losses/actor": actor_loss.detach(),
            "values/log_prob_mean": log_prob.detach().mean(),
            "values/log_std_mean": self.actor(batch["obs"][:1]).stddev.log().mean().detach(),
        }

    def state_dict(self) -> dict:
        return {"actor": self.actor.state_dict(), "actor_opt": self.actor_opt.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        for k, v in state.items():
            getattr(self, k).load_state_dict(v)


# ----------------------------------------------------------------------------------------------- train
def evaluate_policy(actor: GaussianActor, args: Args, video: Path | None = None) -> dict[str, float]:
    """`utils.envs.evaluate` with the mean action, returned under eval/ keys; `video`: an mp4 path for the first
    episode. Seeds differ from training's."""
    seed = 1_000_000 + 1000 * args.seed  # disjoint from the training env's seeds, and across training seeds
    result = evaluate(lambda o: actor.act(o, deterministic=True), args.env_id, args.eval_episodes, seed, video)
    return {f"eval/{k}": v for k, v in result.items()}


def train(args: Args) -> dict[str, float]:
    """Runs BC for `offline_steps` updates. Returns the final metrics (also in <run>/final.json): `eval/*` at the
    end, repeated as `offline/eval/*` (BC has no online phase, so its offline result is its result),
    `charts/SPS`, `wall_time_s`, `run_dir`.

    Raises:
        ArgumentError: a field out of range, an unusable checkpoint, or a run directory that holds a run.
        EnvError, DatasetError (both ValueErrors): an unknown env, a dataset that does not fit it.
    """
    args, ckpt, path = setup(args, CHECKS)
    env = make_env(args.env_id)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    env.close()
    agent = BC(obs_dim, act_dim, args)
    if ckpt is not None:
        agent.load_state_dict(ckpt["agent"])
    evaluate_agent = lambda video: evaluate_policy(agent.actor, args, video)
    if args.eval_only:
        return evaluate_only(evaluate_agent, args)

    dataset = args.dataset or default_dataset(args.env_id)
    data = load_dataset(dataset, args.env_id, args.dataset_seed, args.data_dir, args.progress)
    data = top_trajectories(data, args.top_fraction)
    obs = torch.as_tensor(data["observations"], device=args.device)
    actions = torch.as_tensor(data["actions"], device=args.device)
    gen = torch.Generator(args.device).manual_seed(args.seed)
    run = Run(path, args, ckpt, agent, {"offline_step": args.offline_steps}, gen, evaluate_agent)
    if run.finished:
        return run.result()
    with run:
        while run.counters["offline_step"] < args.offline_steps:
            idx = torch.randint(len(obs), (args.batch_size,), generator=gen, device=gen.device)
            run.after_step("offline_step", agent.update({"obs": obs[idx], "action": actions[idx]}))
        run.finish()
    return run.result()


if __name__ == "__main__":
    cli(train, Args)
