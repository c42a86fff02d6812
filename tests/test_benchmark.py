"""utils.benchmark: a tiny grid end to end, skipping finished runs, reporting a failure, the Ray launcher."""

import argparse
import csv
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT

from utils import benchmark


def tiny_grid(tmp_path, dataset, *extra, algos=("awac", "bc"), experiment="tiny"):
    argv = [
        "--algos",
        *algos,
        "--envs",
        "pen-binary",
        "--seeds",
        "0",
        "1",
        "--budget",
        "quick",
        "--workers",
        "2",
        "--results-dir",
        str(tmp_path),
        "--experiment",
        experiment,
        "--",
        "--dataset",
        str(dataset),
        "--wandb-mode",
        "disabled",
        "--offline-steps",
        "60",
        "--online-steps",
        "100",
        "--eval-every",
        "50",
        "--eval-episodes",
        "2",
        "--hidden-dims",
        "16",
        "16",
        "--batch-size",
        "16",
        *extra,
    ]
    return benchmark.main(argv)


def png_size(path):
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    return struct.unpack(">II", head[16:24])


def write_run(run_dir: Path, config: dict, final: dict, header: list[str], rows: list[list]) -> Path:
    """A run directory's three result files as a script leaves them (config.json, final.json, metrics.csv), without
    training; `rows` are metrics.csv's rows under `header`."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(config))
    (run_dir / "final.json").write_text(json.dumps(final))
    with (run_dir / "metrics.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return run_dir


def fake_finished_run(run_dir: Path, config: dict, success: float = 0.5) -> None:
    """A finished run with one evaluation, every metric of it `success` (the score 100 x `success`)."""
    final = {f"{p}{m}": success for p in ("offline/eval/", "eval/") for m in benchmark.METRICS}
    write_run(
        run_dir,
        config,
        final,
        ["eval/success_rate", "eval/normalized_score", "charts/env_step"],
        [[success, 100 * success, 0]],
    )


def loaded_run(env_id: str, seed: int, success: float, score: float | None = None) -> dict:
    """An awac run as `load_run` returns it, reduced to what `summarize` reads: every final metric `success`, the
    score `score` where given."""
    final = {f"{p}{m}": success for p in ("offline/eval/", "eval/") for m in benchmark.METRICS}
    if score is not None:
        final.update({f"{p}normalized_score": score for p in ("offline/eval/", "eval/")})
    return {"algo": "awac", "env_id": env_id, "seed": seed, "final": final}


def fake_launcher(launched: list, checkpoint: bool = False):
    """A stand-in for `benchmark.launch` that makes each pending run at once, finished, with the config its command
    asks for (and an empty checkpoint.pt where `checkpoint`), and records the commands in `launched`."""

    def launch(cells, args):
        for cell in (c for c in cells if c.status == "pending"):
            launched.append(cell.command)
            flags = [w for w in cell.command[2:] if not w.endswith("checkpoint.pt") and w != "--checkpoint"]
            fake_finished_run(cell.run_dir, benchmark.requested_config(cell.command[1], flags), 0.25)
            if checkpoint:
                (cell.run_dir / "checkpoint.pt").write_bytes(b"")
            cell.status = "done"

    return launch


def test_flags_go_only_to_scripts_that_have_them():
    quick = benchmark.BUDGETS["quick"]
    assert "--samples-per-iter" in benchmark.flags_for("awr", quick)
    assert "--samples-per-iter" not in benchmark.flags_for("awac", quick)
    bc_flags = benchmark.flags_for("bc", quick)
    assert "--online-steps" not in bc_flags and bc_flags[bc_flags.index("--hidden-dims") + 1 :][:2] == ["64", "64"]
    assert benchmark.flags_for("bc", ["--beta", "1", "--typo", "3"]) == ["--typo", "3"]


def test_tiny_grid_end_to_end_then_skipped_when_repeated(tmp_path, small_pen_binary, capsys):
    _, dataset = small_pen_binary
    rows = tiny_grid(tmp_path, dataset)
    out = tmp_path / "tiny"
    assert [(r["task"], r["algorithm"], r["runs"]) for r in rows] == [
        ("pen-binary", "awac", 2),
        ("pen-binary", "bc", 2),
    ]  # one task: no "all tasks" rows
    for r in rows:
        for k, v in r.items():
            if k.startswith(("success", "normalized")):
                assert np.isfinite(v), k
        assert r["success_rate_end_mean_lo"] <= r["success_rate_end_mean"] <= r["success_rate_end_mean_hi"]
    md = (out / "summary.md").read_text()
    assert md.count("\n| pen-binary |") == 2
    with (out / "summary.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 2  # the same rows as summary.md
    width, height = png_size(out / "curves.png")
    assert width > 400 and height > 300
    with (out / "runs.csv").open() as f:
        assert [r["status"] for r in csv.DictReader(f)] == ["done"] * 4
    listed, runs = capsys.readouterr().out.splitlines()[-1].removeprefix(f"outputs in {out}: ").split(", and ")
    assert sorted(listed.split(", ")) == sorted(p.name for p in out.iterdir() if p.is_file())  # all that it wrote
    assert runs == f"each run's directory and log in {out / 'runs'}"
    tiny_grid(tmp_path, dataset)  # a repeated command runs nothing
    assert "4 already finished, 0 to run" in capsys.readouterr().out
    rebuilt = benchmark.main(
        [
            "report",
            *[str(p) for p in sorted((out / "runs").iterdir()) if p.is_dir()],
            "--out",
            str(tmp_path / "rebuilt"),
        ]
    )
    assert [r["success_rate_end_mean"] for r in rebuilt] == [r["success_rate_end_mean"] for r in rows]


def test_a_failing_run_is_reported_and_the_others_finish(tmp_path, small_pen_binary, capsys):
    _, dataset = small_pen_binary
    # --top-fraction goes to bc.py only, where 0 is refused, so both bc runs fail and the awac runs go on
    with pytest.raises(SystemExit) as e:
        tiny_grid(tmp_path, dataset, "--top-fraction", "0", experiment="failing")
    assert e.value.code == 1
    printed = capsys.readouterr().out + capsys.readouterr().err
    assert "2 runs failed" in printed and "pen-binary__bc__0" in printed
    with (tmp_path / "failing" / "runs.csv").open() as f:
        status = {r["run"]: r["status"] for r in csv.DictReader(f)}
    assert status == {
        "pen-binary__awac__0": "done",
        "pen-binary__awac__1": "done",
        "pen-binary__bc__0": "failed",
        "pen-binary__bc__1": "failed",
    }
    assert "pen-binary | awac" in (tmp_path / "failing" / "summary.md").read_text()


def test_ray_launcher_on_a_local_instance(tmp_path, small_pen_binary):
    ray = pytest.importorskip("ray")
    _, dataset = small_pen_binary
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        rows = tiny_grid(tmp_path, dataset, "--seed", "0", algos=("bc",), experiment="ray")
    finally:
        ray.shutdown()
    assert [(r["task"], r["algorithm"], r["runs"]) for r in rows] == [("pen-binary", "bc", 2)]


def test_ray_launcher_without_a_cluster_says_how_to_start_one(tmp_path, small_pen_binary):
    pytest.importorskip("ray")
    _, dataset = small_pen_binary
    with pytest.raises(SystemExit, match="ray start --head"):
        benchmark.main(
            [
                "--algos",
                "bc",
                "--envs",
                "pen-binary",
                "--seeds",
                "0",
                "--launcher",
                "ray",
                "--ray-address",
                "auto",
                "--results-dir",
                str(tmp_path),
                "--",
                "--dataset",
                str(dataset),
            ]
        )


def test_bc_pretraining_counts_as_offline_phase_in_the_curve(tmp_path):
    """sac_fd.py --bc-pretrain-steps logs its evaluations with charts/bc_step before the offline updates: the curve
    must place them before the offline updates, all at negative steps relative to the online phase."""
    rows = [  # (offline_step, bc_step, env_step, success): before BC, during BC, during offline updates, online
        ("0", "", "", 0.0),
        ("", "10", "", 0.25),
        ("10", "", "", 0.5),
        ("", "", "0", 0.75),
        ("", "", "40", 1.0),
    ]
    run = write_run(
        tmp_path / "pen-binary__sacfd-pretrain__0",
        {"env_id": "pen-binary", "seed": 0, "offline_steps": 30, "bc_pretrain_steps": 20},
        {"eval/success_rate": 0.5},
        ["eval/success_rate", "eval/normalized_score", "charts/offline_step", "charts/bc_step", "charts/env_step"],
        [[success, 100 * success, offline, bc, env] for offline, bc, env, success in rows],
    )
    loaded = benchmark.load_run(run)
    assert loaded["algo"] == "sacfd-pretrain" and loaded["offline_steps"] == 50
    assert [(offline, step) for offline, step, *_ in loaded["curve"]] == [
        (True, 0.0),
        (True, 10.0),
        (True, 30.0),
        (False, 0.0),
        (False, 40.0),
    ]


def test_summary_over_tasks_averages_each_seed_across_tasks():
    """With two tasks, the "all tasks" row's mean is the mean over every (seed, task) score."""

    runs = [
        loaded_run("pen-binary", 0, 1.0),
        loaded_run("pen-binary", 1, 0.5),
        loaded_run("door-binary", 0, 0.0),
        loaded_run("door-binary", 1, 0.25),
    ]
    rows = {r["task"]: r for r in benchmark.summarize(runs, reps=200)}
    assert sorted(rows) == ["all tasks", "door-binary", "pen-binary"]
    assert rows["pen-binary"]["success_rate_end_mean"] == pytest.approx(0.75)
    assert rows["door-binary"]["success_rate_end_mean"] == pytest.approx(0.125)
    assert rows["all tasks"]["success_rate_end_mean"] == pytest.approx(0.4375)
    assert rows["all tasks"]["runs"] == 4
    assert rows["all tasks"]["success_rate_end_mean_lo"] <= 0.4375 <= rows["all tasks"]["success_rate_end_mean_hi"]


