"""Locomotion experts for the paper's MuJoCo setting: train SAC with sac_fd.py, export its actor, ship it.

The AWAC paper's locomotion prior data (Sec. 5.3) starts from "an expert policy trained with SAC"; the authors' is
lost, so this repository trains its own, once, by a documented command, and ships the actor's weights in
`utils/assets/locomotion/` with a checksum (datasets are never built from a policy at run time without it):

    python sac_fd.py --env-id HalfCheetah-v5 --dataset none --online-steps 1000000 --precision bf16 \\
        --eval-every 50000 --save-every 50000 --run-dir ~/experts --run-name halfcheetah-sac
    python -m utils.experts export ~/experts/halfcheetah-sac/checkpoint.pt halfcheetah

`export` writes `<task>-sac-expert.npz` (float32 weights of the actor, the format `utils.datasets.SACExpert`
reads, with its provenance: the command, environment steps, seed, wall time), evaluates it over 10 deterministic
episodes with that reader (the number the README reports), records the return in the file and its sha256 in
`SHA256SUMS`. `python -m utils.experts show [--markdown]` lists the shipped experts and their provenance.

This is a tool: no algorithm file imports it.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
from pathlib import Path

import numpy as np

from utils.data_files import DatasetError
from utils.dataset_registry import LOCOMOTION
from utils.envs import evaluate
from utils.expert_policies import LOCOMOTION_ASSETS, SACExpert, asset_path, sha256_of, shipped_files

# The log-std bounds of sac_fd.TanhGaussianActor (LOG_STD_MIN, LOG_STD_MAX), which a checkpoint does not store.
SAC_LOG_STD_RANGE = (-5.0, 2.0)
# The defaults of sac_fd.Args, which `command_of` leaves out of a recorded command, written out so that this tool
# imports no algorithm file; tests/test_locomotion.py keeps both copies equal to sac_fd's.
SAC_FD_DEFAULTS: dict = {
    "seed": 0,
    "device": "cpu",
    "threads": 0,
    "precision": "auto",
    "compile": "off",
    "run_dir": "runs",
    "run_name": None,
    "wandb_mode": "offline",
    "wandb_project": "awac",
    "wandb_group": None,
    "log_every": 1000,
    "env_id": "door-binary",
    "dataset": None,
    "dataset_seed": 0,
    "data_dir": None,
    "offline_steps": 25_000,
    "online_steps": None,
    "bc_pretrain_steps": 0,
    "learning_starts": 5000,
    "batch_size": 256,
    "offline_batch_size": None,
    "hidden_dims": (256, 256),
    "actor_lr": 3e-4,
    "critic_lr": 3e-4,
    "alpha_lr": 3e-4,
    "gamma": 0.99,
    "tau": 5e-3,
    "init_alpha": 1.0,
    "autotune": True,
    "buffer_size": 1_000_000,
    "eval_every": 10_000,
    "eval_episodes": 10,
    "capture_video": False,
    "save_every": 50_000,
}


def command_of(args: dict, defaults: dict | None = None) -> str:
    """The sac_fd.py command line that reproduces a run with these (checkpointed) fields; fields at their default
    (`defaults`, by default `SAC_FD_DEFAULTS`) are left out."""
    default = SAC_FD_DEFAULTS if defaults is None else defaults
    words = ["python", "sac_fd.py"]
    for name, value in args.items():
        if name in ("checkpoint", "eval_only", "progress") or default.get(name) == value or value is None:
            continue
        if isinstance(value, str):  # the trainer's home directory stays out of a shipped file
            value = value.replace(str(Path.home()), "~")
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            words.append(flag if value else "--no-" + flag[2:])
        elif isinstance(value, (list, tuple)):
            words += [flag, *map(str, value)]
        else:
            words += [flag, str(value)]
    return shlex.join(words).replace("'~/", "~/'")  # quoted "~" would not expand: ~/'rest' does


def export(checkpoint: str | Path, task: str, out_dir: Path = LOCOMOTION_ASSETS, episodes: int = 10) -> dict:
    """Writes `out_dir/<task>-sac-expert.npz` from a sac_fd.py checkpoint of a run on LOCOMOTION[task], evaluates
    it (`episodes` deterministic episodes, seeds 0..episodes-1) and records the result and its sha256 in
    `out_dir/SHA256SUMS`. Returns the provenance (also the file's `metadata`).

    Raises:
        DatasetError: an unknown task, or a checkpoint that is not sac_fd.py's or was trained on another env.
    """
    import torch

    if task not in LOCOMOTION:
        raise DatasetError(f"unknown locomotion task {task!r}: use one of {sorted(LOCOMOTION)}")
    if not Path(checkpoint).is_file():
        raise DatasetError(f"{checkpoint}: no such file (give the checkpoint.pt of a sac_fd.py run)")
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("script") != "sac_fd.py":
        raise DatasetError(f"{checkpoint} is not a checkpoint of sac_fd.py (train the expert with sac_fd.py)")
    if ckpt["args"]["env_id"] != LOCOMOTION[task]:
        raise DatasetError(f"{checkpoint} was trained on {ckpt['args']['env_id']!r}, not {LOCOMOTION[task]!r}")
    actor = ckpt["agent"]["actor"]
    layers = sorted({int(k.split(".")[1]) for k in actor if k.startswith("net.")})
    arrays = {}
    for i, layer in enumerate(layers):
        arrays[f"weight_{i}"] = actor[f"net.{layer}.weight"].float().numpy()
        arrays[f"bias_{i}"] = actor[f"net.{layer}.bias"].float().numpy()
    provenance = {
        "task": task,
        "env_id": LOCOMOTION[task],
        "command": command_of(ckpt["args"]),
        "env_steps": int(ckpt["counters"]["env_step"]),
        "seed": ckpt["args"]["seed"],
        "wall_time_h": round(ckpt["elapsed_s"] / 3600, 2),
        "checkpoint_sha256": sha256_of(checkpoint),
    }
    path = out_dir / f"{task}-sac-expert.npz"
    tmp = out_dir / f".{task}-sac-expert.tmp.npz"  # the shipped file and its checksum change only together, at the end
    out_dir.mkdir(parents=True, exist_ok=True)
    lo, hi = SAC_LOG_STD_RANGE

    def write(meta: dict) -> None:
        with open(tmp, "wb") as f:
            np.savez_compressed(
                f, **arrays, log_std_min=np.float32(lo), log_std_max=np.float32(hi), metadata=json.dumps(meta)
            )

    write(provenance)
    result = evaluate(SACExpert(tmp, LOCOMOTION[task]).mean, LOCOMOTION[task], episodes, seed=0)
    provenance.update(
        eval_episodes=episodes,
        return_mean=round(result["return_mean"], 1),
        return_std=round(result["return_std"], 1),
        normalized_score=round(result["normalized_score"], 1),
    )
    write(provenance)
    os.replace(tmp, path)
    sums = {**shipped_files(out_dir), path.name: sha256_of(path)}
    (out_dir / "SHA256SUMS").write_text("".join(f"{sha}  {name}\n" for name, sha in sorted(sums.items())))
    return provenance


def markdown_table(assets: Path = LOCOMOTION_ASSETS) -> str:
    """The shipped experts as a markdown table (the provenance README's): task, its 10-episode deterministic return
    (mean ± std) and D4RL score, environment steps, seed, wall time, sha256 prefix and the training command."""
    lines = [
        "| task | env | return (mean ± std) | D4RL score | episodes | env steps | seed | wall time (h) | "
        "sha256 | command |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, sha in sorted(shipped_files(assets).items()):
        m = SACExpert(asset_path(name, assets)).metadata  # checksum-verified
        if not {
            "task",
            "env_id",
            "return_mean",
            "return_std",
            "normalized_score",
            "eval_episodes",
            "env_steps",
            "seed",
            "wall_time_h",
            "command",
        } <= set(m):
            lines.append(
                f"| {name} | ? | not recorded: re-export it with `python -m utils.experts export` |" + " |" * 7
            )
            continue
        lines.append(
            f"| {m['task']} | {m['env_id']} | {m['return_mean']:,.0f} ± {m['return_std']:,.0f} | "
            f"{m['normalized_score']:.1f} | {m['eval_episodes']} | {m['env_steps']:,} | {m['seed']} | "
            f"{m['wall_time_h']} | `{sha[:12]}` | `{m['command']}` |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """`python -m utils.experts {export CHECKPOINT TASK, show}`."""
    parser = argparse.ArgumentParser(prog="python -m utils.experts", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("export", help="export a sac_fd.py checkpoint's actor as <task>-sac-expert.npz and evaluate it")
    p.add_argument("checkpoint")
    p.add_argument("task", choices=sorted(LOCOMOTION))
    p.add_argument("--out-dir", type=Path, default=LOCOMOTION_ASSETS)
    p.add_argument("--episodes", type=int, default=10, help="deterministic evaluation episodes")
    p = sub.add_parser("show", help="the shipped experts and their provenance")
    p.add_argument("--markdown", action="store_true", help="as one markdown table")
    args = parser.parse_args(argv)
    try:
        if args.command == "export":
            print(json.dumps(export(args.checkpoint, args.task, args.out_dir, args.episodes), indent=2))
        elif args.markdown:
            print(markdown_table())
        else:
            for name in shipped_files(LOCOMOTION_ASSETS):
                print(name, json.dumps(SACExpert(LOCOMOTION_ASSETS / name).metadata, indent=2))
    except DatasetError as e:
        parser.exit(2, f"error: {e}\n")


if __name__ == "__main__":
    main()
