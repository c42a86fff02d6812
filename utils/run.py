"""Run bookkeeping shared by the algorithm scripts: flags, run directories, metrics log, checkpoints, exact resume.

None of this is an algorithm, so it lives once, here, and never imports an algorithm file: each script hands it what
is its own. The protocol, in the order a script's `train(args)` meets it:

    args, ckpt, path = setup(args, CHECKS)        # the script's Args, and the valid ranges of its own fields
    ...build the env, the agent (state_dict/load_state_dict, .actor), the buffer...
    if args.eval_only: return evaluate_only(evaluate, args)
    run = Run(path, args, ckpt, agent, phases={"offline_step": N, "env_step": M}, gen=buffer.gen,
              evaluate=evaluate, buffer=buffer, env=env)
    if run.finished: return run.result()
    with run:
        while run.counters["offline_step"] < N: run.after_step("offline_step", agent.update(...))
        run.end_offline()
        obs = run.start_online()
        while run.counters["env_step"] < M: ...; obs = run.after_env_step(next_obs, reward, done, metrics, info)
        run.finish()
    return run.result()

`evaluate(video)` is the script's evaluation: it returns `eval/*` metrics and, given an mp4 path, records the first
episode there. `phases` names the step counters in the order the phases run; the online phase's counter is
`env_step`, and a script without one (BC) simply has no such phase. Other counters a script keeps (AWR's
`iteration`) are named in `counters` and saved with the rest. A script's name (for run directories and checkpoint
identity) is the file that defines its `Args` class, so a copy `my_awac.py` is its own script.

Command line: `cli(train, Args)` parses the flags with tyro and turns the expected errors into one line
`error: <what> (<how to fix>)` and exit status 2, a diverged run into one line and exit status 3, a file that could
not be written (no space, read-only, ...) into one line naming it, the reason and the last good checkpoint, and exit
status 4; Ctrl-C and SIGTERM save a checkpoint and exit with 130.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import fcntl
import io
import json
import math
import os
import random
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from utils.datasets import DatasetError
from utils.envs import EnvError, check_rendering, episode_success, horizon
from utils.writes import EXIT_WRITE_FAILED, WriteFailed, write_text_atomic, writing, writing_video


class ArgumentError(ValueError):
    """A flag, checkpoint or run directory that this run cannot use. From the command line it prints as one line,
    `error: <what> (<how to fix>)`, and exits with status 2."""


class Diverged(RuntimeError):
    """Training produced a non-finite loss, Q statistic or weight. From the command line it prints as one line naming
    the step, the metric and the last checkpoint whose weights are finite, and exits with status 3
    (`EXIT_DIVERGED`); no checkpoint is written from non-finite weights."""


class RunInUse(ArgumentError):
    """Another living process holds the run directory (see `lock_run_dir`)."""


EXIT_DIVERGED = 3
# EXIT_WRITE_FAILED = 4 (from utils.writes): a write that failed for an OS reason (no space, read-only file system,
# I/O error, permission), a WriteFailed, prints one line naming the file, the reason and the last good checkpoint. No
# temporary file is left behind, and the previous checkpoint is untouched.


# ----------------------------------------------------------------------------------------------- flags
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
# Horizons a task had before checkpoints recorded theirs (pen-binary ran 100 steps before December 2026).
LEGACY_HORIZONS = {"pen-binary": 100}
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
        if self.wandb:
            self.wandb.finish()


# ----------------------------------------------------------------------------------------------- checkpoints
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


def _atomic_torch_save(obj, path: Path) -> None:
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


# ----------------------------------------------------------------------------------------------- run directories
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


# What `--precision auto` and `--compile auto` pick, by hardware, from the update's speed measured on each kind
# (docs/results/speed): a choice is the default only where it was measured faster; unmeasured kinds stay eager, and
# fp32 except a GPU with native bf16 (its bf16 tensor cores).
AMX_COMPILE = {"fp32": "1.10-1.23", "bf16": "0.75-0.85"}  # the update alone, batch 1024, 1-2 threads
COMPILE_MIN_UPDATES = 10_000  # below this a run stays eager: a cold compile (5-45 s measured) would not pay back


def bf16_pays(device: str) -> tuple[bool, str]:
    """(whether bfloat16 autocast runs the update faster than fp32 on `device`, why), by hardware: a CPU with AMX
    yes (1.6-2.3x measured, quiet machine); a CPU with AVX-512-bf16 but no AMX no (0.71-0.74x measured, issue 31);
    another CPU no (no bf16 matmul units); a CUDA GPU with native bf16 yes (not measured here). `device` must pass
    check_device."""
    dev = torch.device(device)
    if dev.type == "cpu":
        if torch.cpu._is_amx_tile_supported():
            return True, "this CPU has AMX: bf16 measured 1.6-2.3x fp32"
        if torch.cpu._is_avx512_bf16_supported():
            return False, "this CPU has AVX-512-bf16 but no AMX: bf16 measured 0.71-0.74x fp32"
        return False, "this CPU has no bf16 matmul units"
    if dev.type == "cuda":
        with torch.cuda.device(dev):
            if torch.cuda.is_bf16_supported(including_emulation=False):
                return True, "this GPU has native bf16"
        return False, "this GPU has no native bf16"
    return False, f"bf16 not measured on {dev.type}"


def compile_pays(device: str, precision: str, updates: int) -> tuple[bool, str]:
    """(whether torch.compile of the losses pays on `device` at `precision` ("fp32"/"bf16") in a run of `updates`
    updates, why), by hardware: only fp32 on a CPU with AVX-512 and no AMX was measured to gain >= 1.1x (1.16x on 1
    thread, 1.29x on 2, issue 31); with AMX, 0.75-0.85x in bf16 (auto's precision there) and 1.10-1.23x in fp32 (the
    update alone; its whole-process gain not shown >= 1.1x), so off; other kinds were not measured, so off. Runs under
    COMPILE_MIN_UPDATES stay eager. `device` must pass check_device."""
    if updates < COMPILE_MIN_UPDATES:
        return False, f"{updates:,} updates: under {COMPILE_MIN_UPDATES:,}, compiling would not pay back"
    if torch.device(device).type != "cpu":
        return False, "compile not measured on this device"
    if torch.cpu._is_amx_tile_supported():
        return False, f"this CPU has AMX: compile measured {AMX_COMPILE[precision]}x eager in {precision}"
    if torch.cpu._is_avx512_supported() and precision == "fp32":
        return True, "this CPU has AVX-512 and no AMX: compile measured 1.16-1.29x fp32"
    return False, f"compile not measured to pay on this CPU in {precision}"


def resolve_precision(precision: str, device: str) -> str:
    """--precision as the update runs it: "fp32" or "bf16" as given; "auto" is bf16 where `bf16_pays(device)` and
    fp32 elsewhere. The learning check behind bf16 is docs/results/precision (door, 4 seed pairs)."""
    if precision != "auto":
        return precision
    return "bf16" if bf16_pays(device)[0] else "fp32"


def planned_updates(args) -> int:
    """The updates a run of `args` makes in all: offline plus online steps (DEFAULT_ONLINE_STEPS where None)."""
    online = args.online_steps if args.online_steps is not None else DEFAULT_ONLINE_STEPS
    return getattr(args, "offline_steps", 0) + getattr(args, "bc_pretrain_steps", 0) + online


def fast_path(args) -> tuple[bool, bool]:
    """(bf16, compile): how the update of `args` runs. --precision and --compile as given ("on"/"off"), "auto"
    resolved by `bf16_pays` and `compile_pays` for this device and the run's `planned_updates`."""
    precision = resolve_precision(args.precision, args.device)
    if args.compile == "auto":
        return precision == "bf16", compile_pays(args.device, precision, planned_updates(args))[0]
    return precision == "bf16", args.compile == "on"


