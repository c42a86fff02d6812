"""SAC and SAC from demonstrations (SACfD): the off-policy baselines of the AWAC paper's Figure 3.

Papers: Haarnoja et al. 2018, "Soft Actor-Critic Algorithms and Applications" (arXiv:1812.05905), Algorithm 1 with
automatic entropy tuning; Vecerik et al. 2017 (arXiv:1707.08817) for placing demonstrations in the replay buffer;
Nair et al. 2020 (AWAC, arXiv:2006.09359) Sec. 5.1 for the three variants compared on the hand tasks. Code
followed: CleanRL `sac_continuous_action.py` (networks, squashing, temperature loss).

Equations (s, a, r, s' from the buffer; a~ a fresh reparameterized sample a~ = tanh(mu + sigma * eps)):
    critic       L(Q_i) = E[(Q_i(s, a) - y)^2],
                 y = r + gamma * (1 - terminated) * (min_j Q'_j(s', a~') - alpha * log pi(a~'|s'))
    actor        L(pi) = E[alpha * log pi(a~|s) - min_i Q_i(s, a~)]
    temperature  L(alpha) = E[-alpha * (log pi(a~|s) + target_entropy)],  target_entropy = -act_dim
    log pi(a|s) = log N(u; mu, sigma) - sum_k log(1 - tanh(u_k)^2),  a = tanh(u)   (SAC paper, eq. 26)
    BC pretraining (SACfD pretrain): L(pi) = -E[log pi(a|s)] on the prior data, a clipped into (-1, 1).

Variants (AWAC paper, Fig. 3):
    SAC                python sac_fd.py --dataset none
    SACfD              python sac_fd.py                         (prior data in the buffer, offline updates first)
    SACfD (pretrain)   python sac_fd.py --bc-pretrain-steps 25000
Defaults and their source: lr 3e-4 for actor, critics and temperature, batch 256, tau 5e-3, gamma 0.99, 2x256
networks, target entropy -act_dim, one update per env step, actor updated every step (SAC paper Table 1 and
Algorithm 1); initial alpha 1 and log-std squashed into [-5, 2] (CleanRL); 5000 uniform-random steps before
learning from scratch (CleanRL learning_starts). Offline updates on the prior data: 25,000, matching AWAC's
pretraining budget so that the two differ only in their updates.

Deviations: CleanRL updates the actor every 2nd step with a Q learning rate of 1e-3; we follow the paper (every
step, 3e-4). No priority replay of demonstrations (DDPGfD): prior data and online data are sampled uniformly, as
in the AWAC paper's SACfD. Twin critics run as one batched ensemble.

How the update runs (as in awac.py; none of it changes what is computed beyond float rounding): fused Adam, one
foreach lerp for the targets, metrics kept on the device until logged, denormals flushed to zero;
hidden layers under bfloat16 autocast, the rest float32, where measured faster (`--precision auto`);
`--compile on` compiles the critic and actor losses (separately: the actor's loss uses the critic just stepped).

Layout: Args, networks, losses and update, buffer, evaluation, then `train()`, which reads like the paper's
Algorithm 1. The run bookkeeping (flags, run directory, metrics log, checkpoints, exact resume) lives in utils/run/.
Run:  python sac_fd.py --env-id pen-binary --offline-steps 25000 --online-steps 50000
Logged (W&B and <run_dir>/metrics.csv): losses/{critic,actor,alpha,bc}, values/{q_mean,q_std,target_q_mean,alpha,
entropy,log_prob_mean}, eval/{return_mean,return_std,normalized_score,success_*,goal_step,goal_never,length_mean},
charts/{bc_step,offline_step,env_step,global_step,SPS,episodic_return,episodic_length,success_*}, where success_* is
each of success_final, success_any, success_rate (utils.envs.SUCCESS_DEFINITIONS).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from utils.datasets import default_dataset, load_dataset
from utils.envs import evaluate, make_env
from utils.run import (
    AT_LEAST_ONE,
    BATCH_SIZE,
    NON_NEGATIVE,
    POSITIVE,
    Run,
    cli,
    evaluate_only,
    fast_path,
    setup,
)


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
    compile: Literal["auto", "on", "off"] = "off"
    """torch.compile the losses; off by default: SAC's two compiled losses measured 0.85-0.87x fp32 (AMX CPU);
    auto: awac.py's rule (utils.run.precision.compile_pays), not measured for SAC"""
    run_dir: str = "runs"
    """directory under which each run writes config.json, metrics.csv, checkpoint.pt and final.json"""
    run_name: str | None = None
    """name of the run's directory (default: <env_id>__sac_fd__<seed>__<unix time>)"""
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
    """dataset id or .npz/.hdf5 path (default: the env's, e.g. door-binary, HalfCheetah-v5: halfcheetah-awac);
    `none` for SAC from scratch"""
    dataset_seed: int = 0
    """seed the generated dataset was built with (all training seeds share one dataset, as in the paper)"""
    data_dir: str | None = None
    """cache of generated datasets (default: $AWAC_DATA_DIR or ~/.cache/awac/datasets)"""

    # Algorithm
    offline_steps: int = 25_000
    """SAC updates on the prior data before any interaction (ignored with --dataset none)"""
    online_steps: int | None = None
    """environment steps of online training, one update each; default 500,000, and a resumed run keeps its own
    unless this is given (a larger value extends it)"""
    bc_pretrain_steps: int = 0
    """maximum-likelihood updates of the actor on the prior data before any SAC update (SACfD pretrain)"""
    learning_starts: int = 5000
    """with --dataset none: uniform-random actions and no updates for this many first env steps (CleanRL)"""
    batch_size: int = 256
    """transitions per update"""
    offline_batch_size: int | None = None
    """transitions per BC-pretraining and offline update (default: --batch-size)"""
    hidden_dims: tuple[int, ...] = (256, 256)
    """hidden layer sizes of actor and critics"""
    actor_lr: float = 3e-4
    """actor Adam learning rate"""
    critic_lr: float = 3e-4
    """critic Adam learning rate"""
    alpha_lr: float = 3e-4
    """temperature Adam learning rate"""
    gamma: float = 0.99
    """discount"""
    tau: float = 5e-3
    """Polyak averaging rate of the target critics"""
    init_alpha: float = 1.0
    """initial entropy temperature"""
    autotune: bool = True
    """tune alpha toward the target entropy -act_dim; else keep init_alpha"""
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
CHECKS = dict(bc_pretrain_steps=NON_NEGATIVE, learning_starts=NON_NEGATIVE, batch_size=BATCH_SIZE)
CHECKS |= dict(offline_batch_size=BATCH_SIZE, buffer_size=AT_LEAST_ONE, critic_lr=POSITIVE, alpha_lr=POSITIVE)
CHECKS |= dict(init_alpha=POSITIVE)


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


