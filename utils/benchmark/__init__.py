"""Compare algorithms with one command: a grid of algorithms x tasks x seeds, then a table and learning curves.

    python -m utils.benchmark --algos awac sac_fd bc awr --envs pen-binary door-binary relocate-binary --seeds 0 1 2
    python -m utils.benchmark --algos awac bc --envs pen-binary --seeds 0 1 --budget quick -- --batch-size 64
    python -m utils.benchmark --algos awac ~/forks/my_awac.py --envs door-binary --seeds 0 1 --budget screen
    python -m utils.benchmark report results/<experiment>/runs/*          # rebuild the outputs from finished runs
    python -m utils.benchmark paired --a results/fp32/runs/* --b results/bf16/runs/* --at 100000 --window 50000

`--algos` takes the four scripts by name and any other script that keeps the house protocol (an `Args` dataclass
and `train(args)`, e.g. a copy of awac.py with a changed loss) by name (beside them) or by path; its runs and rows go
by its file name.

Each (algorithm, task, seed) runs as its own process, `python <algo>.py --env-id ... --seed ...`, with one torch
thread, its own W&B run (grouped by the experiment's name) and its own directory
`results/<experiment>/runs/<task>__<algo>__<seed>`; `--workers` of them at a time (default: the machine's cores).
Arguments after `--` go to every script that has them (a flag that no script has goes to all, so a typo fails);
`--budget` adds a preset of flags before them (see BUDGETS); a flag that reaches more than one script is named once
with the scripts that get it. A run whose `final.json` exists is skipped when the command is repeated, an unfinished
one with a `checkpoint.pt` resumes from it, both only if its `config.json` has the settings the command asks for
(else the command stops, naming the fields that differ: give a new `--experiment`, or `--rerun` to delete such runs
and make them again), and one that another process holds
(utils.run's lock: the same grid still running elsewhere) is skipped with the holder named; a run that fails is
reported with the end of its log and the others go on. Progress: a bar with runs done, running and failed and the
time left, or, when the output is not a terminal, one line per finished run. `--launcher ray` submits each run as a
Ray task to an existing cluster (`--ray-address`, default `auto`; the results directory must be on a file system the
workers share).

Outputs in `results/<experiment>/`: `summary.md` and `summary.csv` (per task and algorithm, and over all tasks: each
success definition and the normalized score after the offline phase and at the end: the mean over runs with its 95%
stratified-bootstrap confidence interval from rliable, seeded; summary.csv also has the IQM, which equals the mean at 3
or fewer runs per task; the number of runs each row used, and the runs left out of a row over several tasks; a row of
one run has no interval; summary.md also names the runs left out as unfinished), `curves.png` (one panel per task and
success definition: evaluation success against environment steps, offline phase shaded at negative steps, mean over
seeds with a 95% bootstrap band per algorithm), `q_values.png` (the same for the critics' mean Q on training batches,
for the algorithms that have critics), and `runs.csv` (every run, its directory relative to the experiment, and its
status).

This is a driver: no algorithm file imports it. Its parts, each a module of this package, lowest first: `scripts`
(finding a script, its flags), `runs` (a finished run read back); `grid` (budgets, cells, a run on disk against the
command), `stats` (intervals, summary rows, the paired comparison); `launchers` (local and Ray), `tables`, `plots`;
`report` (the outputs); and here, `main`, the command line that ties them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from utils.benchmark.grid import (
    BUDGETS,
    MILESTONES,
    NOT_SETTINGS,
    WINDOWS,
    Cell,
    dataset_notice,
    extends,
    plan,
    settings_differ,
)
from utils.benchmark.launchers import connect_ray, execute, launch, ray_token, recheck
from utils.benchmark.plots import plot_curves
from utils.benchmark.report import copy_run_files, report, write_summary_csv, writing_outputs
from utils.benchmark.runs import COLUMN, LABELS, METRICS, PACE, SUCCESS, at_step, load_run
from utils.benchmark.scripts import (
    ALGOS,
    ROOT,
    algo_flags,
    algo_name,
    flags_for,
    import_failure,
    load_script,
    requested_config,
    script_path,
    shared_flags,
)
from utils.benchmark.stats import interval, iqm, paired, summarize
from utils.benchmark.tables import estimate, milestone_table, run_table, without_success_columns
from utils.run.run_dir import run_holder

# The names of the single module this package was, so `from utils.benchmark import X` and `benchmark.X` keep working.
__all__ = [
    "report_command",
    "reconcile",
    "paired_command",
    "grid_parser",
    "check_algos",
    "ALGOS",
    "BUDGETS",
    "COLUMN",
    "LABELS",
    "METRICS",
    "MILESTONES",
    "NOT_SETTINGS",
    "PACE",
    "ROOT",
    "SUCCESS",
    "WINDOWS",
    "Cell",
    "algo_flags",
    "algo_name",
    "at_step",
    "connect_ray",
    "copy_run_files",
    "dataset_notice",
    "estimate",
    "execute",
    "extends",
    "flags_for",
    "import_failure",
    "interval",
    "iqm",
    "launch",
    "load_run",
    "load_script",
    "main",
    "milestone_table",
    "paired",
    "plan",
    "plot_curves",
    "ray_token",
    "recheck",
    "report",
    "requested_config",
    "run_table",
    "script_path",
    "settings_differ",
    "shared_flags",
    "summarize",
    "without_success_columns",
    "write_summary_csv",
    "writing_outputs",
]


# main lives here, in the package itself, not in a module below it: it calls `launch` (and the rest) as globals of
# `utils.benchmark`, so whoever replaces `utils.benchmark.launch` (a test's fake launcher) replaces the one main
# calls. __main__.py only calls it: `python -m` runs that file apart from this package's import.
def main(argv: list[str] | None = None) -> list[dict]:
    """Parses the command line, runs the grid (or only `report`, or `paired`), writes the outputs; returns the
    summary rows. Exits with status 1 when any run failed (after writing what the others produced)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    if argv[:1] == ["report"]:
        return report_command(argv[1:])
    if argv[:1] == ["paired"]:
        return paired_command(argv[1:])
    a = grid_parser().parse_args(argv)
    check_algos(a.algos)
    a.experiment = a.experiment or "_".join(["-".join(map(algo_name, a.algos)), "-".join(a.envs), a.budget or "custom"])
    out = a.results_dir / a.experiment
    for flag, names in shared_flags(a.algos, extra).items():
        print(f"{flag} goes to {', '.join(names)}: each reads it as its own field (see each script's --help)")
    runs = plan(a, extra, out / "runs")
    reconcile(runs, a.rerun)
    extended = [r.run_dir.name for r in runs if r.extend and r.status == "pending"]
    if extended:
        print(f"extending {len(extended)} finished runs to the asked --online-steps: {', '.join(extended)}")
    print(
        f"{len(runs)} runs in {out}: {sum(r.status == 'skipped' for r in runs)} already finished, "
        f"{sum(r.status == 'pending' for r in runs)} to run, {a.workers if a.launcher == 'local' else 'Ray'} "
        "at a time"
    )
    with writing_outputs(out / "runs"):  # the runs' directories and logs go there
        (out / "runs").mkdir(parents=True, exist_ok=True)
    for notice in dict.fromkeys(filter(None, (dataset_notice(r.command) for r in runs if r.status == "pending"))):
        print(f"{notice}; the runs that need it wait for it")
    launch(runs, a)
    failed = [r for r in runs if r.status == "failed"]
    with writing_outputs(out, [r.run_dir for r in runs]):
        rows = report([r.run_dir for r in runs], out, runs, MILESTONES.get(a.budget, ()), WINDOWS.get(a.budget, 0))
    print((out / "summary.md").read_text())
    outputs = ("summary.md", "summary.csv", "curves.png", "q_values.png", "runs.csv")
    written = [name for name in outputs if (out / name).is_file()]  # q_values.png: only where a run has critics
    print(f"outputs in {out}: {', '.join(written)}, and each run's directory and log in {out / 'runs'}")
    if failed:
        print(f"{len(failed)} runs failed: {', '.join(r.run_dir.name for r in failed)} (logs: <run dir>.log)")
        raise SystemExit(1)
    return rows


