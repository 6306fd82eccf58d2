"""The in-process MuJoCo driver: a task env behind the RobotDriver interface, through the safety layer.

The safety limits also bound the motion, not only the command: the env's controller gets them as its
`MotionGuard` and holds the arm where a step would carry the hand past one (envs/controller.py).

Besides the RobotDriver verbs it has the simulator's own (robot_drivers.base.SimCapabilities): the live
scene, the task's oracle, goal and sub-goal photos."""

from __future__ import annotations

import numpy as np

from vjepa_planning.envs import make_task_env
from vjepa_planning.envs.controller import MotionGuard
from vjepa_planning.envs.tasks import EpisodeSpec
from vjepa_planning.robot_drivers.base import Observation
from vjepa_planning.robot_drivers.safety import SafetyLayer, SafetyLimits, SafetyReport


class SimDriver:
    def __init__(
        self,
        task: str = "reach",
        image_size: int = 256,
        seed: int = 0,
        episode: EpisodeSpec | None = None,
        limits: SafetyLimits = SafetyLimits(),
        max_steps: int | None = None,
        camera: str = "exterior",
    ):
        self.env = make_task_env(task, image_size=image_size, max_steps=max_steps, camera=camera)
        self.safety = SafetyLayer(limits)
        self.env.motion_guard = motion_guard(limits)
        self.seed, self.episode = seed, episode
        self._obs: Observation | None = None
        self._stopped = False
        self.control_hz = 1.0 / self.env.controller.cfg.control_dt
        self.last_safety: SafetyReport | None = None

    def reset(self, seed: int | None = None, episode: EpisodeSpec | None = None) -> Observation:
        episode = episode or self.episode
        if episode is not None:  # checked before anything moves (a spec may come off the network)
            episode.check()
            episode.check_reachable(self.safety.limits.workspace_low, self.safety.limits.workspace_high)
        seed = self.seed if seed is None else seed
        raw, info = self.env.reset(seed=seed, options={"episode": episode} if episode else None)
        self._obs = self._wrap(raw, info)
        self._stopped = False
        return self._obs

    def observe(self) -> Observation:
        if self._obs is None:
            raise RuntimeError("SimDriver.observe() before reset()")
        return self._obs

    def act(self, action) -> np.ndarray:
        """Filter `action` through this driver's safety layer, execute it, return what was executed."""
        if self._stopped:
            raise RuntimeError("SimDriver.act() after stop(): call reset() to start a new episode")
        safe, self.last_safety = self.safety.filter(action, self.observe().state)
        return self.execute(safe)

    def execute(self, safe: np.ndarray) -> np.ndarray:
        """Step the sim with an action that already passed a safety layer (the robot server's, for the sim
        backend behind it; `act` for everyone else); returns what the arm was sent: the share of the step it
        could reach and follow, or, where the motion guard held it, the step to the pose it was held at."""
        if self._stopped:
            raise RuntimeError("SimDriver.execute() after stop(): call reset() to start a new episode")
        safe = np.array(safe, dtype=np.float64)
        raw, _, _, _, info = self.env.step(safe)
        safe[:6] = info["executed"]  # envs/controller.py: EndEffectorController.step
        self._obs = self._wrap(raw, info)
        return safe

    def stop(self) -> None:
        """Stop as a real arm would: servos hold the current joints and further `act` calls are refused
        until `reset()`; `observe()` still works."""
        s = self.env.scene
        s.data.ctrl[:7] = s.arm_qpos()
        self._stopped = True

    @property
    def step_budget(self) -> int:
        return int(self.env.max_steps)

    @property
    def scene(self):
        return self.env.scene

    def oracle(self):
        return self.env.oracle()

    def goal_image(self) -> np.ndarray:
        return self.env.goal_image()

    def subgoal_images(self) -> list[np.ndarray]:
        return self.env.subgoal_images()

    @property
    def episode_spec(self) -> EpisodeSpec:
        return self.env.spec_

    def _wrap(self, raw: dict, info: dict) -> Observation:
        t = self.env.steps * self.env.controller.cfg.control_dt
        privileged = {k: info[k] for k in ("ee_pos", "cube_pos", "success", "distance", "cube_between_fingers")}
        return Observation(image=raw["image"], state=raw["state"], timestamp=t, info=privileged)

    def close(self) -> None:
        self.env.close()


def motion_guard(limits: SafetyLimits) -> MotionGuard:
    """The safety limits as the bounds the sim controller holds the arm at."""
    return MotionGuard(max_translation=limits.max_translation, max_rotation=limits.max_rotation, low=limits.workspace_low,
                       high=limits.workspace_high, max_tilt=limits.max_tilt)
