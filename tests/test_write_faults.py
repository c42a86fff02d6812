"""Faults of storage and of forks (issue 35), each through the command line: a write that fails (a real full file
system where one can be mounted, an injected ENOSPC otherwise) ends in one line naming the file, the reason and the
last good checkpoint, with exit status 4 and no temporary file left; a resume checks the files it resumes; the
benchmark names each script it cannot use, and goes on past a cell whose disk is full."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ROOT, random_rollout_dataset

import bc
from utils import benchmark
from utils.datasets import save_dataset
from utils.writes import EXIT_WRITE_FAILED

TINY = ["--wandb-mode", "disabled", "--no-progress", "--threads", "1", "--eval-episodes", "1"]
TINY_ARGS = dict(wandb_mode="disabled", progress=False, threads=1, eval_episodes=1)
BC_RUN = ["--env-id", "pen-binary", "--offline-steps", "20", "--save-every", "10", "--log-every", "5", *TINY]
# Runs a script with the first write-open of files named NAME* after N-1 earlier ones failing with ENOSPC on write:
# python inject.py NAME:N script.py flags...
INJECT = """
import builtins, errno, io, os, runpy, sys
name, nth = sys.argv[1].rsplit(":", 1)
seen, real_open = [0], io.open

class Full:  # a file opened for writing whose writes find the disk full
    def __init__(self, f):
        self._f = f
    def write(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    def __getattr__(self, attr):
        return getattr(self._f, attr)
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        self._f.close()

def open_(file, mode="r", *args, **kwargs):
    f = real_open(file, mode, *args, **kwargs)
    if any(c in mode for c in "wax") and os.path.basename(str(file)).startswith(name):
        seen[0] += 1
        if seen[0] == int(nth):
            return Full(f)
    return f

io.open = builtins.open = open_
sys.path.insert(0, os.getcwd())
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def start(*argv, env=None) -> subprocess.Popen:
    """A command of this repository, started now (several at once use both cores)."""
    return subprocess.Popen(
        [sys.executable, *argv],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "WANDB_MODE": "disabled", **(env or {})},
    )


def finish(proc: subprocess.Popen) -> subprocess.CompletedProcess:
    out, err = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def one_line(res, status: int) -> str:
    """The error line of a command that ended with `status`: the last line of stderr, no traceback."""
    assert res.returncode == status, res.stderr[-3000:]
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), last
    return last


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob("*.tmp"))


def checkpoint_step(run: Path) -> int:
    return sum(torch.load(run / "checkpoint.pt", weights_only=True)["counters"].values())


@pytest.fixture
def small_fs():
    """mount(path, size): a tmpfs of `size` at `path` (unmounted after the test); skips where mounting is refused
    (it needs root, as in CI)."""
    mounted = []

    def mount(path: Path, size: str) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        res = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True
        )
        if res.returncode != 0:
            pytest.skip(f"cannot mount a {size} tmpfs at {path} (needs root): {res.stderr.strip()[:200]}")
        mounted.append(path)
        return path

    yield mount
    for path in reversed(mounted):
        subprocess.run(["umount", "-l", str(path)], check=False)


# ----------------------------------------------------------------------------------------------- writes that fail
def test_a_write_that_fails_ends_in_one_line_and_leaves_no_temporary_file(tmp_path, small_pen_binary):
    """An injected ENOSPC (two runs at once): on a metrics.csv row after the first checkpoint, whose half row must
    not stay, and on final.json after the last checkpoint. Checkpoints on a real full disk: the grid test below."""
    _, dataset = small_pen_binary
    (tmp_path / "inject.py").write_text(INJECT)
    cases = {"metrics.csv": (4, 10), "final.json": (1, 20)}  # file: (its write-open that fails, last good step)
    procs = {
        name: start(
            *(str(tmp_path / "inject.py"), f"{name}:{nth}", "bc.py", *BC_RUN, "--hidden-dims", "8"),
            *("--dataset", str(dataset), "--run-dir", str(tmp_path), "--run-name", name),
        )
        for name, (nth, _) in cases.items()
    }
    for name, proc in procs.items():
        run = tmp_path / name
        assert one_line(finish(proc), EXIT_WRITE_FAILED) == (
            f"error: could not write {run}/{name}: No space left on device (ENOSPC); the last good checkpoint: "
            f"{run}/checkpoint.pt, global step {cases[name][1]} (make room, then resume with --checkpoint "
            f"{run}/checkpoint.pt)"
        )
        assert leftovers(run) == [] and checkpoint_step(run) == cases[name][1], name
    with (tmp_path / "metrics.csv" / "metrics.csv").open() as f:  # the row of step 15 is not there by half
        assert [r["charts/global_step"] for r in csv.DictReader(f)] == ["0", "5", "10"]
    assert not (tmp_path / "final.json" / "final.json").exists()  # the resume test rebuilds one


