"""Does door success dip when the online data catch up with the prior data, and how much does a policy's success
move from one evaluation to the next? Reads runs' metrics.csv; changes no run.

    python docs/results/door-paper/swings.py --until 150000 RUN_DIR [RUN_DIR ...]

Two markdown tables, for each success definition (`utils.envs.SUCCESS_DEFINITIONS`):

- pooled: at each online step up to `--until`, the mean over the runs of their evaluation there. The dip of
  November's runs (every seed at 90K-100K, when the ~100K online transitions equal the 106,729 prior ones) would
  show as a pooled low there and nowhere else.
- swings, per run: the mean absolute change between consecutive online evaluations, and the same in episodes of
  the evaluation's N. Every evaluation of a run resets the same N initial states (seeds 1,000,000 + 1,000 x seed +
  i) and acts with the mean action in a deterministic simulator, so a change of k/N means at least k episodes
  changed outcome: the policy itself moved, not the sample of start states.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from utils.envs import SUCCESS_DEFINITIONS  # noqa: E402


def online_evals(run: Path, keys: list[str]) -> tuple[np.ndarray, np.ndarray, int]:
    """(steps (E,), values (E, len(keys)), episodes per evaluation) of a run's online evaluations, the one at
    online step 0 (the end of the offline phase) included; NaN for a key the run did not log (runs before December
    2026 logged `eval/success_rate` only). Raises FileNotFoundError without metrics.csv or config.json."""
    with open(run / "metrics.csv") as f:
        rows = [
            r for r in csv.DictReader(f) if r.get("eval/success_rate") not in (None, "") and r.get("charts/env_step")
        ]
    # the offline phase logs its evaluations at env step 0 too: keep the last of them, where the online phase starts
    steps = np.array([int(float(r["charts/env_step"])) for r in rows])
    first = np.flatnonzero(steps > 0)[0] - 1 if (steps > 0).any() else len(rows) - 1
    rows = rows[first:]
    values = np.array([[float(r.get(k) or "nan") for k in keys] for r in rows])
    episodes = int(json.loads((run / "config.json").read_text()).get("eval_episodes", 50))
    return steps[first:], values, episodes


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--until", type=int, default=150_000, help="last online step of the pooled table")
    a = p.parse_args()
    keys = [f"eval/{d}" for d in SUCCESS_DEFINITIONS]
    names = list(SUCCESS_DEFINITIONS)
    for run in a.runs:
        if not (run / "metrics.csv").is_file():
            sys.exit(f"swings.py: {run} is not a run directory (no metrics.csv); pass run directories, not logs")
    data = {run: online_evals(run, keys) for run in a.runs}

    pooled: dict[int, list[np.ndarray]] = {}
    for steps, values, _ in data.values():
        for s, v in zip(steps, values):
            if s <= a.until:
                pooled.setdefault(int(s), []).append(v)
    print(f"Pooled mean over {len(data)} runs (runs with an evaluation there), by online step:\n")
    print("| online step | runs | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 2) + "|")
    for s in sorted(pooled):
        with warnings.catch_warnings():  # a definition no run logged stays NaN, and prints blank
            warnings.simplefilter("ignore", RuntimeWarning)
            m = np.nanmean(pooled[s], axis=0)
        print(f"| {s:,} | {len(pooled[s])} | " + " | ".join("" if np.isnan(x) else f"{x:.2f}" for x in m) + " |")

    print("\nMean absolute change between consecutive online evaluations (in episodes of N in brackets):\n")
    print("| run | evaluations | N | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 3) + "|")
    for run, (_steps, values, n) in data.items():
        d = np.abs(np.diff(values, axis=0)).mean(axis=0)
        cells = " | ".join("" if np.isnan(x) else f"{x:.3f} ({x * n:.1f})" for x in d)
        print(f"| {run.parent.parent.name}/{run.name} | {len(values)} | {n} | {cells} |")


if __name__ == "__main__":
    main()
