"""The grid: the budget presets (and the steps at which summary.md reports each), one cell per (algorithm, task, seed)
with the command of its run, and how a run already on disk compares with the run a command asks for."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from utils.benchmark.scripts import algo_name, flags_for, script_path

# Flags a preset adds before the user's; each script receives only those its Args has.
BUDGETS: dict[str, list[str]] = {
    "quick": "--offline-steps 1000 --online-steps 2000 --batch-size 64 --hidden-dims 64 64 --eval-every 1000 "
    "--eval-episodes 5 --log-every 250 --samples-per-iter 500 --actor-steps 250 --critic-steps 50".split(),
    "table": "--offline-steps 25000 --online-steps 50000 --batch-size 256 --eval-every 5000 --eval-episodes 25".split(),
    "paper": [],  # every script's own defaults: the paper's budgets (AWAC: 25K offline updates, 500K env steps)
    # The door experiment at the paper's settings (each script's defaults) and 300K of its 500K online steps;
    # SACfD with 25K BC-pretraining updates of its actor (SACfD-pretrain in the paper's figure).
    "paper-door": "--offline-steps 25000 --online-steps 300000 --eval-every 10000 --eval-episodes 50 "
    "--save-every 10000 --bc-pretrain-steps 25000".split(),
    # AWAC on door at rlkit's full budget: 501 epochs of 1000 steps, here 500K online steps after 25K offline updates.
    "door-500k": "--offline-steps 25000 --online-steps 500000 --eval-every 10000 --eval-episodes 50 "
    "--save-every 10000 --bc-pretrain-steps 25000".split(),
    # A screen at a tenth of the paper's online budget: 25K offline updates, 100K environment steps at each script's
    # own batch size, evaluations every 10K on 50 episodes (the door screen and the precision check; pen at 256).
    "screen": "--offline-steps 25000 --online-steps 100000 --eval-every 10000 --eval-episodes 50 "
    "--save-every 10000 --bc-pretrain-steps 25000".split(),
    # The locomotion tasks (HalfCheetah-v5, Walker2d-v5, Ant-v5) at a budget that fits: 25K offline updates and
    # 100K environment steps, online batch 256 (AWAC's offline batch stays rlkit's 128; the paper: 500K+ steps at
    # batch 1024). Their datasets need the SAC experts of utils/experts.py (README, "Locomotion").
    "locomotion": "--offline-steps 25000 --online-steps 100000 --batch-size 256 --eval-every 5000 "
    "--eval-episodes 10 --save-every 25000".split(),
}
# Environment steps at which summary.md also reports each method (besides after the offline phase and at the end).
MILESTONES: dict[str, tuple[int, ...]] = {
    "door-500k": (100_000, 200_000, 300_000, 500_000),
    "paper-door": (100_000, 200_000, 300_000),
    "screen": (50_000, 100_000),
    "locomotion": (25_000, 50_000, 100_000),
}
# ... and also averaged over the evaluations of this many steps up to each milestone (5 evaluations of 50 episodes
# on door, of 10 episodes on the locomotion tasks).
WINDOWS: dict[str, int] = {"door-500k": 50_000, "paper-door": 50_000, "screen": 50_000, "locomotion": 25_000}


@dataclasses.dataclass
class Cell:
    """One (algorithm, task, seed) cell of the grid: the command of its run and, once launched, its outcome."""

    algo: str
    env_id: str
    seed: int
    run_dir: Path
    command: list[str]
    status: str = "pending"
    log_tail: str = ""
    seconds: float = 0.0
    extend: bool = False  # a finished run that the command asks to run longer (more --online-steps)


def plan(args: argparse.Namespace, extra: list[str], runs_dir: Path) -> list[Cell]:
    """The grid's cells, by task, then algorithm, then seed (`args.envs`, `args.algos`, `args.seeds`), each with its
    run's command: `python <script> --env-id ... --seed ...` on one thread, without a progress bar, in
    `runs_dir/<task>__<algo>__<seed>`, in the W&B group `args.experiment`; then the flags of the `args.budget` preset
    and of `extra` (the words after `--`) that the script takes (`flags_for`), and `--device cuda` when
    `args.gpus_per_run` > 0 and `extra` names no device. A run that saved a checkpoint.pt gets `--checkpoint` to
    resume from it. Raises SystemExit for a script that is not found or does not import (`load_script`)."""
    runs = []
    for env_id in args.envs:
        for algo in args.algos:
            for seed in args.seeds:
                name = f"{env_id}__{algo_name(algo)}__{seed}"
                command = [
                    sys.executable,
                    str(script_path(algo)),
                    "--env-id",
                    env_id,
                    "--seed",
                    str(seed),
                    "--threads",
                    "1",
                    "--no-progress",
                    "--run-dir",
                    str(runs_dir),
                    "--run-name",
                    name,
                    "--wandb-group",
                    args.experiment,
                    *flags_for(algo, BUDGETS[args.budget] if args.budget else []),
                    *(["--device", "cuda"] if args.gpus_per_run > 0 and "--device" not in extra else []),
                    *flags_for(algo, extra),
                ]
                checkpoint = runs_dir / name / "checkpoint.pt"
                if checkpoint.is_file():  # an unfinished run (killed, preempted) resumes where it saved last
                    command += ["--checkpoint", str(checkpoint)]
                runs.append(Cell(algo_name(algo), env_id, seed, runs_dir / name, command))
    return runs


# Fields that say where and how a run executes or is logged, not what it learns: a run on disk may differ from the
# command in these and still be the run the command asks for.
NOT_SETTINGS = frozenset(  # compile changes how fast, not what: the same math to float rounding
    "checkpoint eval_only device threads progress wandb_mode wandb_project wandb_group run_dir run_name data_dir "
    "capture_video compile".split()
)


def settings_differ(run_dir: Path, requested: dict) -> list[str]:
    """The fields (NOT_SETTINGS aside) in which the run in `run_dir` (its config.json) differs from `requested`
    (`requested_config`), each as "name: run X, command Y"; [] when they agree or the run has no config.json. A field
    that only one side has (a run made before the field existed) is not compared."""
    path = run_dir / "config.json"
    if not path.is_file():
        return []
    saved = json.loads(path.read_text())
    return [
        f"{k}: run {json.dumps(saved[k])}, command {json.dumps(v)}"
        for k, v in requested.items()
        if k in saved and k not in NOT_SETTINGS and saved[k] != v
    ]


def extends(run_dir: Path, requested: dict, differ: list[str]) -> bool:
    """Whether the command asks for more of the run in `run_dir` rather than another run: the only differing setting
    is `online_steps`, the command's is larger, and the run kept its checkpoint.pt. The script then goes on from
    there (utils.run.loop.Run.extend: final.json is kept as final-<step>.json, and the online phase continues from an
    episode reset: a continuation, not the run a longer budget would have made from the start)."""
    saved = json.loads((run_dir / "config.json").read_text()).get("online_steps")
    return (
        [d.split(":")[0] for d in differ] == ["online_steps"]
        and isinstance(saved, int)
        and requested["online_steps"] > saved
        and (run_dir / "checkpoint.pt").is_file()
    )


def dataset_notice(command: list[str]) -> str | None:
    """utils.datasets.build_notice for the dataset that a run's `command` loads (its --dataset, or the task's default,
    with --dataset-seed and --data-dir): the line announcing that its first run builds it, or None."""
    from utils.datasets import build_notice, default_dataset

    flag = lambda name, default: command[command.index(name) + 1] if name in command else default  # noqa: E731
    dataset = flag("--dataset", default_dataset(flag("--env-id", "")))
    return build_notice(dataset, int(flag("--dataset-seed", 0)), flag("--data-dir", None))
