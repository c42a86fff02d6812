"""AWAC: Advantage-Weighted Actor-Critic, offline pretraining then online fine-tuning in one replay buffer.

Paper: Nair, Dalal, Gupta, Levine, "Accelerating Online Reinforcement Learning with Offline Datasets" (AWAC),
arXiv:2006.09359, Algorithm 1. Code followed: rail-berkeley/rlkit, `rlkit/torch/sac/awac_trainer.py` (AWACTrainer)
with the hand-task configuration `examples/awac/hand/awac1.py`, whose values are the defaults here.

Equations (s, a from the buffer; B the batch size; lambda is `beta`, rlkit's name):
    critic   L(Q_i) = E[(Q_i(s, a) - y)^2],  y = r + gamma * (1 - terminated) * min_j Q'_j(s', a'),  a' ~ pi(.|s')
             (no entropy term: rlkit's alpha=0); targets Q' Polyak-averaged with `tau`.
    actor    L(pi) = -E[log pi(a|s) * w(s, a)]                                   (paper eq. 10, as a loss)
             A(s, a) = min_i Q_i(s, a) - V(s),  V(s) = min_i Q_i(s, mean of pi(.|s))    (awr_min_q, awr_use_mle_for_vf)
             A <- min(A, advantage_clip)                                                (rlkit clip_score)
             w = B * softmax(A / beta) over the batch                  (rlkit normalize_over_batch, the default)
             or w = min(exp(A / beta), max_weight)     (`--weighting exp --advantage-clip inf`, as CORL)
Policy: Gaussian with tanh mean and a state-independent log-std squashed by a sigmoid into [min_log_std,
max_log_std] (rlkit GaussianPolicy, std_architecture="values"); samples are not squashed, and log pi(a|s) is the
plain Gaussian density of the buffer action. Q outputs are clamped at `q_max` = 0 on the hand tasks, whose rewards
are <= 0 (rlkit's Clamp(max=0) output activation).

Defaults and their source (awac1.py unless said): batch 1024 online and 128 offline (awac_trainer.py's
bc_batch_size, which its pretrain_q_with_bc_data samples and awac1.py keeps), hidden 2x256, lr 3e-4 for both, gamma
0.99, tau 5e-3, beta 0.5, advantage clip 0.5, policy weight decay 1e-4, log-std in [-6, 0], 25,000 offline updates
(q_num_pretrain2_steps), 1M buffer, one update per environment step (num_trains_per_train_loop =
num_expl_steps_per_train_loop = 1000), 500,000 online steps (rlkit: 501 epochs of 1000). 4x256 networks (rlkit's
MuJoCo actor; the paper's appendix could not be read here) are `--hidden-dims 256 256 256 256`. On every other task
(the MuJoCo locomotion tasks) the fields left at None take rlkit's examples/awac/mujoco/awac1.py values instead:
beta 2, no advantage clip, V(s) from a sampled action (awr_use_mle_for_vf=False), a 4x256 actor with 2x256 critics,
no Q clamp (see FAMILY_DEFAULTS); that config pretrains 50,000 steps, here 25,000 as on the hand tasks unless
--offline-steps says otherwise. On HalfCheetah-v5 with halfcheetah-awac, lambda 2 puts the weights of a batch of 128
on about 4 transitions and the offline policy fails; lambda 30 matches the data (README, "HalfCheetah and lambda").

Deviations from rlkit, each deliberate:
- Actions stored and fed to the target are clipped to the action space (the env clips them anyway); rlkit stores
  and evaluates unclipped Gaussian samples.
- All prior data go into the buffer; rlkit keeps 90% (train_split 0.9).
- Terminal flags follow gymnasium: bootstrap through `truncated`, not through `terminated`. rlkit's hand config
  zeroes every terminal (terminal_transform m=0); on the Adroit tasks nothing terminates, so the two agree.
- Online updates start at the first environment step (rlkit first collects 1000 steps); PyTorch's default
  initialization (rlkit: fan-in uniform, last layer 1e-3); twin critics run as one batched ensemble.

How the update runs (none of this changes what is computed beyond float rounding): one backward of the summed
losses; one actor forward on `obs` serves both V(s) and log pi(a|s); fused Adam and one foreach lerp for the
targets; metrics stay on the device until a logging step reads them; denormal floats are flushed to zero (they
slowed updates 4x after a few thousand). `--precision bf16` runs the hidden layers under bfloat16 autocast (AMX on
recent x86 CPUs, tensor cores on GPUs) with the output layers, TD targets, advantages, weights, log-probabilities
and losses in float32; `--compile` compiles the losses with torch.compile. `python -m utils.speed` measures both.

Layout: the algorithm reads top to bottom down to `train()`; the run plumbing after it (metrics log, flags,
checkpoints, exact resume) is the same text in all four algorithm files.
Run:  python awac.py                                  (paper's setting, door-binary with its default dataset)
      python awac.py --env-id pen-binary --offline-steps 25000 --online-steps 50000 --batch-size 256
      python awac.py --precision bf16                    (the same, about 2x faster on a CPU with AMX)
      python awac.py --checkpoint runs/<run>/checkpoint.pt --eval-only
Logged (W&B and <run_dir>/metrics.csv): losses/{critic,actor}, values/{q_mean,q_std,target_q_mean,
advantage_mean,advantage_std,advantage_max,weight_mean,weight_max,weight_std,log_prob_mean,log_std_mean},
eval/{return_mean,return_std,
normalized_score,success_final,success_any,success_rate}, charts/{offline_step,env_step,global_step,
SPS,episodic_return,episodic_length,
success_final,success_any,success_rate} (success: utils.envs.SUCCESS_DEFINITIONS).
"""

from __future__ import annotations

import copy
import csv
import json
import math
import os
import random
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import tyro
from tqdm.auto import tqdm

from utils.datasets import DatasetError, default_dataset, load_dataset
from utils.envs import HAND_TASKS, EnvError, check_rendering, episode_success, evaluate, make_env


