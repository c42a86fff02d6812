"""The run bookkeeping of utils/run/, through the scripts that use it: exact resume after a kill or a crash,
extension of a finished run, final.json, signal handlers; and the layering (what imports what, what defines what)."""

import ast
import csv
import json
import os
import signal
from pathlib import Path

import pytest
import torch
from conftest import ROOT

import awac
import awr
import bc
import sac_fd
from utils.run import setup

TINY = dict(batch_size=32, hidden_dims=(32, 32), eval_episodes=2, wandb_mode="disabled", progress=False, threads=1)
SCRIPTS = ("awac.py", "sac_fd.py", "bc.py", "awr.py")


def read_rows(run: Path) -> list[dict]:
    with (run / "metrics.csv").open() as f:
        return list(csv.DictReader(f))


def _without_timing(run: Path) -> tuple[list[dict], dict]:
    """metrics.csv rows and final.json of a run, minus the columns that measure time."""
    timing = {"charts/SPS", "wall_time_s", "offline/wall_time_s", "run_dir"}
    with (run / "metrics.csv").open() as f:
        rows = [{k: v for k, v in r.items() if k not in timing} for r in csv.DictReader(f)]
    final = {k: v for k, v in json.loads((run / "final.json").read_text()).items() if k not in timing}
    return rows, final


def test_killed_runs_resume_to_the_same_numbers(tmp_path, small_pen_binary, monkeypatch):
    """Exact resume: SIGTERM (Ctrl-C alike) in the offline phase and mid-episode online, and a crash with no save
    on the way down (as SIGKILL), each resumed with --checkpoint, end with metrics.csv and final.json equal, timing
    columns aside, to the uninterrupted run's. pen's episodes last 200 steps."""
    _, path = small_pen_binary
    common = dict(
        env_id="pen-binary",
        dataset=str(path),
        offline_steps=60,
        online_steps=500,
        eval_every=200,
        save_every=100,
        run_dir=str(tmp_path),
        **{**TINY, "log_every": 10},
    )
    awac.train(awac.Args(run_name="straight", **common))
    real_update = awac.AWAC.update

    def run_until(args: awac.Args, stop_at: int, error: type) -> None:
        calls = {"n": 0}

        def stopping_update(self, batch):
            calls["n"] += 1
            if calls["n"] == stop_at and error is KeyboardInterrupt:
                os.kill(os.getpid(), signal.SIGTERM)  # arrives mid-update, as a real one would
            elif calls["n"] == stop_at:
                raise error("crashed")
            return real_update(self, batch)

        monkeypatch.setattr(awac.AWAC, "update", stopping_update)
        with pytest.raises(error):
            awac.train(args)
        monkeypatch.setattr(awac.AWAC, "update", real_update)

    ckpt = tmp_path / "killed" / "checkpoint.pt"
    resume = awac.Args(checkpoint=str(ckpt), progress=False)
    run_until(awac.Args(run_name="killed", **common), 30, KeyboardInterrupt)  # offline update 30
    assert torch.load(ckpt, weights_only=True)["counters"] == {"offline_step": 30, "env_step": 0}
    run_until(resume, 30 + 280, KeyboardInterrupt)  # online step 280: saved at the episode boundary, step 200
    assert torch.load(ckpt, weights_only=True)["counters"] == {"offline_step": 60, "env_step": 200}
    run_until(resume, 460 - 200, RuntimeError)  # online step 460, a crash: the last periodic save is at step 400
    assert torch.load(ckpt, weights_only=True)["counters"] == {"offline_step": 60, "env_step": 400}
    awac.train(resume)
    straight, resumed = _without_timing(tmp_path / "straight"), _without_timing(tmp_path / "killed")
    assert len(straight[0]) > 30 and resumed[0] == straight[0]
    assert resumed[1] == straight[1]
    end = torch.load(ckpt, weights_only=True)
    assert end["counters"] == {"offline_step": 60, "env_step": 500} and len(end["online_data"]["reward"]) == 500


