"""A run's directory: a new run's place and its config.json, the OS lock that keeps two processes from writing one
run, and the files a resume needs besides the checkpoint (metrics.csv, config.json)."""

from __future__ import annotations

import csv
import fcntl
import json
import math
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

from utils.run.checks import ArgumentError, script_of
from utils.run.precision import auto_choices
from utils.writes import write_text_atomic


class RunInUse(ArgumentError):
    """Another living process holds the run directory (see `lock_run_dir`)."""


def strict_json(obj) -> str:
    """JSON that any parser reads (config.json, final.json): NaN (no success signal, e.g. on locomotion tasks)
    becomes null and +-infinity (`--advantage-clip inf`) the string "inf" / "-inf"."""

    def clean(x):
        if isinstance(x, float) and not math.isfinite(x):
            return None if math.isnan(x) else ("inf" if x > 0 else "-inf")
        return (
            {k: clean(v) for k, v in x.items()}
            if isinstance(x, dict)
            else [clean(v) for v in x]
            if isinstance(x, (list, tuple))
            else x
        )

    return json.dumps(clean(obj), indent=2, allow_nan=False)


LOCK_FILE = ".lock"


def lock_run_dir(run: Path) -> int:
    """Takes an exclusive OS lock (flock) on <run>/.lock and writes this process's id and command into it; returns
    the file descriptor, whose closing releases the lock. The OS releases it when the process dies (kill -9
    included), so nothing stale is ever left. A lock held for a moment (`run_holder` asking) is waited for, up to a
    second. Raises RunInUse naming the process that holds it, ArgumentError where the file system has no locks."""
    fd = os.open(run / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    for attempt in range(11):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if attempt < 10:
                time.sleep(0.1)
                continue
            holder = os.read(fd, 4096).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RunInUse(
                f"{run} is in use by {holder} (two processes must not write one run: wait for it to end, or stop "
                "it first)"
            ) from None
        except OSError as e:  # NFS or Lustre mounted without locks: ENOLCK, EOPNOTSUPP
            os.close(fd)
            raise ArgumentError(
                f"{run / LOCK_FILE} cannot be locked ({e.strerror}): the file system of --run-dir has no flock "
                "(choose a --run-dir on a local or lock-capable file system)"
            ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"process {os.getpid()} ({' '.join(sys.argv)[:300]})".encode())
    return fd


def run_holder(run: Path) -> str | None:
    """The process that holds `run`'s lock now, as its .lock file names it ("process 123 (python awac.py ...)"), or
    None when no living process does. Takes no lock it keeps (the benchmark asks before it resumes a run)."""
    path = Path(run) / LOCK_FILE
    if not path.is_file():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return os.read(fd, 4096).decode(errors="replace").strip() or "another process"
    finally:
        os.close(fd)  # releases the shared lock taken to ask
    return None


def new_run_dir(args) -> Path:
    """<run_dir>/<run_name> for a new run (default name <env_id>__<script>__<seed>__<unix time>). Raises
    ArgumentError when it already holds a run's checkpoint or result, which a new run must not overwrite; files of
    a run killed before its first checkpoint are removed."""
    run = Path(args.run_dir) / (
        args.run_name or f"{args.env_id}__{Path(script_of(args)).stem}__{args.seed}__{int(time.time())}"
    )
    refuse_a_run_in(run)
    return run


def refuse_a_run_in(run: Path) -> None:
    """Raises ArgumentError when `run` holds a run's checkpoint or result, which a new run must not overwrite."""
    found = [name for name in ("final.json", "checkpoint.pt") if (run / name).is_file()]
    if found:
        raise ArgumentError(
            f"{run} already holds a run ({', '.join(found)}; resume it with --checkpoint "
            f"{run / 'checkpoint.pt'}, or choose another --run-name)"
        )


def start_run_dir(run: Path, args) -> None:
    """Creates the run directory of `new_run_dir`, clears an unfinished start's files, writes config.json: `args`
    and, for a script with --precision, "auto": what auto picks on this machine and why (`auto_choices`)."""
    run.mkdir(parents=True, exist_ok=True)
    for stale in ("metrics.csv", "checkpoint_offline.pt"):
        (run / stale).unlink(missing_ok=True)
    auto = {"auto": auto_choices(args)} if hasattr(args, "precision") else {}  # what auto picks here, and why
    write_text_atomic(run / "config.json", strict_json(asdict(args) | auto))


def logged_rows(run: Path, step: int) -> list[dict[str, str]]:
    """The rows of <run>/metrics.csv up to global `step`, each without its empty cells: what a resume from a
    checkpoint at `step` keeps (the later rows are about to be redone)."""
    with (run / "metrics.csv").open() as f:
        return [
            {k: v for k, v in r.items() if v != ""}
            for r in csv.DictReader(f)
            if float(r.get("charts/global_step") or 0) <= step
        ]


def check_run_files(run: Path, ckpt: dict, step: int, checkpoint: str) -> None:
    """Before a resume from `checkpoint` (global step `step`) writes anything to `run`: metrics.csv must hold every
    row logged up to the checkpoint (it cannot be rebuilt); a missing config.json is rebuilt from the checkpoint's
    settings, and said so on stderr.

    Raises:
        ArgumentError: metrics.csv is missing, or holds fewer rows up to the checkpoint's global step than the
            checkpoint counted when it was taken (checkpoints before December 2026 counted none: only the file's
            presence is checked)."""
    log = run / "metrics.csv"
    fix = f"put the file back from a copy, or start a new run; --eval-only still evaluates {checkpoint}"
    if not log.is_file():
        raise ArgumentError(
            f"{log} is missing: the log of this run up to global step {step} cannot be rebuilt from its "
            f"checkpoint ({fix})"
        )
    kept = [float(r.get("charts/global_step") or 0) for r in logged_rows(run, step)]
    if len(kept) < ckpt.get("logged_rows", 0):
        last = f"global step {max(kept):.0f}" if kept else "its header"
        raise ArgumentError(
            f"{log} stops short of the checkpoint: it holds {len(kept)} of the {ckpt['logged_rows']} rows "
            f"logged up to global step {step}, the last at {last} ({fix})"
        )
    if not (run / "config.json").is_file():
        write_text_atomic(run / "config.json", strict_json(ckpt["args"]))
        print(f"note: {run / 'config.json'} was missing: rebuilt it from the checkpoint's settings", file=sys.stderr)


def keep_final(run: Path, step: int, result: dict) -> None:
    """Before a finished run is extended (a larger --online-steps): its final.json is kept as final-<step>.json,
    never overwritten (`result`, the run's final metrics, rebuilds it where final.json is missing), and final.json
    removed, so that the directory no longer reads as a finished run."""
    done, kept = run / "final.json", run / f"final-{step}.json"
    if not kept.is_file():  # else: an extension killed before its first checkpoint, extended again
        if not done.is_file():
            write_text_atomic(done, strict_json(result))
        os.replace(done, kept)
    done.unlink(missing_ok=True)
