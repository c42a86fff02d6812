"""Running a grid's cells: each as its own process, `--workers` at a time on this machine, or as Ray tasks on an
existing cluster; a progress bar (or a line per finished run), and failures that do not stop the rest."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from tqdm.auto import tqdm

from utils.benchmark.grid import Cell
from utils.benchmark.scripts import ROOT
from utils.run.run_dir import run_holder
from utils.writes import EXIT_WRITE_FAILED, WriteFailed


def execute(command: list[str], log_path: str) -> tuple[int, str, float]:
    """Runs one command with its output in `log_path`; returns its exit code, the last 30 lines of its log and its
    wall time in seconds (from its own start, so time spent queued behind other runs is not counted)."""
    start = time.time()
    try:
        log = open(log_path, "a")  # closed by `with log`; a resumed run's log follows its earlier attempts'
    except OSError as e:  # the run cannot start without its log: it fails, and the grid goes on
        return EXIT_WRITE_FAILED, f"error: {WriteFailed(log_path, e)}", time.time() - start
    with log:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH"))))}
        code = subprocess.run(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    tail = "".join(Path(log_path).read_text(errors="replace").splitlines(keepends=True)[-30:])
    return code, tail, time.time() - start


def ray_token() -> str | None:
    """The Ray cluster token this client can send, looked up where Ray's token authentication documents it:
    $RAY_AUTH_TOKEN, the file $RAY_AUTH_TOKEN_PATH, or ~/.ray/auth_token (None if there is none)."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return os.environ["RAY_AUTH_TOKEN"]
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    return path.read_text().strip() or None if path.is_file() else None


def connect_ray(address: str) -> None:
    """ray.init to an existing cluster. Ray 2.59+ turns token authentication on for clusters started with
    `ray start --head`, and refuses a client without RAY_AUTH_MODE=token with a bare ConnectionError; so a client
    that has a token (see `ray_token`) and no RAY_AUTH_MODE of its own sends it (a cluster without authentication
    accepts it too). Ray reads the mode when it is imported, hence before `import ray`. Workers get the
    repository on their path. Raises SystemExit telling "no cluster" (nothing listens at HOST:PORT) apart from
    "authentication failed" (something listens but refused this client), each with what to do."""
    import socket

    if "ray" in sys.modules and sys.modules["ray"].is_initialized():
        return  # this process already runs Ray (e.g. a local ray.init() before calling main)
    if "RAY_AUTH_MODE" not in os.environ and ray_token():
        os.environ["RAY_AUTH_MODE"] = "token"
    import ray

    try:  # workers import utils.benchmark.launchers.execute: the repository must be on their path
        ray.init(address=address, runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}}, log_to_driver=False)
        return
    except ConnectionError as e:
        error = e
    host, _, port = address.rpartition(":")
    listening = False
    if host and port.isdigit():
        with socket.socket() as sock:
            sock.settimeout(3)
            listening = sock.connect_ex((host, int(port))) == 0
    if listening:
        raise SystemExit(
            f"authentication failed: the Ray cluster at {address!r} refused this client ({error}). It "
            "uses token authentication: copy the head's token (`ray get-auth-token` on the head) to "
            "~/.ray/auth_token here, or set RAY_AUTH_TOKEN"
        )
    raise SystemExit(
        f"no Ray cluster at {address!r} ({error}). Start one with `ray start --head` (and "
        "`ray start --address HEAD:6379` on each worker), or pass --ray-address"
    )


def recheck(cell: Cell) -> str | None:
    """Decides a queued cell again just before it starts, since another process (the same grid issued twice) may
    have run it meanwhile: a reason to skip it (held by a living process, or finished), else None, after adding
    --checkpoint when a checkpoint has appeared. The run's own lock settles any race left."""
    holder = run_holder(cell.run_dir)
    if holder is not None:
        return f"in use by {holder}"
    if (cell.run_dir / "final.json").is_file() and not cell.extend:
        return "finished by another process"
    checkpoint = cell.run_dir / "checkpoint.pt"
    if checkpoint.is_file() and "--checkpoint" not in cell.command:
        cell.command += ["--checkpoint", str(checkpoint)]
    return None


def launch(runs: list[Cell], args: argparse.Namespace) -> None:
    """Runs every pending run, `args.workers` at a time, locally or as Ray tasks; failures do not stop the rest."""
    todo = [r for r in runs if r.status == "pending"]
    bar = tqdm(total=len(todo), desc="runs", unit="run", disable=None)
    running: set[str] = set()
    started = time.time()

    def failed() -> int:
        return sum(r.status == "failed" for r in runs)

    def show() -> None:
        bar.set_postfix(running=len(running), failed=failed())

    def finished(run: Cell, code: int | None, tail: str, seconds: float) -> None:
        run.seconds = seconds
        if code is None:  # not started: `recheck` found it held or finished
            run.status = "held" if tail.startswith("in use") else "skipped"
            tqdm.write(f"skipping {run.run_dir.name}: {tail}")
        else:
            run.status = "done" if code == 0 and (run.run_dir / "final.json").is_file() else "failed"
        run.log_tail = tail
        running.discard(run.run_dir.name)
        if run.status == "failed":
            tqdm.write(f"FAILED {run.run_dir.name} (exit {code}); end of {run.run_dir}.log:\n{tail}")
        bar.update()
        show()
        if bar.disable:  # no terminal (nohup, a batch job): one line per finished run instead of the bar
            done, elapsed = sum(r.status != "pending" for r in todo), time.time() - started
            left = tqdm.format_interval(elapsed / done * (len(todo) - done))
            print(
                f"[{done}/{len(todo)}] {run.status} {run.run_dir.name} in {tqdm.format_interval(seconds)}; "
                f"running {len(running)}, failed {failed()}, "
                f"about {left} left",
                flush=True,
            )

    for run in todo:
        run.run_dir.parent.mkdir(parents=True, exist_ok=True)
    if args.launcher == "ray":
        connect_ray(args.ray_address)  # before this process imports ray: ray reads its auth mode on import
        import ray

        remote = ray.remote(num_cpus=1, num_gpus=args.gpus_per_run)(execute)
        pending = {}
        for run in todo:
            reason = recheck(run)
            if reason is not None:
                finished(run, None, reason, 0.0)
                continue
            pending[remote.remote(run.command, str(run.run_dir) + ".log")] = run
            running.add(run.run_dir.name)
        show()
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            finished(pending.pop(ready[0]), *ray.get(ready[0]))
    else:

        def start(run: Cell) -> tuple[int | None, str, float]:
            reason = recheck(run)
            if reason is not None:
                return None, reason, 0.0
            running.add(run.run_dir.name)  # a worker thread picked it up: it is running, no longer queued
            show()
            return execute(run.command, str(run.run_dir) + ".log")

        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            futures = {pool.submit(start, run): run for run in todo}
            for future in as_completed(futures):
                finished(futures[future], *future.result())
    bar.close()
