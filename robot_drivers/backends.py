"""What the robot server drives: the `Backend` protocol, and the MuJoCo sim behind it (`SimBackend`).

The real arm's backend is `robot_drivers/franky_backend.py`.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from vjepa_planning.robot_drivers.base import ACTION_DIM, Observation
from vjepa_planning.robot_drivers.safety import SafetyLimits


class Backend(Protocol):
    """What the server drives: a RobotDriver plus a cheap state read and a description."""

    name: str
    asynchronous: bool  # act returns while the arm still moves (the server checks its motion at the next act)

    def reset(self, seed: int | None = None, episode: str | None = None, task: str | None = None) -> Observation: ...

    def observe(self) -> Observation: ...

    def current_state(self) -> np.ndarray: ...

    def act(self, action: np.ndarray) -> np.ndarray:
        """Execute an action the server's safety layer already let through (it is the only one on this
        path); return what was executed."""
        ...

    def stop(self) -> None: ...

    def describe(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


@runtime_checkable
class SimulatedScene(Protocol):
    """What a simulated backend adds to `Backend` (the server checks with isinstance): the episode it started,
    as JSON for the client's goal.json, and the task's goal photo."""

    def episode_json(self) -> str: ...

    def goal_image(self) -> np.ndarray: ...


def checked_action(action) -> np.ndarray:
    """A backend's input check (not a second safety layer): 7 finite numbers, or a ValueError."""
    action = np.asarray(action, dtype=np.float64)
    if action.shape != (ACTION_DIM,) or not np.all(np.isfinite(action)):
        raise ValueError(f"a backend executes 7 finite numbers (filtered by the server's safety layer), got {action}")
    return action


class SimBackend:
    """`SimDriver` as a server backend: reset may name a seed, an episode spec (JSON) and a task."""

    name = "sim"
    asynchronous = False

    def __init__(self, task: str = "reach", image_size: int = 256, seed: int = 0, limits: SafetyLimits = SafetyLimits(),
                 max_steps: int | None = None, camera: str = "exterior"):
        self._kw = {"image_size": image_size, "seed": seed, "limits": limits, "max_steps": max_steps, "camera": camera}
        self.task = task
        self.driver = self._make(task)
        self.driver.reset()

    def _make(self, task: str):
        from vjepa_planning.robot_drivers.sim_driver import SimDriver

        return SimDriver(task=task, **self._kw)

    def reset(self, seed: int | None = None, episode: str | None = None, task: str | None = None) -> Observation:
        spec = None
        if episode:
            from vjepa_planning.robot_drivers.episode_spec import EpisodeSpec

            spec = EpisodeSpec.from_json(episode)  # every field checked, and reachable, before the scene changes
            spec.check_reachable(self._kw["limits"].workspace_low, self._kw["limits"].workspace_high)
            task = spec.task
        if task:
            from vjepa_planning.envs import TASKS, task_name

            task = task_name(task)
        if task and task != self.task:
            if task not in TASKS:
                raise ValueError(f"unknown task {task!r}; choose one of {sorted(TASKS)}")
            self.driver.close()
            self.driver, self.task = self._make(task), task
        return self.driver.reset(seed=seed, episode=spec)

    def observe(self) -> Observation:
        return self.driver.observe()

    def current_state(self) -> np.ndarray:
        return self.driver.observe().state

    def act(self, action: np.ndarray) -> np.ndarray:
        return self.driver.execute(checked_action(action))

    def stop(self) -> None:
        self.driver.stop()

    def goal_image(self) -> np.ndarray:
        return self.driver.goal_image()

    def episode_json(self) -> str:
        return self.driver.episode_spec.to_json()

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name, "task": self.task, "image_size": self._kw["image_size"], "camera": f"{self._kw['camera']} (rendered)",
            "privileged_info": True, "max_steps": self.driver.step_budget,
        }

    def close(self) -> None:
        self.driver.close()
