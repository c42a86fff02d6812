"""A script's process around its run: `setup` before any work, --eval-only, the signals, and `cli`, which turns the
expected errors into one line and an exit status (2 a bad flag or input, 3 a divergence, 4 a failed write, 130
Ctrl-C or SIGTERM after saving)."""

from __future__ import annotations

import json
import random
import shlex
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from utils.datasets import DatasetError
from utils.envs import EnvError, check_rendering
from utils.run.checkpoints import EXIT_DIVERGED, Diverged, load_checkpoint
from utils.run.checks import (
    DEFAULT_ONLINE_STEPS,
    ArgumentError,
    check_args,
    check_device,
    check_writable,
    resume_args,
    script_of,
)
from utils.run.precision import resolve_fast_path
from utils.run.run_dir import new_run_dir
from utils.writes import EXIT_WRITE_FAILED, WriteFailed, writing_video


def stop_on_signals() -> dict:
    """Turns Ctrl-C and SIGTERM into a request, {"requested": True}, that the training loops honour at the end of
    a step, so a checkpoint is never taken halfway through one. {"restore": f}: f() puts the old handlers back.
    Outside the main thread (where signals cannot be caught) nothing changes."""
    stop = {"requested": False, "restore": lambda: None}
    if threading.current_thread() is threading.main_thread():

        def request(signum, frame):
            stop["requested"] = True

        old = {s: signal.signal(s, request) for s in (signal.SIGINT, signal.SIGTERM)}
        stop["restore"] = lambda: [signal.signal(s, h) for s, h in old.items()]
    return stop


def run_banner(script: str, run: Path, resumed: dict[str, int] | None) -> str:
    """The first line a run prints on stderr: new or resumed (at the `resumed` counters), where its files are, and
    that Ctrl-C saves."""
    at = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in resumed.items()) if resumed else ""
    return (
        f"{script}: {'resuming' if resumed else 'new'} run in {run}"
        + (f" at {at}" if at else "")
        + " (config.json, metrics.csv, checkpoint.pt; Ctrl-C saves and says how to resume)"
    )


def interrupted_message(args, checkpoint: Path, counters: dict[str, int], saved: dict[str, int]) -> str:
    """What Ctrl-C or SIGTERM left, for the terminal: where it came (`counters`), where the checkpoint just written
    stands (`saved`, its counters), the steps of an unfinished episode that it does not hold (online, a checkpoint is
    taken only at an episode's end), and the command that resumes the run, e.g. `python awac.py --checkpoint
    runs/.../checkpoint.pt` (the script as this process found it, relative to the working directory where it can be).
    """
    where = lambda counters: ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in counters.items())  # noqa: E731
    lost = counters.get("env_step", 0) - saved.get("env_step", 0)
    script = Path(getattr(sys.modules.get(type(args).__module__), "__file__", None) or script_of(args))
    if script.is_absolute() and script.is_relative_to(Path.cwd()):
        script = script.relative_to(Path.cwd())
    return (
        f"interrupted at {where(counters)}: saved {checkpoint} at {where(saved)}"
        + (
            f" (the end of the last finished episode; the {lost:,} steps of the unfinished episode are not saved "
            "and a resume redoes them)"
            if lost
            else ""
        )
        + f"\nresume with: {shlex.join(['python', str(script), '--checkpoint', str(checkpoint)])}"
    )


def setup(args, checks: dict | None = None) -> tuple[Any, dict | None, Path]:
    """Everything before any work: checks the flags (COMMON_CHECKS and the script's own `checks`), loads
    --checkpoint and takes a resumed run's settings from it, sets threads and seeds. Returns (args, the checkpoint
    or None, the run directory: a new run's, not yet created, or the checkpoint's). Raises ArgumentError for a bad
    flag, checkpoint or run name. `--precision auto` and `--compile auto` are resolved here (resolve_fast_path)."""
    # Adam's moments of dead units and weight-decayed weights sink below 1e-38, where x86 arithmetic is very slow
    # (measured: updates 4x slower after a few thousand). Flushing them to zero must come before the first parallel
    # torch op of the process: worker threads copy the flag from this thread when they start, not later.
    torch.set_flush_denormal(True)
    check_args(args, checks or {})
    check_device(args.device)
    ckpt = load_checkpoint(args.checkpoint, args.device, script_of(args)) if args.checkpoint else None
    if ckpt is not None:
        args = resume_args(args, ckpt["args"])
    if getattr(args, "online_steps", 0) is None:  # a new run without --online-steps (None: a flag at its default
        args = replace(args, online_steps=DEFAULT_ONLINE_STEPS)  # would be indistinguishable from no flag)
    if hasattr(args, "precision"):  # "auto" resolved: config.json and checkpoints record what ran
        args = resolve_fast_path(args, resumed=ckpt is not None)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.capture_video:
        check_rendering(args.env_id)
    path = new_run_dir(args) if ckpt is None and not args.eval_only else Path(args.checkpoint).parent
    if not args.eval_only:
        check_writable(path)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    return args, ckpt, path


def evaluate_only(evaluate: Callable[[Path | None], dict], args) -> dict[str, float]:
    """--eval-only: runs the script's `evaluate` on the checkpoint's policy and prints the result as JSON; with
    --capture-video, the first episode goes to <run>/videos/eval-only-<checkpoint name>.mp4."""
    ckpt = Path(args.checkpoint)
    video = ckpt.parent / "videos" / f"eval-only-{ckpt.stem}.mp4" if args.capture_video else None
    with writing_video(video):  # no partial mp4 left
        result = evaluate(video)
    print(json.dumps(result, indent=2))
    if video is not None:
        print(f"video of the first episode: {video}")
    return result


def cli(train: Callable, args_class: type) -> None:
    """The command line of a script: `train(tyro.cli(args_class))`. SIGTERM saves a checkpoint as Ctrl-C does
    (exit status 130); expected errors print one line, exit status 2 (a divergence: EXIT_DIVERGED, a failed write:
    EXIT_WRITE_FAILED)."""
    import tyro

    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        train(tyro.cli(args_class))
    except (ArgumentError, DatasetError, EnvError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except Diverged as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(EXIT_DIVERGED)
    except WriteFailed as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(EXIT_WRITE_FAILED)
    except KeyboardInterrupt:  # train() has saved and said where: no traceback, the shell's status for SIGINT
        sys.exit(130)
