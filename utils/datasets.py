"""Offline datasets for the paper's setting: demonstrations plus behavior-cloned trajectories, in D4RL's format.

The AWAC paper (Nair et al. 2020, Sec. 5.1) gives each hand task "25 human demonstrations and 500 trajectories of
a behavior-cloned policy trained on the demonstrations". Only the door task's human demonstrations could be
obtained (see `assets/adroit/README.md`), so:

| id                  | what it is                                                                         |
|---------------------|------------------------------------------------------------------------------------|
| `door-human`        | the 25 real human demonstrations of hand_dapg, replayed from their initial states   |
|                     | in AdroitHandDoor-v1 with actions clipped to [-1, 1] (D4RL's and Minari's recipe)   |
| `<task>-expert`     | 25 episodes of the Adroit authors' DAPG expert policy, actions sampled with its     |
|                     | log_std and clipped (D4RL's expert recipe); for pen and relocate a STAND-IN for the |
|                     | human demonstrations, which are expert-policy data, not human data                 |
| `<task>-bc`         | 500 episodes of a Gaussian behavior-cloned policy trained on the task's             |
|                     | demonstrations (door: human; pen, relocate: expert), actions sampled and clipped    |
| `<task>-binary`     | demonstrations followed by the BC episodes: the paper's prior data                 |

Hammer ships no expert policy: `hammer-expert`, `hammer-bc` and `hammer-binary` are built once from a DAPG policy
file of the user's (`build hammer-binary --expert-policy PATH.npz`, same .npz format as `assets/adroit/`) and then
found in the cache like any other id. `--expert-policy` also replaces the shipped expert of pen, door or relocate
for one build; a cached dataset made from another expert is never reused silently (see `load_cached`).

Every generated dataset carries the binary reward of `utils.envs` (0 on success, -1 otherwise), `terminals`
all False (the tasks have no terminal state) and `timeouts` True on the last step of every episode. Generated
datasets are built on first use and cached as compressed .npz in `--cache-dir`, or `$AWAC_DATA_DIR`, or
`~/.cache/awac/datasets`. Any number of processes may build or read one id at once: a per-id lock makes the
first build it and the others wait for its file (see `load_cached`). The same seed on the same machine gives the
same arrays (MuJoCo and the BC training are deterministic for a fixed thread count).

Format (D4RL's keys): `observations (N, obs_dim) float32`, `actions (N, act_dim) float32`, `rewards (N,) float32`,
`next_observations (N, obs_dim) float32`, `terminals (N,) bool`, `timeouts (N,) bool`, and `metadata`, a dict
(env_id, source, recipe, seed, num_episodes, num_transitions, ...).

Command line:
    python -m utils.datasets list
    python -m utils.datasets build door-binary [--seed 0] [--cache-dir DIR] [--force] [--expert-policy PATH.npz]
    python -m utils.datasets summary PATH_OR_ID
    python -m utils.datasets export PATH_OR_ID --minari NAME [--env-id ID]   (a local Minari dataset; see export_minari)
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
from tqdm.auto import tqdm

from utils.envs import HAND_TASKS, is_success, make_env, normalized_score

ASSETS = Path(__file__).resolve().parent / "assets" / "adroit"
ARRAY_KEYS = ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")
REQUIRED_KEYS = ("observations", "actions", "rewards", "terminals")


class DatasetError(ValueError):
    """A dataset that cannot be used: unknown id, unreadable or corrupt file, missing keys, bad values or shapes."""


@dataclass(frozen=True)
class DatasetSpec:
    """How a named dataset is made: `kind` is human | expert | bc | binary (the prior data: demonstrations + BC
    episodes); `env_id` a `utils.envs` hand task or a locomotion id of `LOCOMOTION`;
    `demos` the dataset a BC policy is trained on (bc, binary); `episodes` the number of generated episodes;
    `bc_steps` the BC training updates."""

    kind: str
    env_id: str
    description: str
    demos: str | None = None
    episodes: int = 25
    bc_steps: int = 5000


DATASETS: dict[str, DatasetSpec] = {
    "door-human": DatasetSpec("human", "door-binary", "25 real human demonstrations (hand_dapg), replayed"),
}
SHIPPED_EXPERTS = ("pen", "door", "relocate")  # tasks with a `<task>-dapg-expert-policy.npz` in assets/adroit/
for _task in (*SHIPPED_EXPERTS, "hammer"):
    _demos = "door-human" if _task == "door" else f"{_task}-expert"
    DATASETS[f"{_task}-expert"] = DatasetSpec(
        "expert", f"{_task}-binary", ("25 episodes of the DAPG expert policy" if _task in SHIPPED_EXPERTS else
                                      "25 episodes of a user-supplied DAPG expert policy (--expert-policy)") + (
            "" if _task == "door" else " (stand-in for the unavailable human demos)"))
    DATASETS[f"{_task}-bc"] = DatasetSpec(
        "bc", f"{_task}-binary", f"500 episodes of a BC policy trained on {_demos}", demos=_demos, episodes=500)
    DATASETS[f"{_task}-binary"] = DatasetSpec(
        "binary", f"{_task}-binary", f"{_demos} + {_task}-bc: the AWAC paper's prior data", demos=_demos,
        episodes=500)


# The paper's MuJoCo benchmark (Nair et al. 2020, Sec. 5.3; rlkit examples/awac/mujoco/awac1.py): per task 15
# demonstrations of an expert policy trained with SAC and 100 trajectories of a policy behavior-cloned from them. The
# authors' data is lost, so the experts are SAC actors trained by this repository (`utils/experts.py`).
LOCOMOTION: dict[str, str] = {"halfcheetah": "HalfCheetah-v5", "walker2d": "Walker2d-v5", "ant": "Ant-v5"}
LOCOMOTION_ASSETS = ASSETS.parent / "locomotion"
for _task, _env_id in LOCOMOTION.items():
    DATASETS[f"{_task}-expert"] = DatasetSpec(
        "expert", _env_id, "15 episodes of this repository's SAC expert (utils/assets/locomotion)", episodes=15)
    DATASETS[f"{_task}-bc"] = DatasetSpec(
        "bc", _env_id, f"100 episodes of a BC policy trained on {_task}-expert", demos=f"{_task}-expert", episodes=100)
    DATASETS[f"{_task}-awac"] = DatasetSpec(
        "binary", _env_id, f"{_task}-expert + {_task}-bc: the AWAC paper's prior data", demos=f"{_task}-expert",
        episodes=100)
# The prior data an algorithm loads when no --dataset is given; a hand task's is its own name (`door-binary`).
DEFAULT_DATASETS: dict[str, str] = {env_id: f"{task}-awac" for task, env_id in LOCOMOTION.items()}


def default_dataset(env_id: str) -> str:
    """The dataset id an algorithm uses for `env_id` without --dataset: `<task>-awac` for the locomotion tasks of
    `LOCOMOTION`, else `env_id` itself (the hand tasks' datasets are named after them: `door-binary`)."""
    return DEFAULT_DATASETS.get(env_id, env_id)


def _task_of(name: str) -> str:
    """The task part of a dataset id: `door-human` -> `door`, `halfcheetah-awac` -> `halfcheetah`."""
    return name.rsplit("-", 1)[0]


def default_cache_dir() -> Path:
    """`$AWAC_DATA_DIR` if set, else `~/.cache/awac/datasets`."""
    return Path(os.environ.get("AWAC_DATA_DIR", "~/.cache/awac/datasets")).expanduser()


# ----------------------------------------------------------------------------------------------- shipped originals
def shipped_files(assets: Path) -> dict[str, str]:
    """{file name: sha256} from `assets`/SHA256SUMS (empty when there is no such list)."""
    path = assets / "SHA256SUMS"
    text = path.read_text() if path.is_file() else ""
    return dict(line.split()[::-1] for line in text.splitlines() if line.strip())


def asset_path(name: str, assets: Path | None = None) -> Path:
    """Path of a shipped file in `assets` (default `ASSETS`, `assets/adroit/`; or `LOCOMOTION_ASSETS`), after
    checking its sha256 against that directory's `SHA256SUMS`.

    Raises:
        DatasetError: if `name` is not listed in `SHA256SUMS` ("not a shipped file"), if a listed file is missing,
            or if its checksum differs (a corrupt or altered copy).
    """
    assets = ASSETS if assets is None else assets
    sums = shipped_files(assets)
    path = assets / name
    if name not in sums:
        raise DatasetError(f"{path} is not a shipped file (not listed in {assets / 'SHA256SUMS'}; the shipped files "
                           f"are {sorted(sums)}): for a policy of your own pass its path as --expert-policy")
    if not path.is_file():
        raise DatasetError(f"shipped data file {path} is missing: restore it with `git checkout -- {path}`")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sums[name]:
        raise DatasetError(f"checksum mismatch for {path}: expected {sums[name]}, got {digest}; the file is "
                           f"corrupt or altered, restore it with `git checkout -- {path}`")
    return path


class ExpertPolicy:
    """The Adroit authors' DAPG expert (hand_dapg `dapg/policies/<task>-v0.pickle`): a Gaussian MLP with tanh
    hidden layers. `mean(obs)` maps (obs_dim,) to (act_dim,); `sample` adds exp(log_std) * N(0, I) and clips to
    [-1, 1], as D4RL's expert datasets did.

    `ExpertPolicy(task)` loads the shipped, checksum-verified `assets/adroit/<task>-dapg-expert-policy.npz`;
    `ExpertPolicy(task, path)` a user's file in the same format (not checked against SHA256SUMS; see
    `load_expert_policy` for the version that checks it against an environment).

    Raises:
        DatasetError: a shipped file that is missing or altered (see `asset_path`), or a file that cannot be read
            or lacks keys of the format (all missing ones listed).
    """

    KEYS = ("weight_0", "weight_1", "weight_2", "bias_0", "bias_1", "bias_2", "in_shift", "in_scale", "out_shift",
            "out_scale", "log_std")

    def __init__(self, task: str, path: str | Path | None = None):
        self.path = asset_path(f"{task}-dapg-expert-policy.npz") if path is None else Path(path)
        try:
            with np.load(self.path, allow_pickle=False) as f:
                p = {k: f[k] for k in f.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
            raise DatasetError(f"cannot read expert policy {self.path}: {e}; pass a DAPG policy .npz in the format "
                               f"of {ASSETS}/<task>-dapg-expert-policy.npz") from None
        missing = [k for k in self.KEYS if k not in p]
        if missing:
            raise DatasetError(f"expert policy {self.path} lacks the keys {missing} (it has {sorted(p)}); a DAPG "
                               f"policy .npz needs {list(self.KEYS)}, as in {ASSETS}/pen-dapg-expert-policy.npz")
        self.w = [p[f"weight_{i}"].astype(np.float64) for i in range(3)]
        self.b = [p[f"bias_{i}"].astype(np.float64) for i in range(3)]
        self.in_shift, self.in_scale = p["in_shift"], p["in_scale"]
        self.out_shift, self.out_scale, self.log_std = p["out_shift"], p["out_scale"], p["log_std"]

    def mean(self, obs: np.ndarray) -> np.ndarray:
        x = (obs - self.in_shift) / (self.in_scale + 1e-8)
        x = np.tanh(x @ self.w[0].T + self.b[0])
        x = np.tanh(x @ self.w[1].T + self.b[1])
        return (x @ self.w[2].T + self.b[2]) * self.out_scale + self.out_shift

    def sample(self, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        noise = np.exp(self.log_std) * rng.standard_normal(self.log_std.shape)
        return np.clip(self.mean(obs) + noise, -1.0, 1.0)


def shipped_sha256(name: str) -> str | None:
    """The sha256 that SHA256SUMS lists for the shipped expert file `name` (assets/adroit/ or assets/locomotion/),
    None if it is not shipped."""
    return shipped_files(ASSETS).get(name) or shipped_files(LOCOMOTION_ASSETS).get(name)


def sha256_of(path: str | Path) -> str:
    """The hex sha256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_expert_policy(path: str | Path, env_id: str) -> ExpertPolicy:
    """A user's DAPG expert policy file (the .npz format of `assets/adroit/`), checked against `env_id`'s sizes.

    Raises:
        DatasetError: a missing or unreadable file, missing keys, or layer shapes that do not chain or do not fit
            the environment's observation/action dimensions (both numbers named).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DatasetError(f"expert policy file {path} does not exist: pass the path of a DAPG policy .npz "
                           f"(format of {ASSETS}/<task>-dapg-expert-policy.npz)")
    policy = ExpertPolicy(env_id.split("-")[0], path)
    env = make_env(env_id)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    env.close()
    w, b = policy.w, policy.b
    shapes = {"weight_0": w[0].shape, "weight_1": w[1].shape, "weight_2": w[2].shape}
    if any(len(s) != 2 for s in shapes.values()) or w[1].shape[1] != w[0].shape[0] or w[2].shape[1] != w[1].shape[0] \
            or [x.shape for x in b] != [(w[i].shape[0],) for i in range(3)]:
        raise DatasetError(f"expert policy {path} has layers that do not chain (weights {shapes}, biases "
                           f"{[x.shape for x in b]}); weight_i must be (out, in) with bias_i (out,)")
    got = {"observation": (w[0].shape[1], policy.in_shift.shape, policy.in_scale.shape, obs_dim),
           "action": (w[2].shape[0], policy.out_shift.shape, policy.out_scale.shape, act_dim)}
    for what, (dim, shift, scale, expected) in got.items():
        if dim != expected:
            raise DatasetError(f"expert policy {path} is for {what} dimension {dim} but environment {env_id!r} has "
                               f"{what} dimension {expected}: pass a policy trained on {env_id!r}'s task")
        if shift != (expected,) or scale != (expected,) or (what == "action" and policy.log_std.shape != (dim,)):
            raise DatasetError(f"expert policy {path}: its {what} normalization (shift {shift}, scale {scale}"
                               + (f", log_std {policy.log_std.shape}" if what == "action" else "") +
                               f") does not fit {what} dimension {expected}; each must have shape ({expected},)")
    return policy


class SACExpert:
    """A SAC actor of `sac_fd.py` as exported by `utils/experts.py`: a ReLU MLP obs (obs_dim,) -> (mu, s), each
    (act_dim,), log-std = lo + (hi - lo) * (tanh(s) + 1) / 2, action = tanh(u) with u ~ N(mu, exp(log-std)^2)
    (sac_fd.TanhGaussianActor). `mean(obs)` is tanh(mu), the deterministic action; `sample` draws u, so actions
    lie in (-1, 1). The .npz holds weight_i (out, in) and bias_i (out,) for i = 0..L, log_std_min, log_std_max and
    `metadata` (a JSON string: how it was trained and what it returned).

    Raises:
        DatasetError: an unreadable file, missing keys, layers that do not chain, or (with `env_id`) dimensions
            that do not fit the environment (both named).
    """

    def __init__(self, path: str | Path, env_id: str | None = None):
        self.path = Path(path)
        try:
            with np.load(self.path, allow_pickle=False) as f:
                p = {k: f[k] for k in f.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
            raise DatasetError(f"cannot read SAC expert {self.path}: {e}; export one with `python -m utils.experts "
                               "export RUN/checkpoint.pt TASK`") from None
        n = sum(k.startswith("weight_") for k in p)
        missing = [k for k in ("log_std_min", "log_std_max", *(f"{w}_{i}" for i in range(max(n, 1))
                                                                for w in ("weight", "bias"))) if k not in p]
        if missing:
            raise DatasetError(f"SAC expert {self.path} lacks the keys {missing} (it has {sorted(p)}): export one "
                               "with `python -m utils.experts export RUN/checkpoint.pt TASK`")
        self.w = [p[f"weight_{i}"].astype(np.float64) for i in range(n)]
        self.b = [p[f"bias_{i}"].astype(np.float64) for i in range(n)]
        if any(w.shape != (b.shape[0], prev.shape[0]) for w, b, prev in zip(self.w[1:], self.b[1:], self.w)) or \
                self.w[0].shape[0] != self.b[0].shape[0] or self.w[-1].shape[0] % 2:
            raise DatasetError(f"SAC expert {self.path} has layers that do not chain (weights "
                               f"{[w.shape for w in self.w]}, biases {[b.shape for b in self.b]})")
        self.log_std_range = (float(p["log_std_min"]), float(p["log_std_max"]))
        self.metadata = json.loads(str(p["metadata"])) if "metadata" in p else {}
        self.obs_dim, self.act_dim = self.w[0].shape[1], self.w[-1].shape[0] // 2
        if env_id is not None:
            env = make_env(env_id)
            expected = (env.observation_space.shape[0], env.action_space.shape[0])
            env.close()
            if (self.obs_dim, self.act_dim) != expected:
                raise DatasetError(f"SAC expert {self.path} is for observation/action dimensions {self.obs_dim}/"
                                   f"{self.act_dim} but environment {env_id!r} has {expected[0]}/{expected[1]}: pass "
                                   f"an expert trained on {env_id!r}")
            if self.metadata.get("env_id", env_id) != env_id:  # HalfCheetah and Walker2d are both 17/6
                raise DatasetError(f"SAC expert {self.path} was trained on {self.metadata['env_id']!r}, not "
                                   f"{env_id!r}: pass an expert trained on {env_id!r}")

    def _heads(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(obs, dtype=np.float64)
        for w, b in zip(self.w[:-1], self.b[:-1]):
            x = np.maximum(x @ w.T + b, 0.0)
        mu, s = np.split(x @ self.w[-1].T + self.b[-1], 2, axis=-1)
        lo, hi = self.log_std_range
        return mu, np.exp(lo + 0.5 * (hi - lo) * (np.tanh(s) + 1))

    def mean(self, obs: np.ndarray) -> np.ndarray:
        return np.tanh(self._heads(obs)[0])

    def sample(self, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        mu, std = self._heads(obs)
        return np.tanh(mu + std * rng.standard_normal(mu.shape))


def shipped_sac_expert(task: str) -> Path | None:
    """`LOCOMOTION_ASSETS/<task>-sac-expert.npz`, checksum-verified, if it is shipped (listed in SHA256SUMS)."""
    name = f"{task}-sac-expert.npz"
    return asset_path(name, LOCOMOTION_ASSETS) if name in shipped_files(LOCOMOTION_ASSETS) else None


def _no_expert_error(name: str, task: str) -> DatasetError:
    if task in LOCOMOTION:
        return DatasetError(f"dataset {name!r} is not in the cache and no SAC expert for {task!r} is shipped in "
                            f"{LOCOMOTION_ASSETS}: train one with `python sac_fd.py --env-id {LOCOMOTION[task]} "
                            "--dataset none`, export it with `python -m utils.experts export RUN/checkpoint.pt "
                            f"{task}` (see utils/experts.py), or build with `python -m utils.datasets build "
                            f"{task}-awac --expert-policy PATH.npz`")
    return DatasetError(f"dataset {name!r} is not in the cache and task {task!r} ships no expert policy: build it "
                        f"once with `python -m utils.datasets build {task}-binary --expert-policy PATH.npz` (a DAPG "
                        f"policy .npz in the format of utils/assets/adroit/)")


def uses_expert(name: str) -> bool:
    """Whether the dataset id is made (directly or through its demonstrations) from an expert policy."""
    spec = _spec(name)
    return spec.kind == "expert" or (spec.demos is not None and uses_expert(spec.demos))


# ----------------------------------------------------------------------------------------------- generation
def _pack(columns: dict[str, list], metadata: dict[str, Any]) -> dict[str, Any]:
    data = {k: np.asarray(columns[k], dtype=np.float32) for k in ARRAY_KEYS[:4]}
    data["terminals"] = np.asarray(columns["terminals"], dtype=bool)
    data["timeouts"] = np.asarray(columns["timeouts"], dtype=bool)
    metadata.update(num_transitions=len(data["rewards"]),
                    num_episodes=int((data["terminals"] | data["timeouts"]).sum()))
    data["metadata"] = metadata
    return data


def rollout(policy: Callable[[np.ndarray], np.ndarray], env_id: str, episodes: int, seed: int,
            desc: str = "rollout", progress: bool = True) -> dict[str, Any]:
    """Collects `episodes` full episodes of `policy` (obs (obs_dim,) -> action (act_dim,), clipped to the action
    space). Episode i is reset with seed `seed + i`. A time-limit end is stored as a timeout, a true end as a
    terminal, so the two never mix."""
    env = make_env(env_id)
    cols: dict[str, list] = {k: [] for k in ARRAY_KEYS}
    low, high = env.action_space.low, env.action_space.high
    for i in tqdm(range(episodes), desc=desc, disable=None if progress else True, leave=False):
        obs, _ = env.reset(seed=seed + i)
        done = False
        while not done:
            action = np.clip(policy(obs), low, high)
            next_obs, reward, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
            for k, v in zip(ARRAY_KEYS, (obs, action, reward, next_obs, terminated, truncated and not terminated)):
                cols[k].append(v)
            obs = next_obs
    env.close()
    return _pack(cols, {"env_id": env_id, "seed": seed})


def replay_door_human(progress: bool = True) -> dict[str, Any]:
    """The 25 human door demonstrations, replayed: reset to each recorded initial state, step the recorded actions
    clipped to [-1, 1], record the environment's observations and the binary reward (D4RL's and Minari's recipe).
    Demonstrations run 223-300 steps, past door-binary's 200-step horizon, so the time limit is lifted during the
    replay; each demonstration's last step is a timeout."""
    raw = dict(np.load(asset_path("door-human-demos.npz"), allow_pickle=False))  # npz members decompress per access
    env = make_env("door-binary", max_episode_steps=int(raw["episode_lengths"].max()) + 1)
    cols: dict[str, list] = {k: [] for k in ARRAY_KEYS}
    starts = np.concatenate([[0], np.cumsum(raw["episode_lengths"])])
    for i in tqdm(range(len(raw["episode_lengths"])), desc="replay door-human", disable=None if progress else True,
                  leave=False):
        state = {"qpos": raw["init_qpos"][i], "qvel": raw["init_qvel"][i],
                 "door_body_pos": raw["init_door_body_pos"][i]}
        obs, _ = env.reset(seed=i, options={"initial_state_dict": state})
        for t in range(starts[i], starts[i + 1]):
            action = np.clip(raw["actions"][t], -1.0, 1.0)
            next_obs, reward, terminated, _, _ = env.step(action)
            for k, v in zip(ARRAY_KEYS, (obs, action, reward, next_obs, terminated, t == starts[i + 1] - 1)):
                cols[k].append(v)
            obs = next_obs
    env.close()
    return _pack(cols, {"env_id": "door-binary", "seed": 0})


def train_bc_policy(data: dict[str, Any], steps: int, seed: int, progress: bool = True, robust_obs: bool = False
                    ) -> Callable[[np.ndarray], np.ndarray]:
    """Fits a Gaussian policy (2x256 ReLU MLP on standardized observations, tanh mean, state-independent log-std)
    to the dataset's (observation, action) pairs by maximum likelihood: Adam, lr 1e-3, batch 256, `steps` updates.
    Returns a sampler obs (obs_dim,) -> action (act_dim,) that draws from the fitted Gaussian with its own
    generator seeded by `seed`.

    `robust_obs` (the locomotion tasks) zeroes the inputs that are constant in the data and clips the standardized
    observation to [-10, 10]. Ant-v5's contact forces of bodies that never touch the ground in 15 expert episodes
    are constant there; once a BC rollout makes one touch, (x - mean) / (0 + 1e-3) would reach the untrained
    weights of that input at a thousand times their scale and saturate every action. The hand tasks keep the plain
    standardization their shipped results were built with."""
    import torch  # only dataset building needs torch here

    gen = torch.Generator().manual_seed(seed)
    obs = torch.as_tensor(data["observations"])
    act = torch.as_tensor(data["actions"])
    obs_mean, obs_std = obs.mean(0), obs.std(0) + 1e-3
    if robust_obs:
        obs_std = torch.where(obs.std(0) > 1e-6, obs_std, torch.inf)  # constant inputs become 0

    def standardize(x: torch.Tensor) -> torch.Tensor:
        z = (x - obs_mean) / obs_std
        return z.clamp(-10.0, 10.0) if robust_obs else z

    obs_dim, act_dim = obs.shape[1], act.shape[1]
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(obs_dim, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256),
                              torch.nn.ReLU(), torch.nn.Linear(256, act_dim))
    log_std = torch.nn.Parameter(torch.full((act_dim,), -1.0))
    opt = torch.optim.Adam([*net.parameters(), log_std], lr=1e-3)
    for _ in tqdm(range(steps), desc="train BC policy", disable=None if progress else True, leave=False):
        idx = torch.randint(len(obs), (256,), generator=gen)
        mean = torch.tanh(net(standardize(obs[idx])))
        dist = torch.distributions.Normal(mean, log_std.clamp(-5, 0).exp())
        loss = -dist.log_prob(act[idx]).sum(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    std = log_std.detach().clamp(-5, 0).exp().numpy()
    rng = np.random.default_rng(seed)

    @torch.inference_mode()
    def policy(o: np.ndarray) -> np.ndarray:
        x = standardize(torch.as_tensor(o, dtype=torch.float32))
        return torch.tanh(net(x)).numpy() + std * rng.standard_normal(act_dim)

    return policy


def build_dataset(name: str, seed: int = 0, episodes: int | None = None, bc_steps: int | None = None,
                  cache_dir: str | Path | None = None, progress: bool = True, expert_policy: str | Path | None = None,
                  replace_mismatched: bool = False) -> dict[str, Any]:
    """Generates the named dataset (its components come from the cache or are built and cached first).

    Args:
        name: an id of `DATASETS`.
        seed: seeds the env resets, the action noise and the BC training.
        episodes: overrides the number of generated episodes (the BC part of `<task>-binary`), for quick tests.
        bc_steps: overrides the BC training updates.
        expert_policy: a user's DAPG policy .npz to use instead of the shipped expert (required for tasks without
            one, e.g. hammer); its path and sha256 go into the metadata (`source`, `expert_policy`).
        replace_mismatched: rebuild cached components made from another expert instead of refusing them.
    Raises:
        DatasetError: for an unknown id, a task without a shipped expert and no `expert_policy` (naming the build
            command), an invalid policy file (see `load_expert_policy`), or a cached component made from another
            expert (see `load_cached`).
    """
    spec = _spec(name)
    task = _task_of(name)
    n = spec.episodes if episodes is None else episodes
    t0 = time.time()
    expert_info = None
    shipped = task in SHIPPED_EXPERTS or (task in LOCOMOTION and shipped_sac_expert(task) is not None)
    if (expert_policy is None and not shipped and uses_expert(name)
            and not cache_path(f"{task}-expert", seed, cache_dir).is_file()):
        raise _no_expert_error(name, task)  # before anything is built, naming the id that was asked for
    component = dict(seed=seed, cache_dir=cache_dir, progress=progress, expert_policy=expert_policy,
                     replace_mismatched=replace_mismatched)
    if spec.kind == "human":
        data = replay_door_human(progress)
        recipe = "replay of recorded actions clipped to [-1, 1] from recorded initial states; binary reward"
    elif spec.kind == "expert" and task in LOCOMOTION:
        path = shipped_sac_expert(task) if expert_policy is None else Path(expert_policy).expanduser()
        if path is None:
            raise _no_expert_error(name, task)
        expert = SACExpert(path, spec.env_id)
        expert_info = {"path": f"shipped:{path.name}" if expert_policy is None else str(path.resolve()),
                       "sha256": sha256_of(path)}
        rng = np.random.default_rng(seed)
        data = rollout(lambda o: expert.sample(o, rng), spec.env_id, n, seed, f"expert {name}", progress)
        recipe = "SAC expert policy, action = tanh(mean + std * N(0, I)) (its own Gaussian), within the action space"
    elif spec.kind == "expert":
        if expert_policy is not None:
            expert = load_expert_policy(expert_policy, spec.env_id)
            expert_info = {"path": str(expert.path.resolve()), "sha256": sha256_of(expert.path)}
        elif task in SHIPPED_EXPERTS:
            expert = ExpertPolicy(task)
            expert_info = {"path": f"shipped:{expert.path.name}", "sha256": sha256_of(expert.path)}
        else:
            raise _no_expert_error(name, task)
        rng = np.random.default_rng(seed)
        data = rollout(lambda o: expert.sample(o, rng), spec.env_id, n, seed, f"expert {name}", progress)
        recipe = "DAPG expert policy, action = mean + exp(log_std) * N(0, I), clipped to [-1, 1]"
    elif spec.kind == "bc":
        demos = _load_component(spec.demos, **component)
        policy = train_bc_policy(demos, spec.bc_steps if bc_steps is None else bc_steps, seed, progress,
                                 robust_obs=task in LOCOMOTION)
        # Offset the reset seeds so BC episodes never start where the demonstrations did.
        data = rollout(policy, spec.env_id, n, seed + 100_000, f"BC {name}", progress)
        recipe = f"Gaussian BC policy fitted to {spec.demos}, actions sampled and clipped to the action space"
        expert_info = demos["metadata"].get("expert_policy")
    else:
        demos = _load_component(spec.demos, **component)
        bc = (_load_component(f"{task}-bc", **component) if episodes is None and bc_steps is None else
              build_dataset(f"{task}-bc", seed, episodes, bc_steps, cache_dir, progress, expert_policy,
                            replace_mismatched))
        data = {k: np.concatenate([demos[k], bc[k]]) for k in ARRAY_KEYS}
        data = _pack({k: data[k] for k in ARRAY_KEYS}, {})
        recipe = f"concatenation of {spec.demos} ({demos['metadata']['num_episodes']} episodes) and {task}-bc"
        expert_info = demos["metadata"].get("expert_policy")
    source = spec.description
    if expert_info is not None and not expert_info["path"].startswith("shipped:"):
        source += f"; expert policy {expert_info['path']} (sha256 {expert_info['sha256']})"
    data["metadata"].update(name=name, env_id=spec.env_id, source=source, recipe=recipe, seed=seed,
                            build_seconds=round(time.time() - t0, 1))
    if expert_info is not None:
        data["metadata"]["expert_policy"] = expert_info
    return data


def _load_component(name: str, seed: int, cache_dir: str | Path | None, progress: bool,
                    expert_policy: str | Path | None, replace_mismatched: bool) -> dict[str, Any]:
    """A component of a build (demonstrations, BC episodes) through the cache, validated against its env."""
    data = load_cached(name, seed, cache_dir, progress, expert_policy=expert_policy,
                       replace_mismatched=replace_mismatched)
    validate(data, DATASETS[name].env_id, where=f"dataset {name!r}")
    return data


# ----------------------------------------------------------------------------------------------- files
def save_dataset(data: dict[str, Any], path: str | Path) -> Path:
    """Writes `data` as compressed .npz (metadata as a JSON string), atomically: readers see the old file or the
    new one, never half of one, and concurrent writers of one path do not disturb each other (the last one wins).

    Raises:
        OSError: if the directory cannot be created or written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A temporary name of this writer's own in the same directory (os.replace is atomic only within one file
    # system); "xb" refuses to reuse an existing name, and an open file keeps np.savez from appending ".npz".
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as f:
            np.savez_compressed(f, **{k: data[k] for k in ARRAY_KEYS}, metadata=json.dumps(data.get("metadata", {})))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # after a failure; after os.replace it is already gone
    return path


@contextlib.contextmanager
def build_lock(path: str | Path) -> Iterator[None]:
    """Holds an exclusive lock on `path`'s build: `fcntl.flock` on `<path without .npz>.lock` beside it, waiting
    (with a message on stderr) while another process holds it. The kernel releases a flock when its holder exits,
    even when killed, so a crashed build never blocks the next one; the lock file itself stays (deleting it would
    let a newcomer lock a new file while a waiter still waits on the old one). Linux and macOS (POSIX flock).

    Raises:
        OSError: if the lock file cannot be created (e.g. a read-only cache directory).
    """
    lock = Path(path).with_suffix(".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as f:  # "a" creates the file without truncating it
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another process building {path} (lock {lock})", file=sys.stderr, flush=True)
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def read_file(path: str | Path) -> dict[str, Any]:
    """Reads a dataset file: .npz (ours, or any with D4RL's keys) or .hdf5/.h5 in D4RL's layout (top-level
    datasets). A file without `next_observations` gets them as D4RL's `qlearning_dataset` does: the next row of
    the same episode, dropping each episode's last transition, whose next observation is unknown.

    Raises:
        DatasetError: if the file is missing, unreadable, or lacks required keys (all missing ones listed).
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"dataset file {path} does not exist: pass an existing .npz/.hdf5 path or one of the "
                           f"ids {sorted(DATASETS)}")
    try:
        if path.suffix in (".hdf5", ".h5"):
            import h5py

            with h5py.File(path, "r") as f:
                raw = {k: f[k][()] for k in f.keys() if isinstance(f[k], h5py.Dataset)}
        else:
            with np.load(path, allow_pickle=False) as f:
                raw = {k: f[k] for k in f.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as e:
        raise DatasetError(f"cannot read dataset file {path}: {e}. The file is corrupt or not a .npz/.hdf5 "
                           "dataset; if it is a cached build, delete it (or build again with --force)") from None
    missing = [k for k in REQUIRED_KEYS if k not in raw]
    if missing:
        raise DatasetError(f"dataset file {path} lacks the keys {missing} (it has {sorted(raw)}); a dataset needs "
                           f"{list(REQUIRED_KEYS)} and may have next_observations and timeouts")
    meta = json.loads(str(raw["metadata"])) if "metadata" in raw else {"source": str(path)}
    data = {k: raw[k] for k in ARRAY_KEYS if k in raw}
    n = len(data["rewards"])
    data["terminals"] = data["terminals"].astype(bool)
    if "timeouts" in data:
        data["timeouts"] = data["timeouts"].astype(bool)
    elif "next_observations" in data:  # an episode ends where the next row does not continue it
        breaks = np.append(np.any(data["next_observations"][:-1] != data["observations"][1:], axis=1), True)
        data["timeouts"] = breaks & ~data["terminals"]
    else:
        data["timeouts"] = np.zeros(n, dtype=bool)
    if "next_observations" not in data:
        timeouts = data["timeouts"]
        keep = np.flatnonzero(~timeouts[:-1] | data["terminals"][:-1])
        data = {**{k: v[keep] for k, v in data.items()}, "next_observations": data["observations"][keep + 1]}
        data["timeouts"] = timeouts[keep + 1] & ~data["terminals"]  # its successor, now dropped, ended the episode
    for k in ("observations", "actions", "rewards", "next_observations"):
        data[k] = np.asarray(data[k], dtype=np.float32)
    data["metadata"] = meta
    return data


def read_minari(dataset_id: str) -> dict[str, Any]:
    """Reads a Minari dataset installed locally (e.g. `minari download D4RL/door/human-v2`, done beforehand on a
    machine with internet; nothing is downloaded here) into the D4RL-style dict: each episode's observations
    (T+1, obs_dim) become observations[:-1] and next_observations[1:]; terminations and truncations become
    terminals and timeouts. Rewards are kept as stored (D4RL's Adroit data carry the dense reward). Actions of a
    bounded action space other than [-1, 1] (e.g. Humanoid's [-0.4, 0.4]) are mapped onto [-1, 1], as `make_env`
    maps the env's, and the recorded bounds go into metadata["actions_rescaled_from"].

    Raises:
        DatasetError: if it is not installed locally (with the download command), or its spaces are not flat Boxes.
    """
    import gymnasium
    import minari

    try:
        source = minari.load_dataset(dataset_id, download=False)
    except FileNotFoundError as e:
        raise DatasetError(f"Minari dataset {dataset_id!r} is not installed locally ({e}); install it on a machine "
                           f"with internet (`minari download {dataset_id}`) and point MINARI_DATASETS_PATH at it")
    cols: dict[str, list] = {k: [] for k in ARRAY_KEYS}
    for ep in source.iterate_episodes():
        if not isinstance(ep.observations, np.ndarray) or ep.observations.ndim != 2:
            raise DatasetError(f"Minari dataset {dataset_id!r} has non-flat observations; flatten them first")
        timeouts = ep.truncations & ~ep.terminations
        timeouts[-1] |= not ep.terminations[-1]  # keep episodes apart even when the recording stopped mid-way
        for k, v in zip(ARRAY_KEYS, (ep.observations[:-1], ep.actions, ep.rewards, ep.observations[1:],
                                     ep.terminations, timeouts)):
            cols[k].append(v)
    space = source.action_space  # make_env maps other bounded action spaces onto [-1, 1]; so do these actions
    rescaled = (isinstance(space, gymnasium.spaces.Box) and np.isfinite(space.low).all()
                and np.isfinite(space.high).all() and not ((space.low == -1).all() and (space.high == 1).all()))
    if rescaled:
        cols["actions"] = [(2 * (a - space.low) / (space.high - space.low) - 1).astype(np.float32)
                           for a in cols["actions"]]
    description = source.storage.metadata.get("description") or ""
    ours = [line for line in description.splitlines() if line.startswith(MINARI_METADATA)]
    meta = json.loads(ours[0].removeprefix(MINARI_METADATA)) if ours else {}  # exported by `export_minari`
    source_text = f"minari:{dataset_id}" + (f" (exported from: {meta['source']})" if meta.get("source") else "")
    data = _pack({k: np.concatenate(v) for k, v in cols.items()}, {**meta, "source": source_text})
    spec = source.spec.env_spec
    data["metadata"]["minari_env_id"] = spec.id if spec is not None else None
    if rescaled:
        data["metadata"]["actions_rescaled_from"] = [space.low.tolist(), space.high.tolist()]
    return data


MINARI_METADATA = "awac-metadata: "  # marks the JSON line of our metadata in an exported dataset's description


def export_minari(data: dict[str, Any], name: str, env_id: str) -> Path:
    """Writes `data` as a local Minari dataset `name` (e.g. `awac/door-binary-v0`) under $MINARI_DATASETS_PATH
    (default ~/.minari/datasets); nothing is uploaded. One Minari episode per episode of `data` (see
    `episode_slices`): observations (T+1, obs_dim) are the episode's observations and its last next observation;
    terminals and timeouts become terminations and truncations. The env spec is `env_id`'s (for a hand task with
    its BinaryReward wrapper, so `recover_environment()` rebuilds the binary task), with its spaces; our metadata
    (recipe, source, seed, ...) goes into the description as one JSON line. `read_minari(name)` gives back arrays
    identical to `data`'s. Returns the dataset's directory.

    Raises:
        DatasetError: `name` exists already (delete it with `minari delete NAME`), or `data` cannot be stored as
            Minari episodes: an episode whose next_observations[t] is not observations[t + 1], or one that ends
            without a terminal or timeout.
    """
    import warnings

    import minari
    from minari.data_collector import EpisodeBuffer

    if name in minari.list_local_datasets():
        raise DatasetError(f"Minari dataset {name!r} exists already: delete it (`minari delete {name}`) or choose "
                           "another name")
    validate(data, env_id, where="dataset to export")
    buffers = []
    for i, s in enumerate(episode_slices(data)):
        obs, next_obs = data["observations"][s], data["next_observations"][s]
        if not np.array_equal(next_obs[:-1], obs[1:]):
            t = int(np.flatnonzero(np.any(next_obs[:-1] != obs[1:], axis=1))[0])
            raise DatasetError(f"episode {i} (rows {s.start}-{s.stop - 1}): next_observations[{t}] is not "
                               f"observations[{t + 1}], but a Minari episode holds one sequence of observations")
        if not (data["terminals"][s.stop - 1] or data["timeouts"][s.stop - 1]):
            raise DatasetError(f"episode {i} (rows {s.start}-{s.stop - 1}) ends without a terminal or timeout")
        buffers.append(EpisodeBuffer(id=i, observations=np.concatenate([obs, next_obs[-1:]]),
                                     actions=data["actions"][s], rewards=data["rewards"][s],
                                     terminations=data["terminals"][s], truncations=data["timeouts"][s], infos={}))
    env = make_env(env_id)
    meta = {**data.get("metadata", {}), "env_id": env_id}
    description = (f"{meta.get('source', 'a dataset')}, exported by utils/datasets.py of the AWAC reference "
                   f"implementation. Recipe: {meta.get('recipe', 'not recorded')}.\n\n{MINARI_METADATA}"
                   f"{json.dumps(meta)}")
    try:
        with warnings.catch_warnings():  # no author, e-mail or permalink: Minari warns about each
            warnings.simplefilter("ignore", UserWarning)
            dataset = minari.create_dataset_from_buffers(
                name, buffers, env=env.spec, algorithm_name=meta.get("name", "awac-datasets"),
                author="AWAC reference implementation (utils/datasets.py)",
                observation_space=env.observation_space, action_space=env.action_space, description=description,
                data_format="hdf5")
    except BaseException:  # leave no half-written dataset behind
        with contextlib.suppress(Exception):
            minari.delete_dataset(name)
        raise
    finally:
        env.close()
    return Path(dataset.spec.data_path).parent


def validate(data: dict[str, Any], env_id: str | None = None, where: str = "dataset") -> None:
    """Checks shapes, finiteness and, when `env_id` is given, the dimensions against the environment.

    Raises:
        DatasetError: naming the problem: inconsistent lengths or ranks, NaN/inf (count and first index), an
            observation/action dimension that differs from the environment's (both named), or actions outside
            [-1, 1] (beyond a 1e-3 tolerance).
    """
    n = len(data["rewards"])
    for k in ARRAY_KEYS:
        if len(data[k]) != n:
            raise DatasetError(f"{where}: '{k}' has {len(data[k])} rows but 'rewards' has {n}")
    for k in ("observations", "actions", "next_observations"):
        if data[k].ndim != 2:
            raise DatasetError(f"{where}: '{k}' must be 2-D (N, dim), got shape {data[k].shape}")
    for k in ("observations", "actions", "rewards", "next_observations"):
        bad = ~np.isfinite(data[k])
        if bad.any():
            rows = np.flatnonzero(bad.reshape(n, -1).any(1))
            raise DatasetError(f"{where}: '{k}' holds {int(bad.sum())} NaN/inf values, first in row {rows[0]}; "
                               "clean or drop those transitions")
    if env_id is not None:
        env = make_env(env_id)
        expected = {"observations": env.observation_space.shape[0], "actions": env.action_space.shape[0]}
        env.close()
        for k, dim in expected.items():
            if data[k].shape[1] != dim:
                made_for = data.get("metadata", {}).get("env_id")
                hint = f"; it was made for {made_for!r}" if made_for else ""
                raise DatasetError(f"{where} has {k} of dimension {data[k].shape[1]} but environment {env_id!r} "
                                   f"expects {dim}{hint}: pass a dataset made for {env_id!r}")
        reach = float(np.abs(data["actions"]).max(initial=0.0))
        if reach > 1.0 + 1e-3:  # the agents squash or clip to [-1, 1]: such actions cannot be imitated or evaluated
            row = int(np.flatnonzero(np.abs(data["actions"]).max(1) == reach)[0])
            raise DatasetError(f"{where} has actions up to {reach:.4g} in absolute value (first in row {row}), outside "
                               f"[-1, 1], the range every agent acts in (make_env rescales {env_id!r}'s action space "
                               "to it): map the dataset's actions the same way, a' = 2 (a - low) / (high - low) - 1")
        # Same sizes do not make the same task (Walker2d and HalfCheetah both have 17/6): trust the recorded one.
        made_for, known = data.get("metadata", {}).get("env_id"), {*HAND_TASKS, *LOCOMOTION.values()}
        if made_for in known and env_id in known and made_for != env_id:
            raise DatasetError(f"{where} was made for {made_for!r}, not {env_id!r} (both have observation "
                               f"dimension {expected['observations']}, action dimension {expected['actions']}): "
                               f"pass a dataset made for {env_id!r}")


def _spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}: use one of {sorted(DATASETS)}, a path to a .npz/.hdf5 file, or "
                       "minari:<id>")
    return DATASETS[name]


def cache_path(name: str, seed: int = 0, cache_dir: str | Path | None = None) -> Path:
    """Where a generated dataset is cached: `<cache_dir>/<name>-h<horizon>-seed<seed>.npz` for the hand tasks'
    rollouts, whose episodes are as long as the task's horizon (so a dataset built at another horizon, e.g. pen's
    100 steps before December 2026, is never read for the current one), `<name>-seed<seed>.npz` otherwise."""
    spec = _spec(name)
    horizon = f"-h{HAND_TASKS[spec.env_id].horizon}" if spec.env_id in HAND_TASKS and spec.kind != "human" else ""
    return Path(cache_dir or default_cache_dir()) / f"{name}{horizon}-seed{seed}.npz"


def load_cached(name: str, seed: int = 0, cache_dir: str | Path | None = None, progress: bool = True,
                force: bool = False, expert_policy: str | Path | None = None,
                replace_mismatched: bool = False) -> dict[str, Any]:
    """A generated dataset from the cache, built and cached first if absent (or if `force`), safely when several
    processes ask for it at once: the first takes the id's `build_lock` and builds, the others wait for the lock
    and then read its file. The components of a build (e.g. pen-bc's pen-expert) come through here too.

    With `expert_policy` (a user's DAPG policy .npz, for an id made from an expert, see `uses_expert`), a cached
    file is reused only if its metadata records the same policy sha256; a cached file made from another expert
    (e.g. the shipped one) is refused unless `replace_mismatched`, which rebuilds it (and, passed down, its
    components) from `expert_policy`. `force` rebuilds the id itself in any case.

    Raises:
        DatasetError: for an unknown id, an unreadable cached file, an `expert_policy` given for an id that uses
            no expert, an invalid policy file, or a cached file made from another expert (naming --force).
    """
    path = cache_path(name, seed, cache_dir)
    sha = None
    if expert_policy is not None:
        if not uses_expert(name):
            task = _task_of(name)
            raise DatasetError(f"dataset {name!r} is not made from an expert policy (its demonstrations are human), "
                               f"so --expert-policy does not apply: build {task}-expert with it, or drop it")
        if not Path(expert_policy).expanduser().is_file():
            kind = ("a SAC expert .npz of `python -m utils.experts export`" if _task_of(name) in LOCOMOTION else
                    f"a DAPG policy .npz (format of {ASSETS}/<task>-dapg-expert-policy.npz)")
            raise DatasetError(f"expert policy file {expert_policy} does not exist: pass the path of {kind}")
        sha = sha256_of(Path(expert_policy).expanduser())

    def cached() -> dict[str, Any] | None:
        if force or not path.is_file():
            return None
        data = read_file(path)
        recorded = (data["metadata"].get("expert_policy") or {}).get("sha256")
        made_from = (data["metadata"].get("expert_policy") or {}).get("path", "")
        if sha is None and made_from.startswith("shipped:") and recorded != shipped_sha256(made_from[8:]):
            # the shipped expert changed since (a new export): the cached data is stale, and so are its components
            print(f"cached dataset {path} was made from an earlier {made_from[8:]}: rebuilding it", file=sys.stderr)
            return None
        if sha is None or recorded == sha:
            return data
        if replace_mismatched:
            return None
        made_from = data["metadata"].get("expert_policy", {}).get("path", "the shipped expert (built before "
                                                                          "expert provenance was recorded)")
        raise DatasetError(f"cached dataset {path} was made from expert policy {made_from} (sha256 {recorded}), not "
                           f"from {expert_policy} (sha256 {sha}): pass --force to rebuild it and its components "
                           "from the new policy (this replaces the cached files), or use another --cache-dir")

    data = cached()  # no lock needed: save_dataset makes a file appear whole
    if data is not None:
        return data
    with build_lock(path):
        data = cached()  # built by the process this one waited for
        if data is not None:
            return data
        data = build_dataset(name, seed, cache_dir=cache_dir, progress=progress, expert_policy=expert_policy,
                             replace_mismatched=replace_mismatched)
        save_dataset(data, path)
        return data


def load_dataset(dataset: str, env_id: str | None = None, seed: int = 0, cache_dir: str | Path | None = None,
                 progress: bool = True) -> dict[str, Any]:
    """Loads a dataset by id (building and caching it on first use, see `load_cached`) or from a path, and
    validates it.

    Args:
        dataset: an id of `DATASETS`, a path to a .npz / .hdf5 file with D4RL's keys, or `minari:<dataset id>`
            for a Minari dataset installed locally (see `read_minari`).
        env_id: if given, the dataset's dimensions are checked against this environment.
        seed: the generation seed of a generated dataset (independent of any training seed).
        cache_dir: where generated datasets are cached (default: `default_cache_dir()`).
    Returns:
        The dict described in the module docstring.
    Raises:
        DatasetError: unknown id, missing/corrupt file, missing keys, NaN/inf, or a dimension mismatch.
    """
    if dataset in DATASETS:
        data = load_cached(dataset, seed, cache_dir, progress)
    elif dataset.startswith("minari:"):
        data = read_minari(dataset.removeprefix("minari:"))
    elif dataset.endswith((".npz", ".hdf5", ".h5")) or os.sep in dataset:
        data = read_file(dataset)
    else:
        raise DatasetError(f"unknown dataset {dataset!r}: use one of {sorted(DATASETS)}, a path to a .npz/.hdf5 "
                           "file, or minari:<id> for a locally installed Minari dataset")
    validate(data, env_id, where=f"dataset {dataset!r}")
    return data


def episode_slices(data: dict[str, Any]) -> list[slice]:
    """Episodes as row slices: each ends at a terminal or timeout; rows after the last end form a final one."""
    ends = np.flatnonzero(data["terminals"] | data["timeouts"]) + 1
    bounds = [0, *ends.tolist()]
    if bounds[-1] < len(data["rewards"]):
        bounds.append(len(data["rewards"]))
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def summarize(data: dict[str, Any]) -> dict[str, Any]:
    """Transitions, episodes, episode return statistics and, for binary hand tasks (reward 0 marks a goal step),
    the fraction of episodes that reach the goal at least once and that succeed under hand_dapg's criterion
    (goal on more than 20 steps for pen, 25 otherwise)."""
    eps = episode_slices(data)
    returns = np.array([data["rewards"][s].sum() for s in eps])
    out = {"transitions": len(data["rewards"]), "episodes": len(eps), "return_mean": float(returns.mean()),
           "return_std": float(returns.std()), "return_min": float(returns.min()), "return_max": float(returns.max())}
    env_id = data.get("metadata", {}).get("env_id")
    if env_id in LOCOMOTION.values():  # D4RL's 0-100 scale (random 0, expert 100)
        out["normalized_score_mean"] = normalized_score(env_id, out["return_mean"])
    if env_id in HAND_TASKS:
        goal_steps = np.array([(data["rewards"][s] == 0).sum() for s in eps])
        out["goal_reached_fraction"] = float((goal_steps > 0).mean())
        out["success_fraction"] = float(np.mean([is_success(g, env_id) for g in goal_steps]))
    return out


def main(argv: list[str] | None = None) -> None:
    """`python -m utils.datasets {list, build ID, summary PATH_OR_ID, export PATH_OR_ID --minari NAME}`."""
    parser = argparse.ArgumentParser(prog="python -m utils.datasets", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the dataset ids")
    export = sub.add_parser("export", help="write a dataset (id or file) as a local Minari dataset")
    export.add_argument("dataset")
    export.add_argument("--minari", required=True, metavar="NAME", help="Minari dataset id, e.g. awac/door-binary-v0")
    export.add_argument("--env-id", default=None, help="its environment (default: the one its metadata records)")
    build = sub.add_parser("build", help="build (or rebuild with --force) a generated dataset and print a summary")
    summary = sub.add_parser("summary", help="print the summary of a dataset id or file")
    for p in (build, summary):
        p.add_argument("dataset")
    for p in (build, summary, export):
        p.add_argument("--seed", type=int, default=0, help="generation seed")
        p.add_argument("--cache-dir", default=None, help="cache directory (default: $AWAC_DATA_DIR or "
                       "~/.cache/awac/datasets)")
    build.add_argument("--force", action="store_true", help="rebuild even if cached (with --expert-policy, also "
                       "the components cached from another expert)")
    build.add_argument("--expert-policy", default=None, metavar="PATH.npz", help="an expert policy .npz to build "
                       "<task>-expert/-bc/-binary (or -awac) from: a DAPG policy (format of utils/assets/adroit/) for "
                       "a hand task, required once for hammer; a SAC expert of utils/experts.py for locomotion")
    args = parser.parse_args(argv)
    if args.command == "list":
        for name, spec in DATASETS.items():
            print(f"{name:18s} {spec.env_id:16s} {spec.description}")
        return
    try:
        if args.command == "export":
            data = load_dataset(args.dataset, seed=args.seed, cache_dir=args.cache_dir)
            env_id = args.env_id or data["metadata"].get("env_id")
            if env_id is None:
                raise DatasetError(f"{args.dataset} records no environment: pass --env-id")
            where = export_minari(data, args.minari, env_id)
            print(f"wrote Minari dataset {args.minari!r} ({len(episode_slices(data))} episodes, "
                  f"{len(data['rewards'])} steps, env {env_id}) in {where}; load it with "
                  f"--dataset minari:{args.minari}")
            return
        if args.command == "build" and (args.force or args.expert_policy):
            if args.dataset not in DATASETS:
                raise DatasetError(f"unknown dataset {args.dataset!r}: build takes one of {sorted(DATASETS)}")
            data = load_cached(args.dataset, args.seed, args.cache_dir, force=args.force,
                               expert_policy=args.expert_policy, replace_mismatched=args.force)
            validate(data, DATASETS[args.dataset].env_id, where=f"dataset {args.dataset!r}")
        else:
            data = load_dataset(args.dataset, seed=args.seed, cache_dir=args.cache_dir)
    except DatasetError as e:
        parser.exit(2, f"error: {e}\n")
    meta = data["metadata"]
    print(json.dumps({"dataset": args.dataset, **{k: meta.get(k) for k in ("env_id", "source", "recipe", "seed",
                      "build_seconds")}, **summarize(data)}, indent=2))


if __name__ == "__main__":
    main()
