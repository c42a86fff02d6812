"""Dataset arrays and files: the D4RL keys (`ARRAY_KEYS`, `REQUIRED_KEYS`), `DatasetError`, reading .npz/.hdf5
files (`read_file`), writing .npz atomically (`save_dataset`), checking a dataset against an environment
(`validate`), its episodes (`episode_slices`), its summary (`summarize`) and `_pack`, which turns collected columns
into a dataset dict. See `utils.datasets` for the format."""

from __future__ import annotations

import json
import os
import secrets
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from utils.dataset_registry import DATASETS, LOCOMOTION
from utils.envs import HAND_TASKS, is_success, make_env, normalized_score
from utils.writes import writing

ARRAY_KEYS = ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")
REQUIRED_KEYS = ("observations", "actions", "rewards", "terminals")


class DatasetError(ValueError):
    """A dataset that cannot be used: unknown id, unreadable or corrupt file, missing keys, bad values or shapes."""


# What to do when a dataset file or its lock cannot be written (WriteFailed's last words).
WRITE_FIX = "no partial file was left; make room, or set AWAC_DATA_DIR to a dataset cache directory with room"


def _pack(columns: dict[str, list], metadata: dict[str, Any]) -> dict[str, Any]:
    data = {k: np.asarray(columns[k], dtype=np.float32) for k in ARRAY_KEYS[:4]}
    data["terminals"] = np.asarray(columns["terminals"], dtype=bool)
    data["timeouts"] = np.asarray(columns["timeouts"], dtype=bool)
    metadata.update(
        num_transitions=len(data["rewards"]), num_episodes=int((data["terminals"] | data["timeouts"]).sum())
    )
    data["metadata"] = metadata
    return data


def save_dataset(data: dict[str, Any], path: str | Path) -> Path:
    """Writes `data` as compressed .npz (metadata as a JSON string), atomically: readers see the old file or the
    new one, never half of one, and concurrent writers of one path do not disturb each other (the last one wins).

    Raises:
        utils.writes.WriteFailed (an OSError): the directory cannot be created or the file written (no space,
            read-only, ...); its temporary file is removed.
    """
    path = Path(path)
    # A temporary name of this writer's own in the same directory (os.replace is atomic only within one file
    # system); "xb" refuses to reuse an existing name, and an open file keeps np.savez from appending ".npz".
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    with writing(path, tmp, WRITE_FIX):  # a failure removes tmp
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "xb") as f:
            np.savez_compressed(f, **{k: data[k] for k in ARRAY_KEYS}, metadata=json.dumps(data.get("metadata", {})))
        os.replace(tmp, path)
    return path


def read_file(path: str | Path) -> dict[str, Any]:
    """Reads a dataset file: .npz (ours, or any with D4RL's keys) or .hdf5/.h5 in D4RL's layout (top-level
    datasets). A file without `next_observations` gets them as D4RL's `qlearning_dataset` does: the next row of
    the same episode, dropping each episode's last transition, whose next observation is unknown.

    Raises:
        DatasetError: if the file is missing, unreadable, or lacks required keys (all missing ones listed).
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(
            f"dataset file {path} does not exist: pass an existing .npz/.hdf5 path or one of the ids {sorted(DATASETS)}"
        )
    try:
        if path.suffix in (".hdf5", ".h5"):
            import h5py

            with h5py.File(path, "r") as f:
                raw = {k: f[k][()] for k in f.keys() if isinstance(f[k], h5py.Dataset)}
        else:
            with np.load(path, allow_pickle=False) as f:
                raw = {k: f[k] for k in f.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as e:
        raise DatasetError(
            f"cannot read dataset file {path}: {e}. The file is corrupt or not a .npz/.hdf5 "
            "dataset; if it is a cached build, delete it (or build again with --force)"
        ) from None
    missing = [k for k in REQUIRED_KEYS if k not in raw]
    if missing:
        raise DatasetError(
            f"dataset file {path} lacks the keys {missing} (it has {sorted(raw)}); a dataset needs "
            f"{list(REQUIRED_KEYS)} and may have next_observations and timeouts"
        )
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
            raise DatasetError(
                f"{where}: '{k}' holds {int(bad.sum())} NaN/inf values, first in row {rows[0]}; "
                "clean or drop those transitions"
            )
    if env_id is not None:
        env = make_env(env_id)
        expected = {"observations": env.observation_space.shape[0], "actions": env.action_space.shape[0]}
        env.close()
        for k, dim in expected.items():
            if data[k].shape[1] != dim:
                made_for = data.get("metadata", {}).get("env_id")
                hint = f"; it was made for {made_for!r}" if made_for else ""
                raise DatasetError(
                    f"{where} has {k} of dimension {data[k].shape[1]} but environment {env_id!r} "
                    f"expects {dim}{hint}: pass a dataset made for {env_id!r}"
                )
        reach = float(np.abs(data["actions"]).max(initial=0.0))
        if reach > 1.0 + 1e-3:  # the agents squash or clip to [-1, 1]: such actions cannot be imitated or evaluated
            row = int(np.flatnonzero(np.abs(data["actions"]).max(1) == reach)[0])
            raise DatasetError(
                f"{where} has actions up to {reach:.4g} in absolute value (first in row {row}), outside "
                f"[-1, 1], the range every agent acts in (make_env rescales {env_id!r}'s action space "
                "to it): map the dataset's actions the same way, a' = 2 (a - low) / (high - low) - 1"
            )
        # Same sizes do not make the same task (Walker2d and HalfCheetah both have 17/6): trust the recorded one.
        made_for, known = data.get("metadata", {}).get("env_id"), {*HAND_TASKS, *LOCOMOTION.values()}
        if made_for in known and env_id in known and made_for != env_id:
            raise DatasetError(
                f"{where} was made for {made_for!r}, not {env_id!r} (both have observation "
                f"dimension {expected['observations']}, action dimension {expected['actions']}): "
                f"pass a dataset made for {env_id!r}"
            )


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
    out = {
        "transitions": len(data["rewards"]),
        "episodes": len(eps),
        "return_mean": float(returns.mean()),
        "return_std": float(returns.std()),
        "return_min": float(returns.min()),
        "return_max": float(returns.max()),
    }
    env_id = data.get("metadata", {}).get("env_id")
    if env_id in LOCOMOTION.values():  # D4RL's 0-100 scale (random 0, expert 100)
        out["normalized_score_mean"] = normalized_score(env_id, out["return_mean"])
    if env_id in HAND_TASKS:
        goal_steps = np.array([(data["rewards"][s] == 0).sum() for s in eps])
        out["goal_reached_fraction"] = float((goal_steps > 0).mean())
        out["success_fraction"] = float(np.mean([is_success(g, env_id) for g in goal_steps]))
    return out
