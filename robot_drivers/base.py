"""The one interface every robot backend passes through: the in-process sim, the remote server, a real Franka.

Conventions (DESIGN.md): state = [x, y, z, roll, pitch, yaw, gripper] in the robot base frame (m, rad, Euler
extrinsic "xyz"; gripper in [0, 1] with 1 = closed); action = [dx, dy, dz, droll, dpitch, dyaw, dgripper].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

STATE_DIM = 7
ACTION_DIM = 7


@dataclass
class Observation:
    """What a driver sees at one control step."""

    image: np.ndarray  # uint8 [H, W, 3] RGB from the robot's camera (in the sim: env.camera)
    state: np.ndarray  # float64 [7] end-effector pose + gripper (see module docstring)
    timestamp: float  # seconds since the episode started
    # Privileged extras a simulator can give (ee/cube positions, success); empty on a real arm.
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        image = np.asarray(self.image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"Observation.image must be uint8 [H, W, 3], got {image.dtype} {image.shape}")
        state = np.asarray(self.state, dtype=np.float64)
        if state.shape != (STATE_DIM,):
            raise ValueError(f"Observation.state must have shape ({STATE_DIM},), got {state.shape}")
        self.image, self.state = image, state


@runtime_checkable
class RobotDriver(Protocol):
    """observe → act → observe …; `act` returns the action actually sent after the safety layer.

    What every caller may use, whatever the robot: the sim in this process, a sim or a real arm behind a
    robot server."""

    last_safety: Any  # the robot_drivers.safety.SafetyReport of the last `act` (None before the first)

    def reset(self, seed: int | None = None, episode: Any = None) -> Observation:
        """Start an episode (a sim: from `seed`, or the `EpisodeSpec` given; a real arm ignores both)."""
        ...

    def observe(self) -> Observation: ...

    def act(self, action: np.ndarray) -> np.ndarray: ...

    def stop(self) -> None:
        """Hold the arm; `act` is refused until the next `reset`."""
        ...

    def close(self) -> None:
        """Release the robot (and the connection); the driver is not used again."""
        ...

    @property
    def step_budget(self) -> int | None:
        """The task's step budget where the robot knows one (a sim task), else None."""
        ...


@runtime_checkable
class SimCapabilities(Protocol):
    """What only the in-process simulator adds: privileged views for the benchmark's oracle ceiling, goal
    and sub-goal photos, and data collection. Callers check `isinstance(driver, SimCapabilities)`."""

    control_hz: float  # control steps per second

    @property
    def scene(self) -> Any:
        """The live MuJoCo scene (envs.scene.FrankaScene): privileged state for scripted policies."""
        ...

    @property
    def episode_spec(self) -> Any:
        """The current episode's envs.tasks.EpisodeSpec."""
        ...

    def oracle(self) -> Any:
        """The task's scripted oracle for the current episode: `act(scene) -> action`."""
        ...

    def goal_image(self) -> np.ndarray: ...

    def subgoal_images(self) -> list[np.ndarray]:
        """The task's sub-goal photos, then its goal photo."""
        ...