def test_resume_after_a_crash_redoes_the_lost_steps_once(tmp_path, small_pen_binary, monkeypatch):
    """A crash (no save on the way down) resumes from the last periodic checkpoint; the rows logged after it are
    dropped from metrics.csv, so every step appears once."""
    _, path = small_pen_binary
    args = awac.Args(
        env_id="pen-binary",
        dataset=str(path),
        offline_steps=60,
        online_steps=240,
        eval_every=1000,
        save_every=30,
        run_dir=str(tmp_path),
        run_name="crash",
        **{**TINY, "log_every": 10},
    )
    real_update, calls = awac.AWAC.update, {"n": 0}

    def crashing_update(self, batch):
        calls["n"] += 1
        if calls["n"] == 290:  # online step 230; the last checkpoint: the episode boundary after step 30, 200
            raise RuntimeError("simulated crash")
        return real_update(self, batch)

    monkeypatch.setattr(awac.AWAC, "update", crashing_update)
    with pytest.raises(RuntimeError):
        awac.train(args)
    monkeypatch.setattr(awac.AWAC, "update", real_update)
    ckpt_path = tmp_path / "crash" / "checkpoint.pt"
    assert torch.load(ckpt_path, weights_only=False)["counters"]["env_step"] == 200
    with pytest.raises(ValueError, match="can be evaluated, not resumed"):
        awac.train(awac.Args(checkpoint=str(tmp_path / "crash" / "checkpoint_offline.pt"), progress=False))
    final = awac.train(awac.Args(checkpoint=str(ckpt_path), progress=False))
    with (tmp_path / "crash" / "metrics.csv").open() as f:
        steps = [int(float(r["charts/global_step"])) for r in csv.DictReader(f) if r["losses/critic"]]
    assert steps == list(range(10, 301, 10)), "each logged update step exactly once, in order"
    # resuming a finished run changes nothing
    before = (tmp_path / "crash" / "final.json").read_text()
    again = awac.train(awac.Args(checkpoint=str(ckpt_path), progress=False))
    assert again == final and (tmp_path / "crash" / "final.json").read_text() == before


@pytest.mark.parametrize("variant", ["sacfd_pretrain", "scratch"])
def test_sac_fd_killed_runs_resume_to_the_same_numbers(tmp_path, small_pen_binary, monkeypatch, variant):
    """As awac.py's exact-resume test: SIGTERM mid-episode (in the random-action steps from scratch, whose
    generator belongs to the action space) and a crash, each resumed, end equal to an uninterrupted run."""
    _, path = small_pen_binary
    extra = (
        dict(dataset="none", learning_starts=150)
        if variant == "scratch"
        else dict(dataset=str(path), bc_pretrain_steps=20, offline_steps=40)
    )
    common = dict(
        env_id="pen-binary",
        online_steps=500,
        eval_every=200,
        save_every=100,
        run_dir=str(tmp_path),
        batch_size=16,
        hidden_dims=(16, 16),
        eval_episodes=1,
        log_every=10,
        wandb_mode="disabled",
        progress=False,
        threads=1,
        **extra,
    )
    sac_fd.train(sac_fd.Args(run_name="straight", **common))
    from utils.envs import make_env

    calls = {"n": 0, "stop_at": 0, "crash": False}

    def counting_make_env(*args, **kwargs):  # the training env; evaluation builds its own through utils.envs
        env = make_env(*args, **kwargs)
        real_step = env.step

        def step(action):
            calls["n"] += 1
            if calls["n"] == calls["stop_at"] and calls["crash"]:
                raise RuntimeError("crashed")
            if calls["n"] == calls["stop_at"]:
                os.kill(os.getpid(), signal.SIGTERM)
            return real_step(action)

        env.step = step
        return env

    monkeypatch.setattr(sac_fd, "make_env", counting_make_env)
    ckpt = tmp_path / "killed" / "checkpoint.pt"
    calls.update(n=0, stop_at=280, crash=False)  # online step 280, mid-episode: saved at the boundary, step 200
    with pytest.raises(KeyboardInterrupt):
        sac_fd.train(sac_fd.Args(run_name="killed", **common))
    assert torch.load(ckpt, weights_only=True)["counters"]["env_step"] == 200
    calls.update(n=200, stop_at=460, crash=True)  # a crash: the last periodic save is at the boundary, step 400
    with pytest.raises(RuntimeError):
        sac_fd.train(sac_fd.Args(checkpoint=str(ckpt), progress=False))
    assert torch.load(ckpt, weights_only=True)["counters"]["env_step"] == 400
    calls.update(stop_at=0)
    sac_fd.train(sac_fd.Args(checkpoint=str(ckpt), progress=False))
    assert _without_timing(tmp_path / "killed") == _without_timing(tmp_path / "straight")