def test_a_video_or_a_dataset_cache_on_a_full_disk_ends_in_one_line(tmp_path, small_fs):
    """A video cut short by a full disk (ffmpeg's error reaches Python as a broken pipe, or not at all) is named and
    removed; a dataset build that cannot be cached is named and leaves no partial file. Both at once."""
    pole = save_dataset(random_rollout_dataset("InvertedPendulum-v5", episodes=10, seed=0), tmp_path / "pole.npz")
    runs, cache = small_fs(tmp_path / "runs", "8k"), small_fs(tmp_path / "cache", "64k")  # 8k: .lock and config.json
    video = start(
        "bc.py",
        *("--env-id", "InvertedPendulum-v5", "--dataset", str(pole), "--offline-steps", "5", "--hidden-dims", "8"),
        *TINY,
        *("--capture-video", "--run-dir", str(runs), "--run-name", "v"),
        env={"MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")},
    )
    build = start(
        "bc.py",
        *("--env-id", "door-binary", "--dataset", "door-human", "--offline-steps", "1", *TINY),
        *("--run-dir", str(tmp_path / "door-runs")),
        env={"AWAC_DATA_DIR": str(cache)},
    )
    line = one_line(finish(build), EXIT_WRITE_FAILED)
    assert line.startswith(f"error: could not write {cache}/door-human-seed0.npz: No space left on device (ENOSPC); ")
    assert "AWAC_DATA_DIR" in line and sorted(p.name for p in cache.iterdir()) == ["door-human-seed0.lock"]
    res = finish(video)
    if res.returncode == 2 and "cannot render" in res.stderr:
        pytest.skip(f"MuJoCo cannot render here: {res.stderr.strip().splitlines()[-1]}")
    line = one_line(res, EXIT_WRITE_FAILED)
    assert line.startswith(
        f"error: could not write {runs}/v/videos/offline-0000000.mp4: No space left on device (ENOSPC); no checkpoint"
    )
    assert list((runs / "v" / "videos").iterdir()) == []


# ----------------------------------------------------------------------------------------------- resume checks
def test_a_resume_refuses_a_missing_or_short_log_and_rebuilds_what_it_can(tmp_path, small_pen_binary):
    """A finished run whose metrics.csv and final.json were removed (the issue's case), one whose metrics.csv was cut
    short, and one without config.json and final.json, each resumed from its checkpoint (the three at once)."""
    _, dataset = small_pen_binary
    args = dict(env_id="pen-binary", dataset=str(dataset), offline_steps=20, save_every=10, log_every=5)
    first = Path(bc.train(bc.Args(**args, hidden_dims=(8,), run_dir=str(tmp_path), **TINY_ARGS))["run_dir"])
    runs = {name: tmp_path / name for name in ("removed", "short", "rebuilt")}
    for run in runs.values():
        shutil.copytree(first, run)
    (runs["removed"] / "metrics.csv").unlink()
    (runs["removed"] / "final.json").unlink()
    rows = (runs["short"] / "metrics.csv").read_text().splitlines(keepends=True)
    (runs["short"] / "metrics.csv").write_text("".join(rows[:3]))  # the header and the rows of steps 0 and 5
    (runs["rebuilt"] / "config.json").unlink()
    (runs["rebuilt"] / "final.json").unlink()
    procs = [start("bc.py", "--checkpoint", str(run / "checkpoint.pt"), "--no-progress") for run in runs.values()]
    removed, short, rebuilt = map(finish, procs)
    fix = f"(put the file back from a copy, or start a new run; --eval-only still evaluates {tmp_path}/"
    line = one_line(removed, 2)
    assert line.startswith(f"error: {runs['removed']}/metrics.csv is missing: the log of this run up to global step 20")
    assert fix in line and not (runs["removed"] / "final.json").exists()  # refused: nothing written
    line = one_line(short, 2)
    assert line.startswith(
        f"error: {runs['short']}/metrics.csv stops short of the checkpoint: it holds 2 of the 6 rows logged up to "
        "global step 20, the last at global step 5"
    )
    assert fix in line
    assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]
    assert rebuilt.stderr.strip().splitlines()[-2:] == [
        f"note: {runs['rebuilt']}/config.json was missing: rebuilt it from the checkpoint's settings",
        f"note: {runs['rebuilt']}/final.json was missing: rebuilt it from the checkpoint",
    ]
    assert (runs["rebuilt"] / "config.json").read_text() == (first / "config.json").read_text()
    final = json.loads((runs["rebuilt"] / "final.json").read_text())
    assert final.pop("run_dir") == str(runs["rebuilt"])
    assert final == {k: v for k, v in json.loads((first / "final.json").read_text()).items() if k != "run_dir"}


