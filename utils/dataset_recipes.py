"""Building the generated datasets of `DATASETS` and caching them: rollouts of a policy (`rollout`), the replayed
human door demonstrations (`replay_door_human`), the recipes (`build_dataset`), and the cache (`cache_path`,
`load_cached`, `build_lock`). Building and caching belong together: a build loads its components (e.g. pen-bc's
pen-expert) through the cache."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from utils.data_files import ARRAY_KEYS, WRITE_FIX, DatasetError, _pack, read_file, save_dataset, validate
from utils.dataset_registry import DATASETS, LOCOMOTION, SHIPPED_EXPERTS, DatasetSpec, _task_of
from utils.envs import HAND_TASKS, make_env
from utils.expert_policies import (
    ASSETS,
    ExpertPolicy,
    SACExpert,
    _no_expert_error,
    asset_path,
    load_expert_policy,
    sha256_of,
    shipped_sac_expert,
    shipped_sha256,
    train_bc_policy,
)
from utils.writes import writing


def default_cache_dir() -> Path:
    """`$AWAC_DATA_DIR` if set, else `~/.cache/awac/datasets`."""
    return Path(os.environ.get("AWAC_DATA_DIR", "~/.cache/awac/datasets")).expanduser()


def _spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise DatasetError(
            f"unknown dataset {name!r}: use one of {sorted(DATASETS)}, a path to a .npz/.hdf5 file, or minari:<id>"
        )
    return DATASETS[name]


def uses_expert(name: str) -> bool:
    """Whether the dataset id is made (directly or through its demonstrations) from an expert policy."""
    spec = _spec(name)
    return spec.kind == "expert" or (spec.demos is not None and uses_expert(spec.demos))


# ----------------------------------------------------------------------------------------------- generation
def rollout(
    policy: Callable[[np.ndarray], np.ndarray],
    env_id: str,
    episodes: int,
    seed: int,
    desc: str = "rollout",
    progress: bool = True,
) -> dict[str, Any]:
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
    for i in tqdm(
        range(len(raw["episode_lengths"])), desc="replay door-human", disable=None if progress else True, leave=False
    ):
        state = {
            "qpos": raw["init_qpos"][i],
            "qvel": raw["init_qvel"][i],
            "door_body_pos": raw["init_door_body_pos"][i],
        }
        obs, _ = env.reset(seed=i, options={"initial_state_dict": state})
        for t in range(starts[i], starts[i + 1]):
            action = np.clip(raw["actions"][t], -1.0, 1.0)
            next_obs, reward, terminated, _, _ = env.step(action)
            for k, v in zip(ARRAY_KEYS, (obs, action, reward, next_obs, terminated, t == starts[i + 1] - 1)):
                cols[k].append(v)
            obs = next_obs
    env.close()
    return _pack(cols, {"env_id": "door-binary", "seed": 0})


def build_dataset(
    name: str,
    seed: int = 0,
    episodes: int | None = None,
    bc_steps: int | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    expert_policy: str | Path | None = None,
    replace_mismatched: bool = False,
) -> dict[str, Any]:
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
    if (
        expert_policy is None
        and not shipped
        and uses_expert(name)
        and not cache_path(f"{task}-expert", seed, cache_dir).is_file()
    ):
        raise _no_expert_error(name, task)  # before anything is built, naming the id that was asked for
    component = dict(
        seed=seed,
        cache_dir=cache_dir,
        progress=progress,
        expert_policy=expert_policy,
        replace_mismatched=replace_mismatched,
    )
    if spec.kind == "human":
        data = replay_door_human(progress)
        recipe = "replay of recorded actions clipped to [-1, 1] from recorded initial states; binary reward"
    elif spec.kind == "expert" and task in LOCOMOTION:
        path = shipped_sac_expert(task) if expert_policy is None else Path(expert_policy).expanduser()
        if path is None:
            raise _no_expert_error(name, task)
        expert = SACExpert(path, spec.env_id)
        expert_info = {
            "path": f"shipped:{path.name}" if expert_policy is None else str(path.resolve()),
            "sha256": sha256_of(path),
        }
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
        policy = train_bc_policy(
            demos, spec.bc_steps if bc_steps is None else bc_steps, seed, progress, robust_obs=task in LOCOMOTION
        )
        # Offset the reset seeds so BC episodes never start where the demonstrations did.
        data = rollout(policy, spec.env_id, n, seed + 100_000, f"BC {name}", progress)
        recipe = f"Gaussian BC policy fitted to {spec.demos}, actions sampled and clipped to the action space"
        expert_info = demos["metadata"].get("expert_policy")
    else:
        demos = _load_component(spec.demos, **component)
        bc = (
            _load_component(f"{task}-bc", **component)
            if episodes is None and bc_steps is None
            else build_dataset(
                f"{task}-bc", seed, episodes, bc_steps, cache_dir, progress, expert_policy, replace_mismatched
            )
        )
        data = {k: np.concatenate([demos[k], bc[k]]) for k in ARRAY_KEYS}
        data = _pack({k: data[k] for k in ARRAY_KEYS}, {})
        recipe = f"concatenation of {spec.demos} ({demos['metadata']['num_episodes']} episodes) and {task}-bc"
        expert_info = demos["metadata"].get("expert_policy")
    source = spec.description
    if expert_info is not None and not expert_info["path"].startswith("shipped:"):
        source += f"; expert policy {expert_info['path']} (sha256 {expert_info['sha256']})"
    data["metadata"].update(
        name=name, env_id=spec.env_id, source=source, recipe=recipe, seed=seed, build_seconds=round(time.time() - t0, 1)
    )
    if expert_info is not None:
        data["metadata"]["expert_policy"] = expert_info
    return data


def _load_component(
    name: str,
    seed: int,
    cache_dir: str | Path | None,
    progress: bool,
    expert_policy: str | Path | None,
    replace_mismatched: bool,
) -> dict[str, Any]:
    """A component of a build (demonstrations, BC episodes) through the cache, validated against its env."""
    data = load_cached(
        name, seed, cache_dir, progress, expert_policy=expert_policy, replace_mismatched=replace_mismatched
    )
    validate(data, DATASETS[name].env_id, where=f"dataset {name!r}")
    return data


# ----------------------------------------------------------------------------------------------- cache
def cache_path(name: str, seed: int = 0, cache_dir: str | Path | None = None) -> Path:
    """Where a generated dataset is cached: `<cache_dir>/<name>-h<horizon>-seed<seed>.npz` for the hand tasks'
    rollouts, whose episodes are as long as the task's horizon (so a dataset built at another horizon, e.g. pen's
    100 steps before December 2026, is never read for the current one), `<name>-seed<seed>.npz` otherwise."""
    spec = _spec(name)
    horizon = f"-h{HAND_TASKS[spec.env_id].horizon}" if spec.env_id in HAND_TASKS and spec.kind != "human" else ""
    return Path(cache_dir or default_cache_dir()) / f"{name}{horizon}-seed{seed}.npz"


@contextlib.contextmanager
def build_lock(path: str | Path) -> Iterator[None]:
    """Holds an exclusive lock on `path`'s build: `fcntl.flock` on `<path without .npz>.lock` beside it, waiting
    (with a message on stderr) while another process holds it. The kernel releases a flock when its holder exits,
    even when killed, so a crashed build never blocks the next one; the lock file itself stays (deleting it would
    let a newcomer lock a new file while a waiter still waits on the old one). Linux and macOS (POSIX flock).

    Raises:
        utils.writes.WriteFailed (an OSError): the lock file cannot be created (e.g. a read-only cache directory).
    """
    lock = Path(path).with_suffix(".lock")
    with writing(lock, fix=WRITE_FIX):
        lock.parent.mkdir(parents=True, exist_ok=True)
        f = open(lock, "a")  # closed by `with f` below; "a" creates the file without truncating it
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another process building {path} (lock {lock})", file=sys.stderr, flush=True)
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def load_cached(
    name: str,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    force: bool = False,
    expert_policy: str | Path | None = None,
    replace_mismatched: bool = False,
) -> dict[str, Any]:
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
            raise DatasetError(
                f"dataset {name!r} is not made from an expert policy (its demonstrations are human), "
                f"so --expert-policy does not apply: build {task}-expert with it, or drop it"
            )
        if not Path(expert_policy).expanduser().is_file():
            kind = (
                "a SAC expert .npz of `python -m utils.experts export`"
                if _task_of(name) in LOCOMOTION
                else f"a DAPG policy .npz (format of {ASSETS}/<task>-dapg-expert-policy.npz)"
            )
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
        made_from = (
            data["metadata"]
            .get("expert_policy", {})
            .get("path", "the shipped expert (built before expert provenance was recorded)")
        )
        raise DatasetError(
            f"cached dataset {path} was made from expert policy {made_from} (sha256 {recorded}), not "
            f"from {expert_policy} (sha256 {sha}): pass --force to rebuild it and its components "
            "from the new policy (this replaces the cached files), or use another --cache-dir"
        )

    data = cached()  # no lock needed: save_dataset makes a file appear whole
    if data is not None:
        return data
    with build_lock(path):
        data = cached()  # built by the process this one waited for
        if data is not None:
            return data
        data = build_dataset(
            name,
            seed,
            cache_dir=cache_dir,
            progress=progress,
            expert_policy=expert_policy,
            replace_mismatched=replace_mismatched,
        )
        save_dataset(data, path)
        return data