@dataclass
class Args:
    # Experiment and logging
    seed: int = 0
    """seed of torch, numpy, the environment and the buffer sampling"""
    device: str = "cpu"
    """torch device, e.g. cpu or cuda"""
    threads: int = 0
    """torch CPU threads (0: torch's default); give parallel runs 1 each"""
    precision: Literal["fp32", "bf16"] = "fp32"
    """bf16: hidden layers under bfloat16 autocast (output layers, targets, advantages, weights and losses stay
    float32); needs AMX/AVX-512-bf16 on a CPU or a GPU with bf16 tensor cores to pay"""
    compile: bool = False
    """torch.compile the losses (6-17 s of compiling as each process starts; here +10-15% in fp32, slower in bf16)"""
    run_dir: str = "runs"
    """directory under which each run writes config.json, metrics.csv, checkpoint.pt and final.json"""
    run_name: str | None = None
    """name of the run's directory (default: <env_id>__awac__<seed>__<unix time>)"""
    wandb_mode: Literal["online", "offline", "disabled"] = "offline"
    """Weights & Biases mode: offline needs no account (upload later with `wandb sync`)"""
    wandb_project: str = "awac"
    """W&B project"""
    wandb_group: str | None = None
    """W&B group, e.g. an experiment name"""
    log_every: int = 1000
    """log training metrics every this many steps (updates offline, env steps online)"""
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
    """gradient updates on the prior data before any interaction (rlkit q_num_pretrain2_steps)"""
    online_steps: int | None = None
    """environment steps of online fine-tuning, one update each; default 500,000 (rlkit: 501 epochs x 1000 steps),
    and a resumed run keeps its own unless this is given (a larger value extends it)"""
    batch_size: int = 1024
    """transitions per online update"""
    offline_batch_size: int = 128
    """transitions per offline update (rlkit's bc_batch_size, which pretrain_q_with_bc_data samples)"""
    hidden_dims: tuple[int, ...] = (256, 256)
    """hidden layer sizes of the critics, and of the actor on the hand tasks (rlkit hand config: 256 256)"""
    actor_hidden_dims: tuple[int, ...] | None = None
    """hidden layer sizes of the actor (default: --hidden-dims on the hand tasks, 256 256 256 256 elsewhere)"""
    actor_lr: float = 3e-4
    """actor Adam learning rate"""
    critic_lr: float = 3e-4
    """critic Adam learning rate"""
    gamma: float = 0.99
    """discount"""
    tau: float = 5e-3
    """Polyak averaging rate of the target critics"""
    beta: float | None = None
    """temperature lambda of the advantage weights (paper: lambda; default: 0.5 on the hand tasks, 2 elsewhere)"""
    weighting: Literal["softmax", "exp"] = "softmax"
    """softmax: B * softmax(A / beta) over the batch (rlkit); exp: min(exp(A / beta), max_weight) (CORL's
    variant also needs --advantage-clip inf: the clip applies before either weighting)"""
    max_weight: float = 100.0
    """upper bound of the exp weights (only with --weighting exp)"""
    advantage_clip: float | None = None
    """upper clip of the advantage before weighting (rlkit clip_score; default: 0.5 on the hand tasks, inf (none)
    elsewhere)"""
    min_q_advantage: bool = True
    """use min(Q1, Q2) in the advantage (rlkit awr_min_q); else Q1"""
    value_from_mean: bool | None = None
    """V(s) = Q(s, mean action) (rlkit awr_use_mle_for_vf); else Q at one sampled action (default: the mean on
    the hand tasks, a sample elsewhere)"""
    clamp_q: bool = True
    """clamp Q outputs at 0 on the hand tasks, whose rewards are <= 0 (rlkit Clamp(max=0))"""
    actor_weight_decay: float = 1e-4
    """L2 penalty of the actor's Adam (rlkit policy_weight_decay)"""
    min_log_std: float = -6.0
    """lower bound of the policy's log-std"""
    max_log_std: float = 0.0
    """upper bound of the policy's log-std"""
    buffer_size: int = 1_000_000
    """replay buffer capacity, prior data included (oldest transitions are overwritten first)"""

    # Evaluation and checkpoints
    eval_every: int = 10_000
    """evaluate every this many steps of each phase (and at the start of each and at the end)"""
    eval_episodes: int = 10
    """episodes per evaluation, deterministic (mean) actions"""
    capture_video: bool = False
    """record the first episode of each evaluation as <run>/videos/<phase>-<step>.mp4 (W&B: eval/video); needs
    MuJoCo rendering (headless: MUJOCO_GL=egl)"""
    save_every: int = 50_000
    """write checkpoint.pt every this many steps of each phase (online: at the next episode end, so that a resume
    is exact) and at the end"""
    checkpoint: str | None = None
    """checkpoint.pt to resume training from (in its own run directory), or to evaluate with --eval-only"""
    eval_only: bool = False
    """only evaluate the policy of --checkpoint"""


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