# ----------------------------------------------------------------------------------------------- the benchmark
def test_the_benchmark_names_each_script_it_cannot_use_before_any_run(tmp_path):
    forks = tmp_path / "forks"
    forks.mkdir()
    (forks / "syntax.py").write_text("import math\n\n\ndef f(:\n    pass\n")
    (forks / "module.py").write_text("import math\nimport no_such_module_here\n")
    (forks / "protocol.py").write_text("x = 1\n")
    algos = [str(forks / f"{name}.py") for name in ("syntax", "module", "protocol", "missing")]
    res = finish(start("-m", "utils.benchmark", "--algos", "bc", *algos, "--results-dir", str(tmp_path / "results")))
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr[-3000:]
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 4, lines
    syntax, module, protocol, missing = lines
    assert syntax.startswith(f"--algos {algos[0]}: {algos[0]}, line 4: the script does not import: SyntaxError: ")
    assert module == (
        f"--algos {algos[1]}: {algos[1]}, line 2: the script does not import: ModuleNotFoundError: No module named "
        "'no_such_module_here' (install no_such_module_here, or remove that import)"
    )
    assert protocol.startswith(f"--algos {algos[2]}: {algos[2]} does not follow the house protocol")
    assert missing.startswith(f"--algos {algos[3]}: no script {algos[3]}")
    assert not (tmp_path / "results").exists()  # no run started


def test_a_grid_cell_whose_disk_fills_fails_the_others_finish_and_it_resumes_once_there_is_room(
    tmp_path, small_pen_binary, small_fs, capsys
):
    """The issue's full disk, on a real file system: a cell's second checkpoint does not fit beside its first (BC at
    64 x 64 writes about 125 KB). The cell fails in one line and keeps its first checkpoint, the other finishes;
    the same command, repeated once there is room, resumes the cell. Then the outputs on a disk without room."""
    _, dataset = small_pen_binary
    disk = small_fs(tmp_path / "full" / "runs" / "pen-binary__bc__1", "200k")
    argv = ["--algos", "bc", "--envs", "pen-binary", "--seeds", "0", "1", "--workers", "2", "--results-dir"]
    argv += [str(tmp_path), "--experiment", "full", "--", "--dataset", str(dataset), "--hidden-dims", "64", "64"]
    argv += BC_RUN[2:]
    with pytest.raises(SystemExit) as e:
        benchmark.main(argv)
    assert e.value.code == 1
    assert "1 runs failed: pen-binary__bc__1" in capsys.readouterr().out
    log = (tmp_path / "full" / "runs" / "pen-binary__bc__1.log").read_text()
    assert "Traceback" not in log and log.strip().splitlines()[-1] == (
        f"error: could not write {disk}/checkpoint.pt: No space left on device (ENOSPC); the last good checkpoint: "
        f"{disk}/checkpoint.pt, global step 10 (make room, then resume with --checkpoint {disk}/checkpoint.pt)"
    )
    assert leftovers(disk) == [] and checkpoint_step(disk) == 10  # the previous checkpoint, whole
    with (tmp_path / "full" / "runs.csv").open() as f:
        assert {r["run"]: r["status"] for r in csv.DictReader(f)} == {
            "pen-binary__bc__0": "done",
            "pen-binary__bc__1": "failed",
        }
    subprocess.run(["mount", "-o", "remount,size=2m", str(disk)], check=True)  # room made
    benchmark.main(argv)
    assert "1 already finished, 1 to run" in capsys.readouterr().out
    assert checkpoint_step(disk) == 20 and (disk / "final.json").is_file()
    with (disk / "metrics.csv").open() as f:  # the resumed run's log, whole
        assert [r["charts/global_step"] for r in csv.DictReader(f)] == ["0", "5", "10", "15", "20", "20"]
    out = small_fs(tmp_path / "out", "16k")
    with pytest.raises(SystemExit) as e:
        benchmark.main(["report", str(tmp_path / "full" / "runs" / "pen-binary__bc__0"), "--out", str(out)])
    assert e.value.code == EXIT_WRITE_FAILED
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(f"error: could not write {out}/curves.png: No space left on device (ENOSPC); the runs are")
    assert "python -m utils.benchmark report" in line and "curves.png" not in os.listdir(out)
