"""Datasets: the door replay's fidelity, schema, generation determinism, and every bad-input error."""

import json
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest
from conftest import ROOT, random_rollout_dataset

import utils.datasets as ds
from utils.datasets import (
    DATASETS,
    DatasetError,
    asset_path,
    build_dataset,
    episode_slices,
    load_dataset,
    read_file,
    save_dataset,
    summarize,
)


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
    assert len(data["rewards"]) == 29 * 200  # pen's horizon is 200 (rlkit's); every episode runs to its time limit
    assert data["timeouts"].sum() == 29 and not data["terminals"].any()
    summary = summarize(data)
    assert summary["episodes"] == 29 and summary["transitions"] == 5800
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


def test_actions_outside_minus_one_one_are_refused_naming_the_mapping(door_human):
    """Raw actions of an env with other bounds (e.g. Pendulum's torque in [-2, 2]) would be clipped by every agent:
    refused with the row and the linear map onto [-1, 1]; float noise just past 1 passes."""
    data = {**door_human, "actions": door_human["actions"].copy()}
    data["actions"][5, 2] = 1.0 + 1e-4
    ds.validate(data, "door-binary")
    data["actions"][7, 0] = -2.0
    with pytest.raises(
        DatasetError,
        match=r"actions up to 2 in absolute value \(first in row 7\), outside \[-1, 1\]"
        r".*a' = 2 \(a - low\) / \(high - low\) - 1",
    ):
        ds.validate(data, "door-binary")


