"""Compare algorithms with one command: a grid of algorithms x tasks x seeds, then a table and learning curves.

    python -m utils.benchmark --algos awac sac_fd bc awr --envs pen-binary door-binary relocate-binary --seeds 0 1 2
    python -m utils.benchmark --algos awac bc --envs pen-binary --seeds 0 1 --budget quick -- --batch-size 64
    python -m utils.benchmark --algos awac ~/forks/my_awac.py --envs door-binary --seeds 0 1 --budget screen
    python -m utils.benchmark report results/<experiment>/runs/*          # rebuild the outputs from finished runs
    python -m utils.benchmark paired --a results/fp32/runs/* --b results/bf16/runs/* --at 100000 --window 50000

`--algos` takes the four scripts by name and any other script that keeps the house protocol (an `Args` dataclass
and `train(args)`, e.g. a copy of awac.py with a changed loss) by name (beside them) or by path; its runs and rows go
by its file name.

Each (algorithm, task, seed) runs as its own process, `python <algo>.py --env-id ... --seed ...`, with one torch
thread, its own W&B run (grouped by the experiment's name) and its own directory
`results/<experiment>/runs/<task>__<algo>__<seed>`; `--workers` of them at a time (default: the machine's cores).
Arguments after `--` go to every script that has them (a flag that no script has goes to all, so a typo fails);
`--budget` adds a preset of flags before them (see BUDGETS); a flag that reaches more than one script is named once
with the scripts that get it. A run whose `final.json` exists is skipped when the command is repeated, an unfinished
one with a `checkpoint.pt` resumes from it, both only if its `config.json` has the settings the command asks for
(else the command stops, naming the fields that differ: give a new `--experiment`, or `--rerun` to delete such runs
and make them again), and one that another process holds
(utils.run's lock: the same grid still running elsewhere) is skipped with the holder named; a run that fails is
reported with the end of its log and the others go on. Progress: a bar with runs done, running and failed and the
time left, or, when the output is not a terminal, one line per finished run. `--launcher ray` submits each run as a
Ray task to an existing cluster (`--ray-address`, default `auto`; the results directory must be on a file system the
workers share).

Outputs in `results/<experiment>/`: `summary.md` and `summary.csv` (per task and algorithm, and over all tasks: each
success definition and the normalized score after the offline phase and at the end: the mean over runs with its 95%
stratified-bootstrap confidence interval from rliable, seeded; summary.csv also has the IQM, which equals the mean at 3
or fewer runs per task; the number of runs each row used, and the runs left out of a row over several tasks; a row of
one run has no interval; summary.md also names the runs left out as unfinished), `curves.png` (one panel per task and
success definition: evaluation success against environment steps, offline phase shaded at negative steps, mean over
seeds with a 95% bootstrap band per algorithm), `q_values.png` (the same for the critics' mean Q on training batches,
for the algorithms that have critics), and `runs.csv` (every run, its directory relative to the experiment, and its
status).

This is a driver: no algorithm file imports it.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import functools
import importlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from utils.envs import SUCCESS_DEFINITIONS
from utils.run import run_holder
from utils.writes import EXIT_WRITE_FAILED, WriteFailed, writing

ROOT = Path(__file__).resolve().parents[1]
ALGOS = ("awac", "sac_fd", "bc", "awr")
# Flags a preset adds before the user's; each script receives only those its Args has.
BUDGETS: dict[str, list[str]] = {
    "quick": "--offline-steps 1000 --online-steps 2000 --batch-size 64 --hidden-dims 64 64 --eval-every 1000 "
    "--eval-episodes 5 --log-every 250 --samples-per-iter 500 --actor-steps 250 --critic-steps 50".split(),
    "table": "--offline-steps 25000 --online-steps 50000 --batch-size 256 --eval-every 5000 --eval-episodes 25".split(),
    "paper": [],  # every script's own defaults: the paper's budgets (AWAC: 25K offline updates, 500K env steps)
    # The door experiment at the paper's settings (each script's defaults) and 300K of its 500K online steps;
    # SACfD with 25K BC-pretraining updates of its actor (SACfD-pretrain in the paper's figure).
    "paper-door": "--offline-steps 25000 --online-steps 300000 --eval-every 10000 --eval-episodes 50 "
    "--save-every 10000 --bc-pretrain-steps 25000".split(),
    # AWAC on door at rlkit's full budget: 501 epochs of 1000 steps, here 500K online steps after 25K offline updates.
    "door-500k": "--offline-steps 25000 --online-steps 500000 --eval-every 10000 --eval-episodes 50 "
    "--save-every 10000 --bc-pretrain-steps 25000".split(),
    # A screen at a tenth of the paper's online budget: 25K offline updates, 100K environment steps at each script's
    # own batch size, evaluations every 10K on 50 episodes (the door screen and the precision check; pen at 256).
    "screen": "--offline-steps 25000 --online-steps 100000 --eval-every 10000 --eval-episodes 50 "
    "--save-every 10000 --bc-pretrain-steps 25000".split(),
    # The locomotion tasks (HalfCheetah-v5, Walker2d-v5, Ant-v5) at a budget that fits: 25K offline updates and
    # 100K environment steps, online batch 256 (AWAC's offline batch stays rlkit's 128; the paper: 500K+ steps at
    # batch 1024). Their datasets need the SAC experts of utils/experts.py (README, "Locomotion").
    "locomotion": "--offline-steps 25000 --online-steps 100000 --batch-size 256 --eval-every 5000 "
    "--eval-episodes 10 --save-every 25000".split(),
}
# The success definitions of utils.envs.SUCCESS_DEFINITIONS, the one rlkit's logs (and so, most likely, the AWAC
# paper's curves) report first; every table gives each in its own column, never mixed.
SUCCESS = ("success_final", "success_any", "success_rate")
# The pace of a goal task (utils.envs.evaluate): the median first step at the goal, and the share never there.
PACE = ("goal_step", "goal_never")
METRICS = (*SUCCESS, "normalized_score", *PACE)
# Column headers and the index of each metric in a curve point (offline, step, success_rate, score, final, any).
LABELS = {
    "success_final": "success at last step",
    "success_any": "success at any step",
    "success_rate": "success > 20/25 steps",
    "normalized_score": "score",
    "goal_step": "goal step",
    "goal_never": "never at goal",
}
COLUMN = {
    "success_rate": 2,
    "normalized_score": 3,
    "success_final": 4,
    "success_any": 5,
    "goal_step": 6,
    "goal_never": 7,
}
# Environment steps at which summary.md also reports each method (besides after the offline phase and at the end).
MILESTONES: dict[str, tuple[int, ...]] = {
    "door-500k": (100_000, 200_000, 300_000, 500_000),
    "paper-door": (100_000, 200_000, 300_000),
    "screen": (50_000, 100_000),
    "locomotion": (25_000, 50_000, 100_000),
}
# ... and also averaged over the evaluations of this many steps up to each milestone (5 evaluations of 50 episodes
# on door, of 10 episodes on the locomotion tasks).
WINDOWS: dict[str, int] = {"door-500k": 50_000, "paper-door": 50_000, "screen": 50_000, "locomotion": 25_000}


def script_path(algo: str) -> Path:
    """The file of `algo`: a script in the repository root by name (`awac`, or a fork `my_awac` saved beside it), or
    the path of any .py file that follows the house protocol (an `Args` dataclass and `train(args)`, as awac.py).
    Raises SystemExit naming the file it looked for."""
    path = Path(algo) if algo.endswith(".py") or os.sep in algo else ROOT / f"{algo}.py"
    if not path.is_file():
        raise SystemExit(
            f"--algos {algo}: no script {path} (give one of {', '.join(ALGOS)}, or the path of a copy "
            "such as my_awac.py)"
        )
    return path.resolve()


def algo_name(algo: str) -> str:
    """The name a script's runs and rows go by: its file's stem (`my_awac` for ~/forks/my_awac.py)."""
    return script_path(algo).stem


@functools.cache
def load_script(algo: str):
    """Imports a script (by name or path, see `script_path`) to read its `Args`; importing runs no training.
    Raises SystemExit naming the file, the reason and the line (where Python gives one) when the file does not
    import (a syntax error, a missing module, any error at import), or has no `Args` dataclass or no `train`."""
    path = script_path(algo)
    if str(ROOT) not in sys.path:  # a fork outside the repository still imports utils/
        sys.path.insert(0, str(ROOT))
    try:
        if path.parent == ROOT:
            module = importlib.import_module(path.stem)
        else:
            spec = importlib.util.spec_from_file_location(path.stem, path)
            module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # dataclasses look it up there
            spec.loader.exec_module(module)
    except Exception as e:  # a broken fork: whatever stops its import, said in one line
        sys.modules.pop(path.stem, None)
        raise SystemExit(f"--algos {algo}: {import_failure(path, e)}") from None
    if not (dataclasses.is_dataclass(getattr(module, "Args", None)) and callable(getattr(module, "train", None))):
        raise SystemExit(
            f"--algos {algo}: {path} does not follow the house protocol (an Args dataclass and "
            "train(args), as in awac.py)"
        )
    return module


def import_failure(path: Path, error: Exception) -> str:
    """Why `path` did not import, in one line: the file and line (of a syntax error: where Python found it, maybe in
    a module the script imports; else the script's line that was running), the error and what to do."""
    if isinstance(error, SyntaxError):
        return (
            f"{error.filename or path}, line {error.lineno}: the script does not import: {type(error).__name__}: "
            f"{error.msg} (fix that line; `python -m py_compile {error.filename or path}` checks the file)"
        )
    lines = [f.lineno for f in traceback.extract_tb(error.__traceback__) if Path(f.filename) == path]
    where = f"{path}, line {lines[-1]}" if lines else str(path)
    fix = (
        f"install {error.name}, or remove that import"
        if isinstance(error, ModuleNotFoundError) and error.name
        else "fix the script: importing it must run no work"
    )
    reason = (str(error).strip().splitlines() or [""])[0]
    return f"{where}: the script does not import: {type(error).__name__}: {reason} ({fix})"


def algo_flags(algo: str) -> set[str]:
    """The command-line flags of an algorithm file's Args, e.g. {'--env-id', '--offline-steps', ...}."""
    return {"--" + f.name.replace("_", "-") for f in dataclasses.fields(load_script(algo).Args)}


def flags_for(algo: str, words: list[str]) -> list[str]:
    """The flags (with their values) of `words` meant for `algo`: those its Args has, and those no algorithm file
    has (so a typo fails loudly everywhere instead of vanishing); a flag of another algorithm is left out."""
    mine, known = algo_flags(algo), set().union(*(algo_flags(a) for a in (*ALGOS, algo)))
    out, i = [], 0
    while i < len(words):
        j = i + 1
        while j < len(words) and not words[j].startswith("--"):
            j += 1
        if words[i] in mine or words[i] not in known:
            out += words[i:j]
        i = j
    return out


# Fields that say where and how a run executes or is logged, not what it learns: a run on disk may differ from the
# command in these and still be the run the command asks for.
NOT_SETTINGS = frozenset(  # compile changes how fast, not what: the same math to float rounding
    "checkpoint eval_only device threads progress wandb_mode wandb_project wandb_group run_dir run_name data_dir "
    "capture_video compile".split()
)


def requested_config(algo: str, flags: list[str]) -> dict:
    """The config.json that `python <algo>.py <flags>` would write for a new run, as far as the benchmark can know it
    without running it: the script's Args parsed from `flags` (tyro, as the script's command line does), with
    --precision auto resolved on this machine, --online-steps' default filled in, and the per-task defaults of a
    script that has `family_defaults` (awac.py) resolved. Fields a script resolves elsewhere stay None. Values are
    JSON's (tuples as lists, infinity as "inf"). Raises SystemExit naming the flags when tyro rejects them."""
    import tyro

    from utils.run import DEFAULT_ONLINE_STEPS, resolve_precision, strict_json

    module = load_script(algo)
    try:
        args = tyro.cli(module.Args, args=flags, console_outputs=False)
    except SystemExit:
        raise SystemExit(
            f"--algos {algo}: its script rejects the flags {' '.join(flags)} (run it with them to see why)"
        ) from None
    changes = {}
    if getattr(args, "precision", None) == "auto":
        changes["precision"] = resolve_precision("auto", args.device)
    if getattr(args, "online_steps", 0) is None:
        changes["online_steps"] = DEFAULT_ONLINE_STEPS
    args = dataclasses.replace(args, **changes)
    if callable(getattr(module, "family_defaults", None)):
        args = module.family_defaults(args)
    return json.loads(strict_json(dataclasses.asdict(args)))


def settings_differ(run_dir: Path, requested: dict) -> list[str]:
    """The fields (NOT_SETTINGS aside) in which the run in `run_dir` (its config.json) differs from `requested`
    (`requested_config`), each as "name: run X, command Y"; [] when they agree or the run has no config.json. A field
    that only one side has (a run made before the field existed) is not compared."""
    path = run_dir / "config.json"
    if not path.is_file():
        return []
    saved = json.loads(path.read_text())
    return [
        f"{k}: run {json.dumps(saved[k])}, command {json.dumps(v)}"
        for k, v in requested.items()
        if k in saved and k not in NOT_SETTINGS and saved[k] != v
    ]


def shared_flags(algos: list[str], words: list[str]) -> dict[str, list[str]]:
    """The flags of `words` that more than one of `algos` receives (`flags_for`), each with those scripts' names:
    the same name can mean different things (--beta is AWAC's lambda and AWR's temperature)."""
    flags = [w for w in words if w.startswith("--")]
    receivers = {f: [algo_name(a) for a in algos if f in flags_for(a, [f])] for f in flags}
    return {f: names for f, names in receivers.items() if len(names) > 1}


def extends(run_dir: Path, requested: dict, differ: list[str]) -> bool:
    """Whether the command asks for more of the run in `run_dir` rather than another run: the only differing setting
    is `online_steps`, the command's is larger, and the run kept its checkpoint.pt. The script then goes on from
    there (utils.run.Run.extend: final.json is kept as final-<step>.json, and the online phase continues from an
    episode reset: a continuation, not the run a longer budget would have made from the start)."""
    saved = json.loads((run_dir / "config.json").read_text()).get("online_steps")
    return (
        [d.split(":")[0] for d in differ] == ["online_steps"]
        and isinstance(saved, int)
        and requested["online_steps"] > saved
        and (run_dir / "checkpoint.pt").is_file()
    )


@dataclasses.dataclass
class Cell:
    """One (algorithm, task, seed) cell of the grid: the command of its run and, once launched, its outcome."""

    algo: str
    env_id: str
    seed: int
    run_dir: Path
    command: list[str]
    status: str = "pending"
    log_tail: str = ""
    seconds: float = 0.0
    extend: bool = False  # a finished run that the command asks to run longer (more --online-steps)


def plan(args: argparse.Namespace, extra: list[str], runs_dir: Path) -> list[Cell]:
    runs = []
    for env_id in args.envs:
        for algo in args.algos:
            for seed in args.seeds:
                name = f"{env_id}__{algo_name(algo)}__{seed}"
                command = [
                    sys.executable,
                    str(script_path(algo)),
                    "--env-id",
                    env_id,
                    "--seed",
                    str(seed),
                    "--threads",
                    "1",
                    "--no-progress",
                    "--run-dir",
                    str(runs_dir),
                    "--run-name",
                    name,
                    "--wandb-group",
                    args.experiment,
                    *flags_for(algo, BUDGETS[args.budget] if args.budget else []),
                    *(["--device", "cuda"] if args.gpus_per_run > 0 and "--device" not in extra else []),
                    *flags_for(algo, extra),
                ]
                checkpoint = runs_dir / name / "checkpoint.pt"
                if checkpoint.is_file():  # an unfinished run (killed, preempted) resumes where it saved last
                    command += ["--checkpoint", str(checkpoint)]
                runs.append(Cell(algo_name(algo), env_id, seed, runs_dir / name, command))
    return runs


def dataset_notice(command: list[str]) -> str | None:
    """utils.datasets.build_notice for the dataset that a run's `command` loads (its --dataset, or the task's default,
    with --dataset-seed and --data-dir): the line announcing that its first run builds it, or None."""
    from utils.datasets import build_notice, default_dataset

    flag = lambda name, default: command[command.index(name) + 1] if name in command else default  # noqa: E731
    dataset = flag("--dataset", default_dataset(flag("--env-id", "")))
    return build_notice(dataset, int(flag("--dataset-seed", 0)), flag("--data-dir", None))


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

    try:  # workers import utils.benchmark.execute: the repository must be on their path
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


# ----------------------------------------------------------------------------------------------- report
def load_run(run_dir: Path) -> dict:
    """A finished run's config, final metrics and evaluation curve: (offline, step, success_rate, score, success_final,
    success_any, goal_step, goal_never) per evaluation (NaN for what the run did not log: runs before December 2026
    logged success_rate only, and goal_step / goal_never came with issue 33), where step counts updates from the start
    of the offline phase (BC pretraining included) or online env steps; and each logged `values/*` metric's trajectory,
    `values[key]`: (offline, step, value) per logged row (`q_curve`: values/q_mean's)."""
    config = json.loads((run_dir / "config.json").read_text())
    # null is a metric without a value (success on locomotion tasks); older runs wrote NaN, which json reads too
    final = {k: np.nan if v is None else v for k, v in json.loads((run_dir / "final.json").read_text()).items()}
    # sac_fd.py's --bc-pretrain-steps come before its offline updates: both count as the offline phase.
    # Without prior data (--dataset none: SAC from scratch) there is no offline phase, whatever its budget says.
    scratch = str(config.get("dataset") or "").lower() == "none"
    bc_steps = 0 if scratch else config.get("bc_pretrain_steps", 0)
    curve, values = [], {}
    with (run_dir / "metrics.csv").open() as f:
        for row in csv.DictReader(f):
            if row.get("charts/offline_step") or row.get("charts/env_step"):
                offline = bool(row.get("charts/offline_step"))
                step = float(row["charts/offline_step"]) + bc_steps if offline else float(row["charts/env_step"])
                for k, v in row.items():
                    if k.startswith("values/") and v:
                        values.setdefault(k, []).append((offline, step, float(v)))
            if row.get("eval/success_rate"):
                offline = bool(row.get("charts/offline_step") or row.get("charts/bc_step"))
                if row.get("charts/bc_step"):
                    step = float(row["charts/bc_step"])
                elif offline:
                    step = float(row["charts/offline_step"]) + (bc_steps if float(row["charts/offline_step"]) else 0)
                else:
                    step = float(row.get("charts/env_step") or 0)
                curve.append(
                    (
                        offline,
                        step,
                        float(row["eval/success_rate"]),
                        float(row["eval/normalized_score"]),
                        *(float(row.get(f"eval/{k}") or "nan") for k in ("success_final", "success_any", *PACE)),
                    )
                )
    algo = run_dir.name.split("__")[1] if run_dir.name.count("__") >= 2 else Path(config.get("run_dir", "?")).name
    return {
        "dir": run_dir,
        "algo": algo,
        "env_id": config["env_id"],
        "seed": config["seed"],
        "config": config,
        "offline_steps": (0 if scratch else config.get("offline_steps", 0)) + bc_steps,
        "eval_every": config.get("eval_every", 1),
        "final": final,
        "curve": curve,
        "q_curve": values.get("values/q_mean", []),
        "values": values,
    }


def at_step(run: dict, step: int, metric: str, window: int = 0) -> float:
    """A run's evaluation `metric` at online environment step `step`: the first evaluation in [step, step +
    eval_every) (AWR evaluates after the iteration that crosses a multiple, e.g. at 101,200 for 100,000), NaN if
    the run never got there. With `window`, the mean of its evaluations in [step - window + eval_every, step +
    eval_every) instead, the last window // eval_every of them up to `step`: one evaluation of 50 episodes swings
    by +-0.07 from sampling alone, and a policy's success rate moves more than that between evaluations. A run
    without an online phase (BC) has the same value at every step: its final one."""
    online = [c for c in run["curve"] if not c[0]]
    if not online:
        return run["final"].get(f"eval/{metric}", np.nan)
    every, column = run.get("eval_every", 1), COLUMN[metric]
    if not any(step <= c[1] < step + every for c in online):
        return np.nan
    found = [
        c[column] if column < len(c) else np.nan for c in online if step - max(window - every, 0) <= c[1] < step + every
    ]
    return float(np.mean(found)) if window else found[0]


def estimate(mean: float, lo: float, hi: float, runs: int) -> str:
    """A table cell: "mean [lo, hi]" (the 95% CI), "mean (1 run, no interval)" for one run, "n/a" for NaN."""
    if np.isnan(mean):
        return "n/a"
    return f"{mean:.2f} (1 run, no interval)" if runs == 1 else f"{mean:.2f} [{lo:.2f}, {hi:.2f}]"


def milestone_table(runs: list[dict], steps: tuple[int, ...], reps: int = 2000, window: int = 0) -> list[str]:
    """Markdown rows: per task and algorithm, each success definition and the normalized score at each of `steps`
    (mean over the seeds that reached it, with rliable's 95% stratified-bootstrap CIs); with `window`, also their
    mean over the evaluations of the last `window` steps (see `at_step`)."""
    last = f"last {window // 1000:g}K" if window % 1000 == 0 else f"last {window:,}"
    header = [f"{LABELS[m]} (mean [95% CI])" for m in METRICS]
    if window:
        header += [f"{LABELS[m]}, {last} (mean [95% CI])" for m in METRICS]
    lines = [
        "| task | algorithm | env steps | runs | " + " | ".join(header) + " |",
        "|---|---|---|---|" + "---|" * len(header),
    ]
    for task in sorted({r["env_id"] for r in runs}):
        for algo in dict.fromkeys(r["algo"] for r in runs):
            mine = [r for r in runs if r["env_id"] == task and r["algo"] == algo]
            for step in steps:
                cells, n = [], 0
                for width in (0, window) if window else (0,):
                    for metric in METRICS:  # a task without success info (locomotion) has scores only
                        x = np.array([at_step(r, step, metric, width) for r in mine])
                        x = x[~np.isnan(x)]
                        if len(x) == 0:
                            cells.append("n/a")
                            continue
                        n = max(n, len(x))
                        (mean, _), ((mlo, _), (mhi, _)) = (v[algo] for v in interval({algo: x[:, None]}, reps))
                        cells.append(estimate(mean, mlo, mhi, len(x)))
                if n:
                    note = (
                        " (no online phase: its final policy)"
                        if not any(not c[0] for r in mine for c in r["curve"])
                        else ""
                    )
                    lines.append(f"| {task} | {algo}{note} | {step:,} | {n} | {' | '.join(cells)} |")
    return lines


def without_success_columns(lines: list[str]) -> list[str]:
    """A markdown table (header, rule, rows) without the columns of success or pace (goal step, never at goal) whose
    every row is n/a: a grid of tasks without a success signal (locomotion) gets tables of scores only, and runs
    made before goal steps were logged get no empty pace columns. Other tables pass unchanged."""
    cells = [line.strip().strip("|").split("|") for line in lines]
    keep = [
        j
        for j, name in enumerate(cells[0])
        if not any(w in name for w in ("success", "goal")) or any(row[j].strip() != "n/a" for row in cells[2:])
    ]
    return ["|" + "|".join(row[j] for j in keep) + "|" for row in cells]


def run_table(runs: list[dict]) -> list[str]:
    """Markdown rows, one per run: success and score after the offline phase and at the end, its steps (offline
    updates, BC pretraining included, plus online environment steps), wall time and steps per second of wall time."""
    header = [f"{LABELS[m]}, {phase}" for m in METRICS for phase in ("offline", "end")]
    lines = [
        "| run | " + " | ".join(header) + " | steps | wall time | steps/s |",
        "|---|" + "---|" * (len(header) + 3),
    ]
    for r in sorted(runs, key=lambda r: (r["env_id"], r["algo"], r["seed"])):
        f, online = r["final"], r["config"].get("online_steps") or 0
        steps, hours = r["offline_steps"] + online, f.get("wall_time_s", np.nan) / 3600
        cells = [
            f"{f.get(prefix + m, np.nan):.{1 if m in ('normalized_score', 'goal_step') else 2}f}"
            for m in METRICS
            for prefix in ("offline/eval/", "eval/")
        ]
        lines.append(
            f"| {r['dir'].name} | {' | '.join(cells)} | "
            f"{steps:,} | {f'{hours * 60:.1f} min' if hours < 1 else f'{hours:.2f} h'} | "  # short runs in minutes
            f"{steps / (hours * 3600) if hours > 0 else np.nan:.1f} |".replace("nan h", "n/a").replace("nan", "n/a")
        )
    return lines


def iqm(scores: np.ndarray) -> float:
    """The interquartile mean of all (runs, tasks) scores: rliable's `aggregate_iqm`, scipy's trim_mean(scores, 0.25,
    axis=None), computed as scipy computes it (the same partition, so the same float) without scipy's per-call
    overhead, which made a bootstrap of 2,000 resamples take ~1 s per cell. NaN if any score is NaN (scipy's
    nan_policy="propagate"). With n scores it drops int(n / 4) from each end: with 3 or fewer nothing, so the IQM
    is the mean."""
    x = np.ravel(scores)
    if x.size == 0 or np.isnan(x).any():
        return np.nan
    cut = int(0.25 * x.size)
    return float(np.mean(np.partition(x, (cut, x.size - cut - 1))[cut : x.size - cut]))


def interval(scores: dict[str, np.ndarray], reps: int) -> tuple[dict, dict]:
    """rliable's mean and IQM (`rliable.metrics.aggregate_mean`, `iqm`) with 95% stratified-bootstrap CIs (rliable's
    `get_interval_estimates`, percentile intervals over `reps` resamples of runs within each task); scores[algo] is
    (runs, tasks). Returns ({algo: [mean, iqm]}, {algo: [[mean_lo, iqm_lo], [mean_hi, iqm_hi]]}). rliable draws its
    resamples from NumPy's global generator (StratifiedBootstrap.update_indices); it is seeded with 0 for the call
    and restored after, so the same runs always give the same intervals and the caller's random state is untouched."""
    from rliable import library as rly
    from rliable import metrics

    def aggregate(x: np.ndarray) -> np.ndarray:
        return np.array([metrics.aggregate_mean(x), iqm(x)])

    state = np.random.get_state()
    np.random.seed(0)
    try:
        return rly.get_interval_estimates(scores, aggregate, reps=reps)
    finally:
        np.random.set_state(state)


def summarize(runs: list[dict], reps: int = 2000) -> list[dict]:
    """One row per (task, algorithm) and per algorithm over all tasks, with the point estimates and CIs of mean and
    IQM for each success definition and the normalized score, offline and at the end, and `runs`, the number of runs
    the row used. A task's row uses all its finished runs. A row over several tasks uses the seeds that every one of
    them has (rliable's (runs, tasks) matrix): `left_out` names the runs of the other seeds ("" when none). Hand and
    locomotion tasks score on different scales: a grid with both gets "all hand tasks" and "all other tasks" rows
    instead of one "all tasks" row. Raises ValueError when a task of a several-task row has two runs of one seed."""
    from utils.envs import HAND_TASKS

    rows, tasks = [], sorted({r["env_id"] for r in runs})
    algos = list(dict.fromkeys(r["algo"] for r in runs))
    families: dict[str, list[str]] = {}
    for task in tasks:
        families.setdefault("all hand tasks" if task in HAND_TASKS else "all other tasks", []).append(task)
    scopes = {t: [t] for t in tasks}
    if len(families) == 1 and len(tasks) > 1:
        scopes["all tasks"] = tasks
    elif len(families) > 1:
        scopes.update({name: members for name, members in families.items() if len(members) > 1})
    for scope, members in scopes.items():
        for algo in algos:
            mine = [r for r in runs if r["algo"] == algo and r["env_id"] in members]
            if not mine:
                continue
            # Over several tasks the scores form a (seeds, tasks) matrix: only the seeds every task has fit in it.
            # The runs of the other seeds are left out of that row, and named in it.
            present = [t for t in members if any(r["env_id"] == t for r in mine)]
            common = set.intersection(*({r["seed"] for r in mine if r["env_id"] == t} for t in present))
            used = [r for r in mine if r["seed"] in common]
            left_out = [f"{r['env_id']} seed {r['seed']}" for r in mine if r["seed"] not in common]
            if len(present) > 1 and len(used) != len(common) * len(present):
                raise ValueError(f"{algo}: two runs of one seed on one task; a row over {scope} needs one per seed")
            row = {"task": scope, "algorithm": algo, "runs": len(used), "left_out": "; ".join(left_out)}
            for phase, prefix in (("offline", "offline/eval/"), ("end", "eval/")):
                for metric in METRICS:
                    by_task = [
                        [r["final"].get(prefix + metric, np.nan) for r in used if r["env_id"] == t] for t in present
                    ]
                    scores = np.array(by_task).T  # (seeds, tasks)
                    point, ci = interval({algo: scores}, reps)
                    key = f"{metric}_{phase}"
                    row[f"{key}_mean"], row[f"{key}_iqm"] = point[algo]
                    (row[f"{key}_mean_lo"], row[f"{key}_iqm_lo"]), (row[f"{key}_mean_hi"], row[f"{key}_iqm_hi"]) = ci[
                        algo
                    ]
            rows.append(row)
    return rows


def plot_curves(runs: list[dict], path: Path, reps: int = 1000, curve: str = "curve") -> None:
    """curves.png: one column per task and one row per success definition that the runs logged (SUCCESS order),
    evaluation success against environment steps, offline phase at negative steps; tasks without success info
    (locomotion) plot the normalized score instead. With curve="q_curve": one row of the critics' mean Q on training
    batches (values/q_mean) instead, as q_values.png, on a symlog axis; with curve="values/<name>": that logged
    metric's trajectory (e.g. values/log_std_mean), on a linear axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    if curve.startswith("values/"):
        runs = [{**r, curve: r["values"][curve]} for r in runs if curve in r["values"]]
    tasks = sorted({r["env_id"] for r in runs})
    algos = list(dict.fromkeys(r["algo"] for r in runs))

    def logged(metric: str) -> bool:
        return any(COLUMN[metric] < len(p) and not np.isnan(p[COLUMN[metric]]) for r in runs for p in r[curve])

    rows = [2] if curve != "curve" else [COLUMN[m] for m in SUCCESS if logged(m)] or [COLUMN["normalized_score"]]
    if curve == "curve" and logged("goal_step"):  # the pace: how early the goal is reached
        rows.append(COLUMN["goal_step"])
    fig, axes = plt.subplots(len(rows), len(tasks), figsize=(5.2 * len(tasks) + 1.8, 3.8 * len(rows)), squeeze=False)
    rng = np.random.default_rng(0)
    for row, success_column in zip(axes, rows):
        for ax, task in zip(row, tasks):
            offline_len = max((r["offline_steps"] for r in runs if r["env_id"] == task), default=0)
            # a task without success info (locomotion) plots its normalized score (index 3 of a curve point)
            column = (
                success_column
                if curve != "curve" or any(not np.isnan(p[2]) for r in runs if r["env_id"] == task for p in r[curve])
                else 3
            )
            for i, algo in enumerate(algos):
                mine = [r for r in runs if r["env_id"] == task and r["algo"] == algo]
                if not mine:
                    continue
                points: dict[float, list[float]] = {}
                for r in mine:
                    for point in r[curve]:
                        x = point[1] - r["offline_steps"] if point[0] else point[1]
                        if curve == "curve" and not point[0]:  # AWR evaluates after the iteration that crosses a
                            x = x // r["eval_every"] * r["eval_every"]  # multiple, at steps that differ between seeds
                        points.setdefault(x, []).append(point[column] if column < len(point) else np.nan)
                xs = sorted(x for x, v in points.items() if len(v) == len(mine) and not np.isnan(v).any())
                if not xs:
                    continue
                mean = np.array([np.mean(points[x]) for x in xs])
                boot = np.array([[rng.choice(points[x], len(points[x])).mean() for _ in range(reps)] for x in xs])
                lo, hi = np.percentile(boot, 2.5, axis=1), np.percentile(boot, 97.5, axis=1)
                ax.plot(xs, mean, label=f"{algo} ({len(mine)} seeds)", color=f"C{i}")
                ax.fill_between(xs, lo, hi, color=f"C{i}", alpha=0.2)
                online_end = max((p[1] for r in runs if r["env_id"] == task for p in r[curve] if not p[0]), default=0)
                if curve == "curve" and xs[-1] <= 0 < online_end:  # no online phase (BC): its final policy, flat
                    ax.hlines(mean[-1], 0, online_end, color=f"C{i}", linestyles="dashed")
            if offline_len:
                ax.axvspan(-offline_len, 0, color="0.9", zorder=0)
                ax.text(
                    -offline_len / 2,
                    1.02,
                    "offline",
                    ha="center",
                    va="bottom",
                    fontsize=8,
                    color="0.4",
                    transform=ax.get_xaxis_transform(),
                )
            ax.axvline(0, color="0.5", lw=0.8)
            ax.set(title=task, xlabel="environment steps (offline updates before 0)")
            if curve == "curve" and column not in (3, COLUMN["goal_step"]):
                ax.set_ylim(-0.02, 1.08)
            if curve == "q_curve":  # a diverging critic (SACfD on door: 1e11) next to a sane one (-100): both readable
                ax.set_yscale("symlog", linthresh=10.0)
                y0, y1 = ax.dataLim.y0, ax.dataLim.y1  # symlog autoscaling pads by decades: keep to the data
                ax.set_ylim(y0 * 3 if y0 < 0 else y0 / 3, y1 * 3 if y1 > 0 else y1 / 3)
            label = {v: LABELS[k] for k, v in COLUMN.items()}[column]
            if curve == "curve":
                ax.set_ylabel(
                    "normalized score (D4RL)"
                    if column == 3
                    else "median first step at the goal (evaluation)"
                    if column == COLUMN["goal_step"]
                    else f"{label} (evaluation)"
                )
            else:
                ax.set_ylabel("mean Q on training batches (symlog)" if curve == "q_curve" else f"{curve} (training)")
            ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x / 1000:g}k" if x else "0"))
            ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))  # outside: never over a curve
    fig.tight_layout()
    try:
        with writing(path, path):  # a png cut short is removed
            fig.savefig(path, dpi=120, bbox_inches="tight")
    finally:
        plt.close(fig)


def report(
    run_dirs: list[Path],
    out: Path,
    all_runs: list[Cell] | None = None,
    at: tuple[int, ...] = (),
    window: int = 0,
    values: tuple[str, ...] = (),
    plots: bool = True,
) -> list[dict]:
    """Writes summary.md, summary.csv, curves.png (and runs.csv) in `out` from finished run directories; with `at`,
    summary.md also has each method's results at those online environment steps (and, with `window`, averaged over
    the evaluations of the last `window` steps up to each); each of `values` (logged keys such as
    values/log_std_mean) is plotted to <name>.png; `plots=False` writes the tables only. runs.csv names each run's
    directory relative to `out`. Raises SystemExit for a key that no run logged."""
    out.mkdir(parents=True, exist_ok=True)
    finished = [load_run(d) for d in run_dirs if (d / "final.json").is_file()]
    if not finished:
        raise SystemExit(f"no finished run (with final.json) among {len(run_dirs)} directories")
    rows = summarize(finished)
    write_summary_csv(rows, out / "summary.csv")
    header = [f"{LABELS[m]}, {phase} (mean [95% CI])" for m in METRICS for phase in ("offline", "end")]
    lines = ["| task | algorithm | runs | " + " | ".join(header) + " |", "|---|---|---|" + "---|" * len(header)]
    for r in rows:  # success is n/a on tasks without success info (locomotion): their score is D4RL's
        cells = [
            estimate(r[f"{m}_{phase}_mean"], r[f"{m}_{phase}_mean_lo"], r[f"{m}_{phase}_mean_hi"], r["runs"])
            for m in METRICS
            for phase in ("offline", "end")
        ]
        lines.append(f"| {r['task']} | {r['algorithm']} | {r['runs']} | {' | '.join(cells)} |")
    cut = [f"{r['task']}, {r['algorithm']}: {r['left_out']}" for r in rows if r["left_out"]]
    unfinished = (
        [f"{c.run_dir.name} ({c.status})" for c in all_runs if c.status not in ("done", "skipped")]
        if all_runs is not None
        else [f"{d.name} (no final.json)" for d in run_dirs if d.is_dir() and not (d / "final.json").is_file()]
    )
    notes = [
        *(
            ["Left out of rows over several tasks (their seeds are missing on another task): " + "; ".join(cut)]
            * bool(cut)
        ),
        *([f"Left out, not finished: {', '.join(unfinished)}"] * bool(unfinished)),
    ]
    if unfinished:
        print(f"left out of the report, not finished: {', '.join(unfinished)}")
    definitions = [
        "Success definitions (utils.envs.SUCCESS_DEFINITIONS), each in its own column:",
        "",
        *(f"- {LABELS[k]} (`eval/{k}`): {v}" for k, v in SUCCESS_DEFINITIONS.items()),
        "- score (`eval/normalized_score`): hand tasks, the percentage of steps on which the goal held; "
        "locomotion, D4RL's normalized return",
        "- goal step (`eval/goal_step`): the median, over an evaluation's episodes that reach the goal, of the first "
        "step at the goal (the episode length when none does); never at goal (`eval/goal_never`): the share of "
        "episodes that never reach it",
        "",
    ]
    lines = [
        *(definitions if any(not np.isnan(r["final"].get("eval/success_rate", np.nan)) for r in finished) else []),
        *without_success_columns(lines),
        *(["", *notes] if notes else []),
    ]
    if at:
        lines += [
            "",
            f"At {', '.join(f'{x:,}' for x in at)} online environment steps:",
            "",
            *without_success_columns(milestone_table(finished, at, window=window)),
        ]
    lines += [
        "",
        "Per run (wall time over all the processes of a resumed run):",
        "",
        *without_success_columns(run_table(finished)),
    ]
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    for key in values:
        if not any(key in r["values"] for r in finished):
            logged = sorted({k for r in finished for k in r["values"]})
            raise SystemExit(f"--values {key}: no run logged it (logged: {', '.join(logged)})")
    if plots:
        plot_curves(finished, out / "curves.png")
        if any(r["q_curve"] for r in finished):
            plot_curves([r for r in finished if r["q_curve"]], out / "q_values.png", curve="q_curve")
        for key in values:
            plot_curves(finished, out / f"{key.split('/')[-1]}.png", curve=key)
    relative = lambda d: Path(os.path.relpath(Path(d).resolve(), out.resolve())).as_posix()  # noqa: E731
    with (out / "runs.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run", "algorithm", "task", "seed", "status", "seconds", "directory"])
        if all_runs is not None:
            for r in all_runs:
                w.writerow(
                    [r.run_dir.name, r.algo, r.env_id, r.seed, r.status, f"{r.seconds:.0f}", relative(r.run_dir)]
                )
        else:
            for r in finished:
                w.writerow([r["dir"].name, r["algo"], r["env_id"], r["seed"], "done", "", relative(r["dir"])])
    return rows


def write_summary_csv(rows: list[dict], path: Path) -> None:
    """summary.csv: one line per `summarize` row, its keys as the header, floats as Python writes them (repr)."""
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def paired(a_dirs: list[Path], b_dirs: list[Path], step: int, window: int) -> tuple[list[str], dict]:
    """A paired comparison of two arms (e.g. fp32 and bf16) run on the same tasks and seeds: per (task, seed), each
    metric's mean over the evaluations of the last `window` env steps up to `step` (`at_step`), the difference B - A,
    and over seeds its mean with a 95% Student-t interval (n - 1 degrees of freedom). Also whether the critics' mean
    Q trajectories overlap: at each logged online step both arms reached, whether the [min, max] ranges over seeds
    intersect. Returns markdown lines and {metric: (mean difference, low, high)}. Runs without a pair are left out.

    Raises:
        SystemExit: no (task, seed) has a finished run in both arms."""
    from scipy import stats

    arms = [{(r["env_id"], r["seed"]): r for r in map(load_run, dirs) if r} for dirs in (a_dirs, b_dirs)]
    pairs = sorted(set(arms[0]) & set(arms[1]))
    if not pairs:
        raise SystemExit("no (task, seed) has a finished run in both arms")
    names = [arms[i][pairs[0]]["dir"].parent.parent.name for i in (0, 1)]  # the experiments, or within one its algos
    names = names if names[0] != names[1] else [arms[i][pairs[0]]["algo"] for i in (0, 1)]
    lines = [
        f"Paired: B = {names[1]} minus A = {names[0]}, {len(pairs)} pairs "
        f"({', '.join(f'{t} seed {s}' for t, s in pairs)}); "
        f"each run's mean over its evaluations in the last {window:,} env steps up to {step:,}.",
        "",
        "| metric | A per seed | B per seed | B - A per seed | mean B - A [95% t-interval] |",
        "|---|---|---|---|---|",
    ]
    result = {}
    for metric in METRICS:
        x = np.array([[at_step(arms[i][k], step, metric, window) for k in pairs] for i in (0, 1)])
        if np.isnan(x).all():
            continue
        d = x[1] - x[0]
        half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else np.nan
        result[metric] = (d.mean(), d.mean() - half, d.mean() + half)
        fmt = lambda v: ", ".join(f"{e:.3f}" for e in v)  # noqa: E731
        lines.append(
            f"| {LABELS[metric]} | {fmt(x[0])} | {fmt(x[1])} | {fmt(d)} | {d.mean():.3f} "
            f"[{d.mean() - half:.3f}, {d.mean() + half:.3f}] |"
        )
    q = [{k: {s: v for o, s, v in arms[i][k]["q_curve"] if not o} for k in pairs} for i in (0, 1)]
    steps = sorted(set.intersection(*(set(q[i][k]) for i in (0, 1) for k in pairs)))
    overlap = [
        max(min(q[0][k][s] for k in pairs), min(q[1][k][s] for k in pairs))
        <= min(max(q[0][k][s] for k in pairs), max(q[1][k][s] for k in pairs))
        for s in steps
    ]
    result["q_overlap"] = float(np.mean(overlap)) if overlap else np.nan
    lines += [
        "",
        f"Mean Q on training batches (online): the seed ranges of A and B overlap at {sum(overlap)} of "
        f"{len(overlap)} logged steps.",
    ]
    return lines, result


@contextlib.contextmanager
def writing_outputs(out: Path, runs: list[Path] | None = None) -> Iterator[None]:
    """`with writing_outputs(out, runs):` around writing the benchmark's outputs in `out` (report, --copy-runs; or,
    without `runs`, its runs directory): a write that fails (no space, read-only, ...) prints one line, the file, the
    reason and what to do (how to rebuild the outputs from the run directories `runs`, which are kept), and exits with
    status EXIT_WRITE_FAILED."""
    fix = "make room, or give another --results-dir"
    if runs:
        parents = {r.parent for r in runs}
        given = f"{parents.pop()}/*" if len(parents) == 1 and len(runs) > 1 else " ".join(map(str, runs))
        fix = f"the runs are kept; make room, then: python -m utils.benchmark report {given} --out {out}"
    try:
        yield
    except OSError as e:  # named by the file where the error knows it (a failed open), else by the directory
        failed = e if isinstance(e, WriteFailed) else WriteFailed(e.filename or out, e)
        failed.fix = failed.fix or fix
        print(f"error: {failed}", file=sys.stderr)
        raise SystemExit(EXIT_WRITE_FAILED) from None


def copy_run_files(run_dirs: list[Path], dest: Path) -> list[Path]:
    """Copies each finished run's small result files (config.json, metrics.csv, final.json and the final-<step>.json
    of an extended run) into `dest/<run name>/`, the files a results directory commits so every number can be
    checked; checkpoints and W&B files stay behind. Returns the directories written. A run without final.json is
    skipped."""
    written = []
    for run in run_dirs:
        if not (run / "final.json").is_file():
            continue
        target = dest / run.name
        target.mkdir(parents=True, exist_ok=True)
        for f in (run / "config.json", run / "metrics.csv", *sorted(run.glob("final*.json"))):
            shutil.copyfile(f, target / f.name)
        written.append(target)
    return written


# ----------------------------------------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> list[dict]:
    """Parses the command line, runs the grid (or only `report`), writes the outputs; returns the summary rows.
    Exits with status 1 when any run failed (after writing what the others produced)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    if argv[:1] == ["report"]:
        p = argparse.ArgumentParser(prog="python -m utils.benchmark report")
        p.add_argument("run_dirs", nargs="+", type=Path)
        p.add_argument("--out", type=Path, default=None, help="output directory (default: the runs' parent's parent)")
        p.add_argument("--at", nargs="+", type=int, default=(), help="also report at these online env steps")
        p.add_argument(
            "--window",
            type=int,
            default=0,
            help="with --at, also average each run's evaluations over this many env steps up to each of those steps",
        )
        p.add_argument(
            "--copy-runs",
            action="store_true",
            help="also copy each finished run's config.json, "
            "metrics.csv and final*.json (no checkpoints, no W&B files) to OUT/runs/<run>/, to commit them",
        )
        p.add_argument(
            "--values",
            nargs="+",
            default=(),
            help="also plot these logged training metrics against steps, each to OUT/<name>.png "
            "(e.g. values/log_std_mean values/advantage_max)",
        )
        p.add_argument("--no-plots", action="store_true", help="write the tables (summary.md/csv, runs.csv) only")
        a = p.parse_args(argv[1:])
        out = a.out or a.run_dirs[0].resolve().parent.parent
        with writing_outputs(out, a.run_dirs):
            rows = report(
                a.run_dirs, out, at=tuple(a.at), window=a.window, values=tuple(a.values), plots=not a.no_plots
            )
            if a.copy_runs:
                copy_run_files(a.run_dirs, out / "runs")
        print((out / "summary.md").read_text())
        return rows

    if argv[:1] == ["paired"]:
        p = argparse.ArgumentParser(prog="python -m utils.benchmark paired")
        p.add_argument("--a", nargs="+", type=Path, required=True, help="run directories of arm A (the reference)")
        p.add_argument("--b", nargs="+", type=Path, required=True, help="run directories of arm B")
        p.add_argument("--at", type=int, required=True, help="online env step up to which evaluations are averaged")
        p.add_argument("--window", type=int, required=True, help="env steps of evaluations averaged up to --at")
        a = p.parse_args(argv[1:])
        lines, result = paired(
            [d for d in a.a if (d / "final.json").is_file()],
            [d for d in a.b if (d / "final.json").is_file()],
            a.at,
            a.window,
        )
        print("\n".join(lines))
        return [result]

    p = argparse.ArgumentParser(prog="python -m utils.benchmark", description=__doc__.split("\n")[0])
    p.add_argument(
        "--algos",
        nargs="+",
        default=list(ALGOS),
        help=f"scripts by name ({', '.join(ALGOS)}) or by "
        "path: any copy that keeps the house protocol, e.g. my_awac.py",
    )
    p.add_argument("--envs", nargs="+", default=["pen-binary", "door-binary", "relocate-binary"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--budget", choices=sorted(BUDGETS), default=None, help="a preset of step budgets")
    p.add_argument("--experiment", default=None, help="name of the experiment (default: from algos, envs, budget)")
    p.add_argument("--results-dir", type=Path, default=ROOT / "results")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="runs at a time on this machine")
    p.add_argument("--launcher", choices=("local", "ray"), default="local")
    p.add_argument("--ray-address", default="auto", help="address of the Ray cluster for --launcher ray")
    p.add_argument(
        "--gpus-per-run",
        type=float,
        default=0.0,
        help="GPUs each Ray task asks for; above 0, every run also gets --device cuda (unless the flags after -- "
        "give a --device)",
    )
    p.add_argument(
        "--rerun",
        action="store_true",
        help="delete and run again the runs of this experiment that were made with other settings than the command's "
        "(without it, the benchmark refuses to reuse or resume them)",
    )
    a = p.parse_args(argv)
    problems = []
    for algo in a.algos:  # before any run starts, each entry: it exists, imports, keeps the protocol; one line each
        try:
            load_script(algo)
        except SystemExit as e:
            problems.append(str(e.code))
    if problems:
        raise SystemExit("\n".join(problems))
    names = [algo_name(algo) for algo in a.algos]
    for name in {n for n in names if names.count(n) > 1}:
        paths = [str(script_path(algo)) for algo in a.algos if algo_name(algo) == name]
        raise SystemExit(f"--algos: {' and '.join(paths)} would share the name {name!r} and its runs (rename a copy)")
    a.experiment = a.experiment or "_".join(["-".join(map(algo_name, a.algos)), "-".join(a.envs), a.budget or "custom"])
    out = a.results_dir / a.experiment
    for flag, names in shared_flags(a.algos, extra).items():
        print(f"{flag} goes to {', '.join(names)}: each reads it as its own field (see each script's --help)")
    runs = plan(a, extra, out / "runs")
    stale = []  # runs on disk (finished, or with a checkpoint to resume) made with other settings than asked for
    for run in runs:
        if run_holder(run.run_dir) is None and (run.run_dir / "config.json").is_file():
            flags = [w for w in run.command[2:] if w not in ("--checkpoint", str(run.run_dir / "checkpoint.pt"))]
            requested = requested_config(run.command[1], flags)
            differ = settings_differ(run.run_dir, requested)
            if differ and extends(run.run_dir, requested, differ):
                run.extend = True
                if "--checkpoint" not in run.command:
                    run.command += ["--checkpoint", str(run.run_dir / "checkpoint.pt")]
            elif differ:
                stale.append((run, differ))
    if stale and not a.rerun:
        run, differ = stale[0]
        others = f" (and {len(stale) - 1} more runs)" if len(stale) > 1 else ""
        raise SystemExit(
            f"{run.run_dir} was made with other settings than this command's{others}: {'; '.join(differ)} (give a "
            "new --experiment to keep it, or --rerun to delete it and run again)"
        )
    for run, _ in stale:  # --rerun: the user asked for these runs to be made again with the command's settings
        print(f"--rerun: deleting {run.run_dir} (made with other settings)")
        shutil.rmtree(run.run_dir)
        Path(str(run.run_dir) + ".log").unlink(missing_ok=True)
        run.command = [w for w in run.command if w not in ("--checkpoint", str(run.run_dir / "checkpoint.pt"))]
    for run in runs:
        holder = run_holder(run.run_dir)
        if holder is not None:  # another process works on it (a grid re-issued while the first still runs)
            run.status = "held"
            print(f"skipping {run.run_dir.name}: in use by {holder}")
        elif (run.run_dir / "final.json").is_file() and not run.extend:
            run.status = "skipped"
    extended = [r.run_dir.name for r in runs if r.extend and r.status == "pending"]
    if extended:
        print(f"extending {len(extended)} finished runs to the asked --online-steps: {', '.join(extended)}")
    print(
        f"{len(runs)} runs in {out}: {sum(r.status == 'skipped' for r in runs)} already finished, "
        f"{sum(r.status == 'pending' for r in runs)} to run, {a.workers if a.launcher == 'local' else 'Ray'} "
        "at a time"
    )
    with writing_outputs(out / "runs"):  # the runs' directories and logs go there
        (out / "runs").mkdir(parents=True, exist_ok=True)
    for notice in dict.fromkeys(filter(None, (dataset_notice(r.command) for r in runs if r.status == "pending"))):
        print(f"{notice}; the runs that need it wait for it")
    launch(runs, a)
    failed = [r for r in runs if r.status == "failed"]
    with writing_outputs(out, [r.run_dir for r in runs]):
        rows = report([r.run_dir for r in runs], out, runs, MILESTONES.get(a.budget, ()), WINDOWS.get(a.budget, 0))
    print((out / "summary.md").read_text())
    outputs = ("summary.md", "summary.csv", "curves.png", "q_values.png", "runs.csv")
    written = [name for name in outputs if (out / name).is_file()]  # q_values.png: only where a run has critics
    print(f"outputs in {out}: {', '.join(written)}, and each run's directory and log in {out / 'runs'}")
    if failed:
        print(f"{len(failed)} runs failed: {', '.join(r.run_dir.name for r in failed)} (logs: <run dir>.log)")
        raise SystemExit(1)
    return rows


if __name__ == "__main__":
    main()
