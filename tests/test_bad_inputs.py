"""Bad input from the command line: every expected error is one line `error: ...` with exit status 2, comes before
any work (no dataset build, no run directory), and never touches a finished run's files."""

import json
import shutil
import subprocess
import sys

import pytest
import torch
from conftest import ROOT

import awac
import awr
import bc
import sac_fd
from utils.run import ArgumentError, cli

MODULES = {"awac": awac, "sac_fd": sac_fd, "bc": bc, "awr": awr}
TINY = [
    "--batch-size",
    "8",
    "--hidden-dims",
    "8",
    "--eval-episodes",
    "1",
    "--wandb-mode",
    "disabled",
    "--no-progress",
    "--threads",
    "1",
]  # first on every command line: the flag under test comes later and wins


def run_main(module, argv, monkeypatch, capsys) -> tuple[int, str]:
    """The script's command line in-process: its exit status and what it printed on stderr."""
    monkeypatch.setattr(sys, "argv", [f"{module.__name__}.py", *argv])
    with pytest.raises(SystemExit) as exit_info:
        cli(module.train, module.Args)
    return exit_info.value.code, capsys.readouterr().err


@pytest.mark.parametrize("name", list(MODULES))
def test_a_bad_flag_is_one_line_with_status_2_from_a_real_process(name, tmp_path):
    res = subprocess.run(
        [sys.executable, f"{name}.py", "--batch-size", "0", "--run-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2
    valid = ">= 2 (a batch's std needs two samples)" if name in ("awac", "sac_fd") else ">= 1"
    assert res.stderr.strip().splitlines()[-1] == f"error: --batch-size 0 is out of range (use a value {valid})"
    assert "Traceback" not in res.stderr and not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "flag,value,valid",
    [
        ("--offline-steps", "-5", ">= 0"),
        ("--online-steps", "-3", ">= 0"),
        ("--eval-every", "0", ">= 1"),
        ("--eval-episodes", "0", ">= 1"),
        ("--log-every", "0", ">= 1"),
        ("--save-every", "0", ">= 1"),
        ("--actor-lr", "0", "> 0"),
        ("--critic-lr", "-1e-3", "> 0"),
        ("--gamma", "1.0", "in [0, 1)"),
        ("--tau", "0", "in (0, 1]"),
        ("--beta", "0", "> 0"),
        ("--buffer-size", "0", ">= 1"),
        ("--hidden-dims", "0", "of one or more sizes >= 1"),
        ("--threads", "-1", ">= 0"),
    ],
)
def test_out_of_range_flags_are_refused_before_any_work(flag, value, valid, tmp_path, monkeypatch, capsys):
    code, err = run_main(awac, [*TINY, flag, value, "--run-dir", str(tmp_path)], monkeypatch, capsys)
    assert code == 2 and err.startswith(f"error: {flag} ")  # the value as parsed: 0.0 for '0', (0,) for a tuple
    assert err.endswith(f" is out of range (use a value {valid})\n") and err.count("\n") == 1
    assert not any(tmp_path.iterdir()), "no run directory"


@pytest.mark.parametrize(
    "name,flag,value",
    [
        ("sac_fd", "--alpha-lr", "0"),
        ("bc", "--top-fraction", "1.5"),
        ("awr", "--td-lambda", "2"),
        ("awr", "--samples-per-iter", "0"),
        ("sac_fd", "--bc-pretrain-steps", "-1"),
    ],
)
def test_each_script_checks_its_own_fields(name, flag, value, tmp_path, monkeypatch, capsys):
    code, err = run_main(MODULES[name], [*TINY, flag, value, "--run-dir", str(tmp_path)], monkeypatch, capsys)
    assert code == 2 and err.startswith(f"error: {flag} ") and "is out of range" in err


def test_log_std_bounds_and_eval_only_without_checkpoint(tmp_path, monkeypatch, capsys):
    code, err = run_main(awac, ["--min-log-std", "1", "--max-log-std", "0", *TINY], monkeypatch, capsys)
    assert code == 2 and "--min-log-std 1.0 is not below --max-log-std 0.0" in err
    code, err = run_main(bc, ["--eval-only", *TINY], monkeypatch, capsys)
    assert code == 2 and "--eval-only has no policy to evaluate (add --checkpoint" in err


def test_unknown_env_and_unknown_dataset(tmp_path, monkeypatch, capsys):
    code, err = run_main(awac, ["--env-id", "door-binray", "--run-dir", str(tmp_path), *TINY], monkeypatch, capsys)
    assert code == 2 and err.startswith("error: unknown environment 'door-binray'")
    code, err = run_main(
        awac,
        ["--env-id", "pen-binary", "--dataset", "pen-expret", "--run-dir", str(tmp_path), *TINY],
        monkeypatch,
        capsys,
    )
    assert code == 2 and err.startswith("error: unknown dataset 'pen-expret'")
    code, err = run_main(awac, ["--dataset", "none", *TINY], monkeypatch, capsys)
    assert code == 2 and "AWAC learns from prior data" in err
    assert not any(tmp_path.iterdir())


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, small_pen_binary):
    """A finished tiny awac.py run: its directory and its final.json text."""
    run_dir = tmp_path_factory.mktemp("finished")
    _, path = small_pen_binary
    final = awac.train(
        awac.Args(
            env_id="pen-binary",
            dataset=str(path),
            offline_steps=20,
            online_steps=20,
            eval_every=1000,
            save_every=1000,
            batch_size=8,
            hidden_dims=(8,),
            eval_episodes=1,
            wandb_mode="disabled",
            progress=False,
            threads=1,
            run_dir=str(run_dir),
            run_name="done",
        )
    )
    run = run_dir / "done"
    return run, (run / "final.json").read_text(), final