def test_bc_and_awr_killed_runs_resume_to_the_same_numbers(tmp_path, small_pen_binary, monkeypatch):
    """SIGTERM during a BC update and during an AWR iteration (its updates after collecting data) are
    honoured at the end of the step or iteration; resumed, both runs end equal to uninterrupted ones."""
    _, path = small_pen_binary
    tiny = dict(
        env_id="pen-binary",
        dataset=str(path),
        run_dir=str(tmp_path),
        batch_size=16,
        hidden_dims=(16,),
        eval_episodes=1,
        wandb_mode="disabled",
        progress=False,
        threads=1,
    )
    runs = {
        bc: dict(offline_steps=120, eval_every=50, save_every=40, log_every=10),
        awr: dict(
            offline_steps=40,
            online_steps=400,
            samples_per_iter=150,
            actor_steps=20,
            critic_steps=10,
            eval_every=200,
            save_every=100,
            log_every=1,
        ),
    }
    for module, budget in runs.items():
        name = module.__name__
        module.train(module.Args(run_name=f"{name}-straight", **tiny, **budget))
        real_update, calls = module.BC.update if module is bc else module.AWR.iteration, {"n": 0}

        def interrupted(self, *args):
            calls["n"] += 1
            if calls["n"] == (70 if module is bc else 3):  # BC step 70; AWR's first online iteration (of 2)
                os.kill(os.getpid(), signal.SIGTERM)
            return real_update(self, *args)

        monkeypatch.setattr(
            module.BC if module is bc else module.AWR, "update" if module is bc else "iteration", interrupted
        )
        with pytest.raises(KeyboardInterrupt):
            module.train(module.Args(run_name=f"{name}-killed", **tiny, **budget))
        monkeypatch.undo()
        ckpt = tmp_path / f"{name}-killed" / "checkpoint.pt"
        counters = torch.load(ckpt, weights_only=True)["counters"]
        assert counters == (
            {"offline_step": 70} if module is bc else {"iteration": 3, "offline_step": 40, "env_step": 200}
        ), counters
        module.train(module.Args(checkpoint=str(ckpt), progress=False))
        assert _without_timing(tmp_path / f"{name}-killed") == _without_timing(tmp_path / f"{name}-straight"), name


def test_a_run_killed_before_its_final_json_writes_it_when_resumed(tmp_path, small_pen_binary):
    """final.json comes right after the last checkpoint; a run killed in between (its checkpoint already holds the
    final result) writes it when resumed instead of staying unfinished forever."""
    _, path = small_pen_binary
    final = bc.train(
        bc.Args(
            env_id="pen-binary",
            dataset=str(path),
            offline_steps=10,
            eval_episodes=1,
            hidden_dims=(16,),
            run_dir=str(tmp_path),
            wandb_mode="disabled",
            progress=False,
        )
    )
    run = Path(final["run_dir"])
    written = (run / "final.json").read_text()
    (run / "final.json").unlink()
    again = bc.train(bc.Args(checkpoint=str(run / "checkpoint.pt"), progress=False))
    assert (run / "final.json").read_text() == written and again == final


