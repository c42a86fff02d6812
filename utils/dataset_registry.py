"""The named datasets (the ids of `utils.datasets`): how each is made (`DatasetSpec`, `DATASETS`), the hand tasks
with a shipped expert (`SHIPPED_EXPERTS`), the locomotion tasks of the paper's MuJoCo benchmark (`LOCOMOTION`) and
the prior data an algorithm loads by default (`DEFAULT_DATASETS`). Pure data: it imports no other module of the
dataset code, which all build on it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetSpec:
    """How a named dataset is made: `kind` is human | expert | bc | binary (the prior data: demonstrations + BC
    episodes); `env_id` a `utils.envs` hand task or a locomotion id of `LOCOMOTION`;
    `demos` the dataset a BC policy is trained on (bc, binary); `episodes` the number of generated episodes;
    `bc_steps` the BC training updates."""

    kind: str
    env_id: str
    description: str
    demos: str | None = None
    episodes: int = 25
    bc_steps: int = 5000


DATASETS: dict[str, DatasetSpec] = {
    "door-human": DatasetSpec("human", "door-binary", "25 real human demonstrations (hand_dapg), replayed"),
}
SHIPPED_EXPERTS = ("pen", "door", "relocate")  # tasks with a `<task>-dapg-expert-policy.npz` in assets/adroit/
for _task in (*SHIPPED_EXPERTS, "hammer"):
    _demos = "door-human" if _task == "door" else f"{_task}-expert"
    DATASETS[f"{_task}-expert"] = DatasetSpec(
        "expert",
        f"{_task}-binary",
        (
            "25 episodes of the DAPG expert policy"
            if _task in SHIPPED_EXPERTS
            else "25 episodes of a user-supplied DAPG expert policy (--expert-policy)"
        )
        + ("" if _task == "door" else " (stand-in for the unavailable human demos)"),
    )
    DATASETS[f"{_task}-bc"] = DatasetSpec(
        "bc", f"{_task}-binary", f"500 episodes of a BC policy trained on {_demos}", demos=_demos, episodes=500
    )
    DATASETS[f"{_task}-binary"] = DatasetSpec(
        "binary", f"{_task}-binary", f"{_demos} + {_task}-bc: the AWAC paper's prior data", demos=_demos, episodes=500
    )


# The paper's MuJoCo benchmark (Nair et al. 2020, Sec. 5.3; rlkit examples/awac/mujoco/awac1.py): per task 15
# demonstrations of an expert policy trained with SAC and 100 trajectories of a policy behavior-cloned from them. The
# authors' data is lost, so the experts are SAC actors trained by this repository (`utils/experts.py`).
LOCOMOTION: dict[str, str] = {"halfcheetah": "HalfCheetah-v5", "walker2d": "Walker2d-v5", "ant": "Ant-v5"}
for _task, _env_id in LOCOMOTION.items():
    DATASETS[f"{_task}-expert"] = DatasetSpec(
        "expert", _env_id, "15 episodes of this repository's SAC expert (utils/assets/locomotion)", episodes=15
    )
    DATASETS[f"{_task}-bc"] = DatasetSpec(
        "bc", _env_id, f"100 episodes of a BC policy trained on {_task}-expert", demos=f"{_task}-expert", episodes=100
    )
    DATASETS[f"{_task}-awac"] = DatasetSpec(
        "binary",
        _env_id,
        f"{_task}-expert + {_task}-bc: the AWAC paper's prior data",
        demos=f"{_task}-expert",
        episodes=100,
    )
# The prior data an algorithm loads when no --dataset is given; a hand task's is its own name (`door-binary`).
DEFAULT_DATASETS: dict[str, str] = {env_id: f"{task}-awac" for task, env_id in LOCOMOTION.items()}


def _task_of(name: str) -> str:
    """The task part of a dataset id: `door-human` -> `door`, `halfcheetah-awac` -> `halfcheetah`."""
    return name.rsplit("-", 1)[0]