def test_a_new_run_never_overwrites_a_finished_one(finished_run, monkeypatch, capsys, small_pen_binary):
    run, final_text, _ = finished_run
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    code, err = run_main(
        awac,
        [
            "--env-id",
            "pen-binary",
            "--dataset",
            str(small_pen_binary[1]),
            "--run-dir",
            str(run.parent),
            "--run-name",
            "done",
            *TINY,
        ],
        monkeypatch,
        capsys,
    )
    assert code == 2 and f"{run} already holds a run (final.json, checkpoint.pt; resume it with --checkpoint" in err
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


def test_bad_checkpoints_are_named_and_nothing_in_them_runs(finished_run, tmp_path, monkeypatch, capsys):
    run, _, _ = finished_run
    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint")
    code, err = run_main(awac, ["--checkpoint", str(text)], monkeypatch, capsys)
    assert code == 2 and err.startswith(f"error: --checkpoint {text} is not a checkpoint of awac.py (")
    code, err = run_main(awac, ["--checkpoint", str(tmp_path / "missing.pt")], monkeypatch, capsys)
    assert code == 2 and "no such file" in err
    plain = tmp_path / "weights.pt"
    torch.save({"actor": {"w": torch.zeros(2)}}, plain)  # a torch file, but no run's checkpoint
    code, err = run_main(awac, ["--checkpoint", str(plain)], monkeypatch, capsys)
    assert code == 2 and "is not a checkpoint of awac.py" in err
    code, err = run_main(sac_fd, ["--checkpoint", str(run / "checkpoint.pt")], monkeypatch, capsys)
    assert code == 2 and "is not a checkpoint of sac_fd.py" in err
    old = tmp_path / "old" / "checkpoint.pt"  # an older version's: its batch sampler's state under another name
    old.parent.mkdir()
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    torch.save({**{k: v for k, v in ckpt.items() if k != "batch_rng"}, "buffer_rng": ckpt["batch_rng"]}, old)
    code, err = run_main(awac, ["--checkpoint", str(old)], monkeypatch, capsys)
    assert code == 2 and f"{old} lacks batch_rng: an older version of awac.py wrote it" in err

    class Payload:  # unpickling this would run code; weights_only refuses the global instead
        def __reduce__(self):
            return (print, ("code from a checkpoint ran",))

    evil = tmp_path / "evil.pt"
    torch.save({"script": "awac.py", "payload": Payload()}, evil)
    code, err = run_main(awac, ["--checkpoint", str(evil)], monkeypatch, capsys)
    assert code == 2 and "is not a checkpoint of awac.py (UnpicklingError" in err
    assert "code from a checkpoint ran" not in capsys.readouterr().out


def test_resume_refuses_a_changed_setting_and_keeps_eval_settings(finished_run, monkeypatch, capsys):
    run, final_text, final = finished_run
    ckpt = str(run / "checkpoint.pt")
    code, err = run_main(awac, ["--checkpoint", ckpt, "--env-id", "relocate-binary"], monkeypatch, capsys)
    assert code == 2 and "--env-id relocate-binary differs from the checkpoint's pen-binary" in err
    code, err = run_main(awac, ["--checkpoint", ckpt, "--batch-size", "16"], monkeypatch, capsys)
    assert code == 2 and "--batch-size 16 differs from the checkpoint's 8" in err
    code, err = run_main(awac, ["--checkpoint", str(run / "checkpoint_offline.pt")], monkeypatch, capsys)
    assert code == 2 and "can be evaluated, not resumed" in err
    # a finished run resumed without flags returns its result and rewrites nothing; the run's own eval_episodes
    # (1) is kept, not the command line's default (10)
    again = awac.train(awac.Args(checkpoint=ckpt, progress=False))
    assert again["eval/return_mean"] == final["eval/return_mean"]
    assert (run / "final.json").read_text() == final_text
    assert json.loads((run / "config.json").read_text())["eval_episodes"] == 1


def test_a_moved_run_resumes_from_its_new_place_and_another_run_dir_is_refused(finished_run, tmp_path):
    run = finished_run[0]
    moved = tmp_path / "moved"
    shutil.copytree(run, moved / "done")
    ckpt = str(moved / "done" / "checkpoint.pt")
    with pytest.raises(ArgumentError, match="--run-dir .* differs from the checkpoint's"):
        awac.train(awac.Args(checkpoint=ckpt, run_dir=str(tmp_path / "elsewhere"), run_name="done", progress=False))
    awac.train(awac.Args(checkpoint=ckpt, run_dir=str(moved), run_name="done", online_steps=30, progress=False))
    last_env_step = lambda d: d.joinpath("metrics.csv").read_text().splitlines()[-1].split(",")[-1]  # noqa: E731
    assert last_env_step(moved / "done") == "30" and last_env_step(run) == "20"  # the original is untouched
    assert json.loads((moved / "done" / "config.json").read_text())["run_dir"] == str(moved)
    assert json.loads((moved / "done" / "final.json").read_text())["run_dir"] == str(moved / "done")


def test_wandb_online_without_a_key_names_offline_mode(tmp_path, small_pen_binary):
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("WANDB")}
    env.update(
        NETRC=str(tmp_path / "no-netrc"),
        WANDB_CONFIG_DIR=str(tmp_path),
        HOME=str(tmp_path),
        AWAC_DATA_DIR=env.get("AWAC_DATA_DIR", str(tmp_path)),
    )
    res = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bc.py"),
            "--env-id",
            "pen-binary",
            "--dataset",
            str(small_pen_binary[1]),
            "--wandb-mode",
            "online",
            "--run-dir",
            str(tmp_path / "runs"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert res.returncode == 2, res.stderr[-2000:]
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("error: W&B could not start in online mode (") and "--wandb-mode offline" in last
