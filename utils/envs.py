"""Environments: the AWAC paper's binary-reward Adroit hand tasks, any gymnasium id, and evaluation.

The paper's hand tasks (Nair et al. 2020, arXiv:2006.09359, Sec. 5.1) are the Adroit tasks of Rajeswaran et al.
2018 with a sparse binary reward. The AWAC code (rail-berkeley/rlkit) used the `<task>-binary-v0` ids of a fork of
hand_dapg's `mj_envs` (anair13/mj_envs), defined as `reward = goal_achieved - 1`. That fork registers pen-binary-v0
with a 100-step limit, but rlkit runs every hand task for 200 steps: `rlkit/envs/make_env.py` unwraps gym's
TimeLimit (`env = env.env`), `rlkit/launchers/experiments/awac/awac_rl.py` sets `max_path_length` 200 for
pen-binary-v0, door and relocate, and the pen env never returns done itself (`early_termination=False`), so the
authors' pen episodes were 200 steps long; so are ours. mj_envs needs mujoco-py, so here the same tasks are rebuilt
on gymnasium-robotics `AdroitHand<Task>Sparse-v1` (same models and goal conditions, new MuJoCo bindings):

| name              | base id                       | horizon | goal condition (`info["success"]`)          |
|-------------------|-------------------------------|---------|---------------------------------------------|
| `pen-binary`      | `AdroitHandPenSparse-v1`      | 200     | pen within 0.075 of target, orientation > 0.95 |
| `door-binary`     | `AdroitHandDoorSparse-v1`     | 200     | door hinge angle >= 1.35 rad                |
| `relocate-binary` | `AdroitHandRelocateSparse-v1` | 200     | ball within 0.1 of target                   |
| `hammer-binary`   | `AdroitHandHammerSparse-v1`   | 200     | nail driven within 0.01 of the board        |

Reward is 0 on a step where the goal holds and -1 otherwise; `terminated` is never true (the tasks have no terminal
state), and the horizon is a `truncated` time limit, so a learner must bootstrap through it.
"""

from __future__ import annotations

import contextlib
import copy
import io
import re
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np


@dataclass(frozen=True)
class HandTask:
    """One of the paper's binary hand tasks: `base_id` (a gymnasium-robotics id), `horizon` (steps), and
    `success_steps`: an episode counts as a success when the goal holds on more than this many of its steps
    (hand_dapg's `evaluate_success`: 20 for pen, 25 for the others)."""

    base_id: str
    horizon: int
    success_steps: int


HAND_TASKS: dict[str, HandTask] = {
    "pen-binary": HandTask("AdroitHandPenSparse-v1", 200, 20),
    "door-binary": HandTask("AdroitHandDoorSparse-v1", 200, 25),
    "relocate-binary": HandTask("AdroitHandRelocateSparse-v1", 200, 25),
    "hammer-binary": HandTask("AdroitHandHammerSparse-v1", 200, 25),
}

# D4RL's reference returns (d4rl/infos.py: random and expert policies of the v2 locomotion tasks), the usual way
# to put MuJoCo returns on a 0-100 scale. The v5 environments differ slightly from v2, so treat them as approximate.
LOCOMOTION_REFERENCE_RETURNS: dict[str, tuple[float, float]] = {
    "HalfCheetah": (-280.178953, 12135.0),
    "Walker2d": (1.629008, 4592.3),
    "Ant": (-325.6, 3879.7),
    "Hopper": (-20.272305, 3234.3),
}


# gymnasium-robotics 1.2.1 to 1.4.2 print this notice to stderr when imported (a plain print of a
# farama_notifications message, not warnings.warn, so no warnings filter can catch it). It concerns the *Dense*
# Adroit rewards; the Sparse tasks used here are unaffected, so it is dropped, and only it.
DENSE_REWARD_NOTICE = re.compile(
    r"AdroitHand\w+Dense-v1, .*environment's reward functions were updated in v1\.2\.1 "
    r"without an environment version update"
)