def auto_choices(args) -> dict[str, str]:
    """What `--precision auto` and `--compile auto` pick for `args` on this machine, and why: config.json's "auto"
    entry, e.g. {"precision": "bf16", "precision_reason": "this CPU has AMX: ...", "compile": "off", ...}."""
    bf16, why = bf16_pays(args.device)
    precision = resolve_precision(args.precision, args.device)
    compiled, why_compile = compile_pays(args.device, precision, planned_updates(args))
    return dict(
        precision="bf16" if bf16 else "fp32",
        precision_reason=why,
        compile="on" if compiled else "off",
        compile_reason=why_compile,
    )


def resolve_fast_path(args, resumed: bool):
    """`args` with --precision and --compile "auto" resolved (what config.json and checkpoints record), after
    printing one line for each: its value and why, e.g. "precision: bf16 (auto: this CPU has AMX: ...)". Printed on
    stdout, so an error stays the one line on stderr; not for --eval-only, whose stdout is its result (JSON)."""
    auto = auto_choices(args)
    for name, given in (("precision", args.precision), ("compile", args.compile)):
        value = auto[name] if given == "auto" else given
        why = "the checkpoint's" if resumed else f"auto: {auto[name + '_reason']}" if given == "auto" else "the flag"
        if not args.eval_only:
            print(f"{name}: {value} ({why})", flush=True)
        args = replace(args, **{name: value})
    return args


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


