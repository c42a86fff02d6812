"""The paper's locomotion setting: SAC experts exported from sac_fd.py runs, the expert/BC/awac datasets built from
them, terminal vs timeout flags, default datasets and AWAC's per-family settings."""

import dataclasses
import math

import numpy as np
import pytest

import awac
import sac_fd
import utils.datasets as ds
from utils import experts
from utils.datasets import DatasetError

TASKS = {"halfcheetah": "HalfCheetah-v5", "walker2d": "Walker2d-v5", "ant": "Ant-v5"}


@pytest.fixture(scope="module")
def tiny_experts(tmp_path_factory):
    """A 60-step SAC run per task, exported as <task>-sac-expert.npz into a directory of its own."""
    root = tmp_path_factory.mktemp("experts")
    for task, env_id in TASKS.items():
        sac_fd.train(
            sac_fd.Args(
                env_id=env_id,
                dataset="none",
                learning_starts=30,
                online_steps=60,
                batch_size=16,
                hidden_dims=(16, 16),
                eval_every=1000,
                eval_episodes=1,
                run_dir=str(root / "runs"),
                run_name=task,
                wandb_mode="disabled",
                progress=False,
                threads=1,
            )
        )
        experts.export(root / "runs" / task / "checkpoint.pt", task, root / "assets", episodes=1)
    return root / "assets"


@pytest.mark.parametrize("task", TASKS)
def test_expert_export_and_the_paper_recipe_build_on_each_env(task, tiny_experts, tmp_path):
    env_id, path = TASKS[task], tiny_experts / f"{task}-sac-expert.npz"
    expert = ds.SACExpert(path, env_id)
    assert expert.metadata["env_id"] == env_id and expert.metadata["env_steps"] == 60
    assert "python sac_fd.py" in expert.metadata["command"] and math.isfinite(expert.metadata["return_mean"])
    assert f"{ds.sha256_of(path)}  {task}-sac-expert.npz" in (tiny_experts / "SHA256SUMS").read_text()
    row = [line for line in experts.markdown_table(tiny_experts).splitlines() if line.startswith(f"| {task} |")]
    assert len(row) == 1 and f"| {env_id} |" in row[0] and "| 60 | 0 |" in row[0] and "python sac_fd.py" in row[0]
    obs = np.zeros(expert.obs_dim)
    assert np.all(np.abs(expert.mean(obs)) < 1) and expert.sample(obs, np.random.default_rng(0)).shape == (
        expert.act_dim,
    )
    with pytest.raises(DatasetError, match="is for observation/action dimensions"):
        ds.SACExpert(path, "Ant-v5" if task != "ant" else "HalfCheetah-v5")
    if task == "halfcheetah":  # the same sizes as Walker2d's: refused by the task it records
        with pytest.raises(DatasetError, match="was trained on 'HalfCheetah-v5', not 'Walker2d-v5'"):
            ds.SACExpert(path, "Walker2d-v5")

    demos = ds.build_dataset(f"{task}-expert", episodes=2, cache_dir=tmp_path, progress=False, expert_policy=path)
    ds.save_dataset(demos, ds.cache_path(f"{task}-expert", 0, tmp_path))  # the prior build reuses these 2
    data = ds.build_dataset(
        f"{task}-awac", episodes=2, bc_steps=20, cache_dir=tmp_path, progress=False, expert_policy=path
    )
    ds.validate(data, env_id)
    assert data["metadata"]["num_episodes"] == 4 and data["metadata"]["env_id"] == env_id
    assert data["metadata"]["expert_policy"]["sha256"] == ds.sha256_of(path)
    assert not np.any(data["terminals"] & data["timeouts"])
    assert np.all(np.abs(data["actions"]) <= 1)
    assert "normalized_score_mean" in ds.summarize(data)


def test_a_fall_is_a_terminal_and_the_time_limit_a_timeout():
    """Walker2d falls under random actions: its last step is terminal, not a timeout, so no algorithm bootstraps
    through it (tests/test_awac.py and test_baselines.py check that the targets never do). HalfCheetah never falls:
    its episode ends by the 1000-step limit, a timeout."""
    rng = np.random.default_rng(0)
    walker = ds.rollout(lambda o: rng.uniform(-1, 1, 6), "Walker2d-v5", 1, seed=0, progress=False)
    n = len(walker["rewards"])
    assert n < 1000 and walker["terminals"][-1] and walker["terminals"].sum() == 1 and not walker["timeouts"].any()
    cheetah = ds.rollout(lambda o: rng.uniform(-1, 1, 6), "HalfCheetah-v5", 1, seed=0, progress=False)
    assert len(cheetah["rewards"]) == 1000 and cheetah["timeouts"][-1] and cheetah["timeouts"].sum() == 1
    assert not cheetah["terminals"].any()


