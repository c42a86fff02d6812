"""Minari datasets: reading one installed locally into the dataset dict of `utils.datasets` (`read_minari`) and
writing a dataset as a local Minari dataset (`export_minari`). Minari is imported only when these run."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from utils.data_files import ARRAY_KEYS, DatasetError, _pack, episode_slices, validate
from utils.envs import make_env


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
        raise DatasetError(
            f"Minari dataset {dataset_id!r} is not installed locally ({e}); install it on a machine "
            f"with internet (`minari download {dataset_id}`) and point MINARI_DATASETS_PATH at it"
        ) from None
    cols: dict[str, list] = {k: [] for k in ARRAY_KEYS}
    for ep in source.iterate_episodes():
        if not isinstance(ep.observations, np.ndarray) or ep.observations.ndim != 2:
            raise DatasetError(f"Minari dataset {dataset_id!r} has non-flat observations; flatten them first")
        timeouts = ep.truncations & ~ep.terminations
        timeouts[-1] |= not ep.terminations[-1]  # keep episodes apart even when the recording stopped mid-way
        for k, v in zip(
            ARRAY_KEYS, (ep.observations[:-1], ep.actions, ep.rewards, ep.observations[1:], ep.terminations, timeouts)
        ):
            cols[k].append(v)
    space = source.action_space  # make_env maps other bounded action spaces onto [-1, 1]; so do these actions
    rescaled = (
        isinstance(space, gymnasium.spaces.Box)
        and np.isfinite(space.low).all()
        and np.isfinite(space.high).all()
        and not ((space.low == -1).all() and (space.high == 1).all())
    )
    if rescaled:
        cols["actions"] = [
            (2 * (a - space.low) / (space.high - space.low) - 1).astype(np.float32) for a in cols["actions"]
        ]
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
        raise DatasetError(
            f"Minari dataset {name!r} exists already: delete it (`minari delete {name}`) or choose another name"
        )
    validate(data, env_id, where="dataset to export")
    buffers = []
    for i, s in enumerate(episode_slices(data)):
        obs, next_obs = data["observations"][s], data["next_observations"][s]
        if not np.array_equal(next_obs[:-1], obs[1:]):
            t = int(np.flatnonzero(np.any(next_obs[:-1] != obs[1:], axis=1))[0])
            raise DatasetError(
                f"episode {i} (rows {s.start}-{s.stop - 1}): next_observations[{t}] is not "
                f"observations[{t + 1}], but a Minari episode holds one sequence of observations"
            )
        if not (data["terminals"][s.stop - 1] or data["timeouts"][s.stop - 1]):
            raise DatasetError(f"episode {i} (rows {s.start}-{s.stop - 1}) ends without a terminal or timeout")
        buffers.append(
            EpisodeBuffer(
                id=i,
                observations=np.concatenate([obs, next_obs[-1:]]),
                actions=data["actions"][s],
                rewards=data["rewards"][s],
                terminations=data["terminals"][s],
                truncations=data["timeouts"][s],
                infos={},
            )
        )
    env = make_env(env_id)
    meta = {**data.get("metadata", {}), "env_id": env_id}
    description = (
        f"{meta.get('source', 'a dataset')}, exported by utils/datasets.py of the AWAC reference "
        f"implementation. Recipe: {meta.get('recipe', 'not recorded')}.\n\n{MINARI_METADATA}"
        f"{json.dumps(meta)}"
    )
    try:
        with warnings.catch_warnings():  # no author, e-mail or permalink: Minari warns about each
            warnings.simplefilter("ignore", UserWarning)
            dataset = minari.create_dataset_from_buffers(
                name,
                buffers,
                env=env.spec,
                algorithm_name=meta.get("name", "awac-datasets"),
                author="AWAC reference implementation (utils/datasets.py)",
                observation_space=env.observation_space,
                action_space=env.action_space,
                description=description,
                data_format="hdf5",
            )
    except BaseException:  # leave no half-written dataset behind
        with contextlib.suppress(Exception):
            minari.delete_dataset(name)
        raise
    finally:
        env.close()
    return Path(dataset.spec.data_path).parent