@pytest.mark.parametrize("script", [awac, sac_fd, awr])
def test_a_finished_run_given_more_online_steps_goes_on_and_keeps_its_first_result(tmp_path, small_pen_binary, script):
    """--online-steps on the checkpoint of a finished run extends it (README, "Resuming"): the run goes on to the new
    budget with its offline result, and the first final.json stays as final-<global step>.json."""
    _, path = small_pen_binary
    extra = {sac_fd: dict(bc_pretrain_steps=0), awr: dict(samples_per_iter=40, critic_steps=5, actor_steps=5)}.get(
        script, {}
    )
    first = script.train(
        script.Args(
            env_id="pen-binary",
            dataset=str(path),
            offline_steps=20,
            online_steps=80,
            eval_every=1000,
            save_every=1000,
            batch_size=16,
            hidden_dims=(16, 16),
            eval_episodes=1,
            run_dir=str(tmp_path),
            run_name="run",
            wandb_mode="disabled",
            progress=False,
            threads=1,
            **extra,
        )
    )
    run = Path(first["run_dir"])
    ckpt_before = torch.load(run / "checkpoint.pt", weights_only=True)
    more = script.train(script.Args(checkpoint=str(run / "checkpoint.pt"), online_steps=200, progress=False))
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    assert ckpt["counters"]["env_step"] >= 200 and json.loads((run / "final.json").read_text()) == more
    kept = sorted(run.glob("final-*.json"))
    assert len(kept) == 1 and json.loads(kept[0].read_text()) == first
    assert {k: v for k, v in more.items() if k.startswith("offline/")} == {
        k: v for k, v in first.items() if k.startswith("offline/")
    }
    assert max(float(r["charts/env_step"] or 0) for r in read_rows(run) if r.get("charts/env_step")) > 80
    again = script.train(script.Args(checkpoint=str(run / "checkpoint.pt"), online_steps=200, progress=False))
    assert again == more and len(list(run.glob("final-*.json"))) == 1  # finished at 200: nothing more to do
    assert json.loads((run / "config.json").read_text())["online_steps"] == 200
    # Any --online-steps counts, the default's value included (a field left at None keeps the checkpoint's):
    assert (
        setup(script.Args(checkpoint=str(run / "checkpoint.pt"), online_steps=500_000), script.CHECKS)[0].online_steps
        == 500_000
    )
    assert setup(script.Args(checkpoint=str(run / "checkpoint.pt")), script.CHECKS)[0].online_steps == 200
    # An extension killed before its first checkpoint is extended again without touching the first result:
    (run / "final.json").unlink()
    torch.save(ckpt_before, run / "checkpoint.pt")
    script.train(script.Args(checkpoint=str(run / "checkpoint.pt"), online_steps=200, progress=False))
    assert json.loads(kept[0].read_text()) == first and (run / "final.json").is_file()


def test_a_failing_first_evaluation_leaves_no_signal_handler_behind(tmp_path, small_pen_binary, monkeypatch):
    _, path = small_pen_binary
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(bc, "evaluate_policy", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("no eval")))
    with pytest.raises(RuntimeError, match="no eval"):
        bc.train(
            bc.Args(
                env_id="pen-binary",
                dataset=str(path),
                offline_steps=10,
                eval_episodes=1,
                hidden_dims=(16,),
                run_dir=str(tmp_path),
                wandb_mode="disabled",
                progress=False,
            )
        )
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