def test_default_datasets_and_a_dataset_of_another_task_is_refused(tiny_experts, tmp_path, monkeypatch):
    assert ds.default_dataset("Walker2d-v5") == "walker2d-awac" and ds.default_dataset("door-binary") == "door-binary"
    assert ds.default_dataset("Hopper-v5") == "Hopper-v5"  # no prior data known: an unknown-dataset error names ids
    monkeypatch.setattr("utils.expert_policies.LOCOMOTION_ASSETS", tmp_path / "none-shipped")
    with pytest.raises(
        DatasetError,
        match="no SAC expert for .walker2d. is shipped .*`python sac_fd.py --env-id Walker2d-v5 --dataset none",
    ):
        ds.load_dataset(ds.default_dataset("Walker2d-v5"), "Walker2d-v5", cache_dir=tmp_path, progress=False)
    cheetah = ds.build_dataset(
        "halfcheetah-expert",
        episodes=1,
        cache_dir=tmp_path,
        progress=False,
        expert_policy=tiny_experts / "halfcheetah-sac-expert.npz",
    )
    with pytest.raises(
        DatasetError,
        match="was made for 'HalfCheetah-v5', not 'Walker2d-v5' .*observation dimension 17, action dimension 6",
    ):
        ds.validate(cheetah, "Walker2d-v5")
    with pytest.raises(DatasetError, match="observations of dimension 17 but environment 'Ant-v5' expects 105"):
        ds.validate(cheetah, "Ant-v5")


def test_cached_data_of_an_earlier_shipped_expert_is_rebuilt(tiny_experts, tmp_path, monkeypatch):
    """A new export replaces a shipped expert: datasets cached from the earlier one (and their components) are stale
    and are rebuilt from the new one, never silently reused."""
    assets = tmp_path / "assets"
    assets.mkdir()
    name = "halfcheetah-sac-expert.npz"
    monkeypatch.setattr("utils.expert_policies.LOCOMOTION_ASSETS", assets)

    def ship(weights_scale: float) -> str:
        with np.load(tiny_experts / name) as f:
            arrays = {k: f[k] * weights_scale if k.startswith("weight_") else f[k] for k in f.files}
        np.savez(assets / name, **arrays)
        (assets / "SHA256SUMS").write_text(f"{ds.sha256_of(assets / name)}  {name}\n")
        return ds.sha256_of(assets / name)

    first = ship(1.0)
    monkeypatch.setitem(
        ds.DATASETS, "halfcheetah-expert", dataclasses.replace(ds.DATASETS["halfcheetah-expert"], episodes=1)
    )
    data = ds.load_cached("halfcheetah-expert", cache_dir=tmp_path / "cache", progress=False)
    assert data["metadata"]["expert_policy"] == {"path": f"shipped:{name}", "sha256": first}
    second = ship(0.5)
    again = ds.load_cached("halfcheetah-expert", cache_dir=tmp_path / "cache", progress=False)
    assert again["metadata"]["expert_policy"]["sha256"] == second != first
    assert not np.array_equal(again["actions"], data["actions"])


def test_bc_policy_of_the_locomotion_recipe_ignores_inputs_constant_in_its_data():
    """An Ant contact force that is 0 in every demonstration and not in a BC rollout must not move the BC policy's
    actions (robust_obs); standardized inputs are clipped to [-10, 10]. The hand tasks' plain standardization is
    what their datasets were built with, and it does react."""
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(500, 4)).astype(np.float32)
    obs[:, 3] = 0.0  # never touched in the demonstrations
    data = {"observations": obs, "actions": np.tanh(obs[:, :2] * 0.5).astype(np.float32)}
    touched = obs[0].copy()
    touched[3] = 50.0
    far, farther = obs[0].copy(), obs[0].copy()
    far[0], farther[0] = 1e3, 1e6

    def means(robust: bool) -> list[np.ndarray]:  # a fresh policy per call: the same noise draw, so only means differ
        return [
            ds.train_bc_policy(data, 50, seed=0, progress=False, robust_obs=robust)(o)
            for o in (obs[0], touched, far, farther)
        ]

    base, moved, far1, far2 = means(robust=True)
    np.testing.assert_array_equal(base, moved)
    np.testing.assert_array_equal(far1, far2)  # clipped at 10 standard deviations
    plain = means(robust=False)
    assert not np.allclose(plain[0], plain[1])


