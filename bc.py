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

Layout: the algorithm reads top to bottom down to `train()`; the run plumbing after it (metrics log, flags,
checkpoints, exact resume) is the same text in all four algorithm files.
Run:  python bc.py --env-id pen-binary --dataset pen-expert
      python bc.py --env-id door-binary --top-fraction 0.1
Logged (W&B and <run_dir>/metrics.csv): losses/actor, values/{log_prob_mean,log_std_mean},
eval/{return_mean,return_std,
normalized_score,success_final,success_any,success_rate}, charts/{offline_step,global_step,SPS}.
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
from typing import Any, Literal

import numpy as np
import torch
import torch.nn as nn
import tyro
from tqdm.auto import tqdm

from utils.datasets import DatasetError, default_dataset, episode_slices, load_dataset
from utils.envs import EnvError, check_rendering, episode_success, evaluate, make_env


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
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), args.actor_lr,
                                          weight_decay=args.actor_weight_decay)

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One step of -E[log pi(a|s)] on a batch (obs, action; (B, ...)); metrics as 0-dim tensors."""
        log_prob = self.actor.log_prob(batch["obs"], batch["action"])
        actor_loss = -log_prob.mean()
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_opt.step()
        return {"losses/actor": actor_loss.detach(), "values/log_prob_mean": log_prob.detach().mean(),
                "values/log_std_mean": self.actor(batch["obs"][:1]).stddev.log().mean().detach()}

    def state_dict(self) -> dict:
        return {"actor": self.actor.state_dict(), "actor_opt": self.actor_opt.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        for k, v in state.items():
            getattr(self, k).load_state_dict(v)


# ----------------------------------------------------------------------------------------------- train
def evaluate_policy(actor: GaussianActor, args: Args, video: Path | None = None) -> dict[str, float]:
    """`utils.envs.evaluate` with the mean action, returned under eval/ keys; `video`: an mp4 path for the first
    episode. Seeds differ from training's."""
    result = evaluate(lambda o: actor.act(o, deterministic=True), args.env_id, args.eval_episodes,
                      seed=1_000_000 + 1000 * args.seed, video=video)  # seeds disjoint across training seeds
    return {f"eval/{k}": v for k, v in result.items()}


def train(args: Args) -> dict[str, float]:
    """Runs BC for `offline_steps` updates. Returns the final metrics (also in <run>/final.json): `eval/*` at the
    end, repeated as `offline/eval/*` (BC has no online phase, so its offline result is its result),
    `charts/SPS`, `wall_time_s`, `run_dir`.

    Raises:
        ArgumentError: a field out of range, an unusable checkpoint, or a run directory that holds a run.
        EnvError, DatasetError (both ValueErrors): an unknown env, a dataset that does not fit it.
    """
    args, ckpt, path = setup(args)
    env = make_env(args.env_id)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    env.close()
    agent = BC(obs_dim, act_dim, args)
    if ckpt is not None:
        agent.load_state_dict(ckpt["agent"])
    if args.eval_only:
        return evaluate_checkpoint(agent.actor, args)

    dataset = args.dataset or default_dataset(args.env_id)
    data = load_dataset(dataset, env_id=args.env_id, seed=args.dataset_seed, cache_dir=args.data_dir,
                        progress=args.progress)
    data = top_trajectories(data, args.top_fraction)
    obs = torch.as_tensor(data["observations"], device=args.device)
    actions = torch.as_tensor(data["actions"], device=args.device)
    gen = torch.Generator(args.device).manual_seed(args.seed)
    run = Run(path, args, ckpt, agent, {"offline_step": args.offline_steps}, gen)
    if run.finished:
        return run.result()
    with run:
        while run.counters["offline_step"] < args.offline_steps:
            idx = torch.randint(len(obs), (args.batch_size,), generator=gen, device=gen.device)
            run.after_step("offline_step", agent.update({"obs": obs[idx], "action": actions[idx]}))
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
