"""The binary hand tasks: reward, horizon, truncation, success criterion, normalized score, errors."""

import gymnasium as gym
import numpy as np
import pytest

from utils.envs import (
    HAND_TASKS,
    SUCCESS_DEFINITIONS,
    episode_success,
    evaluate,
    first_goal_step,
    is_success,
    make_env,
    normalized_score,
)


@pytest.mark.parametrize(
    "env_id,horizon", [("pen-binary", 200), ("door-binary", 200), ("relocate-binary", 200), ("hammer-binary", 200)]
)
def test_binary_reward_horizon_and_truncation(env_id, horizon):
    env = make_env(env_id, seed=0)
    env.reset(seed=0)
    for t in range(1, horizon + 1):
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert reward == (0.0 if info["success"] else -1.0)
        assert not terminated, "the hand tasks have no terminal state"
        assert truncated == (t == horizon), f"truncated at step {t}, horizon {horizon}"


def test_pen_reaches_the_goal_reward_zero():
    # Zero actions leave the pen near its start; on some seeds that already meets the goal, giving reward 0.
    env = make_env("pen-binary")
    rewards = []
    for seed in range(5):
        env.reset(seed=seed)
        rewards += [env.step(np.zeros(24, dtype=np.float32))[1] for _ in range(30)]
    assert set(rewards) == {0.0, -1.0}


def test_success_criterion_thresholds():
    assert not is_success(20, "pen-binary") and is_success(21, "pen-binary")
    for env_id in ("door-binary", "relocate-binary", "hammer-binary"):
        assert not is_success(25, env_id) and is_success(26, env_id)


def test_three_success_definitions_by_hand():
    late = [False] * 190 + [True] * 10  # a door opened at step 191 and held: success at the end, not by hand_dapg's
    early = [True] * 30 + [False] * 170  # opened, held 30 steps, then lost
    assert episode_success(late, "door-binary") == {"success_final": 1.0, "success_any": 1.0, "success_rate": 0.0}
    assert episode_success(early, "door-binary") == {"success_final": 0.0, "success_any": 1.0, "success_rate": 1.0}
    assert episode_success([False] * 100, "pen-binary") == dict.fromkeys(SUCCESS_DEFINITIONS, 0.0)
    assert episode_success([True] * 21, "pen-binary")["success_rate"] == 1.0  # pen: more than 20 steps
    with pytest.raises(ValueError, match="at least one step"):
        episode_success([], "door-binary")


class ScriptedSuccess(gym.Env):
    """Episodes of 100 steps whose first `goal_steps` steps report success, or the last ones with `late`."""

    observation_space = gym.spaces.Box(-1, 1, (3,))
    action_space = gym.spaces.Box(-1, 1, (2,))

    def __init__(self, goal_steps: int, late: bool = False):
        self.goal_steps, self.late, self.t = goal_steps, late, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(3, dtype=np.float32), {}

    def step(self, action):
        self.t += 1
        success = self.t > 100 - self.goal_steps if self.late else self.t <= self.goal_steps
        return np.zeros(3, dtype=np.float32), float(success) - 1.0, False, self.t >= 100, {"success": success}


@pytest.mark.parametrize("goal_steps,expected", [(25, 0.0), (26, 1.0)])
def test_evaluate_counts_success_on_scripted_episodes(goal_steps, expected):
    env_id = f"ScriptedSuccess{goal_steps}-v0"
    gym.register(env_id, entry_point=ScriptedSuccess, kwargs={"goal_steps": goal_steps})
    result = evaluate(lambda o: np.zeros(2, dtype=np.float32), env_id, episodes=3, seed=0)
    assert result["success_rate"] == expected
    assert result["success_any"] == 1.0 and result["success_final"] == 0.0  # held from the start, lost before the end
    assert result["return_mean"] == goal_steps - 100
    assert result["length_mean"] == 100


def test_evaluate_counts_a_late_goal_by_the_final_and_any_step_definitions():
    gym.register("ScriptedLateSuccess-v0", entry_point=ScriptedSuccess, kwargs={"goal_steps": 10, "late": True})
    result = evaluate(lambda o: np.zeros(2, dtype=np.float32), "ScriptedLateSuccess-v0", episodes=2, seed=0)
    assert (result["success_final"], result["success_any"], result["success_rate"]) == (1.0, 1.0, 0.0)