def report_command(argv: list[str]) -> list[dict]:
    """`python -m utils.benchmark report RUN_DIR ... [--out DIR] [--at STEP ...] [--window STEPS] [--copy-runs]
    [--values KEY ...] [--no-plots]`: the outputs of `report` for finished runs, printed summary.md; returns the
    summary rows. Raises SystemExit for bad flags, no finished run, or an output that cannot be written."""
    p = argparse.ArgumentParser(prog="python -m utils.benchmark report")
    p.add_argument("run_dirs", nargs="+", type=Path)
    p.add_argument("--out", type=Path, default=None, help="output directory (default: the runs' parent's parent)")
    p.add_argument("--at", nargs="+", type=int, default=(), help="also report at these online env steps")
    p.add_argument(
        "--window",
        type=int,
        default=0,
        help="with --at, also average each run's evaluations over this many env steps up to each of those steps",
    )
    p.add_argument(
        "--copy-runs",
        action="store_true",
        help="also copy each finished run's config.json, "
        "metrics.csv and final*.json (no checkpoints, no W&B files) to OUT/runs/<run>/, to commit them",
    )
    p.add_argument(
        "--values",
        nargs="+",
        default=(),
        help="also plot these logged training metrics against steps, each to OUT/<name>.png "
        "(e.g. values/log_std_mean values/advantage_max)",
    )
    p.add_argument("--no-plots", action="store_true", help="write the tables (summary.md/csv, runs.csv) only")
    a = p.parse_args(argv)
    out = a.out or a.run_dirs[0].resolve().parent.parent
    with writing_outputs(out, a.run_dirs):
        rows = report(a.run_dirs, out, at=tuple(a.at), window=a.window, values=tuple(a.values), plots=not a.no_plots)
        if a.copy_runs:
            copy_run_files(a.run_dirs, out / "runs")
    print((out / "summary.md").read_text())
    return rows