class EnsembleLinear(nn.Module):
    """`n` independent linear layers applied in one batched matmul: (n, B, in) -> (n, B, out)."""

    def __init__(self, n: int, in_dim: int, out_dim: int):
        super().__init__()
        bound = 1 / in_dim**0.5  # nn.Linear's default initialization, per member
        self.weight = nn.Parameter(torch.empty(n, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n, 1, out_dim).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class TwinQ(nn.Module):
    """Two Q networks Q_i(s, a), i = 1, 2, as one ensemble: obs (B, obs_dim), action (B, act_dim) -> (2, B).
    Outputs are clamped at `q_max` when given (rlkit's Clamp(max=0) for rewards <= 0); `bf16` as in `MLP`."""

    def __init__(self, obs_dim: int, act_dim: int, hidden_dims: tuple[int, ...], q_max: float | None = None,
                 bf16: bool = False):
        super().__init__()
        dims = [obs_dim + act_dim, *hidden_dims]
        self.hidden = nn.ModuleList(EnsembleLinear(2, i, o) for i, o in zip(dims[:-1], dims[1:]))
        self.out = EnsembleLinear(2, dims[-1], 1)
        self.q_max, self.bf16 = q_max, bf16

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        x = torch.cat([obs, action], -1).expand(2, -1, -1)
        with torch.autocast(x.device.type, torch.bfloat16, enabled=self.bf16):  # hidden layers only, as MLP
            for layer in self.hidden:
                x = F.relu(layer(x))
        q = self.out(x.float()).squeeze(-1)
        return q if self.q_max is None else q.clamp(max=self.q_max)


class GaussianActor(nn.Module):
    """pi(a|s) = N(tanh(f(s)), diag(sigma^2)) with a state-independent log sigma squashed into [min, max] by a
    sigmoid (rlkit GaussianPolicy, std_architecture="values"). Samples are not squashed."""

    def __init__(self, obs_dim: int, act_dim: int, hidden_dims: tuple[int, ...], min_log_std: float,
                 max_log_std: float, bf16: bool = False):
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


# ----------------------------------------------------------------------------------------------- losses, update
def awac_weights(advantage: torch.Tensor, beta: float, weighting: str, max_weight: float) -> torch.Tensor:
    """Advantage weights (B,) from advantages (B,): B * softmax(A / beta) (rlkit; they sum to B, mean 1), or
    min(exp(A / beta), max_weight). Raises ValueError for another `weighting`."""
    if weighting == "softmax":
        return len(advantage) * F.softmax(advantage / beta, dim=0)
    if weighting == "exp":
        return torch.exp(advantage / beta).clamp(max=max_weight)
    raise ValueError(f"unknown weighting {weighting!r}: use 'softmax' or 'exp'")


def critic_target(reward: torch.Tensor, terminated: torch.Tensor, next_q: torch.Tensor, gamma: float
                  ) -> torch.Tensor:
    """y = r + gamma * (1 - terminated) * min_i Q'_i(s', a'): reward, terminated (B,), next_q (2, B) -> (B,).
    Truncated transitions are not terminated: their value is bootstrapped."""
    return reward + gamma * (1.0 - terminated) * next_q.min(0).values


# Settings in which rlkit's two AWAC configurations differ: examples/awac/hand/awac1.py (the hand tasks) and
# examples/awac/mujoco/awac1.py (HalfCheetah, Walker2d, Ant; used here for every task that is not a hand task).
FAMILY_DEFAULTS = {"hand": dict(beta=0.5, advantage_clip=0.5, value_from_mean=True),
                   "mujoco": dict(beta=2.0, advantage_clip=math.inf, value_from_mean=False,
                                  actor_hidden_dims=(256, 256, 256, 256))}


def as_saved(args: Args, saved: dict) -> Args:
    """A resumed run's `args` with the meaning its checkpoint's `saved` fields had when written by a version before
    the per-family settings: the actor had --hidden-dims, and --advantage-clip None meant no clip."""
    if "actor_hidden_dims" in saved:
        return args
    clip = math.inf if saved.get("advantage_clip", 0.5) is None else args.advantage_clip
    return replace(args, actor_hidden_dims=args.actor_hidden_dims or args.hidden_dims, advantage_clip=clip)


def family_defaults(args: Args) -> Args:
    """`args` with each field left at None set to its task family's value (FAMILY_DEFAULTS; the hand tasks' actor
    has --hidden-dims). Fields given a value keep it."""
    family = FAMILY_DEFAULTS["hand" if args.env_id in HAND_TASKS else "mujoco"]
    values = {"actor_hidden_dims": args.hidden_dims, **family}
    return replace(args, **{k: v for k, v in values.items() if getattr(args, k) is None})


class AWAC:
    """Actor, twin critics, their targets and optimizers; `update(batch)` is one AWAC gradient step. `q_max`: the
    critics' output clamp (None: none). `args.precision` and `args.compile` choose how the update runs, not what."""

    def __init__(self, obs_dim: int, act_dim: int, args: Args, q_max: float | None):
        self.args = args = family_defaults(args)
        bf16 = args.precision == "bf16"
        self.actor = GaussianActor(obs_dim, act_dim, args.actor_hidden_dims, args.min_log_std, args.max_log_std,
                                   bf16)
        self.critic = TwinQ(obs_dim, act_dim, args.hidden_dims, q_max, bf16)
        self.target_critic = TwinQ(obs_dim, act_dim, args.hidden_dims, q_max, bf16)
        self.target_critic.load_state_dict(self.critic.state_dict())
        for net in (self.actor, self.critic, self.target_critic):
            net.to(args.device)
        self.target_critic.requires_grad_(False)
        # fused: one kernel steps every parameter (same math as the default, to float rounding)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), args.actor_lr,
                                          weight_decay=args.actor_weight_decay, fused=True)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), args.critic_lr, fused=True)
        self.losses = torch.compile(self.compute_losses, dynamic=False) if args.compile else self.compute_losses

    def compute_losses(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Critic + actor loss (a scalar) and the metrics (0-dim tensors, read only when logged, so an update never
        waits for the device) on one batch (obs, action, reward, next_obs, terminated; (B, ...)). The critic
        target, advantages and weights carry no gradient, so one backward of the sum gives each network exactly
        the gradient of its own loss, as rlkit's separate steps do."""
        a = self.args
        obs, action = batch["obs"], batch["action"]
        with torch.no_grad():
            next_action = self.actor(batch["next_obs"]).sample().clamp(-1.0, 1.0)
            target = critic_target(batch["reward"], batch["terminated"],
                                   self.target_critic(batch["next_obs"], next_action), a.gamma)
        q = self.critic(obs, action)
        critic_loss = ((q - target) ** 2).mean(-1).sum()

        dist = self.actor(obs)  # one forward serves both V(s) (through the mean, no gradient) and log pi(a|s)
        advantage, weights = self.advantage_weights(obs, q.detach(), dist)
        log_prob = dist.log_prob(action).sum(-1)
        actor_loss = -(log_prob * weights).mean()
        metrics = {
            "losses/critic": critic_loss, "losses/actor": actor_loss,
            "values/q_mean": q.mean(), "values/q_std": q.std(), "values/target_q_mean": target.mean(),
            "values/advantage_mean": advantage.mean(), "values/advantage_std": advantage.std(),
            "values/advantage_max": advantage.max(), "values/weight_mean": weights.mean(),
            "values/weight_max": weights.max(), "values/weight_std": weights.std(),
            "values/log_prob_mean": log_prob.mean(), "values/log_std_mean": dist.stddev.log().mean(),
        }
        return critic_loss + actor_loss, {k: v.detach() for k, v in metrics.items()}

    @torch.no_grad()
    def advantage_weights(self, obs: torch.Tensor, q_data: torch.Tensor, dist: torch.distributions.Normal
                          ) -> tuple[torch.Tensor, torch.Tensor]:
        """A(s, a) = min_i Q_i(s, a) - V(s), clipped, and its weights w, both (B,), from obs (B, obs_dim), the
        critics' values of the batch actions q_data (2, B), and pi(.|s) (paper eq. 10; rlkit awr_min_q,
        awr_use_mle_for_vf, clip_score). No gradient flows through either."""
        a = self.args
        v_action = dist.mean if a.value_from_mean else dist.sample().clamp(-1.0, 1.0)
        q_pi = self.critic(obs, v_action)
        if a.min_q_advantage:
            advantage = q_data.min(0).values - q_pi.min(0).values
        else:
            advantage = q_data[0] - q_pi[0]
        if a.advantage_clip < math.inf:
            advantage = advantage.clamp(max=a.advantage_clip)
        return advantage, awac_weights(advantage, a.beta, a.weighting, a.max_weight)

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One step on both losses from the same batch; returns the metrics of `compute_losses` as 0-dim tensors
        (`float(v)` reads one)."""
        loss, metrics = self.losses(batch)
        self.actor_opt.zero_grad(set_to_none=True)
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.critic_opt.step()
        self.actor_opt.step()
        with torch.no_grad():  # Polyak averaging of all target parameters in one call
            torch._foreach_lerp_(list(self.target_critic.parameters()), list(self.critic.parameters()), self.args.tau)
        return metrics

    def state_dict(self) -> dict:
        return {k: getattr(self, k).state_dict() for k in
                ("actor", "critic", "target_critic", "actor_opt", "critic_opt")}

    def load_state_dict(self, state: dict) -> None:
        for k, v in state.items():
            getattr(self, k).load_state_dict(v)


# ----------------------------------------------------------------------------------------------- buffer
class ReplayBuffer:
    """FIFO buffer of (obs, action, reward, next_obs, terminated) tensors on `device`; prior data and online
    experience share it, sampled uniformly (AWAC Algorithm 1)."""

    KEYS = ("obs", "action", "reward", "next_obs", "terminated")

    def __init__(self, obs_dim: int, act_dim: int, capacity: int, device: str, seed: int):
        dims = {"obs": (obs_dim,), "action": (act_dim,), "reward": (), "next_obs": (obs_dim,), "terminated": ()}
        self.data = {k: torch.zeros((capacity, *d), device=device) for k, d in dims.items()}
        self.capacity, self.size, self.pos = capacity, 0, 0
        self.gen = torch.Generator(device).manual_seed(seed)

    def add(self, **columns: np.ndarray) -> None:
        """Adds n transitions: each column is (n, ...) or a single transition (...)."""
        n = np.shape(columns["reward"])[0] if np.ndim(columns["reward"]) else 1
        if n > self.capacity:  # only the newest `capacity` rows would survive: write just those
            columns, n = {k: np.asarray(v)[-self.capacity:] for k, v in columns.items()}, self.capacity
        idx = (self.pos + torch.arange(n)) % self.capacity
        for k in self.KEYS:
            v = torch.as_tensor(np.asarray(columns[k], dtype=np.float32), device=self.data[k].device)
            self.data[k][idx] = v.reshape(n, *self.data[k].shape[1:])
        self.pos, self.size = (self.pos + n) % self.capacity, min(self.size + n, self.capacity)

    def sample(self, batch_size: int) -> dict[str, torch.Tensor]:
        idx = torch.randint(self.size, (batch_size,), generator=self.gen, device=self.gen.device)
        return {k: v[idx] for k, v in self.data.items()}

    def last(self, n: int, end: int | None = None) -> dict[str, np.ndarray]:
        """The min(n, size) transitions added before position `end` (default: the newest), oldest first: what a
        checkpoint keeps of online experience."""
        n = min(n, self.size)
        idx = ((self.pos if end is None else end) - n + torch.arange(n)) % self.capacity
        return {k: v[idx].cpu().numpy() for k, v in self.data.items()}


# ----------------------------------------------------------------------------------------------- train
def evaluate_policy(actor: GaussianActor, args: Args, video: Path | None = None) -> dict[str, float]:
    """`utils.envs.evaluate` with the mean action, returned under eval/ keys; `video`: an mp4 path for the first
    episode. Seeds differ from training's."""
    result = evaluate(lambda o: actor.act(o, deterministic=True), args.env_id, args.eval_episodes,
                      seed=1_000_000 + 1000 * args.seed, video=video)  # seeds disjoint across training seeds
    return {f"eval/{k}": v for k, v in result.items()}


def train(args: Args) -> dict[str, float]:
    """Runs AWAC (the paper's Algorithm 1): `offline_steps` updates on the prior data, then `online_steps`
    environment steps with one update each, adding new transitions to the same buffer. Returns the final metrics
    (also in <run>/final.json): `offline/eval/*` and `offline/wall_time_s` after the offline phase, `eval/*` at
    the end, `charts/SPS` (steps of this process per second), `wall_time_s` (over resumes), `run_dir`.

    Raises:
        ArgumentError: a field out of range, an unusable checkpoint, or a run directory that holds a run.
        EnvError, DatasetError (both ValueErrors): an unknown env, a dataset that does not fit it.
    """
    args, ckpt, path = setup(args)
    args = family_defaults(as_saved(args, ckpt["args"]) if ckpt is not None else args)
    env = make_env(args.env_id, seed=args.seed)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    q_max = 0.0 if args.clamp_q and args.env_id in HAND_TASKS else None
    agent = AWAC(obs_dim, act_dim, args, q_max)
    if ckpt is not None:
        agent.load_state_dict(ckpt["agent"])
    if args.eval_only:
        return evaluate_checkpoint(agent.actor, args)

    dataset = args.dataset or default_dataset(args.env_id)
    if dataset.lower() == "none":
        raise ArgumentError("AWAC learns from prior data and --dataset none gives it none (pass a dataset)")
    data = load_dataset(dataset, env_id=args.env_id, seed=args.dataset_seed, cache_dir=args.data_dir,
                        progress=args.progress)
    buffer = ReplayBuffer(obs_dim, act_dim, max(args.buffer_size, 1), args.device, args.seed)
    buffer.add(obs=data["observations"], action=data["actions"], reward=data["rewards"],
               next_obs=data["next_observations"], terminated=data["terminals"])
    run = Run(path, args, ckpt, agent, {"offline_step": args.offline_steps, "env_step": args.online_steps},
              buffer.gen, buffer, env)
    if run.finished:
        return run.result()
    with run:
        # Offline: pretrain actor and critics on the prior data alone.
        while run.counters["offline_step"] < args.offline_steps:
            run.after_step("offline_step", agent.update(buffer.sample(args.offline_batch_size)))
        run.end_offline()

        # Online: act with the stochastic policy, add each transition to the same buffer, update once per step.
        obs = run.start_online()
        while run.counters["env_step"] < args.online_steps:
            action = np.clip(agent.actor.act(obs.astype(np.float32), deterministic=False), -1.0, 1.0)
            next_obs, reward, terminated, truncated, info = env.step(action)
            buffer.add(obs=obs, action=action, reward=np.float32(reward), next_obs=next_obs,
                       terminated=np.float32(terminated))  # a time limit (truncated) is bootstrapped through
            metrics = agent.update(buffer.sample(args.batch_size))
            obs = run.after_env_step(next_obs, reward, terminated or truncated, metrics, info)
        run.finish()
    return run.result()



# =====================================================================================================================
# Run plumbing, not part of the algorithm: metrics log, flags, run directories, checkpoints, exact resume.
# The same text in awac.py, sac_fd.py, bc.py and awr.py (tests/test_baselines.py checks it).
# =====================================================================================================================
class Logger:
    """Writes every logged row to W&B (unless disabled) and to <run>/metrics.csv, whose header grows with new keys."""

    def __init__(self, run: Path, args: Args, resume_rows: list[dict] | None = None):
        self.path, self.rows = run / "metrics.csv", resume_rows or []
        self.keys: list[str] = list(dict.fromkeys(k for r in self.rows for k in r))
        if resume_rows is not None:  # drop what was logged after the checkpoint: it is about to be redone
            self._rewrite()
        self.wandb = None
        if args.wandb_mode != "disabled":
            import wandb  # only needed when logging to W&B

            try:  # init_timeout: an unreachable server fails in ~20-30 s instead of hanging for minutes
                self.wandb = wandb.init(project=args.wandb_project, group=args.wandb_group, name=run.name,
                                        config=asdict(args), dir=str(run), mode=args.wandb_mode, id=run.name,
                                        resume="allow", settings=wandb.Settings(init_timeout=20))
            except Exception as e:  # no API key, no server, ...: W&B's errors differ by cause
                reason = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
                raise ArgumentError(f"W&B could not start in {args.wandb_mode} mode ({reason}; use --wandb-mode "
                                    "offline and `wandb sync` later, or --wandb-mode disabled)") from e

    def log(self, row: dict[str, float | torch.Tensor], step: int) -> None:
        """Logs one row at `step`; 0-dim tensor values are read from the device in one transfer."""
        tensors = [k for k, v in row.items() if isinstance(v, torch.Tensor)]
        if tensors:
            row = {**row, **dict(zip(tensors, torch.stack([row[k].float() for k in tensors]).tolist()))}
        row = {**row, "charts/global_step": step}
        self.rows.append(row)
        if self.wandb:
            self.wandb.log(row, step=step)
        if all(k in self.keys for k in row):
            with self.path.open("a", newline="") as f:
                csv.DictWriter(f, self.keys).writerow(row)
            return
        self.keys += [k for k in row if k not in self.keys]
        self._rewrite()

    def _rewrite(self) -> None:
        with self.path.open("w", newline="") as f:
            w = csv.DictWriter(f, self.keys)
            w.writeheader()
            w.writerows(self.rows)

    def log_video(self, path: Path, step: int) -> None:
        """Logs an mp4 to W&B as eval/video at `step` (the file stays in the run directory either way)."""
        if self.wandb:
            import wandb

            self.wandb.log({"eval/video": wandb.Video(str(path), format="mp4")}, step=step)

    def close(self) -> None:
        if self.wandb:
            self.wandb.finish()


def _atomic_torch_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def strict_json(obj) -> str:
    """JSON that any parser reads (config.json, final.json): NaN (no success signal, e.g. on locomotion tasks)
    becomes null and +-infinity (`--advantage-clip inf`) the string "inf" / "-inf"."""
    def clean(x):
        if isinstance(x, float) and not math.isfinite(x):
            return None if math.isnan(x) else ("inf" if x > 0 else "-inf")
        return {k: clean(v) for k, v in x.items()} if isinstance(x, dict) else \
            [clean(v) for v in x] if isinstance(x, (list, tuple)) else x
    return json.dumps(clean(obj), indent=2, allow_nan=False)


class ArgumentError(ValueError):
    """A flag, checkpoint or run directory that this run cannot use. From the command line it prints as one line,
    `error: <what> (<how to fix>)`, and exits with status 2."""


# Valid ranges by field name, the same in every algorithm file; each file checks the fields it has.
CHECKS = {
    **dict.fromkeys(("offline_steps", "online_steps", "bc_pretrain_steps", "learning_starts", "threads", "seed",
                     "dataset_seed", "actor_weight_decay", "bound_loss_weight"), (lambda v: v >= 0, ">= 0")),
    **dict.fromkeys(("batch_size", "offline_batch_size", "buffer_size", "eval_every", "eval_episodes", "log_every",
                     "save_every", "actor_steps", "critic_steps", "samples_per_iter"), (lambda v: v >= 1, ">= 1")),
    **dict.fromkeys(("actor_lr", "critic_lr", "alpha_lr", "beta", "init_alpha", "max_weight", "action_std"),
                    (lambda v: v > 0, "> 0")),
    **dict.fromkeys(("gamma", "momentum"), (lambda v: 0 <= v < 1, "in [0, 1)")),
    **dict.fromkeys(("tau", "top_fraction"), (lambda v: 0 < v <= 1, "in (0, 1]")),
    "td_lambda": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    **dict.fromkeys(("hidden_dims", "actor_hidden_dims"), (lambda v: len(v) > 0 and min(v) >= 1,
                                                           "of one or more sizes >= 1")),
}
# Fields a resumed run may take from the command line; every other one comes from its checkpoint.
MAY_CHANGE = ("checkpoint", "eval_only", "device", "threads", "progress", "wandb_mode", "online_steps",
              "capture_video")


def check_args(args: Args) -> None:
    """Raises ArgumentError for the first field outside its range in CHECKS, before any work is done."""
    for name, (ok, valid) in CHECKS.items():
        value = getattr(args, name, None)
        if value is not None and not ok(value):
            raise ArgumentError(f"--{name.replace('_', '-')} {value} is out of range (use a value {valid})")
    if getattr(args, "min_log_std", 0.0) >= getattr(args, "max_log_std", 1.0):
        raise ArgumentError(f"--min-log-std {args.min_log_std} is not below --max-log-std {args.max_log_std} "
                            "(give a lower bound below the upper one)")
    if args.eval_only and not args.checkpoint:
        raise ArgumentError("--eval-only has no policy to evaluate (add --checkpoint RUN/checkpoint.pt)")


def load_checkpoint(path: str, device: str) -> dict:
    """A checkpoint written by this script, read with weights_only=True: plain values and tensors, so loading
    runs no code from the file. Raises ArgumentError for a missing file or one that is not such a checkpoint."""
    script = Path(__file__).name
    if not Path(path).is_file():
        raise ArgumentError(f"--checkpoint {path}: no such file (give a run's checkpoint.pt)")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # any unreadable or foreign file; the reason goes in the message
        raise ArgumentError(f"--checkpoint {path} is not a checkpoint of {script} ({type(e).__name__}; give a "
                            f"checkpoint.pt that {script} wrote; those of versions before November 2026 held "
                            "numpy arrays and cannot be read safely)") from e
    if not isinstance(ckpt, dict) or ckpt.get("script") != script:
        raise ArgumentError(f"--checkpoint {path} is not a checkpoint of {script} (give a checkpoint.pt that "
                            f"{script} wrote)")
    return ckpt


def resume_args(args: Args, saved: dict) -> Args:
    """The run's own fields from its checkpoint, except those in MAY_CHANGE (and eval_episodes with --eval-only)
    that the command line sets to a value other than the default. Raises ArgumentError for any other field set on
    the command line that differs from the checkpoint, instead of silently ignoring it (a flag given with its
    default value cannot be told from an absent one, and is ignored)."""
    default, may_change = Args(), MAY_CHANGE + (("eval_episodes",) if args.eval_only else ())
    changed = {f.name: getattr(args, f.name) for f in fields(Args)
               if getattr(args, f.name) != getattr(default, f.name)}
    for name, mine in changed.items():
        if name not in may_change and mine != saved.get(name):
            raise ArgumentError(f"--{name.replace('_', '-')} {mine} differs from the checkpoint's {saved.get(name)} "
                                "(a resumed run keeps its settings: drop the flag, or start a new run)")
    resumed = Args(**{**saved, **{k: v for k, v in changed.items() if k in may_change}})
    if not resumed.eval_only and Path(resumed.checkpoint).name != "checkpoint.pt":
        raise ArgumentError(f"{resumed.checkpoint} can be evaluated, not resumed (resume from the run's "
                            "checkpoint.pt, or add --eval-only)")
    return resumed


def new_run_dir(args: Args) -> Path:
    """<run_dir>/<run_name> for a new run (default name <env_id>__<script>__<seed>__<unix time>). Raises
    ArgumentError when it already holds a run's checkpoint or result, which a new run must not overwrite; files of
    a run killed before its first checkpoint are removed."""
    run = Path(args.run_dir) / (args.run_name or f"{args.env_id}__{Path(__file__).stem}__{args.seed}__"
                                                 f"{int(time.time())}")
    found = [name for name in ("final.json", "checkpoint.pt") if (run / name).is_file()]
    if found:
        raise ArgumentError(f"{run} already holds a run ({', '.join(found)}; resume it with --checkpoint "
                            f"{run / 'checkpoint.pt'}, or choose another --run-name)")
    return run


def start_run_dir(run: Path, args: Args) -> None:
    """Creates the run directory of `new_run_dir`, clears an unfinished start's files, writes config.json."""
    run.mkdir(parents=True, exist_ok=True)
    for stale in ("metrics.csv", "checkpoint_offline.pt"):
        (run / stale).unlink(missing_ok=True)
    (run / "config.json").write_text(strict_json(asdict(args)))


def stop_on_signals() -> dict:
    """Turns Ctrl-C and SIGTERM into a request, {"requested": True}, that the training loops honour at the end of
    a step, so a checkpoint is never taken halfway through one. {"restore": f}: f() puts the old handlers back.
    Outside the main thread (where signals cannot be caught) nothing changes."""
    stop = {"requested": False, "restore": lambda: None}
    if threading.current_thread() is threading.main_thread():
        def request(signum, frame):
            stop["requested"] = True

        old = {s: signal.signal(s, request) for s in (signal.SIGINT, signal.SIGTERM)}
        stop["restore"] = lambda: [signal.signal(s, h) for s, h in old.items()]
    return stop


def setup(args: Args) -> tuple[Args, dict | None, Path]:
    """Everything before any work: checks the flags, loads --checkpoint and takes a resumed run's settings from it,
    sets threads and seeds. Returns (args, the checkpoint or None, the run directory: a new run's, not yet
    created, or the checkpoint's). Raises ArgumentError for a bad flag, checkpoint or run name."""
    # Adam's moments of dead units and weight-decayed weights sink below 1e-38, where x86 arithmetic is very slow
    # (measured: updates 4x slower after a few thousand). Flushing them to zero must come before the first parallel
    # torch op of the process: worker threads copy the flag from this thread when they start, not later.
    torch.set_flush_denormal(True)
    check_args(args)
    ckpt = load_checkpoint(args.checkpoint, args.device) if args.checkpoint else None
    if ckpt is not None:
        args = resume_args(args, ckpt["args"])
    if getattr(args, "online_steps", 0) is None:  # a new run without --online-steps (None: a flag at its default
        args = replace(args, online_steps=500_000)  # would be indistinguishable from no flag when resuming)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.capture_video:
        check_rendering(args.env_id)
    path = new_run_dir(args) if ckpt is None and not args.eval_only else Path(args.checkpoint).parent
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    return args, ckpt, path


def evaluate_checkpoint(actor, args: Args) -> dict[str, float]:
    """--eval-only: evaluates the checkpoint's policy and prints the result as JSON; with --capture-video, the first
    episode goes to <run>/videos/eval-only-<checkpoint name>.mp4."""
    ckpt = Path(args.checkpoint)
    video = ckpt.parent / "videos" / f"eval-only-{ckpt.stem}.mp4" if args.capture_video else None
    result = evaluate_policy(actor, args, video)
    print(json.dumps(result, indent=2))
    if video is not None:
        print(f"video of the first episode: {video}")
    return result


class Run:
    """What a training run does besides the algorithm: its directory, step counters, metrics log, progress bar,
    evaluations and checkpoints, with exact resume.

    `phases` maps each step counter to its budget in the order the phases run, e.g. {"offline_step": 25_000,
    "env_step": 500_000}; the global step is their sum. `agent` has state_dict()/load_state_dict() and `actor`;
    `gen` draws the training batches; `buffer` (optional) has `pos`, `add(**columns)` and `last(n, end)`, and its
    online rows go into checkpoints; `env` (optional) is the training env, closed at the end. With `ckpt` (from
    load_checkpoint) the run resumes: counters, final metrics, the buffer's online rows, RNG states and the
    metrics.csv rows up to the checkpoint come back, and `finished` says whether anything is left to do.

    Checkpoints are taken at the end of a step and, in an online phase stepped by `after_env_step`, only at an
    episode boundary (with the env's generators), so a resumed run repeats the uninterrupted one exactly. Used as
    `with run:`; Ctrl-C or SIGTERM is honoured at the end of a step: the last such state is saved and
    KeyboardInterrupt raised. Exact on CPU with a fixed thread count while the online steps fit in the buffer
    (--buffer-size; resuming after the buffer wrapped reloads the same rows at other positions). A run ends with
    `finish()`, which writes final.json after the last checkpoint (a resume of a run killed in between writes it).

    Raises:
        ArgumentError: `ckpt` was written by an older version of the script (the missing entries named)."""

    def __init__(self, path: Path, args: Args, ckpt: dict | None, agent, phases: dict[str, int],
                 gen: torch.Generator, buffer=None, env=None):
        self.path, self.args, self.ckpt, self.agent, self.phases = path, args, ckpt, agent, phases
        self.gen, self.buffer, self.env = gen, buffer, env
        self.start, self.elapsed_before, rows = time.time(), 0.0, None
        self.boundary, self.save_due, self.episode, self.goal = None, False, (0.0, 0), []
        if ckpt is None:
            start_run_dir(path, args)
            self.counters, self.final = dict.fromkeys(phases, 0), {}
        else:
            missing = sorted({"counters", "final", "elapsed_s", "torch_rng", "batch_rng", "online_data"} - set(ckpt))
            if missing:
                raise ArgumentError(f"{args.checkpoint} lacks {', '.join(missing)}: an older version of "
                                    f"{Path(__file__).name} wrote it (resume it with that version, or start a new "
                                    "run; --eval-only can still read it)")
            self.counters, self.final, self.elapsed_before = ckpt["counters"], ckpt["final"], ckpt["elapsed_s"]
            if buffer is not None and len(ckpt["online_data"]["reward"]):
                buffer.add(**{k: v.cpu().numpy() for k, v in ckpt["online_data"].items()})
            torch.set_rng_state(ckpt["torch_rng"].cpu())
            gen.set_state(ckpt["batch_rng"].cpu())
            if "eval/success_rate" in self.final and any(self.counters[p] < n for p, n in phases.items()):
                self.extend()  # a finished run given more --online-steps
            if "eval/success_rate" not in self.final:  # rows logged after the checkpoint are about to be redone
                with (path / "metrics.csv").open() as f:
                    rows = [{k: v for k, v in r.items() if v != ""} for r in csv.DictReader(f)
                            if float(r.get("charts/global_step") or 0) <= self.global_step()]
        self.finished = "eval/success_rate" in self.final
        if self.finished and not (path / "final.json").is_file():  # killed between its last save and final.json
            self.write_final()
        self.first_step = self.global_step()
        self.logger = None if self.finished else Logger(path, args, rows)

    def extend(self) -> None:
        """Reopens a finished run whose budget grew: its final.json is kept as final-<global step>.json (never
        overwritten), the end-of-run metrics are dropped (the offline ones stay), and the online phase goes on from
        an episode reset with --seed (the last checkpoint need not be at an episode boundary): a continuation, not
        the run that the longer budget would have made from the start."""
        done, kept = self.path / "final.json", self.path / f"final-{self.global_step()}.json"
        if not kept.is_file():  # else: an extension killed before its first checkpoint, extended again
            if not done.is_file():
                self.write_final()
            os.replace(done, kept)
        done.unlink(missing_ok=True)
        self.final = {k: v for k, v in self.final.items() if k.startswith("offline/")}
        (self.path / "config.json").write_text(strict_json(asdict(self.args)))  # the new budget

    def global_step(self) -> int:
        return sum(self.counters[phase] for phase in self.phases)

    def elapsed(self) -> float:
        """Wall time of the run in seconds, over all the processes of a resumed run."""
        return self.elapsed_before + time.time() - self.start

    def result(self) -> dict[str, float]:
        return {**self.final, "run_dir": str(self.path)}

    def __enter__(self) -> "Run":
        self.bar = tqdm(total=sum(self.phases.values()), initial=self.first_step, desc="offline",
                        disable=None if self.args.progress else True)
        self.stop, self.tick = stop_on_signals(), (time.time(), self.first_step)
        if self.first_step == 0 and sum(n for phase, n in self.phases.items() if phase != "env_step") > 0:
            try:
                self.evaluate("offline_step", 0)  # the policy before any training
            except BaseException:  # `with` calls no __exit__ when __enter__ fails: restore handlers, close here
                self.__exit__(*sys.exc_info())
                raise
        return self

    def __exit__(self, kind, error, traceback) -> None:
        try:
            if kind is KeyboardInterrupt:  # at the end of a step: save the last state a resume can start from
                state = self.boundary if self.boundary is not None else self.snapshot()
                self.save(state)
                print(f"interrupted: saved {self.path / 'checkpoint.pt'} at " + ", ".join(
                      f"{k.replace('_', ' ')} {v}" for k, v in state["counters"].items()) +
                      f" (resume: --checkpoint {self.path / 'checkpoint.pt'})", file=sys.stderr)
        finally:
            self.stop["restore"]()
            self.bar.close()
            self.logger.close()
            if self.env is not None:
                self.env.close()

    def log(self, row: dict, step: int | None = None) -> None:
        """Logs one row (metrics.csv, W&B) at `step`, by default the global step."""
        self.logger.log(row, self.global_step() if step is None else step)

    def evaluate(self, phase: str, step: int) -> dict[str, float]:
        """Evaluates the policy and logs the result; with --capture-video, also a video of the first episode."""
        name = "online" if phase == "env_step" else phase.removesuffix("_step")
        video = self.path / "videos" / f"{name}-{step:07d}.mp4" if self.args.capture_video else None
        result = evaluate_policy(self.agent.actor, self.args, video)
        self.log({**result, f"charts/{phase}": step})
        if video is not None:
            self.logger.log_video(video, self.global_step())
        self.bar.set_postfix(success=f"{result['eval/success_rate']:.2f}",
                             score=f"{result['eval/normalized_score']:.1f}")
        return result

    def snapshot(self, env_rng: dict | None = None) -> dict:
        """The run's whole state now, copied: a resume from it redoes the next steps exactly. `env_rng`: the env's
        generators before the reset that starts the next episode (None: reset with the seed)."""
        return copy.deepcopy({"script": Path(__file__).name, "agent": self.agent.state_dict(),
                              "args": asdict(self.args), "counters": self.counters, "final": self.final,
                              "elapsed_s": self.elapsed(), "buffer_end": getattr(self.buffer, "pos", None),
                              "torch_rng": torch.get_rng_state(), "batch_rng": self.gen.get_state(),
                              "env_rng": env_rng})

    def save(self, state: dict, name: str = "checkpoint.pt") -> None:
        """Writes `state` with the online rows of the buffer it had (what a resume cannot rebuild) atomically."""
        online = {} if self.buffer is None else self.buffer.last(state["counters"].get("env_step", 0),
                                                                 end=state["buffer_end"])
        _atomic_torch_save({**state, "online_data": {k: torch.as_tensor(v) for k, v in online.items()}},
                           self.path / name)

    def after_step(self, phase: str, metrics: dict | None, n: int = 1, episode_end: bool | None = None,
                   env_rng: dict | None = None) -> None:
        """Counts `n` steps of `phase`, then does what falls due: logs `metrics` (None: no update this step)
        every log_every steps, evaluates every eval_every (the last one is finish()'s), checkpoints every
        save_every (`episode_end` None: any step end is a consistent state; False/True: only an episode's end,
        whose state is kept as `boundary`), and raises KeyboardInterrupt if Ctrl-C or SIGTERM came."""
        before, a = self.counters[phase], self.args
        self.counters[phase] += n
        self.bar.update(n)
        step = self.counters[phase]
        if metrics is not None and step // a.log_every > before // a.log_every:
            now, global_step = time.time(), self.global_step()
            sps = (global_step - self.tick[1]) / (now - self.tick[0])
            self.log({**metrics, f"charts/{phase}": step, "charts/SPS": sps})
            self.tick = (now, global_step)
        if step // a.eval_every > before // a.eval_every and step < self.phases[phase]:
            self.evaluate(phase, step)
        self.save_due = self.save_due or step // a.save_every > before // a.save_every
        if episode_end:
            self.boundary = self.snapshot(env_rng)
        if self.save_due and episode_end is not False:
            self.save(self.boundary if episode_end else self.snapshot())
            self.save_due = False
        if self.stop["requested"]:
            raise KeyboardInterrupt

    def end_offline(self) -> None:
        """Evaluates the pretrained policy as step 0 of the online phase, once, and keeps it as offline/eval/*;
        checkpoint_offline.pt keeps the agent for --eval-only and analysis."""
        if "offline/eval/success_rate" not in self.final:
            result = self.evaluate("env_step", 0)
            self.final.update({f"offline/{k}": v for k, v in result.items()},
                              **{"offline/wall_time_s": self.elapsed()})
            self.save(self.snapshot())
            self.save(self.snapshot(), "checkpoint_offline.pt")

    def start_online(self, reset_env: bool = True) -> np.ndarray | None:
        """Starts the online phase; with `reset_env`, resets the env (seeded, or to the checkpoint's generators)
        for `after_env_step` and returns the first observation."""
        self.bar.set_description("online")
        self.tick = (time.time(), self.global_step())
        if not reset_env:
            return None
        env, env_rng = self.env, self.ckpt["env_rng"] if self.ckpt and self.counters["env_step"] else None
        if env_rng is None:
            obs, _ = env.reset(seed=self.args.seed)
        else:
            env.unwrapped.np_random.bit_generator.state = env_rng["env"]
            env.action_space.np_random.bit_generator.state = env_rng["action_space"]
            obs, _ = env.reset()
        self.boundary, self.save_due, self.episode, self.goal = self.snapshot(env_rng), False, (0.0, 0), []
        return obs

    def after_env_step(self, next_obs: np.ndarray, reward: float, done: bool, metrics: dict | None,
                       info: dict | None = None) -> np.ndarray:
        """`after_step` for one environment step: logs a finished episode's return and length (and, when the env's
        `info` has a goal signal, its success by each of utils.envs.SUCCESS_DEFINITIONS under charts/) and resets
        the env. Returns the next observation to act on."""
        self.episode = (self.episode[0] + float(reward), self.episode[1] + 1)
        if info is not None and "success" in info:
            self.goal.append(bool(info["success"]))
        env_rng = None
        if done:
            success = {f"charts/{k}": v for k, v in episode_success(self.goal, self.args.env_id).items()
                       } if self.goal else {}
            self.log({"charts/episodic_return": self.episode[0], "charts/episodic_length": self.episode[1],
                      **success, "charts/env_step": self.counters["env_step"] + 1}, self.global_step() + 1)
            self.goal = []
            env_rng = copy.deepcopy({"env": self.env.unwrapped.np_random.bit_generator.state,
                                     "action_space": self.env.action_space.np_random.bit_generator.state})
            next_obs, _ = self.env.reset()
            self.episode = (0.0, 0)
        self.after_step("env_step", metrics, episode_end=done, env_rng=env_rng)
        return next_obs

    def finish(self) -> None:
        """The final evaluation (once), SPS and wall time, and the last checkpoint."""
        last = list(self.phases)[-1]
        if "eval/success_rate" not in self.final:
            result = self.evaluate(last, self.counters[last])
            self.final.update(result)
            if "offline/eval/success_rate" not in self.final:  # no online phase (BC): its result is the offline one
                self.final.update({f"offline/{k}": v for k, v in result.items()})
        self.final.update({"charts/SPS": (self.global_step() - self.first_step) / (time.time() - self.start),
                           "wall_time_s": self.elapsed()})
        self.save(self.snapshot())
        self.write_final()

    def write_final(self) -> None:
        """final.json, atomically, after the last checkpoint: a directory holds a finished run exactly when it
        has one."""
        tmp = self.path / "final.json.tmp"
        tmp.write_text(strict_json(self.result()))
        os.replace(tmp, self.path / "final.json")


def main() -> None:
    """Command line: SIGTERM saves a checkpoint as Ctrl-C does (exit status 130); expected errors print one line,
    exit status 2."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        train(tyro.cli(Args))
    except (ArgumentError, DatasetError, EnvError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:  # train() has saved and said where: no traceback, the shell's status for SIGINT
        sys.exit(130)


if __name__ == "__main__":
    main()
