"""AWR: advantage-weighted regression, with prior data (the on-policy-style baseline of the AWAC paper).

Paper: Peng, Kumar, Zhang, Levine 2019, "Advantage-Weighted Regression: Simple and Scalable Off-Policy
Reinforcement Learning", arXiv:1910.00177, Algorithm 1. Code followed: xbpeng/awr (`learning/awr_agent.py`,
`learning/rl_agent.py`, `awr_configs.py`). The AWAC paper (arXiv:2006.09359, Sec. 5.1) runs it with the prior
data in its buffer ("AWR with prior data").

One AWR iteration (Algorithm 1), on a FIFO buffer D of recent trajectories:
    returns   G_t = r_t + gamma * ((1 - lambda) * V(s_t+1) + lambda * G_t+1)     (TD(lambda), awr_agent._compute_return)
              at an episode's last step: G_T = r_T + gamma * (1 - terminated) * V(s_T+1): a time limit bootstraps,
              a true terminal does not (awr_agent._compute_batch_vals)
    value     critic_steps SGD steps on 0.5 * E[((G - V(s)) / scale)^2], scale = 1 / (1 - gamma)
    advantage A = G - V(s) with G recomputed from the updated V; A normalized to mean 0, std 1 over D
    policy    actor_steps SGD steps on -E[w * log pi(a|s)] + 10 * bound penalty, w = min(exp(A / beta), max_weight)
Policy: Gaussian with a linear mean and a FIXED std (`action_std`), on standardized observations; the bound
penalty 0.5 * sum(max(mu - 1, 0)^2 + max(-1 - mu, 0)^2) keeps the mean inside the action range.

Phases: offline, ceil(offline_steps / actor_steps) iterations on the prior data alone; online, each iteration first
collects at least `samples_per_iter` environment steps in whole episodes, and its step counts scale with the new
samples (critic_steps * new / samples_per_iter, as the code does).

Defaults and their source (awr_configs.py, the values shared by all MuJoCo tasks unless said): samples per iteration
2048, buffer 50,000, 200 critic and 1000 actor steps per iteration, batch 256, gamma 0.99, lambda 0.95, beta 1.0,
weight clip 20, SGD with momentum 0.9, critic lr 1e-2, actor lr 5e-5 and action std 0.2 (the Ant and Humanoid
values: high-dimensional actions, like the hand's), 128-64 ReLU networks, actor output initialized at scale 0.01.

Deviations: the observation normalizer is fitted once, on the prior data (or the first batch of samples without
prior data); the code refits it over the first 300,000 samples. The buffer starts with all the prior data even when
it exceeds `buffer_size` (door-binary holds 106,729 transitions), and online samples then replace the oldest rows;
actions stored are clipped to the action space; minibatches are drawn with replacement (the code takes shuffled
passes). PyTorch instead of TensorFlow; Xavier initialization as in the code.

Layout: Args, networks, losses and update, buffer, evaluation, then `train()`, which reads like the paper's
Algorithm 1. The run bookkeeping (flags, run directory, metrics log, checkpoints, exact resume) lives in utils/run/.
Run:  python awr.py --env-id pen-binary --offline-steps 25000 --online-steps 50000
Logged (W&B and <run_dir>/metrics.csv): losses/{critic,actor,bound}, values/{value_mean,return_mean,advantage_std,
weight_mean,weight_max,clipped_fraction}, eval/{return_mean,return_std,normalized_score,success_*,goal_step,goal_never,
length_mean}, charts/{offline_step,env_step,global_step,iteration,SPS,episodic_return,episodic_length,success_*}, where
success_* is each of success_final, success_any, success_rate (utils.envs.SUCCESS_DEFINITIONS).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from utils.datasets import default_dataset, load_dataset
from utils.envs import evaluate, make_env
from utils.run import AT_LEAST_ONE, DISCOUNT, NON_NEGATIVE, POSITIVE, UNIT, Run, cli, evaluate_only, setup


@dataclass
class Args:
    # Experiment and logging
    seed: int = 0
    """seed of torch, numpy, the environment and the minibatch sampling"""
    device: str = "cpu"
    """torch device, e.g. cpu or cuda"""
    threads: int = 0
    """torch CPU threads (0: torch's default); give parallel runs 1 each"""
    run_dir: str = "runs"
    """directory under which each run writes config.json, metrics.csv, checkpoint.pt and final.json"""
    run_name: str | None = None
    """name of the run's directory (default: <env_id>__awr__<seed>__<unix time>)"""
    wandb_mode: Literal["online", "offline", "disabled"] = "offline"
    """Weights & Biases mode: offline needs no account (upload later with `wandb sync`)"""
    wandb_project: str = "awac"
    """W&B project"""
    wandb_group: str | None = None
    """W&B group, e.g. an experiment name"""
    log_every: int = 1
    """log training metrics after the iteration in which every this many steps is reached (1: every iteration)"""
    progress: bool = True
    """show a progress bar"""

    # Data and environment
    env_id: str = "door-binary"
    """a hand task (pen-binary, door-binary, relocate-binary, hammer-binary) or a gymnasium id"""
    dataset: str | None = None
    """dataset id or .npz/.hdf5 path (default: the env's, e.g. door-binary, HalfCheetah-v5: halfcheetah-awac);
    `none` for AWR from scratch"""
    dataset_seed: int = 0
    """seed the generated dataset was built with (all training seeds share one dataset, as in the paper)"""
    data_dir: str | None = None
    """cache of generated datasets (default: $AWAC_DATA_DIR or ~/.cache/awac/datasets)"""

    # Algorithm
    offline_steps: int = 25_000
    """policy updates on the prior data alone, in iterations of actor_steps (ignored with --dataset none)"""
    online_steps: int | None = None
    """environment steps, collected in batches of samples_per_iter; default 500,000, and a resumed run keeps its
    own unless this is given (a larger value extends it)"""
    samples_per_iter: int = 2048
    """new environment steps per online iteration (whole episodes, so slightly more)"""
    buffer_size: int = 50_000
    """FIFO buffer of the most recent transitions (it starts with all the prior data, even if larger)"""
    critic_steps: int = 200
    """value-function SGD steps per iteration"""
    actor_steps: int = 1000
    """policy SGD steps per iteration"""
    batch_size: int = 256
    """transitions per SGD step"""
    offline_batch_size: int | None = None
    """transitions per SGD step of the offline iterations (default: --batch-size)"""
    hidden_dims: tuple[int, ...] = (128, 64)
    """hidden layer sizes of the policy and the value function"""
    actor_lr: float = 5e-5
    """policy SGD learning rate"""
    critic_lr: float = 1e-2
    """value SGD learning rate"""
    momentum: float = 0.9
    """SGD momentum of both"""
    gamma: float = 0.99
    """discount"""
    td_lambda: float = 0.95
    """lambda of the TD(lambda) returns"""
    beta: float = 1.0
    """temperature of the weights exp(A / beta) on normalized advantages"""
    max_weight: float = 20.0
    """upper clip of the weights"""
    action_std: float = 0.2
    """fixed standard deviation of the Gaussian policy"""
    bound_loss_weight: float = 10.0
    """weight of the penalty on policy means outside [-1, 1]"""

    # Evaluation and checkpoints
    eval_every: int = 10_000
    """evaluate every this many steps of each phase (at the first iteration past each multiple, at each phase's
    start and at the end)"""
    eval_episodes: int = 10
    """episodes per evaluation, deterministic (mean) actions"""
    capture_video: bool = False
    """record the first episode of each evaluation as <run>/videos/<phase>-<step>.mp4 (W&B: eval/video); needs
    MuJoCo rendering (headless: MUJOCO_GL=egl)"""
    save_every: int = 50_000
    """write checkpoint.pt every this many steps of each phase (and at the end)"""
    checkpoint: str | None = None
    """checkpoint.pt to resume training from (in its own run directory), or to evaluate with --eval-only"""
    eval_only: bool = False
    """only evaluate the policy of --checkpoint"""


# Valid ranges of this script's own fields (utils.run checks the common ones); checked before any work.
CHECKS = {
    "samples_per_iter": AT_LEAST_ONE,
    "buffer_size": AT_LEAST_ONE,
    "critic_steps": AT_LEAST_ONE,
    "actor_steps": AT_LEAST_ONE,
    "offline_batch_size": AT_LEAST_ONE,
    "critic_lr": POSITIVE,
    "momentum": DISCOUNT,
    "td_lambda": UNIT,
    "beta": POSITIVE,
    "max_weight": POSITIVE,
    "action_std": POSITIVE,
    "bound_loss_weight": NON_NEGATIVE,
}


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


class Normalizer(nn.Module):
    """Standardizes observations, (..., obs_dim) -> (..., obs_dim), with statistics fitted once by `fit`."""

    def __init__(self, obs_dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(obs_dim))
        self.register_buffer("std", torch.ones(obs_dim))

    def fit(self, obs: np.ndarray) -> None:
        self.mean.copy_(torch.as_tensor(obs.mean(0)))
        self.std.copy_(torch.as_tensor(np.maximum(obs.std(0), 1e-2)))  # constant features must not explode

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return (obs - self.mean) / self.std


def awr_mlp(in_dim: int, out_dim: int, hidden_dims: tuple[int, ...], out_scale: float = 1.0) -> nn.Sequential:
    """`MLP` with Xavier-uniform weights and zero biases (AWR's net_util), the last layer scaled by `out_scale`."""
    net = MLP(in_dim, out_dim, hidden_dims)
    for layer in net:
        if isinstance(layer, nn.Linear):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
    net[-1].weight.data.mul_(out_scale)
    return net


class FixedStdActor(nn.Module):
    """pi(a|s) = N(f(normalize(s)), action_std^2 I): a linear-output mean and a fixed std (AWR's rl_agent)."""

    def __init__(
        self, obs_dim: int, act_dim: int, hidden_dims: tuple[int, ...], action_std: float, normalizer: Normalizer
    ):
        super().__init__()
        self.normalizer = normalizer
        self.net = awr_mlp(obs_dim, act_dim, hidden_dims, out_scale=0.01)
        self.action_std = action_std

    def forward(self, obs: torch.Tensor) -> torch.distributions.Normal:
        """obs (B, obs_dim) -> a Normal over (B, act_dim)."""
        mean = self.net(self.normalizer(obs))
        return torch.distributions.Normal(mean, torch.full_like(mean, self.action_std), validate_args=False)

    def log_prob(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """log pi(action|obs), summed over action dimensions: (B,)."""
        return self(obs).log_prob(action).sum(-1)

    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        """One action (act_dim,) for one observation (obs_dim,): the mean, or a sample."""
        dist = self(torch.as_tensor(obs, dtype=torch.float32, device=self.normalizer.mean.device))
        return (dist.mean if deterministic else dist.sample()).cpu().numpy()


# ----------------------------------------------------------------------------------------------- losses, update
def td_lambda_returns(
    reward: np.ndarray,
    next_value: np.ndarray,
    terminated: np.ndarray,
    episode_end: np.ndarray,
    gamma: float,
    td_lambda: float,
) -> np.ndarray:
    """TD(lambda) returns (N,) of consecutive transitions (N,) (awr_agent._compute_return):
    G_t = r_t + gamma * ((1 - lambda) * V(s_t+1) + lambda * G_t+1) inside an episode, and
    G_t = r_t + gamma * (1 - terminated_t) * V(s_t+1) at an episode's last transition (time limit: bootstrap)."""
    returns = np.empty(len(reward), dtype=np.float64)
    next_return = 0.0
    for t in range(len(reward) - 1, -1, -1):
        if episode_end[t]:
            next_return = reward[t] + gamma * (1.0 - terminated[t]) * next_value[t]
        else:
            next_return = reward[t] + gamma * ((1.0 - td_lambda) * next_value[t] + td_lambda * next_return)
        returns[t] = next_return
    return returns.astype(np.float32)


def advantage_weights(advantage: np.ndarray, beta: float, max_weight: float) -> np.ndarray:
    """w = min(exp(A_n / beta), max_weight), A_n the advantages (N,) standardized over the buffer (awr_agent.
    _calc_adv, _calc_adv_weights)."""
    normalized = (advantage - advantage.mean()) / (advantage.std() + 1e-5)
    return np.minimum(np.exp(normalized / beta), max_weight).astype(np.float32)


def bound_loss(mean: torch.Tensor) -> torch.Tensor:
    """0.5 * E[sum_k max(mu_k - 1, 0)^2 + max(-1 - mu_k, 0)^2]: zero while the mean stays in [-1, 1]."""
    return 0.5 * (F.relu(mean - 1.0) ** 2 + F.relu(-1.0 - mean) ** 2).sum(-1).mean()


class AWR:
    """Normalizer, policy, value function and their SGD optimizers; `iteration(buffer, ...)` is one AWR iteration,
    built from `critic_update(batch)` and `actor_update(batch)`."""

    def __init__(self, obs_dim: int, act_dim: int, args: Args):
        self.args = args
        self.normalizer = Normalizer(obs_dim).to(args.device)
        self.actor = FixedStdActor(obs_dim, act_dim, args.hidden_dims, args.action_std, self.normalizer)
        self.critic = awr_mlp(obs_dim, 1, args.hidden_dims)
        self.actor.to(args.device), self.critic.to(args.device)
        self.value_scale = 1.0 / (1.0 - args.gamma)  # the critic predicts V / scale (AWR's value normalizer)
        self.actor_opt = torch.optim.SGD(self.actor.net.parameters(), args.actor_lr, momentum=args.momentum)
        self.critic_opt = torch.optim.SGD(self.critic.parameters(), args.critic_lr, momentum=args.momentum)
        self.gen = torch.Generator(args.device).manual_seed(args.seed)

    @torch.no_grad()
    def value(self, obs: np.ndarray) -> np.ndarray:
        """V(s) for observations (N, obs_dim) -> (N,), in chunks."""
        chunks = (torch.as_tensor(obs[i : i + 65536], device=self.args.device) for i in range(0, len(obs), 65536))
        out = [self.critic(self.normalizer(chunk)) for chunk in chunks]
        return (torch.cat(out).squeeze(-1) * self.value_scale).cpu().numpy()

    def critic_update(self, batch: dict[str, torch.Tensor]) -> float:
        """One SGD step on 0.5 * E[((G - V(s)) / scale)^2] for a batch of obs (B, obs_dim), return (B,)."""
        v = self.critic(self.normalizer(batch["obs"])).squeeze(-1)
        loss = 0.5 * ((batch["return"] / self.value_scale - v) ** 2).mean()
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.critic_opt.step()
        return loss.item()

    def actor_update(self, batch: dict[str, torch.Tensor]) -> tuple[float, float]:
        """One SGD step on -E[w * log pi(a|s)] + bound_loss_weight * bound_loss for obs, action, weight (B, ...)."""
        dist = self.actor(batch["obs"])
        loss = -(batch["weight"] * dist.log_prob(batch["action"]).sum(-1)).mean()
        bound = bound_loss(dist.mean)
        self.actor_opt.zero_grad(set_to_none=True)
        (loss + self.args.bound_loss_weight * bound).backward()
        self.actor_opt.step()
        return loss.item(), bound.item()

    def _batches(self, n: int, steps: int, columns: dict[str, np.ndarray], batch_size: int):
        tensors = {k: torch.as_tensor(v, device=self.args.device) for k, v in columns.items()}
        for _ in range(steps):
            idx = torch.randint(n, (batch_size,), generator=self.gen, device=self.gen.device)
            yield {k: v[idx] for k, v in tensors.items()}

    def returns(self, data: dict[str, np.ndarray]) -> np.ndarray:
        """TD(lambda) returns of the whole buffer under the current value function."""
        a = self.args
        return td_lambda_returns(
            data["reward"], self.value(data["next_obs"]), data["terminated"], data["episode_end"], a.gamma, a.td_lambda
        )

    def iteration(
        self, data: dict[str, np.ndarray], critic_steps: int, actor_steps: int, batch_size: int
    ) -> dict[str, float]:
        """Fits V to TD(lambda) returns for `critic_steps`, then the policy to advantage-weighted actions for
        `actor_steps`, in minibatches of `batch_size` from the buffer's columns (N, ...). Returns the iteration's
        statistics."""
        n, obs = len(data["reward"]), data["obs"]
        columns = {"obs": obs, "return": self.returns(data)}
        critic_losses = [self.critic_update(b) for b in self._batches(n, critic_steps, columns, batch_size)]
        returns, values = self.returns(data), self.value(obs)
        advantage = returns - values
        weights = advantage_weights(advantage, self.args.beta, self.args.max_weight)
        columns = {"obs": obs, "action": data["action"], "weight": weights}
        actor_losses = [self.actor_update(b) for b in self._batches(n, actor_steps, columns, batch_size)]
        mean = lambda x: float(np.mean(x)) if len(x) else float("nan")
        losses = dict(critic=mean(critic_losses), actor=mean([a for a, _ in actor_losses]))
        losses |= dict(bound=mean([b for _, b in actor_losses]))
        values = dict(value_mean=values.mean(), return_mean=returns.mean(), advantage_std=advantage.std())
        values |= dict(weight_mean=weights.mean(), weight_max=weights.max())
        values |= dict(clipped_fraction=(weights >= self.args.max_weight).mean())
        return {f"losses/{k}": v for k, v in losses.items()} | {f"values/{k}": float(v) for k, v in values.items()}

    def state_dict(self) -> dict:
        return {k: getattr(self, k).state_dict() for k in ("normalizer", "actor", "critic", "actor_opt", "critic_opt")}

    def load_state_dict(self, state: dict) -> None:
        for k, v in state.items():
            getattr(self, k).load_state_dict(v)


# ----------------------------------------------------------------------------------------------- buffer
class TrajectoryBuffer:
    """FIFO buffer of consecutive transitions (obs, action, reward, next_obs, terminated, episode_end) as numpy
    arrays; capacity max(buffer_size, prior data), the oldest rows leaving first."""

    KEYS = ("obs", "action", "reward", "next_obs", "terminated", "episode_end")

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.data: dict[str, np.ndarray] = {}

    def add(self, **columns: np.ndarray) -> None:
        """Appends n consecutive transitions, each column (n, ...), and drops the oldest rows beyond capacity."""
        cols = {k: np.asarray(columns[k], dtype=np.float32) for k in self.KEYS}
        self.data = {k: np.concatenate([self.data[k], v]) if self.data else v for k, v in cols.items()}
        self.data = {k: v[-self.capacity :] for k, v in self.data.items()}

    def __len__(self) -> int:
        return len(self.data["reward"]) if self.data else 0

    @property
    def pos(self) -> int:
        return len(self)

    def last(self, n: int, end: int | None = None) -> dict[str, np.ndarray]:
        """The last min(n, len) transitions, oldest first (what a checkpoint keeps of online experience). AWR saves
        only the state it is in, so `end` (where the buffer ended when that state was taken) is always `pos`."""
        assert end is None or end == self.pos
        return {k: v[len(self) - min(n, len(self)) :] for k, v in self.data.items()}


# ----------------------------------------------------------------------------------------------- train
def evaluate_policy(actor: FixedStdActor, args: Args, video: Path | None = None) -> dict[str, float]:
    """`utils.envs.evaluate` with the mean action, returned under eval/ keys; `video`: an mp4 path for the first
    episode. Seeds differ from training's."""
    seed = 1_000_000 + 1000 * args.seed  # disjoint from the training env's seeds, and across training seeds
    result = evaluate(lambda o: actor.act(o, deterministic=True), args.env_id, args.eval_episodes, seed, video)
    return {f"eval/{k}": v for k, v in result.items()}


def collect(env, actor: FixedStdActor, args: Args, env_step: int, run: Run) -> dict[str, np.ndarray]:
    """At least `samples_per_iter` environment steps in whole episodes (the budget may cut the last one short) with
    the stochastic policy, from a reset seeded by `seed + env_step` (so a resumed run collects the same). Logs each
    episode's return, length and success (utils.envs.SUCCESS_DEFINITIONS). Returns columns TrajectoryBuffer.KEYS,
    each (n, ...); episode_end is True at the last step of every episode, also where the budget cut it (a time
    limit: bootstrapped)."""
    cols: dict[str, list] = {k: [] for k in TrajectoryBuffer.KEYS}
    step, start = env_step, env_step
    obs, _ = env.reset(seed=args.seed + env_step)
    ep_return, ep_len, goal, done = 0.0, 0, [], False
    while not done or step - start < args.samples_per_iter:
        if done:
            obs, _ = env.reset()
            ep_return, ep_len, goal = 0.0, 0, []
        action = np.clip(actor.act(obs.astype(np.float32), deterministic=False), -1.0, 1.0)
        next_obs, reward, terminated, truncated, info = env.step(action)
        step += 1
        if "success" in info:
            goal.append(bool(info["success"]))
        ep_return, ep_len = ep_return + float(reward), ep_len + 1
        done = terminated or truncated
        last = step >= args.online_steps  # the budget cuts the episode: bootstrap it
        for k, v in zip(TrajectoryBuffer.KEYS, (obs, action, reward, next_obs, terminated, done or last)):
            cols[k].append(v)
        obs = next_obs
        if done:
            run.log_episode(ep_return, ep_len, goal, step, run.counters["offline_step"] + step)
        if last:
            break
    return {k: np.asarray(v) for k, v in cols.items()}


def train(args: Args) -> dict[str, float]:
    """Runs AWR: iterations on the prior data alone until `offline_steps` policy updates, then online iterations
    that each collect `samples_per_iter` environment steps first, until `online_steps`. Returns the final metrics
    (also in <run>/final.json): `offline/eval/*` before the online phase, `eval/*` at the end, `charts/SPS`
    (policy updates offline and environment steps online, per second), `wall_time_s`, `run_dir`.

    Raises:
        ArgumentError: a field out of range, an unusable checkpoint, or a run directory that holds a run.
        EnvError, DatasetError (both ValueErrors): an unknown env, a dataset that does not fit it.
    """
    args, ckpt, path = setup(args, CHECKS)
    env = make_env(args.env_id, seed=args.seed)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    agent = AWR(obs_dim, act_dim, args)
    if ckpt is not None:
        agent.load_state_dict(ckpt["agent"])
    evaluate_agent = lambda video: evaluate_policy(agent.actor, args, video)
    if args.eval_only:
        return evaluate_only(evaluate_agent, args)

    dataset = args.dataset or default_dataset(args.env_id)
    from_scratch = dataset.lower() == "none"
    buffer = TrajectoryBuffer(args.buffer_size)
    if not from_scratch:
        data = load_dataset(dataset, args.env_id, args.dataset_seed, args.data_dir, args.progress)
        buffer.capacity = max(args.buffer_size, len(data["rewards"]))
        episode_end = data["terminals"] | data["timeouts"]
        episode_end[-1] = True  # the dataset's last episode ends with it
        prior = dict(obs=data["observations"], action=data["actions"], reward=data["rewards"])
        buffer.add(**prior, next_obs=data["next_observations"], terminated=data["terminals"], episode_end=episode_end)
        if ckpt is None:
            agent.normalizer.fit(data["observations"])
    total_offline = 0 if from_scratch else math.ceil(args.offline_steps / args.actor_steps) * args.actor_steps
    phases = {"offline_step": total_offline, "env_step": args.online_steps}
    run = Run(path, args, ckpt, agent, phases, agent.gen, evaluate_agent, buffer, env, counters=("iteration",))
    if run.finished:
        return run.result()
    counters = run.counters
    with run:
        # Offline: AWR iterations on the prior data alone.
        while counters["offline_step"] < total_offline:
            batch_size = args.offline_batch_size or args.batch_size
            metrics = agent.iteration(buffer.data, args.critic_steps, args.actor_steps, batch_size)
            counters["iteration"] += 1
            run.after_step("offline_step", {**metrics, "charts/iteration": counters["iteration"]}, args.actor_steps)
        run.end_offline()

        # Online: each iteration collects whole episodes with the stochastic policy, then updates on the buffer.
        run.start_online(reset_env=False)
        while counters["env_step"] < args.online_steps:
            cols = collect(env, agent.actor, args, counters["env_step"], run)
            new = len(cols["reward"])
            if from_scratch and counters["iteration"] == 0:
                agent.normalizer.fit(cols["obs"])
            buffer.add(**cols)
            critic_steps = math.ceil(args.critic_steps * new / args.samples_per_iter)
            actor_steps = math.ceil(args.actor_steps * new / args.samples_per_iter)
            metrics = agent.iteration(buffer.data, critic_steps, actor_steps, args.batch_size)
            counters["iteration"] += 1
            run.after_step("env_step", {**metrics, "charts/iteration": counters["iteration"]}, new)
        run.finish()
    return run.result()


if __name__ == "__main__":
    cli(train, Args)
