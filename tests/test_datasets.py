"""Datasets: the door replay's fidelity, schema, generation determinism, and every bad-input error."""

import json
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

import utils.datasets as ds
from conftest import ROOT, random_rollout_dataset
from utils.datasets import (DATASETS, DatasetError, asset_path, build_dataset, episode_slices, load_dataset,
                            read_file, save_dataset, summarize)


def check_schema(data, obs_dim, act_dim):
    n = len(data["rewards"])
    assert data["observations"].shape == (n, obs_dim) and data["observations"].dtype == np.float32
    assert data["next_observations"].shape == (n, obs_dim) and data["next_observations"].dtype == np.float32
    assert data["actions"].shape == (n, act_dim) and data["actions"].dtype == np.float32
    assert data["rewards"].shape == (n,) and data["rewards"].dtype == np.float32
    assert data["terminals"].dtype == bool and data["timeouts"].dtype == bool
    assert np.abs(data["actions"]).max() <= 1.0
    assert data["metadata"]["num_transitions"] == n


def test_door_replay_reproduces_the_recorded_demonstrations(door_human):
    raw = np.load(asset_path("door-human-demos.npz"))
    recorded = raw["observations"]
    eps = episode_slices(door_human)
    assert [s.stop - s.start for s in eps] == raw["episode_lengths"].tolist()
    errors = np.concatenate([np.abs(door_human["observations"][s][50:] - recorded[s][50:]) for s in eps])
    # Measured: per-dimension median error at most 0.0124, overall median 0.0017 (see assets/adroit/README.md).
    assert np.median(errors, axis=0).max() < 0.015
    assert np.median(errors) < 0.003
    goal = [door_human["rewards"][s] == 0 for s in eps]
    assert sum(g.any() for g in goal) == 8, "8 of 25 demonstrations reach the goal at some step"
    assert sum(g[-1] for g in goal) == 6, "6 of 25 at their final step"


def test_door_human_schema_and_episode_ends(door_human):
    check_schema(door_human, 39, 28)
    assert door_human["metadata"]["num_episodes"] == 25
    assert not door_human["terminals"].any()
    ends = np.flatnonzero(door_human["timeouts"])
    assert ends.tolist() == (np.cumsum(np.load(asset_path("door-human-demos.npz"))["episode_lengths"]) - 1).tolist()
    # next_observations continue the episode: row t's next is row t+1's observation, except at episode ends
    inner = np.setdiff1d(np.arange(len(ends) and ends[-1]), ends)
    np.testing.assert_array_equal(door_human["next_observations"][inner], door_human["observations"][inner + 1])
    assert set(np.unique(door_human["rewards"])) == {0.0, -1.0}


def test_generated_binary_dataset_schema_and_summary(small_pen_binary):
    data, _ = small_pen_binary
    check_schema(data, 45, 24)
    assert data["metadata"]["num_episodes"] == 25 + 4
    assert len(data["rewards"]) == 29 * 100  # pen's horizon is 100; every episode runs to its time limit
    assert data["timeouts"].sum() == 29 and not data["terminals"].any()
    summary = summarize(data)
    assert summary["episodes"] == 29 and summary["transitions"] == 2900
    assert 0.0 <= summary["success_fraction"] <= summary["goal_reached_fraction"] <= 1.0
    # The DAPG pen expert succeeds in most episodes, so the demonstrations (first 25 episodes) are mostly successes.
    demos = {k: data[k][:2500] for k in ("rewards", "terminals", "timeouts")}
    assert summarize({**demos, "metadata": data["metadata"]})["success_fraction"] >= 0.4


def test_same_seed_same_data_different_seed_different_data(cache_dir):
    a = build_dataset("pen-bc", seed=1, episodes=2, bc_steps=20, progress=False)
    b = build_dataset("pen-bc", seed=1, episodes=2, bc_steps=20, progress=False)
    c = build_dataset("pen-bc", seed=2, episodes=2, bc_steps=20, progress=False)
    for k in ds.ARRAY_KEYS:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["observations"], c["observations"])


def test_saved_dataset_round_trips_and_is_cached(small_pen_binary, cache_dir):
    data, path = small_pen_binary
    loaded = load_dataset(str(path), env_id="pen-binary")
    for k in ds.ARRAY_KEYS:
        np.testing.assert_array_equal(loaded[k], data[k])
    assert loaded["metadata"]["env_id"] == "pen-binary"
    assert ds.cache_path("door-human").is_file(), "load_dataset caches what it builds"