def sleeping_runs(tmp_path, n, seconds):
    """`n` runs on one worker that each sleep `seconds` and write no final.json (so they count as failed)."""
    sleep = [sys.executable, "-c", f"import time; time.sleep({seconds})"]
    runs = [benchmark.Cell("bc", "pen-binary", seed, tmp_path / f"pen-binary__bc__{seed}", sleep) for seed in range(n)]
    benchmark.launch(runs, argparse.Namespace(launcher="local", workers=1))
    return runs


def test_run_seconds_count_only_the_run_not_its_time_in_the_queue(tmp_path):
    """With one worker, three 0.4 s runs run one after another: each records at least its 0.4 s, and together they
    record about the grid's wall time (had the queue counted, the second and third would add 0.4 and 0.8 s more,
    twice the wall time in all). Compared with the wall time, not a fixed bound, so that a slow start on a loaded
    machine, which lengthens both, does not fail it."""
    start = time.perf_counter()
    runs = sleeping_runs(tmp_path, 3, 0.4)
    wall = time.perf_counter() - start
    assert all(r.seconds >= 0.4 for r in runs), [r.seconds for r in runs]
    assert sum(r.seconds for r in runs) < 1.4 * wall, ([r.seconds for r in runs], wall)
    assert [r.status for r in runs] == ["failed"] * 3  # exit 0 but no final.json: not a finished run