def test_nan_is_reported_with_count_and_first_row(tmp_path, door_human):
    obs = door_human["observations"][:100].copy()
    obs[17, 3] = np.nan
    obs[40, 0] = np.inf
    path = tmp_path / "nan.npz"
    np.savez(
        path,
        observations=obs,
        actions=door_human["actions"][:100],
        rewards=door_human["rewards"][:100],
        terminals=door_human["terminals"][:100],
        next_observations=door_human["next_observations"][:100],
    )
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
    monkeypatch.setattr("utils.expert_policies.ASSETS", tmp_path / "adroit")
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
    out = subprocess.run(
        [sys.executable, "-m", "utils.datasets", "list"], cwd=ROOT, capture_output=True, text=True, check=True, env=env
    ).stdout
    assert "door-binary" in out and "relocate-expert" in out
    res = subprocess.run(
        [sys.executable, "-m", "utils.datasets", "build", "door-human"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
    )
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["transitions"] == 6729 and summary["episodes"] == 25 and summary["goal_reached_fraction"] == 0.32
    res = subprocess.run(
        [sys.executable, "-m", "utils.datasets", "build", "nope"], cwd=ROOT, capture_output=True, text=True, env=env
    )
    assert res.returncode == 2 and "unknown dataset 'nope'" in res.stderr


def test_minari_dataset_installed_locally(tmp_path, monkeypatch, door_human):
    """The real Minari loading path, on a Minari dataset this test writes (no download ever happens)."""
    import minari
    from minari.data_collector import EpisodeBuffer

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    with pytest.raises(DatasetError, match="not installed locally.*minari download D4RL/door/human-v2"):
        load_dataset("minari:D4RL/door/human-v2")
    episodes = episode_slices(door_human)[:3]
    buffers = [
        EpisodeBuffer(
            observations=np.concatenate([door_human["observations"][s], door_human["next_observations"][s][-1:]]),
            actions=door_human["actions"][s],
            rewards=door_human["rewards"][s],
            terminations=np.zeros(s.stop - s.start, bool),
            truncations=np.arange(s.stop - s.start) == s.stop - s.start - 1,
        )
        for s in episodes
    ]
    from utils.envs import make_env

    env = make_env("door-binary")
    minari.create_dataset_from_buffers(
        "test/door-human-v0",
        buffers,
        env=env,
        eval_env=env,
        algorithm_name="replay",
        author="tests",
        author_email="tests@localhost",
        code_permalink="tests/test_datasets.py",  # Minari warns when a dataset links to no code
        description="3 demos",
    )
    data = load_dataset("minari:test/door-human-v0", env_id="door-binary")
    n = episodes[-1].stop
    for k in ds.ARRAY_KEYS:
        np.testing.assert_array_equal(data[k], door_human[k][:n])
    assert data["metadata"]["source"] == "minari:test/door-human-v0"


def test_episode_ends_are_inferred_when_a_file_has_no_timeouts(tmp_path, door_human):
    path = tmp_path / "no_timeouts.npz"
    n = 700
    np.savez(
        path, **{k: door_human[k][:n] for k in ("observations", "actions", "rewards", "terminals", "next_observations")}
    )
    data = load_dataset(str(path))
    np.testing.assert_array_equal(
        np.flatnonzero(data["timeouts"]), np.append(np.flatnonzero(door_human["timeouts"][: n - 1]), n - 1)
    )


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
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CONCURRENT_LOAD, str(barrier), str(out)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for out in outs
    ]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    for rc, err in results:
        assert rc == 0, err
    assert sum("waiting for" in err for _, err in results) == 1, "the second process waits instead of building"
    assert sorted(p.name for p in cache.iterdir()) == ["door-human-seed0.lock", "door-human-seed0.npz"], (
        "no temporary file is left behind"
    )
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
    res = subprocess.run(
        [sys.executable, "-c", ROBOTICS_IMPORT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert res.returncode == 0, res.stderr
    assert "reward functions were updated in v1.2.1" not in res.stderr
    assert "another notice" in res.stderr, "other output of the import still reaches stderr"
    assert "UserWarning: another warning" in res.stderr, "warnings are not silenced"


def write_dapg_policy(path, obs_dim, act_dim, seed=0, hidden=32):
    """A random policy in the DAPG .npz format of utils/assets/adroit/ (small weights: a jittery but valid expert)."""
    rng = np.random.default_rng(seed)
    dims = [obs_dim, hidden, hidden, act_dim]
    arrays = {f"weight_{i}": 0.1 * rng.standard_normal((dims[i + 1], dims[i])) for i in range(3)}
    arrays.update({f"bias_{i}": np.zeros(dims[i + 1]) for i in range(3)})
    arrays.update(
        in_shift=np.zeros(obs_dim),
        in_scale=np.ones(obs_dim),
        out_shift=np.zeros(act_dim),
        out_scale=np.ones(act_dim),
        log_std=np.full(act_dim, -1.0),
    )
    np.savez(path, **arrays)
    return path


@pytest.fixture(scope="module")
def hammer_dims():
    from utils.envs import make_env

    env = make_env("hammer-binary")
    dims = env.observation_space.shape[0], env.action_space.shape[0]
    env.close()
    return dims


def test_hammer_from_a_user_expert_policy_is_built_cached_and_loaded_by_id(tmp_path, hammer_dims):
    obs_dim, act_dim = hammer_dims
    cache = tmp_path / "cache"
    policy = write_dapg_policy(tmp_path / "my-hammer.npz", obs_dim, act_dim)
    assert {"hammer-expert", "hammer-bc", "hammer-binary"} <= set(DATASETS)
    data = build_dataset(
        "hammer-binary", seed=0, episodes=2, bc_steps=20, cache_dir=cache, progress=False, expert_policy=policy
    )
    check_schema(data, obs_dim, act_dim)
    assert data["metadata"]["num_episodes"] == 25 + 2 and len(data["rewards"]) == 27 * 200
    sha = ds.sha256_of(policy)
    assert data["metadata"]["expert_policy"] == {"path": str(policy.resolve()), "sha256": sha}
    assert str(policy.resolve()) in data["metadata"]["source"] and sha in data["metadata"]["source"]
    save_dataset(data, ds.cache_path("hammer-binary", cache_dir=cache))
    # Now found in the cache by id, with no policy file (as `python awac.py --env-id hammer-binary` loads it).
    loaded = load_dataset("hammer-binary", env_id="hammer-binary", cache_dir=cache, progress=False)
    for k in ds.ARRAY_KEYS:
        np.testing.assert_array_equal(loaded[k], data[k])
    assert ds.cache_path("hammer-expert", cache_dir=cache).is_file(), "the expert rollouts are cached too"
    expert = read_file(ds.cache_path("hammer-expert", cache_dir=cache))
    assert expert["metadata"]["num_episodes"] == 25 and expert["metadata"]["expert_policy"]["sha256"] == sha
    # The same policy again reuses the cache; another policy is refused (naming --force) instead of mixing experts.
    assert (
        ds.load_cached("hammer-expert", cache_dir=cache, expert_policy=policy)["metadata"]["build_seconds"]
        == expert["metadata"]["build_seconds"]
    )
    other = write_dapg_policy(tmp_path / "other.npz", obs_dim, act_dim, seed=1)
    with pytest.raises(DatasetError, match=r"made from expert policy .*my-hammer.npz.*pass --force"):
        ds.load_cached("hammer-binary", cache_dir=cache, expert_policy=other)
    rebuilt = ds.load_cached(
        "hammer-expert", cache_dir=cache, expert_policy=other, force=True, replace_mismatched=True, progress=False
    )
    assert rebuilt["metadata"]["expert_policy"]["sha256"] == ds.sha256_of(other)
    assert not np.array_equal(rebuilt["actions"], expert["actions"])


def test_hammer_without_a_policy_file_names_the_build_command(tmp_path):
    command = r"`python -m utils\.datasets build hammer-binary --expert-policy PATH\.npz`"
    with pytest.raises(DatasetError, match=r"'hammer-binary' is not in the cache .*ships no expert policy.*" + command):
        load_dataset("hammer-binary", env_id="hammer-binary", cache_dir=tmp_path, progress=False)
    assert not list(tmp_path.glob("*.npz")), "nothing is built"
    res = subprocess.run(
        [sys.executable, "-m", "utils.datasets", "build", "hammer-binary"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "AWAC_DATA_DIR": str(tmp_path)},
    )
    assert res.returncode == 2 and "--expert-policy PATH.npz" in res.stderr


def test_a_user_policy_of_the_wrong_size_is_refused_naming_both_dimensions(tmp_path, hammer_dims):
    obs_dim, act_dim = hammer_dims
    wrong_obs = write_dapg_policy(tmp_path / "pen-sized.npz", 45, act_dim)
    with pytest.raises(
        DatasetError,
        match=rf"observation dimension 45 but environment 'hammer-binary' has "
        rf"observation dimension {obs_dim}",
    ):
        build_dataset("hammer-expert", episodes=1, cache_dir=tmp_path, progress=False, expert_policy=wrong_obs)
    wrong_act = write_dapg_policy(tmp_path / "act.npz", obs_dim, 24)
    with pytest.raises(
        DatasetError,
        match=rf"action dimension 24 but environment 'hammer-binary' has action "
        rf"dimension {act_dim}",
    ):
        build_dataset("hammer-expert", episodes=1, cache_dir=tmp_path, progress=False, expert_policy=wrong_act)
    partial = tmp_path / "partial.npz"
    np.savez(partial, **{k: v for k, v in np.load(wrong_act).items() if k != "log_std"})
    with pytest.raises(DatasetError, match=r"lacks the keys \['log_std'\]"):
        build_dataset("hammer-expert", episodes=1, cache_dir=tmp_path, progress=False, expert_policy=partial)
    with pytest.raises(DatasetError, match="human.*--expert-policy does not apply"):
        ds.load_cached("door-binary", cache_dir=tmp_path, expert_policy=wrong_act)


def test_a_user_policy_replaces_a_shipped_expert_but_not_a_cached_build_of_it(tmp_path):
    cache = tmp_path / "cache"
    data = build_dataset("pen-expert", episodes=1, cache_dir=cache, progress=False)
    assert data["metadata"]["expert_policy"]["path"] == "shipped:pen-dapg-expert-policy.npz"
    save_dataset(data, ds.cache_path("pen-expert", cache_dir=cache))
    mine = write_dapg_policy(tmp_path / "my-pen.npz", 45, 24)
    with pytest.raises(DatasetError, match=r"made from expert policy shipped:pen-dapg-expert-policy.npz.*--force"):
        ds.load_cached("pen-expert", cache_dir=cache, expert_policy=mine)
    own = build_dataset("pen-expert", episodes=1, cache_dir=cache, progress=False, expert_policy=mine)
    assert own["metadata"]["expert_policy"]["sha256"] == ds.sha256_of(mine)
    assert not np.array_equal(own["actions"], data["actions"])


def test_asset_path_tells_unlisted_altered_and_missing_files_apart(tmp_path, monkeypatch):
    shutil.copytree(ds.ASSETS, tmp_path / "adroit")
    assets = tmp_path / "adroit"
    for f in assets.iterdir():
        f.chmod(0o644)
    shutil.copy(assets / "pen-dapg-expert-policy.npz", assets / "my-pen-policy.npz")
    blob = bytearray((assets / "relocate-dapg-expert-policy.npz").read_bytes())
    blob[500] ^= 0xFF
    (assets / "relocate-dapg-expert-policy.npz").write_bytes(bytes(blob))
    (assets / "door-dapg-expert-policy.npz").unlink()
    monkeypatch.setattr("utils.expert_policies.ASSETS", assets)
    with pytest.raises(DatasetError, match="my-pen-policy.npz is not a shipped file") as e:
        asset_path("my-pen-policy.npz")
    assert "missing" not in str(e.value)
    with pytest.raises(DatasetError, match="checksum mismatch for .*relocate-dapg-expert-policy.npz"):
        asset_path("relocate-dapg-expert-policy.npz")
    with pytest.raises(DatasetError, match="door-dapg-expert-policy.npz is missing"):
        asset_path("door-dapg-expert-policy.npz")
    assert asset_path("pen-dapg-expert-policy.npz") == assets / "pen-dapg-expert-policy.npz"


def test_cli_builds_hammer_expert_from_a_policy_file_and_refuses_another_without_force(tmp_path, hammer_dims):
    policy = write_dapg_policy(tmp_path / "my-hammer.npz", *hammer_dims)
    other = write_dapg_policy(tmp_path / "other.npz", *hammer_dims, seed=1)
    env = {**os.environ, "AWAC_DATA_DIR": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}

    def cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "utils.datasets", "build", "hammer-expert", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env=env,
        )

    res = cli("--expert-policy", str(policy))
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["episodes"] == 25 and summary["env_id"] == "hammer-binary" and str(policy) in summary["source"]
    assert cli().returncode == 0, "afterwards the id is found in the cache without the policy file"
    res = cli("--expert-policy", str(other))
    assert res.returncode == 2 and "pass --force" in res.stderr
    res = cli("--expert-policy", str(other), "--force")
    assert res.returncode == 0 and str(other) in json.loads(res.stdout)["source"], res.stderr
