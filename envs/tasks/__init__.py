"""The four benchmark tasks, by name."""

from envs.tasks.base import EpisodeSpec, FrankaTaskEnv, Oracle, Task
from envs.tasks.grasp import GraspTask
from envs.tasks.pick_and_place import PickAndPlaceTask
from envs.tasks.reach import ReachTask
from envs.tasks.reach_with_object import ReachWithObjectTask

TASKS: dict[str, type[Task]] = {t.name: t for t in (ReachTask, GraspTask, ReachWithObjectTask, PickAndPlaceTask)}

__all__ = ["TASKS", "EpisodeSpec", "FrankaTaskEnv", "Oracle", "Task"]
