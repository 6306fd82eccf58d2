"""MuJoCo Franka Panda scene, controller and the four benchmark tasks, registered with gymnasium.

    import gymnasium as gym
    from vjepa_planning import envs
    env = gym.make("FrankaReach-v0", image_size=128)
"""

import os

# Headless rendering; must be chosen before mujoco is first imported anywhere in the process.
os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402

from vjepa_planning.envs.tasks import TASKS, EpisodeSpec, FrankaTaskEnv  # noqa: E402

GYM_IDS = {
    "reach": "FrankaReach-v0",
    "grasp": "FrankaGrasp-v0",
    "reach_with_object": "FrankaReachWithObject-v0",
    "pick_and_place": "FrankaPickAndPlace-v0",
}


def task_name(name: str) -> str:
    """A task's registered name from the way a person may write it: "reach-with-object" is reach_with_object."""
    return str(name).strip().replace("-", "_")


def make_task_env(task: str, **kwargs) -> FrankaTaskEnv:
    task = task_name(task)
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {sorted(TASKS)}")
    return FrankaTaskEnv(TASKS[task](), **kwargs)


for _task, _id in GYM_IDS.items():
    if _id not in gym.registry:
        gym.register(id=_id, entry_point="vjepa_planning.envs:make_task_env", kwargs={"task": _task})

__all__ = ["GYM_IDS", "TASKS", "EpisodeSpec", "FrankaTaskEnv", "make_task_env", "task_name"]
