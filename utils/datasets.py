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
import json
import os
import sys
from pathlib import Path
from typing import Any

# The dataset code lives in the modules below (dataset_registry <- data_files <- expert_policies <- dataset_recipes,
# data_files <- minari_io: none imports this one); this module is its public entry point, and
# `from utils.datasets import X` keeps working for every name it has always had.
from utils.data_files import (
    ARRAY_KEYS,
    REQUIRED_KEYS,
    DatasetError,
    episode_slices,
    read_file,
    save_dataset,
    summarize,
    validate,
)
from utils.dataset_recipes import (
    build_dataset,
    build_lock,
    cache_path,
    default_cache_dir,
    load_cached,
    replay_door_human,
    rollout,
    uses_expert,
)
from utils.dataset_registry import DATASETS, DEFAULT_DATASETS, LOCOMOTION, SHIPPED_EXPERTS, DatasetSpec
from utils.expert_policies import (
    ASSETS,
    LOCOMOTION_ASSETS,
    ExpertPolicy,
    SACExpert,
    asset_path,
    load_expert_policy,
    sha256_of,
    shipped_files,
    shipped_sac_expert,
    shipped_sha256,
    train_bc_policy,
)
from utils.minari_io import MINARI_METADATA, export_minari, read_minari
from utils.writes import EXIT_WRITE_FAILED, WriteFailed

__all__ = [
    "DATASETS",
    "DEFAULT_DATASETS",
    "LOCOMOTION",
    "SHIPPED_EXPERTS",
    "DatasetSpec",
    "ARRAY_KEYS",
    "REQUIRED_KEYS",
    "DatasetError",
    "episode_slices",
    "read_file",
    "save_dataset",
    "summarize",
    "validate",
    "ASSETS",
    "LOCOMOTION_ASSETS",
    "ExpertPolicy",
    "SACExpert",
    "asset_path",
    "load_expert_policy",
    "sha256_of",
    "shipped_files",
    "shipped_sac_expert",
    "shipped_sha256",
    "build_dataset",
    "build_lock",
    "cache_path",
    "default_cache_dir",
    "load_cached",
    "replay_door_human",
    "rollout",
    "train_bc_policy",
    "uses_expert",
    "MINARI_METADATA",
    "export_minari",
    "read_minari",
    "default_dataset",
    "build_notice",
    "build_parts",
    "load_dataset",
    "main",
]


def default_dataset(env_id: str) -> str:
    """The dataset id an algorithm uses for `env_id` without --dataset: `<task>-awac` for the locomotion tasks of
    `LOCOMOTION`, else `env_id` itself (the hand tasks' datasets are named after them: `door-binary`)."""
    return DEFAULT_DATASETS.get(env_id, env_id)


# How long building a generated dataset takes, for the line that announces a build. Measured: door-binary 1 min on the
# idle 2-core CPU machine and 3 min 49 s on a loaded one (issue 34); the hand tasks' datasets are the same size.
BUILD_TIME = "usually 1-4 min on a 2-core CPU"


def build_parts(dataset: str) -> list[str]:
    """The ids a build of `dataset` (an id of DATASETS) makes, in order, each cached on its own: e.g. door-binary ->
    [door-human, door-bc, door-binary]."""
    spec = DATASETS[dataset]
    bc = [f"{dataset.rsplit('-', 1)[0]}-bc"] if spec.kind == "binary" else []
    return [*([spec.demos] if spec.demos else []), *bc, dataset]


def build_notice(dataset: str, seed: int = 0, cache_dir: str | Path | None = None) -> str | None:
    """The line that announces a build: `dataset` is an id of DATASETS not yet cached (for `seed`, in `cache_dir` or
    `default_cache_dir()`), naming it, where it will be cached and roughly how long it takes; None when it is cached
    or is not such an id (a file, minari:<id>, none)."""
    if dataset not in DATASETS or cache_path(dataset, seed, cache_dir).is_file():
        return None
    return (
        f"building dataset {dataset} ({DATASETS[dataset].description}) once, {BUILD_TIME}; it is cached as "
        f"{cache_path(dataset, seed, cache_dir)} (--data-dir or $AWAC_DATA_DIR move the cache)"
    )


