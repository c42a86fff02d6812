"""The plots: learning curves per task and success definition (curves.png), the critics' mean Q (q_values.png), and any
logged training metric, each with a bootstrap band over seeds."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from utils.benchmark.runs import COLUMN, LABELS, SUCCESS
from utils.writes import writing


def plot_curves(runs: list[dict], path: Path, reps: int = 1000, curve: str = "curve") -> None:
    """curves.png: one column per task and one row per success definition that the runs logged (SUCCESS order),
    evaluation success against environment steps, offline phase at negative steps; tasks without success info
    (locomotion) plot the normalized score instead. With curve="q_curve": one row of the critics' mean Q on training
    batches (values/q_mean) instead, as q_values.png, on a symlog axis; with curve="values/<name>": that logged
    metric's trajectory (e.g. values/log_std_mean), on a linear axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    if curve.startswith("values/"):
        runs = [{**r, curve: r["values"][curve]} for r in runs if curve in r["values"]]
    tasks = sorted({r["env_id"] for r in runs})
    algos = list(dict.fromkeys(r["algo"] for r in runs))

    def logged(metric: str) -> bool:
        return any(COLUMN[metric] < len(p) and not np.isnan(p[COLUMN[metric]]) for r in runs for p in r[curve])

    rows = [2] if curve != "curve" else [COLUMN[m] for m in SUCCESS if logged(m)] or [COLUMN["normalized_score"]]
    if curve == "curve" and logged("goal_step"):  # the pace: how early the goal is reached
        rows.append(COLUMN["goal_step"])
    fig, axes = plt.subplots(len(rows), len(tasks), figsize=(5.2 * len(tasks) + 1.8, 3.8 * len(rows)), squeeze=False)
    rng = np.random.default_rng(0)
    for row, success_column in zip(axes, rows):
        for ax, task in zip(row, tasks):
            offline_len = max((r["offline_steps"] for r in runs if r["env_id"] == task), default=0)
            # a task without success info (locomotion) plots its normalized score (index 3 of a curve point)
            column = (
                success_column
                if curve != "curve" or any(not np.isnan(p[2]) for r in runs if r["env_id"] == task for p in r[curve])
                else 3
            )
            for i, algo in enumerate(algos):
                mine = [r for r in runs if r["env_id"] == task and r["algo"] == algo]
                if not mine:
                    continue
                points: dict[float, list[float]] = {}
                for r in mine:
                    for point in r[curve]:
                        x = point[1] - r["offline_steps"] if point[0] else point[1]
                        if curve == "curve" and not point[0]:  # AWR evaluates after the iteration that crosses a
                            x = x // r["eval_every"] * r["eval_every"]  # multiple, at steps that differ between seeds
                        points.setdefault(x, []).append(point[column] if column < len(point) else np.nan)
                xs = sorted(x for x, v in points.items() if len(v) == len(mine) and not np.isnan(v).any())
                if not xs:
                    continue
                mean = np.array([np.mean(points[x]) for x in xs])
                boot = np.array([[rng.choice(points[x], len(points[x])).mean() for _ in range(reps)] for x in xs])
                lo, hi = np.percentile(boot, 2.5, axis=1), np.percentile(boot, 97.5, axis=1)
                ax.plot(xs, mean, label=f"{algo} ({len(mine)} seeds)", color=f"C{i}")
                ax.fill_between(xs, lo, hi, color=f"C{i}", alpha=0.2)
                online_end = max((p[1] for r in runs if r["env_id"] == task for p in r[curve] if not p[0]), default=0)
                if curve == "curve" and xs[-1] <= 0 < online_end:  # no online phase (BC): its final policy, flat
                    ax.hlines(mean[-1], 0, online_end, color=f"C{i}", linestyles="dashed")
            if offline_len:
                ax.axvspan(-offline_len, 0, color="0.9", zorder=0)
                ax.text(
                    -offline_len / 2,
                    1.02,
                    "offline",
                    ha="center",
                    va="bottom",
                    fontsize=8,
                    color="0.4",
                    transform=ax.get_xaxis_transform(),
                )
            ax.axvline(0, color="0.5", lw=0.8)
            ax.set(title=task, xlabel="environment steps (offline updates before 0)")
            if curve == "curve" and column not in (3, COLUMN["goal_step"]):
                ax.set_ylim(-0.02, 1.08)
            if curve == "q_curve":  # a diverging critic (SACfD on door: 1e11) next to a sane one (-100): both readable
                ax.set_yscale("symlog", linthresh=10.0)
                y0, y1 = ax.dataLim.y0, ax.dataLim.y1  # symlog autoscaling pads by decades: keep to the data
                ax.set_ylim(y0 * 3 if y0 < 0 else y0 / 3, y1 * 3 if y1 > 0 else y1 / 3)
            label = {v: LABELS[k] for k, v in COLUMN.items()}[column]
            if curve == "curve":
                ax.set_ylabel(
                    "normalized score (D4RL)"
                    if column == 3
                    else "median first step at the goal (evaluation)"
                    if column == COLUMN["goal_step"]
                    else f"{label} (evaluation)"
                )
            else:
                ax.set_ylabel("mean Q on training batches (symlog)" if curve == "q_curve" else f"{curve} (training)")
            ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x / 1000:g}k" if x else "0"))
            ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))  # outside: never over a curve
    fig.tight_layout()
    try:
        with writing(path, path):  # a png cut short is removed
            fig.savefig(path, dpi=120, bbox_inches="tight")
    finally:
        plt.close(fig)