class ScriptedPace(ScriptedSuccess):
    """The goal holds from step 5 after a reset with seed 0 (mod 3), from step 30 with seed 1, never with seed 2."""

    def __init__(self):
        super().__init__(goal_steps=0)

    def reset(self, *, seed=None, options=None):
        self.first = {0: 5, 1: 30, 2: None}[seed % 3]
        return super().reset(seed=seed, options=options)

    def step(self, action):
        obs, _, terminated, truncated, _ = super().step(action)
        success = self.first is not None and self.t >= self.first
        return obs, float(success) - 1.0, terminated, truncated, {"success": success}


def test_evaluate_logs_the_pace_median_first_goal_step_and_the_share_never_there():
    """Issue 33: eval/goal_step is the median over the episodes that reach the goal of the first step (1-based) at
    the goal, the episode length when none does; eval/goal_never the share of episodes that never reach it."""
    assert first_goal_step([False, False, True, False, True]) == 3 and first_goal_step([False] * 4) is None
    gym.register("ScriptedPace-v0", entry_point=ScriptedPace)
    policy = lambda o: np.zeros(2, dtype=np.float32)
    result = evaluate(policy, "ScriptedPace-v0", episodes=3, seed=0)  # first goal steps 5, 30, never
    assert result["goal_step"] == 17.5 and result["goal_never"] == pytest.approx(1 / 3)
    result = evaluate(policy, "ScriptedPace-v0", episodes=1, seed=2)  # never: the episode's length
    assert result["goal_step"] == 100 and result["goal_never"] == 1.0
    result = evaluate(policy, "ScriptedPace-v0", episodes=4, seed=0)  # 5, 30, never, 5
    assert result["goal_step"] == 5 and result["goal_never"] == 0.25


def test_evaluate_on_a_hand_task_is_repeatable():
    policy = lambda o: np.full(28, 0.3, dtype=np.float32)  # noqa: E731
    a = evaluate(policy, "door-binary", episodes=2, seed=7)
    b = evaluate(policy, "door-binary", episodes=2, seed=7)
    assert a == b
    assert -200 <= a["return_mean"] <= 0 and 0 <= a["success_rate"] <= 1
    assert a["normalized_score"] == pytest.approx(100 * (a["return_mean"] + 200) / 200)


def test_evaluate_has_no_success_rate_without_success_info():
    result = evaluate(lambda o: np.zeros(1, dtype=np.float32), "Pendulum-v1", episodes=1, seed=0)
    assert all(np.isnan(result[k]) for k in SUCCESS_DEFINITIONS) and result["length_mean"] == 200
    assert np.isnan(result["goal_step"]) and np.isnan(result["goal_never"])  # no goal, no pace


def test_actions_in_minus_one_one_reach_the_whole_range_of_other_action_spaces():
    """The agents act in [-1, 1]; Pendulum-v1's torque range is [-2, 2] and Humanoid-v5's [-0.4, 0.4]: make_env
    rescales, so 1 is the largest torque and not half of it. Spaces already in [-1, 1] are left as they are."""
    env = make_env("Pendulum-v1", seed=0)
    assert (env.action_space.low == -1).all() and (env.action_space.high == 1).all()
    env.step(np.ones(1, dtype=np.float32))
    assert env.unwrapped.last_u == pytest.approx(2.0)
    humanoid = make_env("Humanoid-v5")
    assert humanoid.action_space.high.max() == 1 and humanoid.unwrapped.action_space.high.max() == pytest.approx(0.4)
    assert type(make_env("HalfCheetah-v5")).__name__ == "TimeLimit"


def test_normalized_score():
    assert normalized_score("pen-binary", -200.0) == 0.0
    assert normalized_score("door-binary", 0.0) == 100.0
    assert normalized_score("relocate-binary", -150.0) == 25.0
    assert normalized_score("HalfCheetah-v5", 12135.0) == pytest.approx(100.0)
    assert np.isnan(normalized_score("Pendulum-v1", -100.0))


def test_unknown_env_lists_the_tasks():
    with pytest.raises(ValueError, match="pen-binary") as e:
        make_env("pen-binry")
    assert "unknown environment 'pen-binry'" in str(e.value)
    assert set(HAND_TASKS) == {"pen-binary", "door-binary", "relocate-binary", "hammer-binary"}


def test_mujoco_warnings_go_to_the_session_log_not_the_working_directory(tmp_path, monkeypatch, mujoco_log):
    """HalfCheetah's xml makes MuJoCo warn (a deprecated compiler attribute), which it appends to MUJOCO_LOG.TXT in
    the working directory unless told otherwise: conftest points it at a temporary file, so a test run never writes
    it into the repository."""
    monkeypatch.chdir(tmp_path)
    make_env("HalfCheetah-v5").close()
    assert not (tmp_path / "MUJOCO_LOG.TXT").exists()
    assert "settotalmass" in mujoco_log.read_text()
