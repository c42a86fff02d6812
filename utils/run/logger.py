"""What a run reports: every logged row to <run>/metrics.csv (its header grows with new keys) and to W&B, and its
progress on the terminal."""

from __future__ import annotations

import contextlib
import csv
import io
import os
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm.auto import tqdm

from utils.run.checks import ArgumentError
from utils.writes import writing


# ----------------------------------------------------------------------------------------------- metrics log
class Logger:
    """Writes every logged row to W&B (unless disabled) and to <run>/metrics.csv, whose header grows with new keys.

    Raises:
        ArgumentError: W&B could not start in the asked mode (naming the offline and disabled modes)."""

    def __init__(self, run: Path, args, resume_rows: list[dict] | None = None):
        self.path, self.rows = run / "metrics.csv", resume_rows or []
        self.keys: list[str] = list(dict.fromkeys(k for r in self.rows for k in r))
        if resume_rows is not None:  # drop what was logged after the checkpoint: it is about to be redone
            self._rewrite()
        self.wandb = None
        if args.wandb_mode != "disabled":
            import wandb  # only needed when logging to W&B

            try:  # init_timeout: an unreachable server fails in ~20-30 s instead of hanging for minutes
                self.wandb = wandb.init(
                    project=args.wandb_project,
                    group=args.wandb_group,
                    name=run.name,
                    config=asdict(args),
                    dir=str(run),
                    mode=args.wandb_mode,
                    id=run.name,
                    resume="allow",
                    # silent: W&B's start-up and summary lines would bury the run's own; its files (output.log,
                    # the run's history) are written all the same. Online, its lines carry the run's URL: kept.
                    settings=wandb.Settings(init_timeout=20, silent=args.wandb_mode != "online"),
                )
            except Exception as e:  # no API key, no server, ...: W&B's errors differ by cause
                reason = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
                raise ArgumentError(
                    f"W&B could not start in {args.wandb_mode} mode ({reason}; use --wandb-mode "
                    "offline and `wandb sync` later, or --wandb-mode disabled)"
                ) from e

    def log(self, row: dict[str, float | torch.Tensor], step: int) -> dict[str, float]:
        """Logs one row at `step` and returns it as written; 0-dim tensor values are read from the device in one
        transfer."""
        tensors = [k for k, v in row.items() if isinstance(v, torch.Tensor)]
        if tensors:
            row = {**row, **dict(zip(tensors, torch.stack([row[k].float() for k in tensors]).tolist()))}
        row = {**row, "charts/global_step": step}
        self.rows.append(row)
        if self.wandb:
            self.wandb.log(row, step=step)
        if all(k in self.keys for k in row):
            self._append(row)
            return row
        self.keys += [k for k in row if k not in self.keys]
        self._rewrite()
        return row

    def _append(self, row: dict) -> None:
        """Appends one row; a failed write is cut off again (no half row for a resume to misread) and raised as
        WriteFailed."""
        line = io.StringIO()
        csv.DictWriter(line, self.keys).writerow(row)
        end = self.path.stat().st_size if self.path.exists() else 0
        with writing(self.path):
            try:
                with self.path.open("a", newline="") as f:
                    f.write(line.getvalue())
            except OSError:
                with contextlib.suppress(OSError):
                    os.truncate(self.path, end)
                raise

    def _rewrite(self) -> None:
        """Writes the header and every row through metrics.csv.tmp: a failed write keeps the previous file."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        with writing(self.path, tmp):
            with tmp.open("w", newline="") as f:
                w = csv.DictWriter(f, self.keys)
                w.writeheader()
                w.writerows(self.rows)
            os.replace(tmp, self.path)

    def log_video(self, path: Path, step: int) -> None:
        """Logs an mp4 to W&B as eval/video at `step` (the file stays in the run directory either way)."""
        if self.wandb:
            import wandb

            self.wandb.log({"eval/video": wandb.Video(str(path), format="mp4")}, step=step)

    def close(self) -> None:
        """Ends the W&B run, if any (metrics.csv is complete after every `log`)."""
        if self.wandb:
            self.wandb.finish()


def phase_bar(phase: str, total: int, done: int, progress: bool, postfix: dict[str, str]) -> tqdm:
    """A progress bar for one phase of a run ("offline_step", "env_step", ...): it counts this phase alone against
    its own budget `total`, from `done` (a resumed run's counter), with the time left at the phase's average rate
    (smoothing 0: the evaluations' pauses are in the average, not in jumps of the estimate), and `postfix` (the
    last evaluation). Disabled when `progress` is False (--no-progress), for a phase of no steps, and when stderr is
    not a terminal."""
    online = phase == "env_step"
    bar = tqdm(
        total=total,
        initial=done,
        desc="online" if online else phase.removesuffix("_step"),
        unit="step" if online else "update",
        smoothing=0,
        disable=None if progress and total else True,
    )
    bar.set_postfix(postfix)
    return bar
