"""The markdown tables of summary.md: results at chosen online steps, one row per run, and the columns a grid without a
success signal leaves out."""

from __future__ import annotations

import numpy as np

from utils.benchmark.runs import LABELS, METRICS, at_step
from utils.benchmark.stats import interval


def estimate(mean: float, lo: float, hi: float, runs: int) -> str:
    """A table cell: "mean [lo, hi]" (the 95% CI), "mean (1 run, no interval)" for one run, "n/a" for NaN."""
    if np.isnan(mean):
        return "n/a"
    return f"{mean:.2f} (1 run, no interval)" if runs == 1 else f"{mean:.2f} [{lo:.2f}, {hi:.2f}]"


def milestone_table(runs: list[dict], steps: tuple[int, ...], reps: int = 2000, window: int = 0) -> list[str]:
    """Markdown rows: per task and algorithm, each success definition and the normalized score at each of `steps`
    (mean over the seeds that reached it, with rliable's 95% stratified-bootstrap CIs); with `window`, also their
    mean over the evaluations of the last `window` steps (see `at_step`)."""
    last = f"last {window // 1000:g}K" if window % 1000 == 0 else f"last {window:,}"
    header = [f"{LABELS[m]} (mean [95% CI])" for m in METRICS]
    if window:
        header += [f"{LABELS[m]}, {last} (mean [95% CI])" for m in METRICS]
    lines = [
        "| task | algorithm | env steps | runs | " + " | ".join(header) + " |",
        "|---|---|---|---|" + "---|" * len(header),
    ]
    for task in sorted({r["env_id"] for r in runs}):
        for algo in dict.fromkeys(r["algo"] for r in runs):
            mine = [r for r in runs if r["env_id"] == task and r["algo"] == algo]
            for step in steps:
                cells, n = [], 0
                for width in (0, window) if window else (0,):
                    for metric in METRICS:  # a task without success info (locomotion) has scores only
                        x = np.array([at_step(r, step, metric, width) for r in mine])
                        x = x[~np.isnan(x)]
                        if len(x) == 0:
                            cells.append("n/a")
                            continue
                        n = max(n, len(x))
                        (mean, _), ((mlo, _), (mhi, _)) = (v[algo] for v in interval({algo: x[:, None]}, reps))
                        cells.append(estimate(mean, mlo, mhi, len(x)))
                if n:
                    note = (
                        " (no online phase: its final policy)"
                        if not any(not c[0] for r in mine for c in r["curve"])
                        else ""
                    )
                    lines.append(f"| {task} | {algo}{note} | {step:,} | {n} | {' | '.join(cells)} |")
    return lines


def without_success_columns(lines: list[str]) -> list[str]:
    """A markdown table (header, rule, rows) without the columns of success or pace (goal step, never at goal) whose
    every row is n/a: a grid of tasks without a success signal (locomotion) gets tables of scores only, and runs
    made before goal steps were logged get no empty pace columns. Other tables pass unchanged."""
    cells = [line.strip().strip("|").split("|") for line in lines]
    keep = [
        j
        for j, name in enumerate(cells[0])
        if not any(w in name for w in ("success", "goal")) or any(row[j].strip() != "n/a" for row in cells[2:])
    ]
    return ["|" + "|".join(row[j] for j in keep) + "|" for row in cells]


def run_table(runs: list[dict]) -> list[str]:
    """Markdown rows, one per run: success and score after the offline phase and at the end, its steps (offline
    updates, BC pretraining included, plus online environment steps), wall time and steps per second of wall time."""
    header = [f"{LABELS[m]}, {phase}" for m in METRICS for phase in ("offline", "end")]
    lines = [
        "| run | " + " | ".join(header) + " | steps | wall time | steps/s |",
        "|---|" + "---|" * (len(header) + 3),
    ]
    for r in sorted(runs, key=lambda r: (r["env_id"], r["algo"], r["seed"])):
        f, online = r["final"], r["config"].get("online_steps") or 0
        steps, hours = r["offline_steps"] + online, f.get("wall_time_s", np.nan) / 3600
        cells = [
            f"{f.get(prefix + m, np.nan):.{1 if m in ('normalized_score', 'goal_step') else 2}f}"
            for m in METRICS
            for prefix in ("offline/eval/", "eval/")
        ]
        lines.append(
            f"| {r['dir'].name} | {' | '.join(cells)} | "
            f"{steps:,} | {f'{hours * 60:.1f} min' if hours < 1 else f'{hours:.2f} h'} | "  # short runs in minutes
            f"{steps / (hours * 3600) if hours > 0 else np.nan:.1f} |".replace("nan h", "n/a").replace("nan", "n/a")
        )
    return lines
