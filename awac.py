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
bc_batch_size, which its pretraining samples), 2x256 networks, lr 3e-4, gamma 0.99, tau 5e-3, beta 0.5, advantage
clip 0.5, policy weight decay 1e-4, log-std in [-6, 0], 25,000 offline updates (q_num_pretrain2_steps), 1M buffer,
one update per environment step, 500,000 online steps (501 epochs of 1000). On every task that is not a hand task
(the MuJoCo locomotion tasks) the fields left at None take rlkit's examples/awac/mujoco/awac1.py values instead
(FAMILY_DEFAULTS): beta 2, no advantage clip, V(s) from a sampled action, a 4x256 actor, no Q clamp (on HalfCheetah
lambda 2 fails offline and lambda 30 matches the data: docs/results/locomotion).
`--config paper` (hand tasks): the paper as written, for the fields left unset: no advantage clip (eq. 10), lambda
0.3 (the text: 0.3 to 1; a reproduction's table of the paper's values: 0.3), 4x256 actor and critics (its appendix's
hyperparameter table). On door by 300K: success 0.95 against rlkit's 0.59, goal 43 steps earlier (door-fast).

Deviations from rlkit, each deliberate: actions stored and fed to the critics are clipped to the action space (as the
env clips them); all prior data go into the buffer (rlkit keeps 90%); bootstrap through `truncated`, never through
`terminated` (rlkit's hand config zeroes every terminal; Adroit never terminates); online updates start at the first
environment step (rlkit first collects 1000); PyTorch's default init, but clamped critics start at q_max - 1 (else 3-20%
of twin pairs began dead on door). Off the defaults: --no-min-q-advantage uses Q1 in V(s) too (rlkit: min(Q1, Q2)).

