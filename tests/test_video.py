"""--capture-video: mp4s of evaluation episodes that decode, never change the numbers, and fail early when MuJoCo
cannot render (conftest sets MUJOCO_GL=egl, as .ci/run does)."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from conftest import ROOT, random_rollout_dataset

import awac
import bc
from utils.datasets import save_dataset
from utils.envs import evaluate, make_env
from utils.run.logger import Logger


def frames_of(path: Path) -> np.ndarray:
    return np.stack(list(iio.imiter(path)))


def test_a_recorded_evaluation_decodes_and_has_the_same_numbers(tmp_path):
    space = make_env("pen-binary").action_space
    policy = lambda obs: np.clip(np.sin(obs[: space.shape[0]] * 3.0), -1, 1)  # noqa: E731  deterministic, not zero
    plain = evaluate(policy, "pen-binary", 2, seed=7)
    video = tmp_path / "sub" / "pen.mp4"
    recorded = evaluate(policy, "pen-binary", 2, seed=7, video=video)
    assert recorded == plain
    frames = frames_of(video)
    assert frames.shape == (201, 480, 480, 3)  # the reset and 200 steps of the first episode
    assert frames.std() > 5 and not np.array_equal(frames[0], frames[-1])  # a scene that moves, not a blank


def test_runs_record_each_evaluation_and_eval_only_records_a_checkpoint(tmp_path):
    """On InvertedPendulum (a MuJoCo task whose untrained pole falls within steps, so videos stay short)."""
    path = save_dataset(random_rollout_dataset("InvertedPendulum-v5", episodes=10, seed=0), tmp_path / "pole.npz")
    common = dict(
        env_id="InvertedPendulum-v5",
        dataset=str(path),
        hidden_dims=(16, 16),
        eval_episodes=1,
        threads=1,
        wandb_mode="disabled",
        progress=False,
        run_dir=str(tmp_path),
    )
    final = awac.train(
        awac.Args(
            offline_steps=10,
            online_steps=20,
            batch_size=16,
            offline_batch_size=16,
            actor_hidden_dims=(16, 16),
            eval_every=20,
            run_name="awac",
            capture_video=True,
            **common,
        )
    )
    run = Path(final["run_dir"])
    videos = sorted((run / "videos").iterdir())
    assert [p.name for p in videos] == ["offline-0000000.mp4", "online-0000000.mp4", "online-0000020.mp4"]
    with (run / "metrics.csv").open() as f:  # each video is its evaluation's first (here: only) episode
        lengths = [float(r["eval/length_mean"]) for r in csv.DictReader(f) if r.get("eval/length_mean")]
    assert [frames_of(p).shape[0] for p in videos] == [int(n) + 1 for n in lengths]
    again = awac.train(
        awac.Args(checkpoint=str(run / "checkpoint.pt"), eval_only=True, capture_video=True, progress=False)
    )
    assert again["eval/return_mean"] == final["eval/return_mean"]
    assert frames_of(run / "videos" / "eval-only-checkpoint.mp4").shape[0] == int(lengths[-1]) + 1
    bc_final = bc.train(bc.Args(offline_steps=0, run_name="bc", capture_video=True, **common))  # its final eval
    assert [p.name for p in (Path(bc_final["run_dir"]) / "videos").iterdir()] == ["offline-0000000.mp4"]


@pytest.mark.parametrize("backend", ["osmesa", None])
def test_capture_video_without_rendering_fails_at_start_naming_mujoco_gl(tmp_path, small_pen_binary, backend):
    """osmesa is not installed on these machines, and GLFW needs a display: both must fail before any work."""
    _, path = small_pen_binary
    env = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "DISPLAY", "WAYLAND_DISPLAY")}
    if backend:
        env["MUJOCO_GL"] = backend
    probe = subprocess.run(
        [sys.executable, "-c", "from utils.envs import check_rendering; check_rendering('pen-binary')"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=120,
    )
    if probe.returncode == 0:  # decided before the run, which would otherwise train (tiny budget: it ends anyway)
        pytest.skip(f"MuJoCo renders here even with MUJOCO_GL={backend}")
    done = subprocess.run(
        [
            sys.executable,
            "awac.py",
            "--env-id",
            "pen-binary",
            "--dataset",
            str(path),
            "--capture-video",
            "--run-dir",
            str(tmp_path / "runs"),
            "--wandb-mode",
            "disabled",
            "--offline-steps",
            "1",
            "--online-steps",
            "1",
            "--eval-episodes",
            "1",
            "--hidden-dims",
            "8",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2 and "error: --capture-video: MuJoCo cannot render here" in done.stderr
    assert "MUJOCO_GL=egl" in done.stderr and not (tmp_path / "runs").exists()


def test_videos_go_to_wandb_as_eval_video(tmp_path):
    """With W&B on (offline here), a recorded evaluation is logged as eval/video, an mp4 in the run's media."""
    video = tmp_path / "v.mp4"
    iio.imwrite(video, np.random.default_rng(0).integers(0, 255, (3, 64, 64, 3), dtype=np.uint8), fps=10)
    logger = Logger(tmp_path, awac.Args(wandb_mode="offline", wandb_project="test"))
    logger.log({"eval/return_mean": -100.0}, 5)
    logger.log_video(video, 5)
    logger.close()
    logged = list(tmp_path.glob("wandb/offline-run-*/files/media/videos/eval/video_*.mp4"))
    assert len(logged) == 1 and logged[0].read_bytes() == video.read_bytes()