def load_dataset(
    dataset: str, env_id: str | None = None, seed: int = 0, cache_dir: str | Path | None = None, progress: bool = True
) -> dict[str, Any]:
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
        KeyboardInterrupt: Ctrl-C (or SIGTERM under `utils.run.command.cli`) during a build, after one line on stderr
            naming the parts that were cached and those the next start builds again.

    An id that is not cached yet is announced on stderr first (`build_notice`): the first run on a task builds.
    """
    if dataset in DATASETS:
        notice = build_notice(dataset, seed, cache_dir)
        if notice:
            print(notice, file=sys.stderr, flush=True)
        try:
            data = load_cached(dataset, seed, cache_dir, progress)
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM while building: what is kept, what the next start redoes
            parts = build_parts(dataset)
            kept = [p for p in parts if cache_path(p, seed, cache_dir).is_file()]
            print(
                f"interrupted while building dataset {dataset}: "
                + (f"{', '.join(kept)} cached in {cache_path(dataset, seed, cache_dir).parent}; " if kept else "")
                + f"{', '.join(p for p in parts if p not in kept)} not saved: the next start builds "
                + ("them" if len(parts) - len(kept) > 1 else "it")
                + " again",
                file=sys.stderr,
                flush=True,
            )
            raise
    elif dataset.startswith("minari:"):
        data = read_minari(dataset.removeprefix("minari:"))
    elif dataset.endswith((".npz", ".hdf5", ".h5")) or os.sep in dataset:
        data = read_file(dataset)
    else:
        raise DatasetError(
            f"unknown dataset {dataset!r}: use one of {sorted(DATASETS)}, a path to a .npz/.hdf5 "
            "file, or minari:<id> for a locally installed Minari dataset"
        )
    validate(data, env_id, where=f"dataset {dataset!r}")
    return data


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
        p.add_argument(
            "--cache-dir", default=None, help="cache directory (default: $AWAC_DATA_DIR or ~/.cache/awac/datasets)"
        )
    build.add_argument(
        "--force",
        action="store_true",
        help="rebuild even if cached (with --expert-policy, also the components cached from another expert)",
    )
    build.add_argument(
        "--expert-policy",
        default=None,
        metavar="PATH.npz",
        help="an expert policy .npz to build "
        "<task>-expert/-bc/-binary (or -awac) from: a DAPG policy (format of utils/assets/adroit/) for "
        "a hand task, required once for hammer; a SAC expert of utils/experts.py for locomotion",
    )
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
            print(
                f"wrote Minari dataset {args.minari!r} ({len(episode_slices(data))} episodes, "
                f"{len(data['rewards'])} steps, env {env_id}) in {where}; load it with "
                f"--dataset minari:{args.minari}"
            )
            return
        if args.command == "build" and (args.force or args.expert_policy):
            if args.dataset not in DATASETS:
                raise DatasetError(f"unknown dataset {args.dataset!r}: build takes one of {sorted(DATASETS)}")
            data = load_cached(
                args.dataset,
                args.seed,
                args.cache_dir,
                force=args.force,
                expert_policy=args.expert_policy,
                replace_mismatched=args.force,
            )
            validate(data, DATASETS[args.dataset].env_id, where=f"dataset {args.dataset!r}")
        else:
            data = load_dataset(args.dataset, seed=args.seed, cache_dir=args.cache_dir)
    except DatasetError as e:
        parser.exit(2, f"error: {e}\n")
    except WriteFailed as e:  # the cache file (or its lock) could not be written
        parser.exit(EXIT_WRITE_FAILED, f"error: {e}\n")
    except KeyboardInterrupt:  # load_dataset has said what the build left: no traceback
        parser.exit(130)
    meta = data["metadata"]
    print(
        json.dumps(
            {
                "dataset": args.dataset,
                **{k: meta.get(k) for k in ("env_id", "source", "recipe", "seed", "build_seconds")},
                **summarize(data),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
