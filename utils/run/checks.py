"""The flags of a run, checked before any work: valid ranges, the device, the run directory's file system, and the
settings a resumed run takes from its checkpoint. Every problem is an ArgumentError whose text is one line, what is
wrong and how to fix it (`utils.run.command.cli` prints it and exits with status 2)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch


class ArgumentError(ValueError):
    """A flag, checkpoint or run directory that this run cannot use. From the command line it prints as one line,
    `error: <what> (<how to fix>)`, and exits with status 2."""


# Valid ranges, as (test, what a valid value is). A script's CHECKS maps its own fields to these; COMMON_CHECKS
# covers the fields that (nearly) every script has. Each script checks only the fields its Args has.
NON_NEGATIVE = (lambda v: v >= 0, ">= 0")
AT_LEAST_ONE = (lambda v: v >= 1, ">= 1")
BATCH_SIZE = (lambda v: v >= 2, ">= 2 (a batch's std needs two samples)")
POSITIVE = (lambda v: v > 0, "> 0")
DISCOUNT = (lambda v: 0 <= v < 1, "in [0, 1)")
FRACTION = (lambda v: 0 < v <= 1, "in (0, 1]")
UNIT = (lambda v: 0 <= v <= 1, "in [0, 1]")
SIZES = (lambda v: len(v) > 0 and min(v) >= 1, "of one or more sizes >= 1")
COMMON_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    **dict.fromkeys(("offline_steps", "online_steps", "threads", "seed", "dataset_seed"), NON_NEGATIVE),
    **dict.fromkeys(("batch_size", "eval_every", "eval_episodes", "log_every", "save_every"), AT_LEAST_ONE),
    "actor_lr": POSITIVE,
    "gamma": DISCOUNT,
    "tau": FRACTION,
    "hidden_dims": SIZES,
    "actor_hidden_dims": SIZES,
}
# Fields a resumed run may take from the command line; every other one comes from its checkpoint.
MAY_CHANGE = ("checkpoint", "eval_only", "device", "threads", "progress", "wandb_mode", "online_steps", "capture_video")
DEFAULT_ONLINE_STEPS = 500_000  # rlkit: 501 epochs x 1000 steps; `online_steps` None means this for a new run


def check_args(args, checks: dict) -> None:
    """Raises ArgumentError for the first field outside its range in COMMON_CHECKS or `checks`, before any work."""
    for name, (ok, valid) in {**COMMON_CHECKS, **checks}.items():
        value = getattr(args, name, None)
        if value is not None and not ok(value):
            raise ArgumentError(f"--{name.replace('_', '-')} {value} is out of range (use a value {valid})")
    if getattr(args, "min_log_std", 0.0) >= getattr(args, "max_log_std", 1.0):
        raise ArgumentError(
            f"--min-log-std {args.min_log_std} is not below --max-log-std {args.max_log_std} "
            "(give a lower bound below the upper one)"
        )
    if args.eval_only and not args.checkpoint:
        raise ArgumentError("--eval-only has no policy to evaluate (add --checkpoint RUN/checkpoint.pt)")


def script_of(args) -> str:
    """The file name of the script whose `Args` this is, e.g. "awac.py" (or a fork's, "my_awac.py")."""
    module = sys.modules.get(type(args).__module__)
    return Path(getattr(module, "__file__", None) or f"{type(args).__module__}.py").name


def resume_args(args, saved: dict):
    """The run's own fields from its checkpoint, except those in MAY_CHANGE (and eval_episodes with --eval-only)
    that the command line sets to a value other than the default, and --run-dir/--run-name when they name the
    checkpoint's own directory (a run moved to another place). Raises ArgumentError for any other field set on
    the command line that differs from the checkpoint, instead of silently ignoring it (a flag given with its
    default value cannot be told from an absent one, and is ignored)."""
    cls = type(args)
    if isinstance(saved.get("compile"), bool):  # checkpoints before December 2026 stored --compile as a bool
        saved = {**saved, "compile": "on" if saved["compile"] else "off"}
    default, may_change = cls(), MAY_CHANGE + (("eval_episodes",) if args.eval_only else ())
    if (
        args.checkpoint
        and args.run_name
        and Path(args.run_dir, args.run_name).resolve() == Path(args.checkpoint).parent.resolve()
    ):
        may_change += ("run_dir", "run_name")  # the run's directory was moved: the flags name where it is now
    changed = {f.name: getattr(args, f.name) for f in fields(cls) if getattr(args, f.name) != getattr(default, f.name)}
    for name, mine in changed.items():
        if name not in may_change and mine != saved.get(name):
            raise ArgumentError(
                f"--{name.replace('_', '-')} {mine} differs from the checkpoint's {saved.get(name)} "
                "(a resumed run keeps its settings: drop the flag, or start a new run)"
            )
    resumed = cls(**{**saved, **{k: v for k, v in changed.items() if k in may_change}})
    if not resumed.eval_only and Path(resumed.checkpoint).name != "checkpoint.pt":
        raise ArgumentError(
            f"{resumed.checkpoint} can be evaluated, not resumed (resume from the run's "
            "checkpoint.pt, or add --eval-only)"
        )
    return resumed


def check_device(device: str) -> None:
    """Raises ArgumentError unless torch can use `device` on this machine, naming what the machine has."""
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as e:
        raise ArgumentError(f"--device {device} is not a torch device ({e}; use cpu, cuda or cuda:N)") from None
    if dev.type == "cpu":
        return
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            why = "this torch build has no CUDA" if not torch.backends.cuda.is_built() else "no CUDA GPU is visible"
            raise ArgumentError(
                f"--device {device}: {why} on this machine (torch {torch.__version__}; use --device "
                "cpu, or install a CUDA build of torch on a machine with a GPU)"
            )
        if dev.index is not None and dev.index >= count:
            raise ArgumentError(
                f"--device {device}: this machine has {count} CUDA device(s), cuda:0 to "
                f"cuda:{count - 1} (use one of those)"
            )
        return
    backend = getattr(torch.backends, dev.type, None)
    if backend is None or not getattr(backend, "is_available", lambda: False)():
        raise ArgumentError(
            f"--device {device}: this machine has no {dev.type} device (use --device cpu"
            f"{' or cuda' if torch.cuda.is_available() else ''})"
        )


def check_writable(run: Path) -> None:
    """Raises ArgumentError unless the run directory `run` can be created and written. Directories this creates to
    find out are removed again, so a run that fails later (a bad dataset) leaves nothing behind."""
    created = [p for p in (run, *run.parents) if not p.exists()]
    try:
        run.mkdir(parents=True, exist_ok=True)
        probe = run / f".write-probe-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise ArgumentError(
            f"run directory {run} cannot be created or written ({e.strerror or type(e).__name__}; "
            "give a writable --run-dir)"
        ) from None
    finally:
        for p in created:  # deepest first
            try:
                p.rmdir()
            except OSError:
                pass