# ----------------------------------------------------------------------------------------------- layering
def imports_of(path: Path) -> set[str]:
    """The top-level names of every module `path` imports (at any depth of the file)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_the_library_never_imports_a_script_and_the_scripts_hold_no_run_bookkeeping():
    scripts = {Path(s).stem for s in SCRIPTS}
    for module in sorted((ROOT / "utils").glob("*.py")):
        assert not imports_of(module) & scripts, f"{module.name} imports an algorithm file"
    for script in SCRIPTS:
        source = (ROOT / script).read_text()
        tree = ast.parse(source)
        defined = {n.name for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
        assert not defined & {"Run", "Logger", "setup", "load_checkpoint", "main"}, script
        assert len(source.splitlines()) <= 500, f"{script} has {len(source.splitlines())} lines (at most 500)"
        assert imports_of(ROOT / script) <= {
            "__future__",
            "math",
            "dataclasses",
            "pathlib",
            "typing",
            "numpy",
            "torch",
            "utils",
        }, f"{script} imports more than the algorithm needs"


def test_a_checkpoint_of_another_script_is_refused_in_one_line(tmp_path, small_pen_binary):
    _, path = small_pen_binary
    final = bc.train(
        bc.Args(
            env_id="pen-binary",
            dataset=str(path),
            offline_steps=5,
            eval_episodes=1,
            hidden_dims=(8,),
            run_dir=str(tmp_path),
            wandb_mode="disabled",
            progress=False,
        )
    )
    with pytest.raises(ValueError, match=r"is not a checkpoint of awac\.py"):
        awac.train(awac.Args(checkpoint=str(Path(final["run_dir"]) / "checkpoint.pt"), progress=False))


def test_a_checkpoint_of_the_previous_version_is_resumed(tmp_path, small_pen_binary):
    """Checkpoints written before the run module (no `finished`/`offline_done` flags) are read: a finished run is
    seen as finished from its final metrics, and an unfinished one resumes."""
    _, path = small_pen_binary
    common = dict(
        env_id="pen-binary",
        dataset=str(path),
        offline_steps=20,
        eval_every=1000,
        save_every=10,
        eval_episodes=1,
        hidden_dims=(8,),
        run_dir=str(tmp_path),
        wandb_mode="disabled",
        progress=False,
    )
    final = bc.train(bc.Args(run_name="old", **common))
    ckpt_path = Path(final["run_dir"]) / "checkpoint.pt"
    old = torch.load(ckpt_path, weights_only=True)
    for flag in ("finished", "offline_done"):
        del old[flag]
    torch.save(old, ckpt_path)
    assert bc.train(bc.Args(checkpoint=str(ckpt_path), progress=False)) == final
    del old["horizon"]  # pen-binary before December 2026: 100-step episodes, now 200
    torch.save(old, ckpt_path)
    with pytest.raises(ValueError, match="ran pen-binary with 100-step episodes, which are now 200 steps long"):
        bc.train(bc.Args(checkpoint=str(ckpt_path), progress=False))


# ----------------------------------------------------------------------------------------------- faults (issue 22)
def cli_run(*argv, timeout=300):
    import subprocess
    import sys

    return subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def one_error_line(res, status: int) -> str:
    assert res.returncode == status, res.stderr[-2000:]
    assert "Traceback" not in res.stderr, res.stderr[-2000:]
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ")
    return last


def test_a_missing_device_is_named_before_any_work(tmp_path):
    res = cli_run("awac.py", "--device", "cuda", "--dataset", "no-such-dataset", "--run-dir", str(tmp_path / "runs"))
    line = one_error_line(res, 2)
    assert "--device cuda" in line and "this machine" in line and "--device cpu" in line
    assert not (tmp_path / "runs").exists()
    line = one_error_line(cli_run("bc.py", "--device", "tpu9", "--run-dir", str(tmp_path / "runs")), 2)
    assert "--device tpu9" in line


def test_an_unusable_run_directory_is_named_and_nothing_is_left_behind(tmp_path):
    line = one_error_line(cli_run("bc.py", "--run-dir", "/proc/awac-test/runs", "--offline-steps", "1"), 2)
    assert "/proc/awac-test/runs" in line and "writable --run-dir" in line
    blocked = tmp_path / "file"
    blocked.write_text("")  # a file where a directory should be
    line = one_error_line(cli_run("bc.py", "--run-dir", str(blocked / "runs"), "--offline-steps", "1"), 2)
    assert str(blocked) in line


def test_a_diverging_run_stops_in_one_line_and_keeps_its_last_finite_checkpoint(tmp_path, small_pen_binary):
    """The issue's case: learning rates of 1e6 make the actor's weights non-finite within a few hundred updates."""
    _, path = small_pen_binary
    res = cli_run(
        "awac.py",
        "--env-id",
        "pen-binary",
        "--dataset",
        str(path),
        "--critic-lr",
        "1e6",
        "--actor-lr",
        "1e6",
        "--offline-steps",
        "2000",
        "--online-steps",
        "0",
        "--batch-size",
        "32",
        "--offline-batch-size",
        "32",
        "--hidden-dims",
        "32",
        "32",
        "--log-every",
        "10",
        "--save-every",
        "1",
        "--eval-every",
        "100000",
        "--eval-episodes",
        "1",
        "--threads",
        "1",
        "--wandb-mode",
        "disabled",
        "--no-progress",
        "--run-dir",
        str(tmp_path),
        "--run-name",
        "diverged",
    )
    line = one_error_line(res, 3)
    assert "the run diverged by global step" in line and "the last checkpoint with finite weights" in line
    run = tmp_path / "diverged"
    assert not (run / "final.json").exists()
    # --save-every 1: checkpoints were written before the weights broke, and the last one kept is finite
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    assert ckpt["counters"]["offline_step"] >= 1
    tensors = [t for key in ("actor", "critic", "target_critic") for t in ckpt["agent"][key].values()]
    assert tensors and all(bool(torch.isfinite(t).all()) for t in tensors if t.is_floating_point())
    assert str(run / "checkpoint.pt") in line


def test_the_divergence_guard_reads_a_non_finite_loss_at_its_logging_step(tmp_path, small_pen_binary, monkeypatch):
    """A NaN in a logged metric stops the run at that logging step, before any checkpoint holds it."""
    from utils.run import Diverged

    _, path = small_pen_binary
    real = bc.BC.update
    calls = {"n": 0}

    def nan_after_25(self, batch):
        calls["n"] += 1
        metrics = real(self, batch)
        return {**metrics, "losses/actor": torch.tensor(float("nan"))} if calls["n"] > 25 else metrics

    monkeypatch.setattr(bc.BC, "update", nan_after_25)
    with pytest.raises(Diverged, match=r"global step 30: losses/actor is nan .*checkpoint.pt, global step 20"):
        bc.train(
            bc.Args(
                env_id="pen-binary",
                dataset=str(path),
                offline_steps=100,
                log_every=10,
                save_every=20,
                eval_every=1000,
                eval_episodes=1,
                hidden_dims=(8,),
                run_dir=str(tmp_path),
                run_name="nan",
                wandb_mode="disabled",
                progress=False,
                threads=1,
            )
        )
    assert torch.load(tmp_path / "nan" / "checkpoint.pt", weights_only=True)["counters"]["offline_step"] == 20


def test_two_processes_on_one_run_the_second_refuses_naming_the_first(tmp_path, small_pen_binary, capsys):
    from utils import benchmark
    from utils.run import lock_run_dir, run_holder

    _, path = small_pen_binary
    final = bc.train(
        bc.Args(
            env_id="pen-binary",
            dataset=str(path),
            offline_steps=10,
            save_every=5,
            eval_every=1000,
            eval_episodes=1,
            hidden_dims=(8,),
            run_dir=str(tmp_path),
            run_name="run",
            wandb_mode="disabled",
            progress=False,
            threads=1,
        )
    )
    run = Path(final["run_dir"])
    assert run_holder(run) is None  # released when the run ended
    fd = lock_run_dir(run)  # this process now plays the first writer
    try:
        assert run_holder(run).startswith(f"process {os.getpid()}")
        line = one_error_line(cli_run("bc.py", "--checkpoint", str(run / "checkpoint.pt"), "--no-progress"), 2)
        assert f"is in use by process {os.getpid()}" in line
        held = tmp_path / "grid" / "runs" / "pen-binary__bc__0"  # a grid re-issued while its run 0 still runs
        held.mkdir(parents=True)
        fd_grid = lock_run_dir(held)
        try:
            rows = benchmark.main(
                [
                    "--algos",
                    "bc",
                    "--envs",
                    "pen-binary",
                    "--seeds",
                    "0",
                    "1",
                    "--workers",
                    "1",
                    "--results-dir",
                    str(tmp_path),
                    "--experiment",
                    "grid",
                    "--",
                    "--dataset",
                    str(path),
                    "--offline-steps",
                    "5",
                    "--eval-episodes",
                    "1",
                    "--hidden-dims",
                    "8",
                    "--wandb-mode",
                    "disabled",
                ]
            )
        finally:
            os.close(fd_grid)
        assert rows[0]["runs"] == 1 and not (held / "final.json").exists()
        assert "skipping pen-binary__bc__0: in use by process" in capsys.readouterr().out
    finally:
        os.close(fd)
    assert run_holder(run) is None and bc.train(bc.Args(checkpoint=str(run / "checkpoint.pt"), progress=False))