class TanhGaussianActor(nn.Module):
    """a = tanh(u), u ~ N(mu(s), diag(sigma(s)^2)); log sigma squashed into [-5, 2] by tanh (CleanRL)."""

    LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0

    def __init__(self, obs_dim: int, act_dim: int, hidden_dims: tuple[int, ...], bf16: bool = False):
        super().__init__()
        self.net = MLP(obs_dim, 2 * act_dim, hidden_dims, bf16)

    def forward(self, obs: torch.Tensor) -> torch.distributions.Normal:
        """obs (B, obs_dim) -> the Normal over pre-squash actions u, (B, act_dim)."""
        mean, log_std = self.net(obs).chunk(2, -1)
        log_std = self.LOG_STD_MIN + 0.5 * (self.LOG_STD_MAX - self.LOG_STD_MIN) * (torch.tanh(log_std) + 1)
        return torch.distributions.Normal(mean, log_std.exp(), validate_args=False)

    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterized action (B, act_dim) in (-1, 1) and its log-probability (B,)."""
        dist = self(obs)
        u = dist.rsample()
        return torch.tanh(u), squashed_log_prob(dist, u)

    def log_prob(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """log pi(action|obs), (B,), for actions in [-1, 1]; they are clipped to +-(1 - 1e-4) so atanh is finite."""
        u = torch.atanh(action.clamp(-1 + 1e-4, 1 - 1e-4))
        return squashed_log_prob(self(obs), u)

    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        """One action (act_dim,) for one observation (obs_dim,): tanh of the mean, or a sample."""
        dist = self(torch.as_tensor(obs, dtype=torch.float32, device=next(self.parameters()).device))
        return torch.tanh(dist.mean if deterministic else dist.sample()).cpu().numpy()


# ----------------------------------------------------------------------------------------------- losses, update
def squashed_log_prob(dist: torch.distributions.Normal, u: torch.Tensor) -> torch.Tensor:
    """log pi(tanh(u)) = sum_k [log N(u_k) - log(1 - tanh(u_k)^2)], (B,), with the stable identity
    log(1 - tanh(u)^2) = 2 * (log 2 - u - softplus(-2u)) (SAC paper, eq. 26)."""
    return (dist.log_prob(u) - 2 * (np.log(2) - u - F.softplus(-2 * u))).sum(-1)


def soft_critic_target(
    reward: torch.Tensor,
    terminated: torch.Tensor,
    next_q: torch.Tensor,
    next_log_prob: torch.Tensor,
    alpha: float | torch.Tensor,
    gamma: float,
) -> torch.Tensor:
    """y = r + gamma * (1 - terminated) * (min_i Q'_i(s', a') - alpha * log pi(a'|s')): reward, terminated,
    next_log_prob (B,), next_q (2, B) -> (B,). Truncated transitions are not terminated: they bootstrap."""
    return reward + gamma * (1.0 - terminated) * (next_q.min(0).values - alpha * next_log_prob)


def temperature_loss(log_alpha: torch.Tensor, log_prob: torch.Tensor, target_entropy: float) -> torch.Tensor:
    """L(alpha) = E[-alpha * (log pi + target_entropy)]: alpha grows while the entropy -log pi is below target."""
    return -(log_alpha.exp() * (log_prob.detach() + target_entropy)).mean()


class SAC:
    """Actor, twin critics, their targets, the temperature and the optimizers; `update(batch)` is one SAC step,
    `bc_update(batch)` one maximum-likelihood step of the actor."""

    def __init__(self, obs_dim: int, act_dim: int, args: Args):
        self.args = args
        bf16, compiled = fast_path(args)
        self.actor = TanhGaussianActor(obs_dim, act_dim, args.hidden_dims, bf16).to(args.device)
        self.critic = TwinQ(obs_dim, act_dim, args.hidden_dims, bf16=bf16).to(args.device)
        self.target_critic = TwinQ(obs_dim, act_dim, args.hidden_dims, bf16=bf16).to(args.device)
        self.target_critic.load_state_dict(self.critic.state_dict())
        self.target_critic.requires_grad_(False)
        self.log_alpha = torch.tensor(float(np.log(args.init_alpha)), device=args.device, requires_grad=True)
        self.target_entropy = -float(act_dim)
        # fused: one kernel steps every parameter (same math as the default, to float rounding)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), args.actor_lr, fused=True)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), args.critic_lr, fused=True)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], args.alpha_lr)
        # each loss is compiled on its own: the actor's uses the critic just stepped, so they cannot share a backward
        compile_ = (lambda f: torch.compile(f, dynamic=False)) if compiled else (lambda f: f)
        self.critic_loss, self.actor_loss = compile_(self.compute_critic_loss), compile_(self.compute_actor_loss)

    def compute_critic_loss(
        self, batch: dict[str, torch.Tensor], alpha: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Twin-critic TD loss (scalar) and its metrics (0-dim tensors) on a batch (obs, action, reward, next_obs,
        terminated; (B, ...)); `alpha` the current temperature (0-dim, no gradient)."""
        with torch.no_grad():
            next_action, next_log_prob = self.actor.sample(batch["next_obs"])
            target = soft_critic_target(
                batch["reward"],
                batch["terminated"],
                self.target_critic(batch["next_obs"], next_action),
                next_log_prob,
                alpha,
                self.args.gamma,
            )
        q = self.critic(batch["obs"], batch["action"])
        critic_loss = ((q - target) ** 2).mean(-1).sum()
        return critic_loss, {
            "values/q_mean": q.detach().mean(),
            "values/q_std": q.detach().std(),
            "values/target_q_mean": target.mean(),
        }

    def compute_actor_loss(self, obs: torch.Tensor, alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Actor loss (scalar) and the log-probabilities (B,) of its fresh actions, for obs (B, obs_dim)."""
        action, log_prob = self.actor.sample(obs)
        return (alpha * log_prob - self.critic(obs, action).min(0).values).mean(), log_prob

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One critic, actor and temperature step on one batch (obs, action, reward, next_obs, terminated);
        returns the metrics as 0-dim tensors (`float(v)` reads one), so an update never waits for the device."""
        alpha = self.log_alpha.exp().detach()
        critic_loss, metrics = self.critic_loss(batch, alpha)
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()

        self.critic.requires_grad_(False)  # the actor's loss differentiates through Q, not into it
        actor_loss, log_prob = self.actor_loss(batch["obs"], alpha)
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_opt.step()
        self.critic.requires_grad_(True)

        alpha_loss = temperature_loss(self.log_alpha, log_prob, self.target_entropy)
        if self.args.autotune:
            self.alpha_opt.zero_grad(set_to_none=True)
            alpha_loss.backward()
            self.alpha_opt.step()
        with torch.no_grad():  # Polyak averaging of all target parameters in one call
            torch._foreach_lerp_(list(self.target_critic.parameters()), list(self.critic.parameters()), self.args.tau)
        log_prob = log_prob.detach()
        return {
            "losses/critic": critic_loss.detach(),
            "losses/actor": actor_loss.detach(),
            "losses/alpha": alpha_loss.detach(),
            **metrics,
            "values/alpha": alpha,
            "values/entropy": -log_prob.mean(),
            "values/log_prob_mean": log_prob.mean(),
        }

    def bc_update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One step of -E[log pi(a|s)] on prior-data actions (SACfD pretrain); the loss as a 0-dim tensor."""
        loss = -self.actor.log_prob(batch["obs"], batch["action"]).mean()
        self.actor_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.actor_opt.step()
        return {"losses/bc": loss.detach()}

    def state_dict(self) -> dict:
        state = {
            k: getattr(self, k).state_dict()
            for k in ("actor", "critic", "target_critic", "actor_opt", "critic_opt", "alpha_opt")
        }
        return {**state, "log_alpha": self.log_alpha.detach().clone()}

    def load_state_dict(self, state: dict) -> None:
        for k, v in state.items():
            if k == "log_alpha":
                self.log_alpha.data.copy_(v)
            else:
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
def evaluate_policy(actor: TanhGaussianActor, args: Args, video: Path | None = None) -> dict[str, float]:
    """`utils.envs.evaluate` with the mean action, returned under eval/ keys; `video`: an mp4 path for the first
    episode. Seeds differ from training's."""
    seed = 1_000_000 + 1000 * args.seed  # disjoint from the training env's seeds, and across training seeds
    result = evaluate(lambda o: actor.act(o, deterministic=True), args.env_id, args.eval_episodes, seed, video)
    return {f"eval/{k}": v for k, v in result.items()}


def train(args: Args) -> dict[str, float]:
    """Runs SAC: `bc_pretrain_steps` actor updates by maximum likelihood and `offline_steps` SAC updates on the
    prior data (none of either with --dataset none), then `online_steps` environment steps with one update each,
    adding new transitions to the same buffer. Returns the final metrics (also in <run>/final.json):
    `offline/eval/*` and `offline/wall_time_s` before the online phase, `eval/*` at the end, `charts/SPS`
    (steps of this process per second), `wall_time_s` (over resumes), `run_dir`.

    Raises:
        ArgumentError: a field out of range, an unusable checkpoint, or a run directory that holds a run.
        EnvError, DatasetError (both ValueErrors): an unknown env, a dataset that does not fit it.
    """
    args, ckpt, path = setup(args, CHECKS)
    env = make_env(args.env_id, seed=args.seed)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    agent = SAC(obs_dim, act_dim, args)
    if ckpt is not None:
        agent.load_state_dict(ckpt["agent"])
    evaluate_agent = lambda video: evaluate_policy(agent.actor, args, video)
    if args.eval_only:
        return evaluate_only(evaluate_agent, args)

    dataset = args.dataset or default_dataset(args.env_id)
    from_scratch = dataset.lower() == "none"
    buffer = ReplayBuffer(obs_dim, act_dim, max(args.buffer_size, 1), args.device, args.seed)
    if not from_scratch:
        data = load_dataset(dataset, args.env_id, args.dataset_seed, args.data_dir, args.progress)
        prior = dict(obs=data["observations"], action=data["actions"], reward=data["rewards"])
        buffer.add(**prior, next_obs=data["next_observations"], terminated=data["terminals"])
    bc_steps, offline_steps = (0, 0) if from_scratch else (args.bc_pretrain_steps, args.offline_steps)
    phases = {"bc_step": bc_steps, "offline_step": offline_steps, "env_step": args.online_steps}
    run = Run(path, args, ckpt, agent, phases, buffer.gen, evaluate_agent, buffer, env)
    if run.finished:
        return run.result()
    with run:
        # Offline (SACfD): optional BC pretraining of the actor, then SAC updates on the prior data alone.
        batch_size = args.offline_batch_size or args.batch_size
        while run.counters["bc_step"] < bc_steps:
            run.after_step("bc_step", agent.bc_update(buffer.sample(batch_size)))
        while run.counters["offline_step"] < offline_steps:
            run.after_step("offline_step", agent.update(buffer.sample(batch_size)))
        run.end_offline()

        # Online: new experience joins the same buffer; from scratch, the first `learning_starts` steps act
        # uniformly at random and do not update.
        obs = run.start_online()
        random_steps = args.learning_starts if from_scratch else 0
        while run.counters["env_step"] < args.online_steps:
            learning = run.counters["env_step"] >= random_steps
            if learning:
                action = agent.actor.act(obs.astype(np.float32), deterministic=False)
            else:
                action = env.action_space.sample()
            next_obs, reward, terminated, truncated, info = env.step(action)
            # Stored: terminated, not truncated, so a time limit is bootstrapped through.
            buffer.add(obs=obs, action=action, reward=reward, next_obs=next_obs, terminated=terminated)
            metrics = agent.update(buffer.sample(args.batch_size)) if learning else None
            obs = run.after_env_step(next_obs, reward, terminated or truncated, metrics, info)
        run.finish()
    return run.result()


if __name__ == "__main__":
    cli(train, Args)
