"""Checkpoints: written atomically (never from non-finite weights), read without running code, and checked before a
resume (the entries it needs, the task's horizon); the divergence guard's tests and its error."""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch

from utils.envs import horizon
from utils.run.checks import ArgumentError
from utils.writes import writing


class Diverged(RuntimeError):
    """Training produced a non-finite loss, Q statistic or weight. From the command line it prints as one line naming
    the step, the metric and the last checkpoint whose weights are finite, and exits with status 3
    (`EXIT_DIVERGED`); no checkpoint is written from non-finite weights."""


EXIT_DIVERGED = 3
# EXIT_WRITE_FAILED = 4 (from utils.writes): a write that failed for an OS reason (no space, read-only file system,
# I/O error, permission), a WriteFailed, prints one line naming the file, the reason and the last good checkpoint. No
# temporary file is left behind, and the previous checkpoint is untouched.


# Horizons a task had before checkpoints recorded theirs (pen-binary ran 100 steps before December 2026).
LEGACY_HORIZONS = {"pen-binary": 100}
# What a resume needs from a checkpoint (those before the run module, December 2026, lack some: --eval-only reads them).
RESUME_ENTRIES = {"counters", "final", "elapsed_s", "torch_rng", "batch_rng", "online_data"}


class _Recorded:
    """A binary file whose write() keeps the OSError it raised: torch's zip writer turns it into a RuntimeError
    ("enforce fail at inline_container.cc ... unexpected pos") that no longer says why."""

    def __init__(self, f):
        self.f, self.error = f, None

    def write(self, data) -> int:
        try:
            return self.f.write(data)
        except OSError as e:
            self.error = e
            raise

    def flush(self) -> None:
        self.f.flush()


def save_checkpoint(obj, path: Path) -> None:
    """torch.save through <path>.tmp and os.replace: the previous file stays whole until the new one is. Raises
    WriteFailed (no space, read-only, ...) after removing the .tmp, so a failed write leaves nothing behind."""
    tmp = path.with_name(path.name + ".tmp")
    with writing(path, tmp):
        with open(tmp, "wb") as f:
            out = _Recorded(f)
            try:
                torch.save(obj, out)
            except RuntimeError as e:  # the zip writer's wording for a write that failed
                if out.error is None:
                    raise
                raise out.error from e
        os.replace(tmp, path)


def load_checkpoint(path: str, device: str, script: str) -> dict:
    """A checkpoint written by `script`, read with weights_only=True: plain values and tensors, so loading runs no
    code from the file. Raises ArgumentError for a missing file or one that is not such a checkpoint."""
    if not Path(path).is_file():
        raise ArgumentError(f"--checkpoint {path}: no such file (give a run's checkpoint.pt)")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # any unreadable or foreign file; the reason goes in the message
        raise ArgumentError(
            f"--checkpoint {path} is not a checkpoint of {script} ({type(e).__name__}; give a "
            f"checkpoint.pt that {script} wrote; those of versions before November 2026 held "
            "numpy arrays and cannot be read safely)"
        ) from e
    if not isinstance(ckpt, dict) or ckpt.get("script") != script:
        raise ArgumentError(
            f"--checkpoint {path} is not a checkpoint of {script} (give a checkpoint.pt that {script} wrote)"
        )
    return ckpt


def check_resumable(ckpt: dict, args, script: str) -> None:
    """Raises ArgumentError unless `ckpt` (from load_checkpoint) can be resumed by this version of `script` with
    `args`: an older version's checkpoint that lacks RESUME_ENTRIES (named), or one that ran the task with episodes
    of another length than now (LEGACY_HORIZONS for those that did not record it)."""
    missing = sorted(RESUME_ENTRIES - set(ckpt))
    if missing:
        raise ArgumentError(
            f"{args.checkpoint} lacks {', '.join(missing)}: an older version of {script} wrote it (resume it "
            "with that version, or start a new run; --eval-only can still read it)"
        )
    now = horizon(args.env_id)
    then = ckpt.get("horizon", LEGACY_HORIZONS.get(args.env_id, now))
    if then != now:
        raise ArgumentError(
            f"{args.checkpoint} ran {args.env_id} with {then}-step episodes, which are now {now} steps long "
            "(resume it with the version that wrote it, or start a new run)"
        )


def first_non_finite(row: dict[str, float]) -> str | None:
    """The first `losses/*` or `values/*` key of a logged row whose value is not finite (the divergence guard's test
    on each logging step), or None."""
    return next((k for k, v in row.items() if k.startswith(("losses/", "values/")) and not math.isfinite(v)), None)


def all_finite(state) -> bool:
    """Whether every floating tensor in a (nested) state dict is finite: one pass over the weights, at save time."""
    if isinstance(state, torch.Tensor):
        return not state.is_floating_point() or bool(torch.isfinite(state).all())
    if isinstance(state, dict):
        return all(all_finite(v) for v in state.values())
    if isinstance(state, (list, tuple)):
        return all(all_finite(v) for v in state)
    return True


def diverged_message(step: int, what: str, value, last_good: str) -> str:
    """The one-line text of a Diverged found at global `step`: the metric or weights (`what`) and their `value`,
    and `last_good`, the last checkpoint with finite weights ("<path>, global step N", or "none yet")."""
    return (
        f"the run diverged by global step {step}: {what} is {value} (the last checkpoint with finite weights: "
        f"{last_good}; inspect it with --checkpoint ... --eval-only, or start a new run with smaller learning rates)"
    )


def write_failed_fix(last_good: str, checkpoint: Path) -> str:
    """What to do after a WriteFailed, for its one line: with no good checkpoint yet ("none yet"), run again once
    there is room; else resume from `checkpoint` (the run's checkpoint.pt), naming `last_good`."""
    if last_good == "none yet":
        return "no checkpoint was written yet (make room, or give another --run-dir, and run the command again)"
    return f"the last good checkpoint: {last_good} (make room, then resume with --checkpoint {checkpoint})"