def test_progress_without_a_terminal_prints_a_line_per_finished_run(tmp_path, capsys):
    """Under nohup or a batch job the bar is off: each finished run prints done/total, its status and the time left."""
    sleeping_runs(tmp_path, 2, 0.1)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[")]
    assert [line.split(" ", 3)[:3] for line in lines] == [
        ["[1/2]", "failed", "pen-binary__bc__0"],
        ["[2/2]", "failed", "pen-binary__bc__1"],
    ]
    assert "failed 1," in lines[0] and "running 0, failed 2, about 00:00 left" in lines[1]


def test_ray_launcher_on_a_real_cluster_with_token_authentication(tmp_path, small_pen_binary):
    """A head started as a user would (`ray start --head` with a token in ~/.ray, so Ray 2.59+ enforces token
    authentication), all on 127.0.0.1. A client without the token is told "authentication failed", not "no
    cluster"; with the token where Ray keeps it (~/.ray/auth_token) it runs a tiny grid. Clients run as processes:
    Ray reads its auth mode once."""
    pytest.importorskip("ray")
    _, dataset = small_pen_binary
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    home, stranger = tmp_path / "home", tmp_path / "stranger"
    home.mkdir(), stranger.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    ray_cli = [shutil.which("ray") or "ray"]
    temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    # `ray start --head` turns authentication on when the user has a token, as anyone who ever ran a local
    # ray.init() does (Ray 2.59+ makes one then); make that token here, in this test's home.
    subprocess.run(
        [*ray_cli, "get-auth-token", "--generate"],
        env={**env, "HOME": str(home)},
        check=True,
        capture_output=True,
        timeout=120,
    )
    subprocess.run(
        [
            *ray_cli,
            "start",
            "--head",
            "--port",
            str(port),
            "--node-ip-address",
            "127.0.0.1",
            "--num-cpus",
            "1",
            "--include-dashboard",
            "false",
            "--disable-usage-stats",
            "--temp-dir",
            temp_dir,
        ],
        env={**env, "HOME": str(home)},
        check=True,
        capture_output=True,
        timeout=120,
    )
    try:
        assert (home / ".ray" / "auth_token").is_file(), "the head keeps its token where Ray documents it"
        grid = [
            sys.executable,
            "-m",
            "utils.benchmark",
            "--algos",
            "bc",
            "--envs",
            "pen-binary",
            "--seeds",
            "0",
            "--budget",
            "quick",
            "--launcher",
            "ray",
            "--ray-address",
            f"127.0.0.1:{port}",
            "--results-dir",
            str(tmp_path / "results"),
            "--",
            "--dataset",
            str(dataset),
            "--wandb-mode",
            "disabled",
            "--offline-steps",
            "40",
            "--eval-episodes",
            "1",
            "--hidden-dims",
            "16",
            "--batch-size",
            "16",
        ]
        refused = subprocess.run(
            grid, cwd=ROOT, env={**env, "HOME": str(stranger)}, capture_output=True, text=True, timeout=300
        )
        assert refused.returncode != 0 and "authentication failed" in refused.stderr, refused.stderr[-1500:]
        ran = subprocess.run(
            grid, cwd=ROOT, env={**env, "HOME": str(home)}, capture_output=True, text=True, timeout=300
        )
        assert ran.returncode == 0, ran.stderr[:3000] + ran.stdout[-1500:]
        assert "| pen-binary | bc | 1 |" in ran.stdout
    finally:
        subprocess.run([*ray_cli, "stop", "--force"], env={**env, "HOME": str(home)}, capture_output=True, timeout=120)


def test_milestone_table_reads_each_run_at_the_step_and_bc_at_its_final_policy():
    """summary.md's table at given env steps: an online run's evaluation at exactly that step (runs that never got
    there are left out of that row), and BC, which has no online phase, at its final policy for every step."""

    def run(algo, seed, curve, final):
        return {
            "algo": algo,
            "env_id": "door-binary",
            "seed": seed,
            "curve": curve,
            "final": {"eval/success_rate": final, "eval/normalized_score": 100 * final},
        }

    runs = [
        run("awac", 0, [(True, 0.0, 0.0, 0.0), (False, 0.0, 0.1, 10), (False, 100.0, 0.5, 50)], 0.5),
        run("awac", 1, [(False, 0.0, 0.2, 20), (False, 100.0, 0.7, 70), (False, 200.0, 0.9, 90)], 0.9),
        run("bc", 0, [(True, 0.0, 0.0, 0.0), (True, 50.0, 0.3, 30)], 0.3),
    ]
    assert benchmark.at_step(runs[0], 100, "success_rate") == 0.5
    assert np.isnan(benchmark.at_step(runs[0], 200, "success_rate"))
    assert benchmark.at_step(runs[2], 200, "normalized_score") == 30
    awr = {
        **run("awr", 0, [(False, 0.0, 0.0, 0), (False, 110.0, 0.4, 40), (False, 160.0, 0.6, 60)], 0.6),
        "eval_every": 50,
    }  # evaluates after the iteration that crosses each multiple
    assert benchmark.at_step(awr, 100, "success_rate") == 0.4 and benchmark.at_step(awr, 150, "success_rate") == 0.6
    assert np.isnan(benchmark.at_step(awr, 200, "success_rate"))
    lines = benchmark.milestone_table(runs, (100, 200), reps=200)
    column = [c.strip() for c in lines[0].split("|")[1:-1]].index("success > 20/25 steps (mean [95% CI])")
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in lines[2:]]
    assert all(r[4] == "n/a" for r in rows)  # these runs logged no success at the last step
    assert [(r[1], r[2], r[3], r[column].split()[0]) for r in rows] == [
        ("awac", "100", "2", "0.60"),
        ("awac", "200", "1", "0.90"),
        ("bc (no online phase: its final policy)", "100", "1", "0.30"),
        ("bc (no online phase: its final policy)", "200", "1", "0.30"),
    ]


