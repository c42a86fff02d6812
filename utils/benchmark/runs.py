"""A finished run read back from its directory: the metrics the tables and plots report, its evaluation curve and logged
values, and its value at an online step."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

# The success definitions of utils.envs.SUCCESS_DEFINITIONS, the one rlkit's logs (and so, most likely, the AWAC
# paper's curves) report first; every table gives each in its own column, never mixed.
SUCCESS = ("success_final", "success_any", "success_rate")
# The pace of a goal task (utils.envs.evaluate): the median first step at the goal, and the share never there.
PACE = ("goal_step", "goal_never")
METRICS = (*SUCCESS, "normalized_score", *PACE)
# Column headers, and the index of each metric in a curve point (offline, step, success_rate, score, final, any,
# goal_step, goal_never).
LABELS = {
    "success_final": "success at last step",
    "success_any": "success at any step",
    "success_rate": "success > 20/25 steps",
    "normalized_score": "score",
    "goal_step": "goal step",
    "goal_never": "never at goal",
}
COLUMN = {
    "success_rate": 2,
    "normalized_score": 3,
    "success_final": 4,
    "success_any": 5,
    "goal_step": 6,
    "goal_never": 7,
}


def load_run(run_dir: Path) -> dict:
    """A finished run's config, final metrics and evaluation curve: (offline, step, success_rate, score, success_final,
    success_any, goal_step, goal_never) per evaluation (NaN for what the run did not log: runs before December 2026
    logged success_rate only, and goal_step / goal_never came with issue 33), where step counts updates from the start
    of the offline phase (BC pretraining included) or online env steps; and each logged `values/*` metric's trajectory,
    `values[key]`: (offline, step, value) per logged row (`q_curve`: values/q_mean's)."""
    config = json.loads((run_dir / "config.json").read_text())
    # null is a metric without a value (success on locomotion tasks); older runs wrote NaN, which json reads too
    final = {k: np.nan if v is None else v for k, v in json.loads((run_dir / "final.json").read_text()).items()}
    # sac_fd.py's --bc-pretrain-steps come before its offline updates: both count as the offline phase.
    # Without prior data (--dataset none: SAC from scratch) there is no offline phase, whatever its budget says.
    scratch = str(config.get("dataset") or "").lower() == "none"
    bc_steps = 0 if scratch else config.get("bc_pretrain_steps", 0)
    curve, values = [], {}
    with (run_dir / "metrics.csv").open() as f:
        for row in csv.DictReader(f):
            if row.get("charts/offline_step") or row.get("charts/env_step"):
                offline = bool(row.get("charts/offline_step"))
                step = float(row["charts/offline_step"]) + bc_steps if offline else float(row["charts/env_step"])
                for k, v in row.items():
                    if k.startswith("values/") and v:
                        values.setdefault(k, []).append((offline, step, float(v)))
            if row.get("eval/success_rate"):
                offline = bool(row.get("charts/offline_step") or row.get("charts/bc_step"))
                if row.get("charts/bc_step"):
                    step = float(row["charts/bc_step"])
                elif offline:
                    step = float(row["charts/offline_step"]) + (bc_steps if float(row["charts/offline_step"]) else 0)
                else:
                    step = float(row.get("charts/env_step") or 0)
                curve.append(
                    (
                        offline,
                        step,
                        float(row["eval/success_rate"]),
                        float(row["eval/normalized_score"]),
                        *(float(row.get(f"eval/{k}") or "nan") for k in ("success_final", "success_any", *PACE)),
                    )
                )
    algo = run_dir.name.split("__")[1] if run_dir.name.count("__") >= 2 else Path(config.get("run_dir", "?")).name
    return {
        "dir": run_dir,
        "algo": algo,
        "env_id": config["env_id"],
        "seed": config["seed"],
        "config": config,
        "offline_steps": (0 if scratch else config.get("offline_steps", 0)) + bc_steps,
        "eval_every": config.get("eval_every", 1),
        "final": final,
        "curve": curve,
        "q_curve": values.get("values/q_mean", []),
        "values": values,
    }


def at_step(run: dict, step: int, metric: str, window: int = 0) -> float:
    """A run's evaluation `metric` at online environment step `step`: the first evaluation in [step, step +
    eval_every) (AWR evaluates after the iteration that crosses a multiple, e.g. at 101,200 for 100,000), NaN if
    the run never got there. With `window`, the mean of its evaluations in [step - window + eval_every, step +
    eval_every) instead, the last window // eval_every of them up to `step`: one evaluation of 50 episodes swings
    by +-0.07 from sampling alone, and a policy's success rate moves more than that between evaluations. A run
    without an online phase (BC) has the same value at every step: its final one."""
    online = [c for c in run["curve"] if not c[0]]
    if not online:
        return run["final"].get(f"eval/{metric}", np.nan)
    every, column = run.get("eval_every", 1), COLUMN[metric]
    if not any(step <= c[1] < step + every for c in online):
        return np.nan
    found = [
        c[column] if column < len(c) else np.nan for c in online if step - max(window - every, 0) <= c[1] < step + every
    ]
    return float(np.mean(found)) if window else found[0]