@contextlib.contextmanager
def _stderr_without(pattern: re.Pattern) -> Iterator[None]:
    """Holds back what is written to `sys.stderr` inside the block and writes it out at the end (also on an error),
    minus the lines that `pattern` matches from their start."""
    real, held = sys.stderr, io.StringIO()
    try:
        with contextlib.redirect_stderr(held):
            yield
    finally:
        real.write("".join(line for line in held.getvalue().splitlines(keepends=True) if not pattern.match(line)))


class EnvError(ValueError):
    """An environment id that neither names a hand task nor is registered with gymnasium."""


def _register_robotics() -> None:
    with _stderr_without(DENSE_REWARD_NOTICE):
        import gymnasium_robotics

    gym.register_envs(gymnasium_robotics)


class BinaryReward(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Replaces the reward by 0 when `info["success"]` is true, else -1 (rlkit's `goal_achieved - 1`). Recorded in
    the env's spec, so `gym.make(env.spec)` (e.g. Minari's `recover_environment`) rebuilds the binary task.

    Raises:
        KeyError: if the wrapped env's `step` returns no `"success"` in its info.
    """

    def __init__(self, env: gym.Env):
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)

    def step(self, action):
        obs, _, terminated, truncated, info = self.env.step(action)
        return obs, float(info["success"]) - 1.0, terminated, truncated, info


def make_env(
    env_id: str, seed: int | None = None, max_episode_steps: int | None = None, render_mode: str | None = None
) -> gym.Env:
    """Builds an environment by name.

    Args:
        env_id: a hand-task name from `HAND_TASKS` (`pen-binary`, ...) or any registered gymnasium id
            (`HalfCheetah-v5`, `AdroitHandDoor-v1`, ...).
        seed: if given, seeds the env's first reset and its action space.
        max_episode_steps: overrides the horizon (the time limit, reported as `truncated`).
        render_mode: gymnasium's, e.g. "rgb_array" for frames (see `check_rendering`).

    Returns:
        A gymnasium env whose observations are float64 arrays of shape (obs_dim,) and actions (act_dim,) in
        [-1, 1]: a continuous action space with other bounds (Pendulum-v1's [-2, 2], InvertedPendulum-v5's [-3, 3],
        Humanoid-v5's [-0.4, 0.4]) is mapped onto [-1, 1] by gymnasium's RescaleAction, because every agent here
        squashes or clips its actions to [-1, 1]. A dataset for such an env must hold actions in that range.

    Raises:
        EnvError (a ValueError): for an unknown id, listing the hand-task names.
    """
    if env_id in HAND_TASKS or env_id.startswith("AdroitHand"):
        _register_robotics()
    render = {} if render_mode is None else {"render_mode": render_mode}  # envs without rendering take no such kwarg
    if env_id in HAND_TASKS:
        task = HAND_TASKS[env_id]
        env = gym.make(task.base_id, max_episode_steps=max_episode_steps or task.horizon, **render)
        env = BinaryReward(env)
    else:
        try:
            env = gym.make(env_id, max_episode_steps=max_episode_steps, **render)
        except gym.error.Error as e:
            raise EnvError(
                f"unknown environment {env_id!r}: use one of the hand tasks {sorted(HAND_TASKS)} "
                f"or a registered gymnasium id such as 'HalfCheetah-v5' ({e})"
            ) from None
        space = env.action_space
        if (
            isinstance(space, gym.spaces.Box)
            and np.isfinite(space.low).all()
            and np.isfinite(space.high).all()
            and not ((space.low == -1).all() and (space.high == 1).all())
        ):
            with warnings.catch_warnings():  # Python floats keep the env spec JSON-serializable (Minari records it);
                warnings.simplefilter("ignore")  # gymnasium warns that they are cast to the space's float32
                env = gym.wrappers.RescaleAction(env, -1.0, 1.0)
    if seed is not None:
        env.reset(seed=seed)
        env.action_space.seed(seed)
    return env


def rng_state(env: gym.Env) -> dict:
    """A copy of `env`'s generators (its own and its action space's), for a checkpoint: `set_rng_state` puts them
    back, so that the env's next reset and samples repeat those of the run that saved them (exact resume)."""
    return copy.deepcopy(
        {
            "env": env.unwrapped.np_random.bit_generator.state,
            "action_space": env.action_space.np_random.bit_generator.state,
        }
    )


def set_rng_state(env: gym.Env, state: dict) -> None:
    """Puts back the generators of `rng_state` into `env` (the same task, made anew)."""
    env.unwrapped.np_random.bit_generator.state = state["env"]
    env.action_space.np_random.bit_generator.state = state["action_space"]


def horizon(env_id: str) -> int | None:
    """The episode length limit of `env_id` in steps, or None when the env has none."""
    if env_id in HAND_TASKS:
        return HAND_TASKS[env_id].horizon
    return gym.spec(env_id).max_episode_steps


def normalized_score(env_id: str, episode_return: float) -> float:
    """Puts a return on a 0-100 scale.

    Hand tasks: 100 * (return + horizon) / horizon, the percentage of steps on which the goal held (the convention
    of the AWAC, IQL, Cal-QL and RLPD papers for the binary tasks). Locomotion: D4RL's
    100 * (return - random) / (expert - random) with `LOCOMOTION_REFERENCE_RETURNS`. Other ids: NaN.
    """
    if env_id in HAND_TASKS:
        h = HAND_TASKS[env_id].horizon
        return 100.0 * (episode_return + h) / h
    ref = LOCOMOTION_REFERENCE_RETURNS.get(env_id.split("-")[0])
    if ref is None:
        return float("nan")
    return 100.0 * (episode_return - ref[0]) / (ref[1] - ref[0])


def success_steps(env_id: str) -> int:
    """The number of goal steps an episode must exceed to count as a success (see `HandTask`)."""
    if env_id in HAND_TASKS:
        return HAND_TASKS[env_id].success_steps
    return 20 if "Pen" in env_id else 25


def is_success(goal_steps: int, env_id: str) -> bool:
    """hand_dapg's `evaluate_success` for one episode: the goal held on more than `success_steps(env_id)` steps."""
    return goal_steps > success_steps(env_id)


# The three ways an episode of a goal task is counted as a success, by the key they are logged under (eval/<key>
# for evaluation episodes, charts/<key> for training episodes). They can differ a lot: a door policy that opens the
# door at step 170 of 200 succeeds by the first two and fails hand_dapg's (README, "Success rates").
SUCCESS_DEFINITIONS: dict[str, str] = {
    "success_final": "goal at the episode's last step (rlkit's path statistics, env_infos/final/goal_achieved)",
    "success_any": "goal at any step of the episode (CORL's eval_actor, and the later offline-to-online papers)",
    "success_rate": "goal on more than 20 (pen) or 25 steps (hand_dapg's evaluate_success, the strictest)",
}


def episode_success(goal: list[bool] | np.ndarray, env_id: str) -> dict[str, float]:
    """One episode's success by each of `SUCCESS_DEFINITIONS` (1.0 or 0.0), from its per-step goal flags (T,)
    (`info["success"]`, the `goal_achieved` of mj_envs). Raises ValueError for an empty episode."""
    if len(goal) == 0:
        raise ValueError("an episode has at least one step: got no goal flags")
    return {
        "success_final": float(bool(goal[-1])),
        "success_any": float(any(goal)),
        "success_rate": float(is_success(int(np.sum(goal)), env_id)),
    }


def first_goal_step(goal: list[bool] | np.ndarray) -> int | None:
    """The 1-based step at which the goal first holds in one episode's per-step goal flags (T,), or None if it never
    does: the pace at which a policy opens the door (logged as eval/goal_step, see `evaluate`)."""
    hits = np.flatnonzero(np.asarray(goal, dtype=bool))
    return int(hits[0]) + 1 if len(hits) else None


def check_rendering(env_id: str) -> None:
    """Renders one frame of `env_id` and loads the video encoder, so that --capture-video fails before a run starts
    instead of in its middle.

    Raises:
        EnvError: MuJoCo cannot render here (the message names MUJOCO_GL=egl and the system packages it needs), or
            the encoder (imageio-ffmpeg) is missing.
    """
    try:
        import imageio_ffmpeg

        imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as e:
        raise EnvError(
            f"--capture-video needs the video encoder imageio-ffmpeg ({e}): pip install -r requirements.txt"
        ) from None
    try:
        env = make_env(env_id, render_mode="rgb_array")
        try:
            env.reset(seed=0)
            frame = env.render()
        finally:
            env.close()
    except EnvError:
        raise
    except Exception as e:  # GLFW without a display, EGL or OSMesa libraries missing, ...: each says it differently
        raise EnvError(
            f"--capture-video: MuJoCo cannot render here ({type(e).__name__}: {str(e).strip()[:200]}). "
            "Without a display, run with MUJOCO_GL=egl (needs the EGL and OpenGL libraries, e.g. `apt "
            "install libegl1 libgl1`; or MUJOCO_GL=osmesa with libosmesa6), set before Python "
            "starts"
        ) from None
    if not isinstance(frame, np.ndarray) or frame.ndim != 3:
        raise EnvError(f"--capture-video: {env_id!r} renders no RGB frames (got {type(frame).__name__})")


def evaluate(
    policy: Callable[[np.ndarray], np.ndarray], env_id: str, episodes: int, seed: int, video: str | Path | None = None
) -> dict[str, float]:
    """Runs `policy` for `episodes` full episodes on a fresh env and summarizes them.

    Episode i is reset with seed `seed + i`, on an env separate from any training env, so evaluation never disturbs
    a training env's random state and is repeatable. Algorithms pass the deterministic (mean) action as `policy`.
    With `video`, the first episode is also rendered (the env's default camera, RGB) and written there as an mp4 at
    the env's frame rate; rendering reads the simulation and never changes it, so the numbers are the same.

    Args:
        policy: maps one observation, float32 array (obs_dim,), to one action (act_dim,).
        env_id: as for `make_env`.
        episodes: number of episodes, >= 1.
        seed: seed of the first episode.
        video: path of the mp4 of the first episode (its directory is created), or None.

    Returns:
        `return_mean`, `return_std` (population std over episodes), `normalized_score` (of the mean return, see
        `normalized_score`), the fraction of episodes that succeed by each of `SUCCESS_DEFINITIONS`:
        `success_final` (goal at the last step), `success_any` (at any step) and `success_rate` (on more than
        `success_steps` steps, hand_dapg's `evaluate_success`), each NaN for envs without `info["success"]`;
        the pace of a goal task (NaN without `info["success"]`): `goal_step`, the median over the episodes that reach
        the goal of the first step (1-based) at which it holds, or the mean episode length when no episode reaches it,
        and `goal_never`, the fraction of episodes that never reach it; and `length_mean` (steps).
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    env = make_env(env_id, render_mode="rgb_array" if video is not None else None)
    writer = None
    if video is not None:  # frames go to the encoder as they come: a 1,000-step episode never sits in memory
        import imageio

        Path(video).parent.mkdir(parents=True, exist_ok=True)
        writer = imageio.get_writer(video, fps=env.metadata.get("render_fps", 30), macro_block_size=1)
    returns, lengths, successes = [], [], []
    has_success = True
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        done, ep_return, ep_len, goal = False, 0.0, 0, []
        if writer is not None and i == 0:
            writer.append_data(env.render())
        while not done:
            obs, reward, terminated, truncated, info = env.step(policy(obs.astype(np.float32)))
            if writer is not None and i == 0:
                writer.append_data(env.render())
            done = terminated or truncated
            ep_return += float(reward)
            ep_len += 1
            if "success" in info:
                goal.append(bool(info["success"]))
            else:
                has_success = False
        returns.append(ep_return)
        lengths.append(ep_len)
        if has_success:
            successes.append({**episode_success(goal, env_id), "goal_step": first_goal_step(goal)})
        if writer is not None and i == 0:
            writer.close()
    env.close()
    return_mean = float(np.mean(returns))
    first = [e["goal_step"] for e in successes if e["goal_step"] is not None]  # 1-based step of the first goal
    pace = {
        "goal_step": float(np.median(first) if first else np.mean(lengths)) if has_success else float("nan"),
        "goal_never": 1.0 - len(first) / len(successes) if has_success else float("nan"),
    }
    return {
        "return_mean": return_mean,
        "return_std": float(np.std(returns)),
        "normalized_score": normalized_score(env_id, return_mean),
        **{k: float(np.mean([e[k] for e in successes])) if has_success else float("nan") for k in SUCCESS_DEFINITIONS},
        **pace,
        "length_mean": float(np.mean(lengths)),
    }