def test_milestone_window_averages_the_last_evaluations_up_to_each_step():
    """--window: the mean of a run's evaluations in the last `window` steps up to the milestone (AWR's, which land
    just after each multiple, included), NaN for a run that never reached the milestone."""
    curve = [(True, 0.0, 0.0, 0.0)] + [(False, float(s), s / 100, s) for s in range(0, 101, 10)]
    run = {
        "algo": "awac",
        "env_id": "door-binary",
        "seed": 0,
        "curve": curve,
        "eval_every": 10,
        "final": {"eval/success_rate": 1.0, "eval/normalized_score": 100},
    }
    assert benchmark.at_step(run, 100, "success_rate", window=30) == np.mean([0.8, 0.9, 1.0])
    assert benchmark.at_step(run, 50, "normalized_score", window=20) == np.mean([40, 50])
    assert benchmark.at_step(run, 50, "success_rate", window=0) == 0.5
    assert benchmark.at_step(run, 50, "success_rate", window=5) == 0.5  # shorter than eval_every: that one evaluation
    assert np.isnan(benchmark.at_step(run, 110, "success_rate", window=30))
    awr = {**run, "curve": [(False, s + 2.0, s / 100, s) for s in range(0, 101, 10)]}
    assert benchmark.at_step(awr, 100, "success_rate", window=20) == np.mean([0.9, 1.0])
    lines = benchmark.milestone_table([run, {**run, "seed": 1}], (100,), reps=100, window=30)
    assert lines[0].endswith(
        "| score, last 30 (mean [95% CI]) | goal step, last 30 (mean [95% CI]) "
        "| never at goal, last 30 (mean [95% CI]) |"
    )
    header = [c.strip() for c in lines[0].split("|")[1:-1]]
    cells = dict(zip(header, (c.strip() for c in lines[2].split("|")[1:-1])))
    assert len(cells) == len(header)
    assert cells["success > 20/25 steps (mean [95% CI])"].startswith("1.00")
    assert cells["success > 20/25 steps, last 30 (mean [95% CI])"].startswith("0.90")