def test_hdf5_in_d4rl_layout_without_next_observations(tmp_path, door_human):
    path = tmp_path / "d4rl.hdf5"
    with h5py.File(path, "w") as f:
        for k in ("observations", "actions", "rewards", "terminals", "timeouts"):
            f[k] = door_human[k][:600]
    data = load_dataset(str(path), env_id="door-binary")
    # D4RL's qlearning_dataset: each episode's last transition (next observation unknown) is dropped
    assert len(data["rewards"]) == 599 - door_human["timeouts"][:599].sum()
    np.testing.assert_array_equal(data["next_observations"][:100], door_human["observations"][1:101])
    first_end = np.flatnonzero(door_human["timeouts"])[0]
    assert data["timeouts"][first_end - 1], "the new last transition of an episode is a timeout"


def test_dimension_mismatch_names_both(door_human):
    with pytest.raises(DatasetError, match=r"observations of dimension 39 but environment 'pen-binary' expects 45"):
        ds.validate(door_human, "pen-binary")
    with pytest.raises(DatasetError, match="made for 'door-binary'"):
        ds.validate(door_human, "pen-binary")


def test_nan_is_reported_with_count_and_first_row(tmp_path, door_human):
    obs = door_human["observations"][:100].copy()
    obs[17, 3] = np.nan
    obs[40, 0] = np.inf
    path = tmp_path / "nan.npz"
    np.savez(path, observations=obs, actions=door_human["actions"][:100], rewards=door_human["rewards"][:100],
             terminals=door_human["terminals"][:100], next_observations=door_human["next_observations"][:100])
    with pytest.raises(DatasetError, match=r"'observations' holds 2 NaN/inf values, first in row 17"):
        load_dataset(str(path))


def test_missing_keys_are_listed(tmp_path):
    path = tmp_path / "partial.npz"
    np.savez(path, observations=np.zeros((5, 3)), rewards=np.zeros(5))
    with pytest.raises(DatasetError, match=r"lacks the keys \['actions', 'terminals'\]"):
        load_dataset(str(path))


