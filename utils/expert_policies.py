"""Expert policies the datasets are generated from, and the shipped files they come in: the Adroit authors' DAPG
experts (`ExpertPolicy`, `load_expert_policy` for a user's file) in `ASSETS` (utils/assets/adroit/), this
repository's SAC experts of the locomotion tasks (`SACExpert`, `shipped_sac_expert`) in `LOCOMOTION_ASSETS`
(utils/assets/locomotion/), and the checksum checks of shipped files (`shipped_files`, `asset_path`,
`shipped_sha256`, `sha256_of`); and the behavior-cloned policy whose rollouts are the BC episodes of the hand and
locomotion datasets (`train_bc_policy`)."""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from utils.data_files import DatasetError
from utils.dataset_registry import LOCOMOTION
from utils.envs import make_env

ASSETS = Path(__file__).resolve().parent / "assets" / "adroit"
LOCOMOTION_ASSETS = ASSETS.parent / "locomotion"


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
        raise DatasetError(
            f"{path} is not a shipped file (not listed in {assets / 'SHA256SUMS'}; the shipped files "
            f"are {sorted(sums)}): for a policy of your own pass its path as --expert-policy"
        )
    if not path.is_file():
        raise DatasetError(f"shipped data file {path} is missing: restore it with `git checkout -- {path}`")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sums[name]:
        raise DatasetError(
            f"checksum mismatch for {path}: expected {sums[name]}, got {digest}; the file is "
            f"corrupt or altered, restore it with `git checkout -- {path}`"
        )
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

    KEYS = (
        "weight_0",
        "weight_1",
        "weight_2",
        "bias_0",
        "bias_1",
        "bias_2",
        "in_shift",
        "in_scale",
        "out_shift",
        "out_scale",
        "log_std",
    )

    def __init__(self, task: str, path: str | Path | None = None):
        self.path = asset_path(f"{task}-dapg-expert-policy.npz") if path is None else Path(path)
        try:
            with np.load(self.path, allow_pickle=False) as f:
                p = {k: f[k] for k in f.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
            raise DatasetError(
                f"cannot read expert policy {self.path}: {e}; pass a DAPG policy .npz in the format "
                f"of {ASSETS}/<task>-dapg-expert-policy.npz"
            ) from None
        missing = [k for k in self.KEYS if k not in p]
        if missing:
            raise DatasetError(
                f"expert policy {self.path} lacks the keys {missing} (it has {sorted(p)}); a DAPG "
                f"policy .npz needs {list(self.KEYS)}, as in {ASSETS}/pen-dapg-expert-policy.npz"
            )
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
        raise DatasetError(
            f"expert policy file {path} does not exist: pass the path of a DAPG policy .npz "
            f"(format of {ASSETS}/<task>-dapg-expert-policy.npz)"
        )
    policy = ExpertPolicy(env_id.split("-")[0], path)
    env = make_env(env_id)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    env.close()
    w, b = policy.w, policy.b
    shapes = {"weight_0": w[0].shape, "weight_1": w[1].shape, "weight_2": w[2].shape}
    if (
        any(len(s) != 2 for s in shapes.values())
        or w[1].shape[1] != w[0].shape[0]
        or w[2].shape[1] != w[1].shape[0]
        or [x.shape for x in b] != [(w[i].shape[0],) for i in range(3)]
    ):
        raise DatasetError(
            f"expert policy {path} has layers that do not chain (weights {shapes}, biases "
            f"{[x.shape for x in b]}); weight_i must be (out, in) with bias_i (out,)"
        )
    got = {
        "observation": (w[0].shape[1], policy.in_shift.shape, policy.in_scale.shape, obs_dim),
        "action": (w[2].shape[0], policy.out_shift.shape, policy.out_scale.shape, act_dim),
    }
    for what, (dim, shift, scale, expected) in got.items():
        if dim != expected:
            raise DatasetError(
                f"expert policy {path} is for {what} dimension {dim} but environment {env_id!r} has "
                f"{what} dimension {expected}: pass a policy trained on {env_id!r}'s task"
            )
        if shift != (expected,) or scale != (expected,) or (what == "action" and policy.log_std.shape != (dim,)):
            raise DatasetError(
                f"expert policy {path}: its {what} normalization (shift {shift}, scale {scale}"
                + (f", log_std {policy.log_std.shape}" if what == "action" else "")
                + f") does not fit {what} dimension {expected}; each must have shape ({expected},)"
            )
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
            raise DatasetError(
                f"cannot read SAC expert {self.path}: {e}; export one with `python -m utils.experts "
                "export RUN/checkpoint.pt TASK`"
            ) from None
        n = sum(k.startswith("weight_") for k in p)
        missing = [
            k
            for k in ("log_std_min", "log_std_max", *(f"{w}_{i}" for i in range(max(n, 1)) for w in ("weight", "bias")))
            if k not in p
        ]
        if missing:
            raise DatasetError(
                f"SAC expert {self.path} lacks the keys {missing} (it has {sorted(p)}): export one "
                "with `python -m utils.experts export RUN/checkpoint.pt TASK`"
            )
        self.w = [p[f"weight_{i}"].astype(np.float64) for i in range(n)]
        self.b = [p[f"bias_{i}"].astype(np.float64) for i in range(n)]
        if (
            any(w.shape != (b.shape[0], prev.shape[0]) for w, b, prev in zip(self.w[1:], self.b[1:], self.w))
            or self.w[0].shape[0] != self.b[0].shape[0]
            or self.w[-1].shape[0] % 2
        ):
            raise DatasetError(
                f"SAC expert {self.path} has layers that do not chain (weights "
                f"{[w.shape for w in self.w]}, biases {[b.shape for b in self.b]})"
            )
        self.log_std_range = (float(p["log_std_min"]), float(p["log_std_max"]))
        self.metadata = json.loads(str(p["metadata"])) if "metadata" in p else {}
        self.obs_dim, self.act_dim = self.w[0].shape[1], self.w[-1].shape[0] // 2
        if env_id is not None:
            env = make_env(env_id)
            expected = (env.observation_space.shape[0], env.action_space.shape[0])
            env.close()
            if (self.obs_dim, self.act_dim) != expected:
                raise DatasetError(
                    f"SAC expert {self.path} is for observation/action dimensions {self.obs_dim}/"
                    f"{self.act_dim} but environment {env_id!r} has {expected[0]}/{expected[1]}: pass "
                    f"an expert trained on {env_id!r}"
                )
            if self.metadata.get("env_id", env_id) != env_id:  # HalfCheetah and Walker2d are both 17/6
                raise DatasetError(
                    f"SAC expert {self.path} was trained on {self.metadata['env_id']!r}, not "
                    f"{env_id!r}: pass an expert trained on {env_id!r}"
                )

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
        return DatasetError(
            f"dataset {name!r} is not in the cache and no SAC expert for {task!r} is shipped in "
            f"{LOCOMOTION_ASSETS}: train one with `python sac_fd.py --env-id {LOCOMOTION[task]} "
            "--dataset none`, export it with `python -m utils.experts export RUN/checkpoint.pt "
            f"{task}` (see utils/experts.py), or build with `python -m utils.datasets build "
            f"{task}-awac --expert-policy PATH.npz`"
        )
    return DatasetError(
        f"dataset {name!r} is not in the cache and task {task!r} ships no expert policy: build it "
        f"once with `python -m utils.datasets build {task}-binary --expert-policy PATH.npz` (a DAPG "
        f"policy .npz in the format of utils/assets/adroit/)"
    )


def train_bc_policy(
    data: dict[str, Any], steps: int, seed: int, progress: bool = True, robust_obs: bool = False
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
    net = torch.nn.Sequential(
        torch.nn.Linear(obs_dim, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, act_dim),
    )
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