def test_tasks_without_success_info_are_reported_and_plotted_by_score(tmp_path):
    """Locomotion evaluations have no success rate (NaN): the tables say n/a there and give the D4RL score, and
    the curves plot the score."""
    runs = []
    for seed, score in ((0, 40.0), (1, 60.0)):
        nan = float("nan") if seed == 0 else None  # older runs wrote NaN; strict_json writes null
        final = {"offline/eval/success_rate": nan, "offline/eval/normalized_score": 20.0}
        final |= {"eval/success_rate": nan, "eval/normalized_score": score}
        run = write_run(
            tmp_path / "runs" / f"Walker2d-v5__awac__{seed}",
            {"env_id": "Walker2d-v5", "seed": seed, "offline_steps": 10},
            final,
            ["eval/success_rate", "eval/normalized_score", "charts/offline_step", "charts/env_step"],
            [["nan", 10.0, "0", ""], ["nan", 20.0, "", "0"], ["nan", score, "", "100"]],
        )
        runs.append(run)
    benchmark.report(runs, tmp_path / "out", at=(100,))
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "| Walker2d-v5 | awac | 2 | 20.00 [20.00, 20.00] | 50.00 [40.00, 60.00] |" in summary
    assert "| Walker2d-v5 | awac | 100 | 2 | 50.00 [40.00, 60.00] |" in summary
    assert "success" not in summary  # no task of this grid has a success signal: its columns are left out
    assert png_size(tmp_path / "out" / "curves.png")[0] > 0


def test_only_success_columns_without_any_value_are_left_out():
    table = [
        "| run | success, end | score, end | steps/s |",
        "|---|---|---|---|",
        "| a | n/a | 1.0 | n/a |",
        "| b | n/a | n/a | 3.0 |",
    ]
    assert benchmark.without_success_columns(table) == [
        "| run | score, end | steps/s |",
        "|---|---|---|",
        "| a | 1.0 | n/a |",
        "| b | n/a | 3.0 |",
    ]
    mixed = table[:3] + ["| b | 0.50 | 2.0 | 3.0 |"]  # a hand task among them: success stays
    assert benchmark.without_success_columns(mixed) == mixed


def test_hand_and_locomotion_tasks_are_not_averaged_together():
    runs = [loaded_run(t, s, s / 10, 10.0 * s) for t in ("pen-binary", "door-binary", "Walker2d-v5") for s in (0, 1)]
    rows = {r["task"]: r for r in benchmark.summarize(runs, reps=100)}
    assert sorted(rows) == ["Walker2d-v5", "all hand tasks", "door-binary", "pen-binary"]
    assert rows["all hand tasks"]["runs"] == 4


def test_the_per_run_table_gives_wall_time_and_steps_per_second():
    run = {
        "dir": Path("door-binary__awac__0"),
        "algo": "awac",
        "env_id": "door-binary",
        "seed": 0,
        "offline_steps": 25_000,
        "config": {"online_steps": 300_000},
        "final": {
            "offline/eval/success_rate": 0.06,
            "eval/success_rate": 0.34,
            "offline/eval/normalized_score": 1.7,
            "eval/normalized_score": 8.7,
            "wall_time_s": 3600.0,
        },
    }
    bc = {**run, "dir": Path("door-binary__bc__0"), "algo": "bc", "config": {}, "final": {"eval/success_rate": 0.1}}
    quick = {**run, "dir": Path("door-binary__bc__1"), "algo": "bc", "config": {}, "final": {"wall_time_s": 150.0}}
    rows = benchmark.run_table([bc, run, quick])
    assert "| steps | wall time | steps/s |" in rows[0]
    assert rows[2] == (
        "| door-binary__awac__0 | n/a | n/a | n/a | n/a | 0.06 | 0.34 | 1.7 | 8.7 | n/a | n/a | n/a | n/a "
        "| 325,000 | 1.00 h | 90.3 |"
    )  # runs before December 2026 logged only success_rate, and none before issue 33 the goal step
    assert rows[3] == (
        "| door-binary__bc__0 | n/a | n/a | n/a | n/a | n/a | 0.10 | n/a | n/a | n/a | n/a | n/a | n/a "
        "| 25,000 | n/a | n/a |"
    )
    assert rows[4].endswith("| 25,000 | 2.5 min | 166.7 |")  # a short run's wall time in minutes, not 0.04 h


def test_the_benchmark_names_a_dataset_that_its_first_run_will_build(tmp_path):
    """Before launching, the benchmark says which dataset a run will build (and where), so a bar that sits at 0 while
    it is built is explained; a cached dataset, a file and no dataset say nothing."""
    run = [sys.executable, "awac.py", "--env-id", "pen-binary", "--seed", "0", "--data-dir", str(tmp_path)]
    notice = benchmark.dataset_notice(run)
    assert notice.startswith("building dataset pen-binary (pen-expert + pen-bc: the AWAC paper's prior data) once")
    assert f"cached as {tmp_path}/pen-binary-h200-seed0.npz" in notice
    assert "pen-binary-h200-seed1.npz" in benchmark.dataset_notice([*run, "--dataset-seed", "1"])
    assert benchmark.dataset_notice([*run, "--dataset", "door-human"]).startswith("building dataset door-human ")
    (tmp_path / "pen-binary-h200-seed0.npz").write_bytes(b"")
    assert benchmark.dataset_notice(run) is None
    assert benchmark.dataset_notice([*run, "--dataset", str(tmp_path / "mine.npz")]) is None
    assert benchmark.dataset_notice([*run, "--dataset", "none"]) is None