def test_corrupt_and_missing_files(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file at all")
    with pytest.raises(DatasetError, match="cannot read dataset file .*corrupt"):
        load_dataset(str(bad))
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(str(tmp_path / "nowhere.npz"))


def test_unknown_dataset_lists_the_ids():
    with pytest.raises(DatasetError, match="unknown dataset 'door-humna'.*door-human"):
        load_dataset("door-humna")
    assert {"door-human", "pen-binary", "door-binary", "relocate-binary", "pen-expert"} <= set(DATASETS)


def test_checksum_mismatch_is_detected(tmp_path, monkeypatch):
    shutil.copytree(ds.ASSETS, tmp_path / "adroit")
    target = tmp_path / "adroit" / "pen-dapg-expert-policy.npz"
    target.chmod(0o644)
    blob = bytearray(target.read_bytes())
    blob[1000] ^= 0xFF
    target.write_bytes(bytes(blob))
    monkeypatch.setattr(ds, "ASSETS", tmp_path / "adroit")
    with pytest.raises(DatasetError, match="checksum mismatch"):
        ds.ExpertPolicy("pen")
    asset_path("door-dapg-expert-policy.npz")  # the untouched files still pass


def test_expert_policy_solves_door():
    from utils.envs import evaluate

    expert = ds.ExpertPolicy("door")
    result = evaluate(expert.mean, "door-binary", episodes=2, seed=0)
    assert result["success_rate"] == 1.0


def test_random_rollout_stores_terminals_not_timeouts():
    data = random_rollout_dataset("Hopper-v5", episodes=3, seed=0)  # a random hopper falls: true terminals
    assert data["terminals"].sum() == 3 and not data["timeouts"].any()
    assert len(episode_slices(data)) == 3


def test_cli_list_and_build(cache_dir):
    env = {"AWAC_DATA_DIR": str(cache_dir), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "utils.datasets", "list"], cwd=ROOT, capture_output=True,
                         text=True, check=True, env=env).stdout
    assert "door-binary" in out and "relocate-expert" in out
    res = subprocess.run([sys.executable, "-m", "utils.datasets", "build", "door-human"], cwd=ROOT,
                         capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["transitions"] == 6729 and summary["episodes"] == 25 and summary["goal_reached_fraction"] == 0.32
    res = subprocess.run([sys.executable, "-m", "utils.datasets", "build", "nope"], cwd=ROOT, capture_output=True,
                         text=True, env=env)
    assert res.returncode == 2 and "unknown dataset 'nope'" in res.stderr


def test_minari_dataset_installed_locally(tmp_path, monkeypatch, door_human):
    """The real Minari loading path, on a Minari dataset this test writes (no download ever happens)."""
    import minari
    from minari.data_collector import EpisodeBuffer

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    with pytest.raises(DatasetError, match="not installed locally.*minari download D4RL/door/human-v2"):
        load_dataset("minari:D4RL/door/human-v2")
    episodes = episode_slices(door_human)[:3]
    buffers = [EpisodeBuffer(observations=np.concatenate([door_human["observations"][s],
                                                          door_human["next_observations"][s][-1:]]),
                             actions=door_human["actions"][s], rewards=door_human["rewards"][s],
                             terminations=np.zeros(s.stop - s.start, bool),
                             truncations=np.arange(s.stop - s.start) == s.stop - s.start - 1) for s in episodes]
    from utils.envs import make_env

    env = make_env("door-binary")
    minari.create_dataset_from_buffers("test/door-human-v0", buffers, env=env, eval_env=env, algorithm_name="replay",
                                       author="tests", author_email="tests@localhost", description="3 demos")
    data = load_dataset("minari:test/door-human-v0", env_id="door-binary")
    n = episodes[-1].stop
    for k in ds.ARRAY_KEYS:
        np.testing.assert_array_equal(data[k], door_human[k][:n])
    assert data["metadata"]["source"] == "minari:test/door-human-v0"


def test_episode_ends_are_inferred_when_a_file_has_no_timeouts(tmp_path, door_human):
    path = tmp_path / "no_timeouts.npz"
    n = 700
    np.savez(path, **{k: door_human[k][:n] for k in ("observations", "actions", "rewards", "terminals",
                                                       "next_observations")})
    data = load_dataset(str(path))
    np.testing.assert_array_equal(np.flatnonzero(data["timeouts"]),
                                  np.append(np.flatnonzero(door_human["timeouts"][:n - 1]), n - 1))


# Waits until both processes are ready, so that they build at the same moment, then loads (and so builds) the id.
CONCURRENT_LOAD = """
import sys, time
from pathlib import Path
import numpy as np
from utils.datasets import ARRAY_KEYS, load_dataset
barrier, out = Path(sys.argv[1]), sys.argv[2]
(barrier / out.replace("/", "_")).touch()
deadline = time.time() + 60
while len(list(barrier.iterdir())) < 2 and time.time() < deadline:
    time.sleep(0.005)
data = load_dataset("door-human", progress=False)
np.savez(out, **{k: data[k] for k in ARRAY_KEYS})
"""


def test_concurrent_builds_of_one_id_on_an_empty_cache(tmp_path):
    """Two processes that build door-human at once into an empty cache both succeed with the same arrays; one
    builds, the other waits for it and reads its file (before the per-id lock and unique temporary files, both
    wrote `<id>.npz.tmp.npz` and the second `os.replace` died with FileNotFoundError)."""
    cache, barrier = tmp_path / "cache", tmp_path / "barrier"
    barrier.mkdir()
    env = {**os.environ, "AWAC_DATA_DIR": str(cache), "OMP_NUM_THREADS": "1"}
    outs = [tmp_path / f"out{i}.npz" for i in range(2)]
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT_LOAD, str(barrier), str(out)], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for out in outs]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    for rc, err in results:
        assert rc == 0, err
    assert sum("waiting for" in err for _, err in results) == 1, "the second process waits instead of building"
    assert sorted(p.name for p in cache.iterdir()) == ["door-human-seed0.lock", "door-human-seed0.npz"], \
        "no temporary file is left behind"
    cached = read_file(cache / "door-human-seed0.npz")
    for out in outs:
        with np.load(out) as returned:
            for k in ds.ARRAY_KEYS:
                np.testing.assert_array_equal(returned[k], cached[k])



# Appends a line of its own to the notice that the installed gymnasium-robotics prints on import and makes a hand
# env, then raises a warning through the same stderr filter: only the notice may be dropped.
ROBOTICS_IMPORT = """
import importlib.metadata, warnings
from farama_notifications import notifications
robotics = notifications.setdefault("gymnasium_robotics", {})
version = importlib.metadata.version("gymnasium-robotics")
robotics[version] = robotics.get(version, "") + "\\nanother notice"
from utils.envs import DENSE_REWARD_NOTICE, _stderr_without, make_env
make_env("pen-binary").reset(seed=0)
with _stderr_without(DENSE_REWARD_NOTICE):
    warnings.warn("another warning")
"""


def test_only_the_dense_reward_notice_of_gymnasium_robotics_is_silenced():
    res = subprocess.run([sys.executable, "-c", ROBOTICS_IMPORT], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr
    assert "reward functions were updated in v1.2.1" not in res.stderr
    assert "another notice" in res.stderr, "other output of the import still reaches stderr"
    assert "UserWarning: another warning" in res.stderr, "warnings are not silenced"
