"""Keeps a copy of each door-full AWAC run's checkpoint just after every 100K online steps (a run keeps only its
latest), so that failure_modes.py can read the policy's pace across training. Polls every 60 s; it dies with the
session, so re-issue it with the runs:

    nohup python docs/results/door-paper/snapshots.py > ~/awac-results/snapshots.log 2>&1 &

Copies go to ~/awac-results/door-full-snapshots/<run>/after-<milestone>.pt: the first checkpoint written after the
run was seen past the milestone (checkpoints come every 10K steps, so within about 15K steps of it).
"""

import csv
import shutil
import time
from pathlib import Path

RUNS = Path.home() / "awac-results" / "door-full" / "runs"
OUT = Path.home() / "awac-results" / "door-full-snapshots"


def last_env_step(metrics: Path) -> int:
    """The online env step of metrics.csv's last row (0 before the online phase or without the column)."""
    with metrics.open() as f:
        header, last = next(csv.reader(f)), None
        for line in f:
            last = line
    if last is None or "charts/env_step" not in header:
        return 0
    value = next(csv.reader([last]))[header.index("charts/env_step")]
    return int(float(value)) if value else 0


def main() -> None:
    seen: dict[tuple[str, int], float] = {}  # (run, milestone) -> when the run was first seen past it
    while True:
        for run in sorted(p for p in RUNS.glob("door-binary__awac__*") if p.is_dir()):
            metrics, ckpt = run / "metrics.csv", run / "checkpoint.pt"
            if not metrics.is_file() or not ckpt.is_file():
                continue
            milestone = last_env_step(metrics) // 100_000 * 100_000
            target = OUT / run.name / f"after-{milestone}.pt"
            if milestone == 0 or target.exists():
                continue
            seen.setdefault((run.name, milestone), time.time())
            if ckpt.stat().st_mtime > seen[run.name, milestone]:  # the first checkpoint written after the crossing
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ckpt, target.with_suffix(".tmp"))
                target.with_suffix(".tmp").rename(target)
                print(f"{time.strftime('%H:%M')} {run.name}: copied the checkpoint after {milestone:,}", flush=True)
        time.sleep(60)


if __name__ == "__main__":
    main()
