"""An experiment's outputs from its run directories: summary.md, summary.csv, the plots and runs.csv; the committed copy
of each run's small files; and one line, not a traceback, when a write fails."""

from __future__ import annotations

import contextlib
import csv
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from utils.benchmark.grid import Cell
from utils.benchmark.plots import plot_curves
from utils.benchmark.runs import LABELS, METRICS, load_run
from utils.benchmark.stats import summarize
from utils.benchmark.tables import estimate, milestone_table, run_table, without_success_columns
from utils.envs import SUCCESS_DEFINITIONS
from utils.writes import EXIT_WRITE_FAILED, WriteFailed


def report(
    run_dirs: list[Path],
    out: Path,
    all_runs: list[Cell] | None = None,
    at: tuple[int, ...] = (),
    window: int = 0,
    values: tuple[str, ...] = (),
    plots: bool = True,
) -> list[dict]:
    """Writes summary.md, summary.csv, curves.png (and runs.csv) in `out` from finished run directories; with `at`,
    summary.md also has each method's results at those online environment steps (and, with `window`, averaged over
    the evaluations of the last `window` steps up to each); each of `values` (logged keys such as
    values/log_std_mean) is plotted to <name>.png; `plots=False` writes the tables only. runs.csv names each run's
    directory relative to `out`. Raises SystemExit for a key that no run logged."""
    out.mkdir(parents=True, exist_ok=True)
    finished = [load_run(d) for d in run_dirs if (d / "final.json").is_file()]
    if not finished:
        raise SystemExit(f"no finished run (with final.json) among {len(run_dirs)} directories")
    rows = summarize(finished)
    write_summary_csv(rows, out / "summary.csv")
    header = [f"{LABELS[m]}, {phase} (mean [95% CI])" for m in METRICS for phase in ("offline", "end")]
    lines = ["| task | algorithm | runs | " + " | ".join(header) + " |", "|---|---|---|" + "---|" * len(header)]
    for r in rows:  # success is n/a on tasks without success info (locomotion): their score is D4RL's
        cells = [
            estimate(r[f"{m}_{phase}_mean"], r[f"{m}_{phase}_mean_lo"], r[f"{m}_{phase}_mean_hi"], r["runs"])
            for m in METRICS
            for phase in ("offline", "end")
        ]
        lines.append(f"| {r['task']} | {r['algorithm']} | {r['runs']} | {' | '.join(cells)} |")
    cut = [f"{r['task']}, {r['algorithm']}: {r['left_out']}" for r in rows if r["left_out"]]
    unfinished = (
        [f"{c.run_dir.name} ({c.status})" for c in all_runs if c.status not in ("done", "skipped")]
        if all_runs is not None
        else [f"{d.name} (no final.json)" for d in run_dirs if d.is_dir() and not (d / "final.json").is_file()]
    )
    notes = [
        *(
            ["Left out of rows over several tasks (their seeds are missing on another task): " + "; ".join(cut)]
            * bool(cut)
        ),
        *([f"Left out, not finished: {', '.join(unfinished)}"] * bool(unfinished)),
    ]
    if unfinished:
        print(f"left out of the report, not finished: {', '.join(unfinished)}")
    definitions = [
        "Success definitions (utils.envs.SUCCESS_DEFINITIONS), each in its own column:",
        "",
        *(f"- {LABELS[k]} (`eval/{k}`): {v}" for k, v in SUCCESS_DEFINITIONS.items()),
        "- score (`eval/normalized_score`): hand tasks, the percentage of steps on which the goal held; "
        "locomotion, D4RL's normalized return",
        "- goal step (`eval/goal_step`): the median, over an evaluation's episodes that reach the goal, of the first "
        "step at the goal (the episode length when none does); never at goal (`eval/goal_never`): the share of "
        "episodes that never reach it",
        "",
    ]
    lines = [
        *(definitions if any(not np.isnan(r["final"].get("eval/success_rate", np.nan)) for r in finished) else []),
        *without_success_columns(lines),
        *(["", *notes] if notes else []),
    ]
    if at:
        lines += [
            "",
            f"At {', '.join(f'{x:,}' for x in at)} online environment steps:",
            "",
            *without_success_columns(milestone_table(finished, at, window=window)),
        ]
    lines += [
        "",
        "Per run (wall time over all the processes of a resumed run):",
        "",
        *without_success_columns(run_table(finished)),
    ]
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    for key in values:
        if not any(key in r["values"] for r in finished):
            logged = sorted({k for r in finished for k in r["values"]})
            raise SystemExit(f"--values {key}: no run logged it (logged: {', '.join(logged)})")
    if plots:
        plot_curves(finished, out / "curves.png")
        if any(r["q_curve"] for r in finished):
            plot_curves([r for r in finished if r["q_curve"]], out / "q_values.png", curve="q_curve")
        for key in values:
            plot_curves(finished, out / f"{key.split('/')[-1]}.png", curve=key)
    relative = lambda d: Path(os.path.relpath(Path(d).resolve(), out.resolve())).as_posix()  # noqa: E731
    with (out / "runs.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run", "algorithm", "task", "seed", "status", "seconds", "directory"])
        if all_runs is not None:
            for r in all_runs:
                w.writerow(
                    [r.run_dir.name, r.algo, r.env_id, r.seed, r.status, f"{r.seconds:.0f}", relative(r.run_dir)]
                )
        else:
            for r in finished:
                w.writerow([r["dir"].name, r["algo"], r["env_id"], r["seed"], "done", "", relative(r["dir"])])
    return rows


def write_summary_csv(rows: list[dict], path: Path) -> None:
    """summary.csv: one line per `summarize` row, its keys as the header, floats as Python writes them (repr)."""
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, list(rows[0]))
        w.writeheader()
        w.writerows(rows)


@contextlib.contextmanager
def writing_outputs(out: Path, runs: list[Path] | None = None) -> Iterator[None]:
    """`with writing_outputs(out, runs):` around writing the benchmark's outputs in `out` (report, --copy-runs; or,
    without `runs`, its runs directory): a write that fails (no space, read-only, ...) prints one line, the file, the
    reason and what to do (how to rebuild the outputs from the run directories `runs`, which are kept), and exits with
    status EXIT_WRITE_FAILED."""
    fix = "make room, or give another --results-dir"
    if runs:
        parents = {r.parent for r in runs}
        given = f"{parents.pop()}/*" if len(parents) == 1 and len(runs) > 1 else " ".join(map(str, runs))
        fix = f"the runs are kept; make room, then: python -m utils.benchmark report {given} --out {out}"
    try:
        yield
    except OSError as e:  # named by the file where the error knows it (a failed open), else by the directory
        failed = e if isinstance(e, WriteFailed) else WriteFailed(e.filename or out, e)
        failed.fix = failed.fix or fix
        print(f"error: {failed}", file=sys.stderr)
        raise SystemExit(EXIT_WRITE_FAILED) from None


def copy_run_files(run_dirs: list[Path], dest: Path) -> list[Path]:
    """Copies each finished run's small result files (config.json, metrics.csv, final.json and the final-<step>.json
    of an extended run) into `dest/<run name>/`, the files a results directory commits so every number can be
    checked; checkpoints and W&B files stay behind. Returns the directories written. A run without final.json is
    skipped."""
    written = []
    for run in run_dirs:
        if not (run / "final.json").is_file():
            continue
        target = dest / run.name
        target.mkdir(parents=True, exist_ok=True)
        for f in (run / "config.json", run / "metrics.csv", *sorted(run.glob("final*.json"))):
            shutil.copyfile(f, target / f.name)
        written.append(target)
    return written