def paired_command(argv: list[str]) -> list[dict]:
    """`python -m utils.benchmark paired --a RUN_DIR ... --b RUN_DIR ... --at STEP --window STEPS`: prints `paired`'s
    table for the finished runs of the two arms; returns its result in a list of one. Raises SystemExit for bad
    flags or no pair of finished runs."""
    p = argparse.ArgumentParser(prog="python -m utils.benchmark paired")
    p.add_argument("--a", nargs="+", type=Path, required=True, help="run directories of arm A (the reference)")
    p.add_argument("--b", nargs="+", type=Path, required=True, help="run directories of arm B")
    p.add_argument("--at", type=int, required=True, help="online env step up to which evaluations are averaged")
    p.add_argument("--window", type=int, required=True, help="env steps of evaluations averaged up to --at")
    a = p.parse_args(argv)
    lines, result = paired(
        [d for d in a.a if (d / "final.json").is_file()],
        [d for d in a.b if (d / "final.json").is_file()],
        a.at,
        a.window,
    )
    print("\n".join(lines))
    return [result]


def grid_parser() -> argparse.ArgumentParser:
    """The parser of the grid's command line, `python -m utils.benchmark [--algos ...] [--envs ...] ... [-- FLAGS]`
    (the flags after `--` go to every script and are split off before it parses)."""
    p = argparse.ArgumentParser(prog="python -m utils.benchmark", description=__doc__.split("\n")[0])
    p.add_argument(
        "--algos",
        nargs="+",
        default=list(ALGOS),
        help=f"scripts by name ({', '.join(ALGOS)}) or by "
        "path: any copy that keeps the house protocol, e.g. my_awac.py",
    )
    p.add_argument("--envs", nargs="+", default=["pen-binary", "door-binary", "relocate-binary"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--budget", choices=sorted(BUDGETS), default=None, help="a preset of step budgets")
    p.add_argument("--experiment", default=None, help="name of the experiment (default: from algos, envs, budget)")
    p.add_argument("--results-dir", type=Path, default=ROOT / "results")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="runs at a time on this machine")
    p.add_argument("--launcher", choices=("local", "ray"), default="local")
    p.add_argument("--ray-address", default="auto", help="address of the Ray cluster for --launcher ray")
    p.add_argument(
        "--gpus-per-run",
        type=float,
        default=0.0,
        help="GPUs each Ray task asks for; above 0, every run also gets --device cuda (unless the flags after -- "
        "give a --device)",
    )
    p.add_argument(
        "--rerun",
        action="store_true",
        help="delete and run again the runs of this experiment that were made with other settings than the command's "
        "(without it, the benchmark refuses to reuse or resume them)",
    )
    return p


def check_algos(algos: list[str]) -> None:
    """Before any run starts: each --algos entry exists, imports and keeps the protocol (`load_script`), and no two
    share a name (their runs would mix). Raises SystemExit with one line per problem."""
    problems = []
    for algo in algos:
        try:
            load_script(algo)
        except SystemExit as e:
            problems.append(str(e.code))
    if problems:
        raise SystemExit("\n".join(problems))
    names = [algo_name(algo) for algo in algos]
    for name in {n for n in names if names.count(n) > 1}:
        paths = [str(script_path(algo)) for algo in algos if algo_name(algo) == name]
        raise SystemExit(f"--algos: {' and '.join(paths)} would share the name {name!r} and its runs (rename a copy)")


def reconcile(runs: list[Cell], rerun: bool) -> None:
    """Holds each planned cell against what is on disk and sets what happens to it: a run made with other settings
    than the command's (`settings_differ`) is extended where only its budget grew (`extends`), else refused in one
    line (SystemExit), or, with `rerun`, deleted to be made again; a run another process holds is "held", a
    finished one "skipped"."""
    stale = []  # runs on disk (finished, or with a checkpoint to resume) made with other settings than asked for
    for run in runs:
        if run_holder(run.run_dir) is None and (run.run_dir / "config.json").is_file():
            flags = [w for w in run.command[2:] if w not in ("--checkpoint", str(run.run_dir / "checkpoint.pt"))]
            requested = requested_config(run.command[1], flags)
            differ = settings_differ(run.run_dir, requested)
            if differ and extends(run.run_dir, requested, differ):
                run.extend = True
                if "--checkpoint" not in run.command:
                    run.command += ["--checkpoint", str(run.run_dir / "checkpoint.pt")]
            elif differ:
                stale.append((run, differ))
    if stale and not rerun:
        run, differ = stale[0]
        others = f" (and {len(stale) - 1} more runs)" if len(stale) > 1 else ""
        raise SystemExit(
            f"{run.run_dir} was made with other settings than this command's{others}: {'; '.join(differ)} (give a "
            "new --experiment to keep it, or --rerun to delete it and run again)"
        )
    for run, _ in stale:  # --rerun: the user asked for these runs to be made again with the command's settings
        print(f"--rerun: deleting {run.run_dir} (made with other settings)")
        shutil.rmtree(run.run_dir)
        Path(str(run.run_dir) + ".log").unlink(missing_ok=True)
        run.command = [w for w in run.command if w not in ("--checkpoint", str(run.run_dir / "checkpoint.pt"))]
    for run in runs:
        holder = run_holder(run.run_dir)
        if holder is not None:  # another process works on it (a grid re-issued while the first still runs)
            run.status = "held"
            print(f"skipping {run.run_dir.name}: in use by {holder}")
        elif (run.run_dir / "final.json").is_file() and not run.extend:
            run.status = "skipped"