def test_awac_takes_each_task_familys_settings_unless_given():
    hand = awac.family_defaults(awac.Args(env_id="door-binary", hidden_dims=(64, 64)))
    assert (hand.beta, hand.advantage_clip, hand.value_from_mean, hand.actor_hidden_dims) == (0.5, 0.5, True, (64, 64))
    walker = awac.family_defaults(awac.Args(env_id="Walker2d-v5"))
    assert (walker.beta, walker.advantage_clip, walker.value_from_mean) == (2.0, math.inf, False)
    assert walker.actor_hidden_dims == (256,) * 4 and walker.hidden_dims == (256, 256)
    given = awac.family_defaults(awac.Args(env_id="Walker2d-v5", beta=0.3, advantage_clip=1.0))
    assert (given.beta, given.advantage_clip) == (0.3, 1.0)


def test_awac_runs_on_a_locomotion_task_without_hand_task_settings(tiny_experts, tmp_path):
    data = ds.build_dataset(
        "walker2d-expert",
        episodes=3,
        cache_dir=tmp_path,
        progress=False,
        expert_policy=tiny_experts / "walker2d-sac-expert.npz",
    )
    path = ds.save_dataset(data, tmp_path / "walker.npz")
    final = awac.train(
        awac.Args(
            env_id="Walker2d-v5",
            dataset=str(path),
            offline_steps=20,
            online_steps=30,
            batch_size=16,
            offline_batch_size=16,
            hidden_dims=(16, 16),
            actor_hidden_dims=(16, 16),
            eval_every=1000,
            eval_episodes=1,
            run_dir=str(tmp_path),
            wandb_mode="disabled",
            progress=False,
            threads=1,
        )
    )
    assert math.isnan(final["eval/success_rate"]) and math.isfinite(final["eval/return_mean"])
    import json
    from pathlib import Path

    config = json.loads((Path(final["run_dir"]) / "config.json").read_text())
    assert config["beta"] == 2.0 and config["value_from_mean"] is False  # the resolved values are recorded
    assert config["advantage_clip"] == "inf"  # strict JSON: no Infinity/NaN literals that other parsers reject
    written = json.loads((Path(final["run_dir"]) / "final.json").read_text())
    assert written["eval/success_rate"] is None and written["eval/return_mean"] == final["eval/return_mean"]
    import torch

    ckpt = torch.load(Path(final["run_dir"]) / "checkpoint.pt", weights_only=True)
    again = awac.train(
        awac.Args(checkpoint=str(Path(final["run_dir"]) / "checkpoint.pt"), eval_only=True, progress=False)
    )
    assert again["eval/return_mean"] == final["eval/return_mean"]
    del ckpt["args"]["actor_hidden_dims"]  # as a version before the per-family settings (two versions ago) wrote it
    old = tmp_path / "old" / "checkpoint.pt"
    old.parent.mkdir()
    torch.save(ckpt, old)
    with pytest.raises(ValueError, match="lacks actor_hidden_dims: a version before the per-task settings"):
        awac.train(awac.Args(checkpoint=str(old), eval_only=True, progress=False))


def test_the_recorded_command_reruns_in_a_shell_with_the_home_directory_shortened():
    import shlex
    import subprocess
    from pathlib import Path

    command = experts.command_of(
        {
            "env_id": "Ant-v5",
            "run_dir": str(Path.home() / "my runs"),
            "online_steps": 600,
            "seed": 0,
            "checkpoint": "x.pt",
        }
    )
    assert command.startswith("python sac_fd.py") and str(Path.home()) not in command and "--checkpoint" not in command
    echoed = subprocess.run(
        ["bash", "-c", "printf '%s\\n' " + command.removeprefix("python ")], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert echoed[echoed.index("--run-dir") + 1] == str(Path.home() / "my runs") and "--seed" not in echoed
    assert shlex.split(command)[2:4] == ["--env-id", "Ant-v5"]


def test_the_experts_tool_copies_of_sac_fd_settings_agree_with_sac_fd():
    """utils/experts.py must not import sac_fd.py (a library never imports a script), so it keeps two copies of
    sac_fd's settings; this keeps them equal."""
    from utils import experts

    recorded = {
        k: v for k, v in dataclasses.asdict(sac_fd.Args()).items() if k not in ("checkpoint", "eval_only", "progress")
    }  # never part of a recorded command
    assert experts.SAC_FD_DEFAULTS == recorded
    assert experts.SAC_LOG_STD_RANGE == (sac_fd.TanhGaussianActor.LOG_STD_MIN, sac_fd.TanhGaussianActor.LOG_STD_MAX)