def test_copy_runs_takes_the_small_result_files_of_finished_runs_only(tmp_path):
    done, unfinished = tmp_path / "runs" / "door-binary__awac__0", tmp_path / "runs" / "door-binary__awac__1"
    for run in (done, unfinished):
        (run / "wandb").mkdir(parents=True)
        for name in ("config.json", "metrics.csv", "checkpoint.pt", "wandb/run.wandb"):
            (run / name).write_text(name)
    (done / "final.json").write_text("{}")
    (done / "final-325000.json").write_text("{}")  # the first result of an extended run
    written = benchmark.copy_run_files([done, unfinished], tmp_path / "out" / "runs")
    assert written == [tmp_path / "out" / "runs" / done.name]
    assert sorted(p.name for p in written[0].iterdir()) == [
        "config.json",
        "final-325000.json",
        "final.json",
        "metrics.csv",
    ]


def test_a_fork_of_awac_joins_a_grid_beside_awac(tmp_path, small_pen_binary):
    """The workflow this repository exists for: copy awac.py, change its weighting, compare with one command. The
    fork lives outside the repository and is given by path; its runs and rows go by its file name."""
    _, dataset = small_pen_binary
    source = (ROOT / "awac.py").read_text()
    softmax = "return len(advantage) * F.softmax(advantage / beta, dim=0)"
    assert softmax in source
    fork = tmp_path / "forks" / "my_awac.py"
    fork.parent.mkdir()
    fork.write_text(source.replace(softmax, "return torch.ones_like(advantage)  # uniform weights: BC with a critic"))
    rows = tiny_grid(tmp_path, dataset, "--log-every", "20", algos=("awac", str(fork)), experiment="fork")
    assert [(r["task"], r["algorithm"], r["runs"]) for r in rows] == [
        ("pen-binary", "awac", 2),
        ("pen-binary", "my_awac", 2),
    ]
    runs = tmp_path / "fork" / "runs"
    assert (runs / "pen-binary__my_awac__0" / "final.json").is_file()
    weights = [
        float(r["values/weight_std"])
        for r in csv.DictReader((runs / "pen-binary__my_awac__0" / "metrics.csv").open())
        if r["values/weight_std"]
    ]
    assert weights and all(w == 0.0 for w in weights), "the fork's own weighting ran"
    assert "my_awac" in (tmp_path / "fork" / "summary.md").read_text()
    with pytest.raises(SystemExit, match="no script"):
        benchmark.main(["--algos", str(tmp_path / "missing.py"), "--results-dir", str(tmp_path)])


def test_paired_comparison_of_two_arms_by_seed(tmp_path):
    """`paired`: per seed, each arm's mean over its last evaluations, the differences, and a t-interval; the Q
    trajectories' seed ranges are compared step by step."""

    def write(arm, seed, successes, q):
        rows = [[success, 100 * success, "", 10 * i] for i, success in enumerate(successes)]
        rows += [["", "", value, 10 * i + 5] for i, value in enumerate(q)]
        return write_run(
            tmp_path / arm / "runs" / f"door-binary__awac__{seed}",
            {"env_id": "door-binary", "seed": seed, "eval_every": 10},
            {"eval/success_rate": 0.5},
            ["eval/success_rate", "eval/normalized_score", "values/q_mean", "charts/env_step"],
            sorted(rows, key=lambda r: r[-1]),
        )

    a = [write("fp32", s, [0.0, 0.2, 0.4], [-10, -11, -12]) for s in (0, 1, 2)]
    b = [write("bf16", s, [0.0, 0.2 + d, 0.4 + d], [-10.5, -11, -30]) for s, d in zip((0, 1, 2), (0.1, 0.0, -0.1))]
    lines, result = benchmark.paired(a, b, step=20, window=20)
    mean, lo, hi = result["success_rate"]
    assert mean == pytest.approx(0.0) and lo < 0 < hi
    assert "| success > 20/25 steps | 0.300, 0.300, 0.300 | 0.400, 0.300, 0.200 |" in "\n".join(lines)
    assert lines[0].startswith("Paired: bf16 minus fp32, 3 pairs")  # each arm by its own name, not "A" and "B"
    assert lines[2].startswith("| metric | fp32 per seed | bf16 per seed | bf16 - fp32 per seed |")
    assert result["q_overlap"] == pytest.approx(1 / 3)  # the ranges (single values here) meet at step 15 only


