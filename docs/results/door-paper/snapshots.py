"""Keeps a copy of each door-full (and door-full-noclip) AWAC run's checkpoint just after every 100K online steps
(a run keeps only its latest), so that failure_modes.py can read the policy's pace across training. Polls every
60 s; it dies with the session, so re-issue it with the runs:

    nohup python docs/results/door-paper/snapshots.py > ~/awac-results/snapshots.log 2>&1 &

Copies go to ~/awac-results/<experiment>-snapshots/<run>/after-<milestone>.pt: the first checkpoint written after the
run was seen past the milestone (checkpoints come every 10K steps, so within about 15K steps of it).
"""

import csv
import shutil
import time
from pathlib import Path

RESULTS = Path.home() / "awac-results"
EXPERIMENTS = ("door-full", "door-full-noclip")


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
    seen: dict[tuple[Path, int], float] = {}  # (run, milestone) -> when the run was first seen past it
    while True:
        runs = [
            p for e in EXPERIMENTS for p in sorted((RESULTS / e / "runs").glob("door-binary__awac__*")) if p.is_dir()
        ]
        for run in runs:
            metrics, ckpt = run / "metrics.csv", run / "checkpoint.pt"
            if not metrics.is_file() or not ckpt.is_file():
                continue
            milestone = last_env_step(metrics) // 100_000 * 100_000
            target = RESULTS / f"{run.parent.parent.name}-snapshots" / run.name / f"after-{milestone}.pt"
            if milestone == 0 or target.exists():
                continue
            seen.setdefault((run, milestone), time.time())
            if ckpt.stat().st_mtime > seen[run, milestone]:  # the first checkpoint written after the crossing
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ckpt, target.with_suffix(".tmp"))
                target.with_suffix(".tmp").rename(target)
                name = f"{run.parent.parent.name}/{run.name}"
                print(f"{time.strftime('%H:%M')} {name}: copied the checkpoint after {milestone:,}", flush=True)
        time.sleep(60)


if __name__ == "__main__":
    main()