How the update runs (the same math to float rounding): twin critics as one batched ensemble, one backward of the
summed losses, one actor forward for V(s) and log pi(a|s), fused Adam, metrics read only when logged; bf16 hidden
layers and torch.compile where measured faster (--precision/--compile auto). train() is Algorithm 1.
Run:  python awac.py                                  (the paper's setting: door-binary and its default dataset)
      python awac.py --env-id pen-binary --offline-steps 25000 --online-steps 100000 --batch-size 256
      python awac.py --checkpoint runs/<run>/checkpoint.pt --eval-only
Logged (W&B, <run_dir>/metrics.csv): losses/{critic,actor}, values/{q_mean,q_std,target_q_mean,advantage_mean,
advantage_std,advantage_max,weight_mean,weight_max,weight_std,log_prob_mean,log_std_mean}, eval/{return_mean,
return_std,normalized_score,success_final,success_any,success_rate,goal_step,goal_never,length_mean}, charts/{
offline_step,env_step,global_step,SPS,episodic_return,episodic_length,success_final,success_any,success_rate}.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from utils.datasets import default_dataset, load_dataset
from utils.envs import HAND_TASKS, evaluate, make_env
from utils.run import ArgumentError, Run, cli, evaluate_only, fast_path, setup
from utils.run.checks import AT_LEAST_ONE, BATCH_SIZE, NON_NEGATIVE, POSITIVE


@dataclass
class Args:
    # Experiment and logging
    seed: int = 0
    """seed of torch, numpy, the environment and the buffer sampling"""
    device: str = "cpu"
    """torch device, e.g. cpu or cuda"""
    threads: int = 0
    """torch CPU threads (0: torch's default); give parallel runs 1 each"""
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    """auto: bf16 where measured faster (a CPU with AMX, a GPU with native bf16), else fp32; each run prints the
    choice and why; bf16: hidden layers under bfloat16 autocast, the rest float32 (docs/results/precision)"""
    compile: Literal["auto", "on", "off"] = "auto"
    """torch.compile the losses; auto: on where measured >= 1.1x (fp32 on a CPU with AVX-512 and no AMX) in runs
    of at least 10,000 updates (compiling costs 5-45 s per process; docs/results/speed)"""
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
    """dataset id or .npz/.hdf5 path (default: the env's; door-binary: 25 human demos + 500 BC episodes)"""
    dataset_seed: int = 0
    """seed the generated dataset was built with (all training seeds share one dataset, as in the paper)"""
    data_dir: str | None = None
    """cache of generated datasets (default: $AWAC_DATA_DIR or ~/.cache/awac/datasets)"""

    # Algorithm
    offline_steps: int = 25_000
    """gradient updates on the prior data before any interaction (rlkit q_num_pretrain2_steps)"""
    online_steps: int | None = None
    """environment steps of online fine-tuning, one update each (default 500,000: rlkit's 501 epochs x 1000 steps);
    a resumed run keeps its own unless this is given (a larger value extends it)"""
    batch_size: int = 1024
    """transitions per online update"""
    offline_batch_size: int = 128
    """transitions per offline update (rlkit's bc_batch_size, which pretrain_q_with_bc_data samples)"""
    config: Literal["rlkit", "paper"] = "rlkit"
    """defaults of the fields left unset: rlkit's released configuration, or (hand tasks) the paper as written"""
    hidden_dims: tuple[int, ...] | None = None
    """hidden layer sizes of the critics, and of the actor on the hand tasks (default 256 256; --config paper: 4x256)"""
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
    """upper clip of the advantage before weighting (rlkit clip_score; default: 0.5 on hand tasks, none elsewhere)"""
    min_q_advantage: bool = True
    """use min(Q1, Q2) in the advantage (rlkit awr_min_q); else Q1"""
    value_from_mean: bool | None = None
    """V(s) = Q(s, mean action) (rlkit awr_use_mle_for_vf), else Q(s, a sample) (default: the mean on hand tasks)"""
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


# Valid ranges of this script's own fields (utils.run checks the common ones); checked before any work.
CHECKS = dict(batch_size=BATCH_SIZE, offline_batch_size=BATCH_SIZE, buffer_size=AT_LEAST_ONE, critic_lr=POSITIVE)
CHECKS |= dict(beta=POSITIVE, max_weight=POSITIVE, actor_weight_decay=NON_NEGATIVE)


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

    def __init__(
        self, obs_dim: int, act_dim: int, hidden_dims: tuple[int, ...], q_max: float | None = None, bf16: bool = False
    ):
        super().__init__()
        dims = [obs_dim + act_dim, *hidden_dims]
        self.hidden = nn.ModuleList(EnsembleLinear(2, i, o) for i, o in zip(dims[:-1], dims[1:]))
        self.out = EnsembleLinear(2, dims[-1], 1)
        self.q_max, self.bf16 = q_max, bf16
        if q_max is not None:  # a Q above q_max on every input never gets a gradient through the clamp, so
            nn.init.uniform_(self.out.weight, -3e-3, 3e-3)  # start near q_max - 1 (rlkit's +-3e-3 output weights)
            nn.init.constant_(self.out.bias, q_max - 1.0)

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


# ----------------------------------------------------------------------------------------------- losses, update
def awac_weights(advantage: torch.Tensor, beta: float, weighting: str, max_weight: float) -> torch.Tensor:
    """Advantage weights (B,) from advantages (B,): B * softmax(A / beta) (rlkit; they sum to B, mean 1), or
    min(exp(A / beta), max_weight). Raises ValueError for another `weighting`."""
    if weighting == "softmax":
        return len(advantage) * F.softmax(advantage / beta, dim=0)
    if weighting == "exp":
        return torch.exp(advantage / beta).clamp(max=max_weight)
    raise ValueError(f"unknown weighting {weighting!r}: use 'softmax' or 'exp'")


def critic_target(reward: torch.Tensor, terminated: torch.Tensor, next_q: torch.Tensor, gamma: float) -> torch.Tensor:
    """y = r + gamma * (1 - terminated) * min_i Q'_i(s', a'): reward, terminated (B,), next_q (2, B) -> (B,).
    Truncated transitions are not terminated: their value is bootstrapped."""
    return reward + gamma * (1.0 - terminated) * next_q.min(0).values


# Settings in which rlkit's two AWAC configurations differ: examples/awac/hand/awac1.py (the hand tasks) and
# examples/awac/mujoco/awac1.py (HalfCheetah, Walker2d, Ant; used here for every task that is not a hand task);
# PAPER: --config paper on the hand tasks, the paper as written (see the module docstring for each value's source).
FAMILY_DEFAULTS = {
    "hand": dict(beta=0.5, advantage_clip=0.5, value_from_mean=True),
    "mujoco": dict(beta=2.0, advantage_clip=math.inf, value_from_mean=False, actor_hidden_dims=(256, 256, 256, 256)),
}
PAPER = dict(beta=0.3, advantage_clip=math.inf, hidden_dims=(256, 256, 256, 256))


def family_defaults(args: Args) -> Args:
    """`args` with each field left at None set to its task family's value (FAMILY_DEFAULTS, or PAPER's first with
    --config paper; the hand tasks' actor has --hidden-dims). Fields given a value keep it. Raises ArgumentError for
    --config paper off the hand tasks, whose values the paper gives only for those."""
    hand = args.env_id in HAND_TASKS
    if args.config == "paper" and not hand:
        raise ArgumentError(f"--config paper is the paper's hand-task setting, not {args.env_id}'s (drop the flag)")
    family = {"hidden_dims": (256, 256), **FAMILY_DEFAULTS["hand" if hand else "mujoco"]}
    family |= PAPER if args.config == "paper" else {}
    values = {"actor_hidden_dims": family["hidden_dims"] if args.hidden_dims is None else args.hidden_dims, **family}
    return replace(args, **{k: v for k, v in values.items() if getattr(args, k) is None})


class AWAC:
    """Actor, twin critics, their targets and optimizers; `update(batch)` is one AWAC gradient step. `args` has its
    per-task defaults resolved (`family_defaults`; else ValueError); `q_max`: the critics' output clamp (None: none).
    `args.precision` and `args.compile` choose how the update runs, not what."""

    def __init__(self, obs_dim: int, act_dim: int, args: Args, q_max: float | None):
        unresolved = [k for k in ("hidden_dims", *FAMILY_DEFAULTS["mujoco"]) if getattr(args, k) is None]
        if unresolved:
            raise ValueError(f"{', '.join(unresolved)} left at None: pass family_defaults(args)")
        self.args = args
        bf16, compiled = fast_path(args)
        self.actor = GaussianActor(obs_dim, act_dim, args.actor_hidden_dims, args.min_log_std, args.max_log_std, bf16)
        self.critic = TwinQ(obs_dim, act_dim, args.hidden_dims, q_max, bf16)
        self.target_critic = TwinQ(obs_dim, act_dim, args.hidden_dims, q_max, bf16)
        self.target_critic.load_state_dict(self.critic.state_dict())
        for net in (self.actor, self.critic, self.target_critic):
            net.to(args.device)
        self.target_critic.requires_grad_(False)
        # fused: one kernel steps every parameter (same math as the default, to float rounding)
        self.actor_opt = torch.optim.Adam(
            self.actor.parameters(), args.actor_lr, weight_decay=args.actor_weight_decay, fused=True
        )
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), args.critic_lr, fused=True)
        self.losses = torch.compile(self.compute_losses, dynamic=False) if compiled else self.compute_losses

    def compute_losses(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Critic + actor loss (a scalar) and the metrics (0-dim tensors, read when logged) on one batch (obs, action,
        reward, next_obs, terminated; (B, ...)). Target, advantages and weights carry no gradient, so one backward
        of the sum gives each network the gradient of its own loss, as rlkit's separate steps do."""
        a = self.args
        obs, action = batch["obs"], batch["action"]
        with torch.no_grad():
            next_action = self.actor(batch["next_obs"]).sample().clamp(-1.0, 1.0)
            next_q = self.target_critic(batch["next_obs"], next_action)
            target = critic_target(batch["reward"], batch["terminated"], next_q, a.gamma)
        q = self.critic(obs, action)
        critic_loss = ((q - target) ** 2).mean(-1).sum()

        dist = self.actor(obs)  # one forward serves both V(s) (through the mean, no gradient) and log pi(a|s)
        advantage, weights = self.advantage_weights(obs, q.detach(), dist)
        log_prob = dist.log_prob(action).sum(-1)
        actor_loss = -(log_prob * weights).mean()
        values = dict(q_mean=q.mean(), q_std=q.std(), target_q_mean=target.mean(), advantage_mean=advantage.mean())
        values |= dict(advantage_std=advantage.std(), advantage_max=advantage.max(), weight_mean=weights.mean())
        values |= dict(weight_max=weights.max(), weight_std=weights.std(), log_prob_mean=log_prob.mean())
        values |= dict(log_std_mean=dist.stddev.log().mean())
        metrics = {"losses/critic": critic_loss, "losses/actor": actor_loss}
        metrics |= {f"values/{k}": v for k, v in values.items()}
        return critic_loss + actor_loss, {k: v.detach() for k, v in metrics.items()}

    @torch.no_grad()
    def advantage_weights(
        self, obs: torch.Tensor, q_data: torch.Tensor, dist: torch.distributions.Normal
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A(s, a) = min_i Q_i(s, a) - V(s), clipped, and its weights w, both (B,), from obs (B, obs_dim), the
        critics' values of the batch actions q_data (2, B), and pi(.|s) (paper eq. 10; rlkit awr_min_q,
        awr_use_mle_for_vf, clip_score). No gradient flows through either."""
        a = self.args
        v_action = dist.mean if a.value_from_mean else dist.sample().clamp(-1.0, 1.0)
        q_pi = self.critic(obs, v_action)
        advantage = q_data.min(0).values - q_pi.min(0).values if a.min_q_advantage else q_data[0] - q_pi[0]
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
        parts = ("actor", "critic", "target_critic", "actor_opt", "critic_opt")
        return {k: getattr(self, k).state_dict() for k in parts}

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
            columns, n = {k: np.asarray(v)[-self.capacity :] for k, v in columns.items()}, self.capacity
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
    seed = 1_000_000 + 1000 * args.seed  # disjoint from the training env's seeds, and across training seeds
    result = evaluate(lambda o: actor.act(o, deterministic=True), args.env_id, args.eval_episodes, seed, video)
    return {f"eval/{k}": v for k, v in result.items()}


def train(args: Args) -> dict[str, float]:
    """Runs AWAC (the paper's Algorithm 1): `offline_steps` updates on the prior data, then `online_steps` env
    steps with one update each, new transitions joining the same buffer. Returns the final metrics (also in
    <run>/final.json): `offline/eval/*`, `offline/wall_time_s`, `eval/*`, `charts/SPS`, `wall_time_s`, `run_dir`.

    Raises:
        ArgumentError: a field out of range, an unusable checkpoint, or a run directory that holds a run.
        EnvError, DatasetError (both ValueErrors): an unknown env, a dataset that does not fit it.
    """
    args, ckpt, path = setup(args, CHECKS)
    if ckpt is not None and "actor_hidden_dims" not in ckpt["args"]:
        raise ArgumentError(
            f"{args.checkpoint} lacks actor_hidden_dims: a version before the per-task settings "
            "(November 2026) wrote it (resume it with that version, or start a new run)"
        )
    args = family_defaults(args)  # the per-task defaults, resolved here and only here
    env = make_env(args.env_id, seed=args.seed)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    q_max = 0.0 if args.clamp_q and args.env_id in HAND_TASKS else None
    agent = AWAC(obs_dim, act_dim, args, q_max)
    if ckpt is not None:
        agent.load_state_dict(ckpt["agent"])
    evaluate_agent = lambda video: evaluate_policy(agent.actor, args, video)
    if args.eval_only:
        return evaluate_only(evaluate_agent, args)

    dataset = args.dataset or default_dataset(args.env_id)
    if dataset.lower() == "none":
        raise ArgumentError("AWAC learns from prior data and --dataset none gives it none (pass a dataset)")
    data = load_dataset(dataset, args.env_id, args.dataset_seed, args.data_dir, args.progress)
    buffer = ReplayBuffer(obs_dim, act_dim, max(args.buffer_size, 1), args.device, args.seed)
    prior = dict(obs=data["observations"], action=data["actions"], reward=data["rewards"])
    buffer.add(**prior, next_obs=data["next_observations"], terminated=data["terminals"])
    phases = {"offline_step": args.offline_steps, "env_step": args.online_steps}
    run = Run(path, args, ckpt, agent, phases, buffer.gen, evaluate_agent, buffer, env)
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
            # Stored: terminated, not truncated, so a time limit is bootstrapped through.
            buffer.add(obs=obs, action=action, reward=reward, next_obs=next_obs, terminated=terminated)
            metrics = agent.update(buffer.sample(args.batch_size))
            obs = run.after_env_step(next_obs, reward, terminated or truncated, metrics, info)
        run.finish()
    return run.result()


if __name__ == "__main__":
    cli(train, Args)
