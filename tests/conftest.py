"""Shared fixtures: every test builds its datasets in one temporary cache, never in the user's."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

# Headless rendering for the video tests (MuJoCo picks its GL backend when it is first imported: set it first).
os.environ.setdefault("MUJOCO_GL", "egl")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# One torch thread for the whole test process: the tests' networks are tiny, where a second thread costs more in
# synchronization than it gains (measured on the 2-core machine with another process busy: a 200-update test took 40 s
# on 2 threads), and `Args(threads=1)`, which most tests pass, sets it process-wide anyway, so a test's speed no longer
# depends on the order the tests run in. Tests of threading start their own processes.
torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def mujoco_log(tmp_path_factory) -> Path:
    """MuJoCo appends its warnings (HalfCheetah's xml uses a deprecated attribute) to MUJOCO_LOG.TXT in the working
    directory: this process's go to a temporary file instead, never into the repository. The tests' subprocesses
    step only the Adroit tasks, which warn nothing."""
    import mujoco

    config = mujoco.MjLogConfig.get()
    config.logfile = str(tmp_path_factory.mktemp("mujoco") / "MUJOCO_LOG.TXT")
    config.set()
    return Path(config.logfile)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("datasets")
    os.environ["AWAC_DATA_DIR"] = str(path)
    return path


@pytest.fixture(scope="session")
def door_human(cache_dir):
    from utils.datasets import load_dataset

    return load_dataset("door-human", env_id="door-binary", progress=False)


@pytest.fixture(scope="session")
def small_pen_binary(cache_dir):
    """pen-binary with 4 BC episodes after 50 BC updates: small, but built by the real recipe."""
    from utils.datasets import build_dataset, save_dataset

    data = build_dataset("pen-binary", seed=0, episodes=4, bc_steps=50, progress=False)
    path = save_dataset(data, cache_dir / "small-pen-binary.npz")
    return data, path


def random_rollout_dataset(env_id: str, episodes: int, seed: int) -> dict:
    """A dataset of uniform-random actions, made by the same collector as the generated datasets."""
    from utils.datasets import rollout
    from utils.envs import make_env

    space = make_env(env_id).action_space
    rng = np.random.default_rng(seed)
    return rollout(lambda o: rng.uniform(space.low, space.high), env_id, episodes, seed, progress=False)
