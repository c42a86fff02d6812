"""`python -m utils.datasets export ID --minari NAME` writes a local Minari dataset that loads back identical."""

import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, random_rollout_dataset

import utils.datasets as ds
from utils.datasets import DatasetError


@pytest.fixture()
def minari_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    return tmp_path / "minari"


def test_round_trip_of_a_generated_dataset_from_the_command_line(small_pen_binary, minari_dir, tmp_path):
    data, path = small_pen_binary
    env = {"MINARI_DATASETS_PATH": str(minari_dir), "PATH": "/usr/bin:/bin", "AWAC_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "utils.datasets", "export", str(path), "--minari", "awac/pen-small-v0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "wrote Minari dataset 'awac/pen-small-v0' (" in done.stdout
    back = ds.load_dataset("minari:awac/pen-small-v0", env_id="pen-binary")
    for k in ds.ARRAY_KEYS:
        assert back[k].dtype == data[k].dtype and np.array_equal(back[k], data[k]), k
    assert back["metadata"]["recipe"] == data["metadata"]["recipe"] and back["metadata"]["seed"] == 0
    assert back["metadata"]["source"].startswith("minari:awac/pen-small-v0 (exported from: ")
    import minari

    recovered = minari.load_dataset("awac/pen-small-v0").recover_environment()  # the binary task, wrapper included
    recovered.reset(seed=0)
    assert recovered.step(recovered.action_space.sample())[1] in (0.0, -1.0)
    again = subprocess.run(
        [sys.executable, "-m", "utils.datasets", "export", str(path), "--minari", "awac/pen-small-v0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 2 and "exists already: delete it (`minari delete awac/pen-small-v0`)" in again.stderr


def test_terminations_and_truncations_map_exactly(minari_dir):
    """Walker2d falls (a termination) within random episodes; HalfCheetah runs to its time limit (a truncation)."""
    walker = random_rollout_dataset("Walker2d-v5", episodes=3, seed=0)
    assert walker["terminals"].sum() == 3 and not walker["timeouts"].any()
    ds.export_minari(walker, "test/walker-v0", "Walker2d-v5")
    back = ds.read_minari("test/walker-v0")
    for k in ds.ARRAY_KEYS:
        assert np.array_equal(back[k], walker[k]), k


def test_data_that_cannot_be_minari_episodes_is_refused(small_pen_binary, minari_dir):
    data, _ = small_pen_binary
    broken = {**data, "next_observations": data["next_observations"].copy()}
    broken["next_observations"][3] += 1.0
    with pytest.raises(
        DatasetError, match=r"episode 0 \(rows 0-199\): next_observations\[3\] is not observations\[4\]"
    ):
        ds.export_minari(broken, "test/broken-v0", "pen-binary")
    import minari

    assert "test/broken-v0" not in minari.list_local_datasets()


def test_an_env_with_other_action_bounds_round_trips_and_raw_actions_are_mapped(minari_dir):
    """Pendulum's torque range [-2, 2] is [-1, 1] through make_env: its export keeps a recoverable env spec, and a
    Minari dataset recorded in the raw range (as D4RL's for Humanoid would be) reads back mapped onto [-1, 1]."""
    import gymnasium as gym
    import minari
    from minari.data_collector import EpisodeBuffer

    pendulum = random_rollout_dataset("Pendulum-v1", episodes=2, seed=0)
    assert np.abs(pendulum["actions"]).max() <= 1
    ds.export_minari(pendulum, "test/pendulum-v0", "Pendulum-v1")
    back = ds.read_minari("test/pendulum-v0")
    for k in ds.ARRAY_KEYS:
        assert np.array_equal(back[k], pendulum[k]), k
    assert "actions_rescaled_from" not in back["metadata"]
    env = minari.load_dataset("test/pendulum-v0").recover_environment()
    assert env.action_space.high.max() == 1 and env.unwrapped.action_space.high.max() == 2

    episode = slice(0, 200)
    raw = EpisodeBuffer(
        id=0,
        observations=np.concatenate([pendulum["observations"][episode], pendulum["next_observations"][199:200]]),
        actions=2 * pendulum["actions"][episode],
        rewards=pendulum["rewards"][episode],
        terminations=pendulum["terminals"][episode],
        truncations=pendulum["timeouts"][episode],
        infos={},
    )
    minari.create_dataset_from_buffers(
        "test/pendulum-raw-v0",
        [raw],
        env=gym.make("Pendulum-v1").spec,
        observation_space=env.observation_space,
        action_space=gym.make("Pendulum-v1").action_space,
        data_format="hdf5",
        algorithm_name="random",
        author="tests",  # Minari warns about each of these three when absent
        author_email="tests@localhost",
        code_permalink="tests/test_minari_export.py",
        description="raw torques",
        eval_env="Pendulum-v1",
    )
    mapped = ds.load_dataset("minari:test/pendulum-raw-v0", env_id="Pendulum-v1")
    np.testing.assert_allclose(mapped["actions"], pendulum["actions"][episode], atol=1e-6)
    assert mapped["metadata"]["actions_rescaled_from"] == [[-2.0], [2.0]]