def test_report_plots_any_logged_training_metric_and_names_the_logged_ones_for_a_typo(tmp_path, capsys):
    """report --values values/log_std_mean: a figure of that metric's trajectory per run group (the door report's
    log-std and advantage-clip plots); a key no run logged stops with the keys that were logged."""
    runs = []
    for seed in (0, 1):
        run = write_run(
            tmp_path / "runs" / f"door-binary__awac__{seed}",
            {"env_id": "door-binary", "seed": seed, "offline_steps": 10},
            {"eval/success_rate": 0.5, "eval/normalized_score": 5.0},
            ["eval/success_rate", "eval/normalized_score", "charts/offline_step", "charts/env_step"]
            + ["values/q_mean", "values/log_std_mean"],
            [[0.1, 1.0, "0", "", "", ""], ["", "", "10", "", -50, -2.7], ["", "", "", "50", -60, -2.8 - seed]],
        )
        runs.append(run)
    loaded = benchmark.load_run(runs[1])
    assert loaded["values"]["values/log_std_mean"] == [(True, 10.0, -2.7), (False, 50.0, -3.8)]
    assert loaded["q_curve"] == loaded["values"]["values/q_mean"]
    out = tmp_path / "out"
    benchmark.main(["report", *map(str, runs), "--out", str(out), "--values", "values/log_std_mean"])
    assert png_size(out / "log_std_mean.png")[0] > 0 and png_size(out / "q_values.png")[0] > 0
    with pytest.raises(
        SystemExit, match="values/log_prob_mean: no run logged it .logged: values/log_std_mean, values/q_mean"
    ):
        benchmark.main(["report", *map(str, runs), "--out", str(out), "--values", "values/log_prob_mean"])


# ----------------------------------------------------------------------------------------------- issue 32
def test_a_run_is_reused_only_when_it_was_made_with_the_same_settings(tmp_path, monkeypatch, capsys):
    """Issue 32: the same command skips a finished run; one with other flags stops naming the fields that differ
    and the two ways out; --rerun deletes the run and makes it again with the command's settings."""
    grid = ["--algos", "awac", "--envs", "door-binary", "--seeds", "0", "--budget", "screen"]
    grid += ["--results-dir", str(tmp_path), "--experiment", "e", "--workers", "1"]
    run_dir = tmp_path / "e" / "runs" / "door-binary__awac__0"
    launched = []
    monkeypatch.setattr(benchmark, "launch", fake_launcher(launched))
    benchmark.main(grid + ["--", "--wandb-mode", "disabled"])
    assert len(launched) == 1 and json.loads((run_dir / "config.json").read_text())["advantage_clip"] == 0.5
    capsys.readouterr()
    benchmark.main(grid + ["--", "--wandb-mode", "disabled"])  # same settings: skipped, nothing launched
    assert "1 already finished, 0 to run" in capsys.readouterr().out and len(launched) == 1
    with pytest.raises(SystemExit) as e:
        benchmark.main(grid + ["--", "--wandb-mode", "disabled", "--advantage-clip", "inf"])
    message = str(e.value)
    assert str(run_dir) in message and 'advantage_clip: run 0.5, command "inf"' in message
    assert "--experiment" in message and "--rerun" in message and "\n" not in message
    assert len(launched) == 1 and (run_dir / "final.json").is_file()  # nothing ran, nothing was lost
    benchmark.main(grid + ["--rerun", "--", "--wandb-mode", "disabled", "--advantage-clip", "inf"])
    assert len(launched) == 2 and json.loads((run_dir / "config.json").read_text())["advantage_clip"] == "inf"
    assert "--checkpoint" not in launched[-1]
    # an unfinished run (a checkpoint, no final.json) made with other settings is not resumed either
    (run_dir / "final.json").unlink()
    (run_dir / "checkpoint.pt").write_bytes(b"")
    with pytest.raises(SystemExit, match="beta: run 0.5, command 0.3"):
        benchmark.main(grid + ["--", "--wandb-mode", "disabled", "--advantage-clip", "inf", "--beta", "0.3"])


def test_rows_over_tasks_use_common_seeds_and_name_what_they_leave_out():
    """Issue 32: no run is dropped silently. Task rows use every run; the row over both tasks uses the seeds both
    have, counts only those, and names the others."""

    runs = [loaded_run("pen-binary", s, v) for s, v in ((0, 1.0), (1, 0.5), (2, 0.0))]
    runs += [loaded_run("door-binary", s, v) for s, v in ((0, 0.0), (2, 0.5))]
    rows = {r["task"]: r for r in benchmark.summarize(runs, reps=200)}
    assert rows["pen-binary"]["runs"] == 3 and rows["pen-binary"]["success_rate_end_mean"] == pytest.approx(0.5)
    assert rows["pen-binary"]["left_out"] == ""
    assert rows["all tasks"]["runs"] == 4 and rows["all tasks"]["left_out"] == "pen-binary seed 1"
    assert rows["all tasks"]["success_rate_end_mean"] == pytest.approx((1.0 + 0.0 + 0.0 + 0.5) / 4)


def test_report_names_unfinished_runs_and_gives_one_run_no_interval(tmp_path, capsys):
    runs = tmp_path / "runs"
    fake_finished_run(runs / "door-binary__awac__0", {"env_id": "door-binary", "seed": 0})
    (runs / "door-binary__awac__1").mkdir()  # killed before its end: no final.json
    benchmark.main(["report", str(runs / "door-binary__awac__0"), str(runs / "door-binary__awac__1"), "--no-plots"])
    printed = capsys.readouterr().out
    md = (tmp_path / "summary.md").read_text()
    assert "Left out, not finished: door-binary__awac__1 (no final.json)" in md
    assert "left out of the report, not finished: door-binary__awac__1" in printed
    assert "0.50 (1 run, no interval)" in md and "[0.50, 0.50]" not in md