# ----------------------------------------------------------------------------------------------- the run
class Run:
    """What a training run does besides the algorithm: its directory, step counters, metrics log, progress bar,
    evaluations and checkpoints, with exact resume.

    `phases` maps each step counter to its budget in the order the phases run, e.g. {"offline_step": 25_000,
    "env_step": 500_000}; the global step is their sum, and `env_step` is the online phase's counter. `counters`
    names further counters the script keeps in `run.counters` (saved, not summed). `agent` has
    state_dict()/load_state_dict(); `gen` draws the training batches; `evaluate(video)` returns the eval/* metrics
    of the current policy (recording the first episode when `video` is a path); `buffer` (optional) has `pos`,
    `add(**columns)` and `last(n, end)`, and its online rows go into checkpoints; `env` (optional) is the training
    env, closed at the end. With `ckpt` (from load_checkpoint) the run resumes: counters, final metrics, the
    buffer's online rows, RNG states and the metrics.csv rows up to the checkpoint come back, and `finished` says
    whether anything is left to do.

    Checkpoints are taken at the end of a step and, in an online phase stepped by `after_env_step`, only at an
    episode boundary (with the env's generators), so a resumed run repeats the uninterrupted one exactly. Used as
    `with run:`; Ctrl-C or SIGTERM is honoured at the end of a step: the last such state is saved and
    KeyboardInterrupt raised. Exact on CPU with a fixed thread count while the online steps fit in the buffer
    (--buffer-size; resuming after the buffer wrapped reloads the same rows at other positions). A run ends with
    `finish()`, which writes final.json after the last checkpoint (a resume of a run killed in between writes it).

    Raises:
        ArgumentError: `ckpt` was written by an older version of the script (the missing entries named), or at
            another horizon; a new run's directory already holds a run (checked again under the lock).
        RunInUse: another living process holds the run directory.
        Diverged: from `after_step` (a non-finite logged loss or value), `save`/`finish` (non-finite weights) and
            the end of `with run` (an error raised while the weights are non-finite)."""

    def __init__(
        self,
        path: Path,
        args,
        ckpt: dict | None,
        agent,
        phases: dict[str, int],
        gen: torch.Generator,
        evaluate: Callable[[Path | None], dict],
        buffer=None,
        env=None,
        counters: tuple[str, ...] = (),
    ):
        self.path, self.args, self.ckpt, self.agent, self.phases = path, args, ckpt, agent, phases
        self.gen, self.evaluate_policy, self.buffer, self.env = gen, evaluate, buffer, env
        self.script, self.horizon = script_of(args), horizon(args.env_id)
        self.start, self.elapsed_before = time.time(), 0.0
        self.boundary, self.save_due, self.episode, self.goal = None, False, (0.0, 0), []
        path.mkdir(parents=True, exist_ok=True)
        self.lock = lock_run_dir(path)  # before any file of the run is read or written
        try:
            self._open(ckpt, counters)
        except BaseException as e:
            self.release()
            self.explain(e)
            raise
        if self.finished:  # nothing to do: `with run` will not follow
            self.release()

    def _open(self, ckpt: dict | None, counters: tuple[str, ...]) -> None:
        path, args, phases, buffer, gen, rows = self.path, self.args, self.phases, self.buffer, self.gen, None
        self.last_good = "none yet"
        if ckpt is None:
            refuse_a_run_in(path)  # again, under the lock: another process may have made a run here since setup()
            start_run_dir(path, args)
            self.counters, self.final = {**dict.fromkeys(counters, 0), **dict.fromkeys(phases, 0)}, {}
            self.finished, self.offline_done = False, False
        else:
            missing = sorted({"counters", "final", "elapsed_s", "torch_rng", "batch_rng", "online_data"} - set(ckpt))
            if missing:
                raise ArgumentError(
                    f"{args.checkpoint} lacks {', '.join(missing)}: an older version of "
                    f"{self.script} wrote it (resume it with that version, or start a new "
                    "run; --eval-only can still read it)"
                )
            now, then = (
                horizon(args.env_id),
                ckpt.get("horizon", LEGACY_HORIZONS.get(args.env_id, horizon(args.env_id))),
            )
            if then != now:
                raise ArgumentError(
                    f"{args.checkpoint} ran {args.env_id} with {then}-step episodes, which are now {now} steps long "
                    "(resume it with the version that wrote it, or start a new run)"
                )
            self.counters, self.final, self.elapsed_before = ckpt["counters"], ckpt["final"], ckpt["elapsed_s"]
            self.last_good = f"{args.checkpoint}, global step {sum(self.counters.get(p, 0) for p in phases)}"
            self.check_files(ckpt)
            for name in counters:
                self.counters.setdefault(name, 0)
            # Checkpoints before the run module (December 2026) kept no flags: their final metrics tell the state.
            self.finished = ckpt.get("finished", "eval/success_rate" in self.final)
            self.offline_done = ckpt.get("offline_done", "offline/eval/success_rate" in self.final)
            if buffer is not None and len(ckpt["online_data"]["reward"]):
                buffer.add(**{k: v.cpu().numpy() for k, v in ckpt["online_data"].items()})
            torch.set_rng_state(ckpt["torch_rng"].cpu())
            gen.set_state(ckpt["batch_rng"].cpu())
            if self.finished and any(self.counters[p] < n for p, n in phases.items()):
                self.extend()  # a finished run given more --online-steps
            if not self.finished:  # rows logged after the checkpoint are about to be redone
                with (path / "metrics.csv").open() as f:
                    rows = [
                        {k: v for k, v in r.items() if v != ""}
                        for r in csv.DictReader(f)
                        if float(r.get("charts/global_step") or 0) <= self.global_step()
                    ]
        if self.finished and not (path / "final.json").is_file():  # killed between its last save and final.json
            self.write_final()
            print(f"note: {path / 'final.json'} was missing: rebuilt it from the checkpoint", file=sys.stderr)
        self.first_step = self.global_step()
        self.logger = None if self.finished else Logger(path, args, rows)

    def check_files(self, ckpt: dict) -> None:
        """Before a resume writes anything: metrics.csv must hold every row logged up to the checkpoint (it cannot be
        rebuilt); a missing config.json is rebuilt from the checkpoint's settings, and said so on stderr.

        Raises:
            ArgumentError: metrics.csv is missing, or holds fewer rows up to the checkpoint's global step than the
                checkpoint counted when it was taken (checkpoints before December 2026 counted none: only the file's
                presence is checked)."""
        log, step = self.path / "metrics.csv", sum(self.counters.get(p, 0) for p in self.phases)
        fix = f"put the file back from a copy, or start a new run; --eval-only still evaluates {self.args.checkpoint}"
        if not log.is_file():
            raise ArgumentError(
                f"{log} is missing: the log of this run up to global step {step} cannot be rebuilt from its "
                f"checkpoint ({fix})"
            )
        with log.open() as f:
            kept = [at for r in csv.DictReader(f) if (at := float(r.get("charts/global_step") or 0)) <= step]
        if len(kept) < ckpt.get("logged_rows", 0):
            last = f"global step {max(kept):.0f}" if kept else "its header"
            raise ArgumentError(
                f"{log} stops short of the checkpoint: it holds {len(kept)} of the {ckpt['logged_rows']} rows "
                f"logged up to global step {step}, the last at {last} ({fix})"
            )
        if not (self.path / "config.json").is_file():
            write_text_atomic(self.path / "config.json", strict_json(ckpt["args"]))
            print(
                f"note: {self.path / 'config.json'} was missing: rebuilt it from the checkpoint's settings",
                file=sys.stderr,
            )

    def release(self) -> None:
        """Releases the run directory's lock (at the end of `with run`, or at once for a finished run)."""
        if self.lock is not None:
            os.close(self.lock)
            self.lock = None

    def extend(self) -> None:
        """Reopens a finished run whose budget grew: its final.json is kept as final-<global step>.json (never
        overwritten), the end-of-run metrics are dropped (the offline ones stay), and the online phase goes on from
        an episode reset with --seed (the last checkpoint need not be at an episode boundary): a continuation, not
        the run that the longer budget would have made from the start."""
        done, kept = self.path / "final.json", self.path / f"final-{self.global_step()}.json"
        if not kept.is_file():  # else: an extension killed before its first checkpoint, extended again
            if not done.is_file():
                self.write_final()
            os.replace(done, kept)
        done.unlink(missing_ok=True)
        self.final = {k: v for k, v in self.final.items() if k.startswith("offline/")}
        self.finished = False
        write_text_atomic(self.path / "config.json", strict_json(asdict(self.args)))  # the new budget

    def global_step(self) -> int:
        """The sum of the phase counters: updates offline plus environment steps online."""
        return sum(self.counters[phase] for phase in self.phases)

    def elapsed(self) -> float:
        """Wall time of the run in seconds, over all the processes of a resumed run."""
        return self.elapsed_before + time.time() - self.start

    def result(self) -> dict[str, float]:
        """The final metrics (final.json's content) and `run_dir`."""
        return {**self.final, "run_dir": str(self.path)}

    def __enter__(self) -> Run:
        resumed = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in self.counters.items()) if self.first_step else ""
        print(
            f"{self.script}: {'resuming' if resumed else 'new'} run in {self.path}"
            + (f" at {resumed}" if resumed else "")
            + " (config.json, metrics.csv, checkpoint.pt; Ctrl-C saves and says how to resume)",
            file=sys.stderr,
            flush=True,
        )
        self.bar, self.bar_phase, self.postfix = tqdm(disable=True), None, {}
        self.stop, self.tick = stop_on_signals(), (time.time(), self.first_step)
        try:
            if self.first_step == 0 and sum(n for phase, n in self.phases.items() if phase != "env_step") > 0:
                self.evaluate("offline_step", 0)  # the policy before any training
            # A resumed run's bar starts in the phase it stopped in, e.g. online after its offline phase.
            self.phase_bar(next((p for p, n in self.phases.items() if self.counters[p] < n), list(self.phases)[-1]))
        except BaseException:  # `with` calls no __exit__ when __enter__ fails: restore handlers, close here
            self.__exit__(*sys.exc_info())
            raise
        return self

    def phase_bar(self, phase: str) -> tqdm:
        """The progress bar of `phase`: on the first call for a phase, the previous phase's bar is closed (its line
        stays, showing that phase's steps and time) and a new one counts this phase alone against its own budget,
        from its counter (a resumed run's), with the time left at this phase's average rate (smoothing 0: the
        evaluations' pauses are in the average, not in jumps of the estimate). Disabled with --no-progress and
        when stderr is not a terminal."""
        if phase != self.bar_phase:
            self.bar.close()
            online = phase == "env_step"
            self.bar = tqdm(
                total=self.phases[phase],
                initial=self.counters[phase],
                desc="online" if online else phase.removesuffix("_step"),
                unit="step" if online else "update",
                smoothing=0,
                disable=None if self.args.progress and self.phases[phase] else True,
            )
            self.bar.set_postfix(self.postfix)
            self.bar_phase = phase
        return self.bar

    def __exit__(self, kind, error, traceback) -> None:
        self.explain(error)
        interrupted = None
        try:
            if kind is KeyboardInterrupt:  # at the end of a step: save the last state a resume can start from
                state = self.boundary if self.boundary is not None else self.snapshot()
                self.save(state)
                interrupted = self.interrupted(state)
        finally:
            try:
                self.stop["restore"]()
                self.bar.close()
                self.logger.close()
                if self.env is not None:
                    self.env.close()
            finally:
                self.release()
        if interrupted:  # after the bar's last line, so that nothing redraws over it
            print(interrupted, file=sys.stderr, flush=True)
        # Non-finite weights fail somewhere between logging steps (torch.distributions refuses a NaN scale): say so.
        if (
            kind is not None
            and not issubclass(kind, (KeyboardInterrupt, Diverged))
            and not all_finite(self.agent.state_dict())
        ):
            raise Diverged(
                self.diverged(
                    f"the weights (then {kind.__name__}: {(str(error).strip().splitlines() or [''])[0][:120]})",
                    "non-finite",
                )
            ) from error

    def explain(self, error: BaseException | None) -> None:
        """Completes a WriteFailed that does not yet say what to do: the last good checkpoint and how to go on."""
        if isinstance(error, WriteFailed) and not error.fix:
            last_good = getattr(self, "last_good", "none yet")
            error.fix = (
                "no checkpoint was written yet (make room, or give another --run-dir, and run the command again)"
                if last_good == "none yet"
                else f"the last good checkpoint: {last_good} (make room, then resume with --checkpoint "
                f"{self.path / 'checkpoint.pt'})"
            )

    def interrupted(self, state: dict) -> str:
        """What Ctrl-C or SIGTERM left, for the terminal: where it came, what `state` (the checkpoint just written)
        holds, the steps of an unfinished episode that it does not (online, a checkpoint is taken only at an
        episode's end), and the command that resumes the run, e.g. `python awac.py --checkpoint runs/.../checkpoint.pt`
        (the script as this process found it, relative to the working directory where it can be)."""
        where = lambda counters: ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in counters.items())  # noqa: E731
        checkpoint = self.path / "checkpoint.pt"
        lost = self.counters.get("env_step", 0) - state["counters"].get("env_step", 0)
        script = Path(getattr(sys.modules.get(type(self.args).__module__), "__file__", None) or self.script)
        if script.is_absolute() and script.is_relative_to(Path.cwd()):
            script = script.relative_to(Path.cwd())
        return (
            f"interrupted at {where(self.counters)}: saved {checkpoint} at {where(state['counters'])}"
            + (
                f" (the end of the last finished episode; the {lost:,} steps of the unfinished episode are not saved "
                "and a resume redoes them)"
                if lost
                else ""
            )
            + f"\nresume with: {shlex.join(['python', str(script), '--checkpoint', str(checkpoint)])}"
        )

    def diverged(self, what: str, value) -> str:
        """The one-line message of a divergence found now: step, metric, last good checkpoint."""
        return (
            f"the run diverged by global step {self.global_step()}: {what} is {value} (the last checkpoint "
            f"with finite weights: {self.last_good}; inspect it with --checkpoint ... --eval-only, or start a "
            "new run with smaller learning rates)"
        )

    def log(self, row: dict, step: int | None = None) -> None:
        """Logs one row (metrics.csv, W&B) at `step`, by default the global step."""
        self.logger.log(row, self.global_step() if step is None else step)

    def log_episode(self, episode_return: float, length: int, goal: list[bool], env_step: int, step: int) -> None:
        """Logs a finished training episode at global `step`: return, length, `env_step` (the step that ended it)
        and, when the env reported goal flags (T,), its success by each of utils.envs.SUCCESS_DEFINITIONS."""
        success = {f"charts/{k}": v for k, v in episode_success(goal, self.args.env_id).items()} if goal else {}
        self.log(
            {
                "charts/episodic_return": episode_return,
                "charts/episodic_length": length,
                **success,
                "charts/env_step": env_step,
            },
            step,
        )

    def evaluate(self, phase: str, step: int) -> dict[str, float]:
        """Evaluates the policy and logs the result; with --capture-video, also a video of the first episode."""
        name = "online" if phase == "env_step" else phase.removesuffix("_step")
        video = self.path / "videos" / f"{name}-{step:07d}.mp4" if self.args.capture_video else None
        with writing_video(video):  # no partial mp4 left
            result = self.evaluate_policy(video)
        self.log({**result, f"charts/{phase}": step})
        if video is not None:
            self.logger.log_video(video, self.global_step())
        self.postfix = {
            k.removeprefix("eval/"): f"{v:.2f}"
            for k, v in result.items()
            if k in ("eval/success_final", "eval/normalized_score")
        }
        self.bar.set_postfix(self.postfix)
        return result

    def snapshot(self, env_rng: dict | None = None) -> dict:
        """The run's whole state now, copied: a resume from it redoes the next steps exactly. `env_rng`: the env's
        generators before the reset that starts the next episode (None: reset with the seed)."""
        return copy.deepcopy(
            {
                "script": self.script,
                "agent": self.agent.state_dict(),
                "args": asdict(self.args),
                "counters": self.counters,
                "final": self.final,
                "finished": self.finished,
                "horizon": self.horizon,
                "offline_done": self.offline_done,
                "elapsed_s": self.elapsed(),
                "buffer_end": getattr(self.buffer, "pos", None),
                "torch_rng": torch.get_rng_state(),
                "batch_rng": self.gen.get_state(),
                "env_rng": env_rng,
                "logged_rows": len(self.logger.rows),  # a resume checks that metrics.csv still holds them
            }
        )

    def save(self, state: dict, name: str = "checkpoint.pt") -> None:
        """Writes `state` with the online rows of the buffer it had (what a resume cannot rebuild) atomically."""
        step = sum(state["counters"][p] for p in self.phases)
        if not all_finite(state["agent"]):  # never replace the last good checkpoint by a broken one
            raise Diverged(self.diverged(f"the weights to be saved at global step {step}", "non-finite"))
        online = (
            {}
            if self.buffer is None
            else self.buffer.last(state["counters"].get("env_step", 0), end=state["buffer_end"])
        )
        try:
            _atomic_torch_save(
                {**state, "online_data": {k: torch.as_tensor(v) for k, v in online.items()}}, self.path / name
            )
        except WriteFailed as e:
            self.explain(e)
            raise
        if name == "checkpoint.pt":
            self.last_good = f"{self.path / name}, global step {step}"

    def after_step(
        self, phase: str, metrics: dict | None, n: int = 1, episode_end: bool | None = None, env_rng: dict | None = None
    ) -> None:
        """Counts `n` steps of `phase`, then does what falls due: logs `metrics` (None: no update this step)
        every log_every steps, evaluates every eval_every (the last one is finish()'s), checkpoints every
        save_every (`episode_end` None: any step end is a consistent state; False/True: only an episode's end,
        whose state is kept as `boundary`), and raises KeyboardInterrupt if Ctrl-C or SIGTERM came."""
        before, a = self.counters[phase], self.args
        self.counters[phase] += n
        self.phase_bar(phase).update(n)
        step = self.counters[phase]
        if metrics is not None and step // a.log_every > before // a.log_every:
            now, global_step = time.time(), self.global_step()
            sps = (global_step - self.tick[1]) / (now - self.tick[0])
            row = self.logger.log({**metrics, f"charts/{phase}": step, "charts/SPS": sps}, global_step)
            self.tick = (now, global_step)
            # The divergence guard reads what logging read anyway: no extra device sync per update.
            bad = first_non_finite(row)
            if bad is not None:
                raise Diverged(self.diverged(bad, row[bad]))
        if step // a.eval_every > before // a.eval_every and step < self.phases[phase]:
            self.evaluate(phase, step)
        self.save_due = self.save_due or step // a.save_every > before // a.save_every
        if episode_end:
            self.boundary = self.snapshot(env_rng)
        if self.save_due and episode_end is not False:
            self.save(self.boundary if episode_end else self.snapshot())
            self.save_due = False
        if self.stop["requested"]:
            raise KeyboardInterrupt

    def end_offline(self) -> None:
        """Evaluates the pretrained policy as step 0 of the online phase, once, and keeps it as offline/eval/*;
        checkpoint_offline.pt keeps the agent for --eval-only and analysis."""
        if not self.offline_done:
            result = self.evaluate("env_step", 0)
            self.final.update({f"offline/{k}": v for k, v in result.items()}, **{"offline/wall_time_s": self.elapsed()})
            self.offline_done = True
            self.save(self.snapshot())
            self.save(self.snapshot(), "checkpoint_offline.pt")

    def start_online(self, reset_env: bool = True) -> np.ndarray | None:
        """Starts the online phase; with `reset_env`, resets the env (seeded, or to the checkpoint's generators)
        for `after_env_step` and returns the first observation."""
        self.phase_bar("env_step")
        self.tick = (time.time(), self.global_step())
        if not reset_env:
            return None
        env, env_rng = self.env, self.ckpt["env_rng"] if self.ckpt and self.counters["env_step"] else None
        if env_rng is None:
            obs, _ = env.reset(seed=self.args.seed)
        else:
            env.unwrapped.np_random.bit_generator.state = env_rng["env"]
            env.action_space.np_random.bit_generator.state = env_rng["action_space"]
            obs, _ = env.reset()
        self.boundary, self.save_due, self.episode, self.goal = self.snapshot(env_rng), False, (0.0, 0), []
        return obs

    def after_env_step(
        self, next_obs: np.ndarray, reward: float, done: bool, metrics: dict | None, info: dict | None = None
    ) -> np.ndarray:
        """`after_step` for one environment step: logs a finished episode (`log_episode`, with the goal flags of
        the env's `info["success"]`) and resets the env. Returns the next observation to act on."""
        self.episode = (self.episode[0] + float(reward), self.episode[1] + 1)
        if info is not None and "success" in info:
            self.goal.append(bool(info["success"]))
        env_rng = None
        if done:
            self.log_episode(
                self.episode[0], self.episode[1], self.goal, self.counters["env_step"] + 1, self.global_step() + 1
            )
            env_rng = copy.deepcopy(
                {
                    "env": self.env.unwrapped.np_random.bit_generator.state,
                    "action_space": self.env.action_space.np_random.bit_generator.state,
                }
            )
            next_obs, _ = self.env.reset()
            self.episode, self.goal = (0.0, 0), []
        self.after_step("env_step", metrics, episode_end=done, env_rng=env_rng)
        return next_obs

    def finish(self) -> None:
        """The final evaluation (once), SPS and wall time, and the last checkpoint. Without an online phase (no
        end_offline), the final evaluation is also the offline result."""
        last = list(self.phases)[-1]
        if not self.finished:
            result = self.evaluate(last, self.counters[last])
            self.final.update(result)
            if not self.offline_done:
                self.final.update({f"offline/{k}": v for k, v in result.items()})
            self.finished = True
        self.final.update(
            {
                "charts/SPS": (self.global_step() - self.first_step) / (time.time() - self.start),
                "wall_time_s": self.elapsed(),
            }
        )
        self.save(self.snapshot())
        self.write_final()

    def write_final(self) -> None:
        """final.json, atomically, after the last checkpoint: a directory holds a finished run exactly when it
        has one."""
        write_text_atomic(self.path / "final.json", strict_json(self.result()))


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
