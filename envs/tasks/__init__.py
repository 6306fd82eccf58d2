"""The four benchmark tasks, by name."""

from vjepa_planning.envs.tasks.base import EpisodeSpec, FrankaTaskEnv, Oracle, Task
from vjepa_planning.envs.tasks.grasp import GraspTask
from vjepa_planning.envs.tasks.pick_and_place import PickAndPlaceTask
from vjepa_planning.envs.tasks.reach import ReachTask
from vjepa_planning.envs.tasks.reach_with_object import ReachWithObjectTask

TASKS: dict[str, type[Task]] = {t.name: t for t in (ReachTask, GraspTask, ReachWithObjectTask, PickAndPlaceTask)}

__all__ = ["TASKS", "EpisodeSpec", "FrankaTaskEnv", "Oracle", "Task"]