def test_iqm_and_intervals_are_rliables_on_the_same_scores():
    """The fast IQM is scipy's trim_mean (rliable's aggregate_iqm) to the last bit, NaN included; the intervals are
    rliable's percentile stratified bootstrap with the same seed, not a look-alike."""
    from rliable import library as rly
    from rliable import metrics
    from scipy import stats

    rng = np.random.default_rng(0)
    for shape in ((1, 1), (3, 1), (4, 1), (5, 3), (10, 2), (7, 4)):
        x = rng.random(shape)
        assert benchmark.iqm(x) == stats.trim_mean(x, 0.25, axis=None) == metrics.aggregate_iqm(x)
    assert np.isnan(benchmark.iqm(np.array([[0.1], [np.nan], [0.3], [0.4]])))
    assert benchmark.iqm(np.array([[0.0], [1.0], [1.0]])) == pytest.approx(2 / 3)  # 3 runs: nothing trimmed
    assert benchmark.iqm(np.array([[0.0], [0.2], [0.4], [10.0]])) == pytest.approx(0.3)  # 4 runs: one cut each end
    x = rng.random((5, 3))
    np.random.seed(123)
    before = np.random.random()
    np.random.seed(123)
    point, ci = benchmark.interval({"a": x}, reps=500)
    assert np.random.random() == before  # the caller's global random state is left as it was

    def rliable_aggregate(s):
        return np.array([metrics.aggregate_mean(s), metrics.aggregate_iqm(s)])

    np.random.seed(0)
    expected_point, expected_ci = rly.get_interval_estimates({"a": x}, rliable_aggregate, reps=500)
    np.testing.assert_array_equal(ci["a"], expected_ci["a"])
    np.testing.assert_array_equal(point["a"], expected_point["a"])
    assert benchmark.interval({"a": x}, reps=500)[1]["a"].tolist() == ci["a"].tolist()  # reproducible
    # one task: the 2.5th and 97.5th percentiles of the mean over 500 resamples of the runs, drawn by hand as
    # rliable draws them (np.random.choice on the global generator seeded with 0)
    np.random.seed(0)
    means = [x[np.random.choice(5, (5, 1), replace=True), 0].mean() for _ in range(500)]
    (lo, _), (hi, _) = benchmark.interval({"a": x[:, :1]}, reps=500)[1]["a"]
    assert (lo, hi) == pytest.approx(tuple(np.percentile(means, [2.5, 97.5])))


def test_a_flag_that_reaches_several_scripts_is_named_once_and_gpus_reach_the_runs(tmp_path):
    assert benchmark.shared_flags(["awac", "awr", "bc"], ["--beta", "0.3", "--advantage-clip", "inf"]) == {
        "--beta": ["awac", "awr"]
    }
    args = argparse.Namespace(
        envs=["door-binary"], algos=["awac"], seeds=[0], budget=None, experiment="e", gpus_per_run=0.5
    )
    command = benchmark.plan(args, [], tmp_path)[0].command
    assert command[command.index("--device") + 1] == "cuda"
    args.gpus_per_run = 0.0
    assert "--device" not in benchmark.plan(args, [], tmp_path)[0].command


def test_a_finished_run_asked_for_more_online_steps_is_extended_not_refused(tmp_path, monkeypatch, capsys):
    """More --online-steps than a finished run made continue it from its checkpoint (the script's extension);
    fewer, or more without a checkpoint to go on from, are other settings and stop the command."""
    grid = ["--algos", "awac", "--envs", "door-binary", "--seeds", "0", "--budget", "screen"]
    grid += ["--results-dir", str(tmp_path), "--experiment", "e", "--workers", "1", "--", "--wandb-mode", "disabled"]
    run_dir = tmp_path / "e" / "runs" / "door-binary__awac__0"
    launched = []
    monkeypatch.setattr(benchmark, "launch", fake_launcher(launched, checkpoint=True))
    benchmark.main(grid)
    capsys.readouterr()
    benchmark.main(grid + ["--online-steps", "300000"])
    assert "extending 1 finished runs" in capsys.readouterr().out
    assert len(launched) == 2 and launched[-1][launched[-1].index("--checkpoint") + 1] == str(run_dir / "checkpoint.pt")
    assert json.loads((run_dir / "config.json").read_text())["online_steps"] == 300000
    with pytest.raises(SystemExit, match="online_steps: run 300000, command 100000"):
        benchmark.main(grid)  # fewer steps than the run made: another run, not a part of this one
    (run_dir / "checkpoint.pt").unlink()
    with pytest.raises(SystemExit, match="online_steps: run 300000, command 400000"):
        benchmark.main(grid + ["--online-steps", "400000"])  # nothing to go on from
