"""Reach: move the open hand to a goal position; the cube sits on the table as a landmark.

Success: end-effector site within 4 cm of the goal position."""

from __future__ import annotations

import numpy as np

from vjepa_planning.envs.scene import FrankaScene
from vjepa_planning.envs.tasks.base import EpisodeSpec, Oracle, Task, sample_far_from, sample_table_xy

SUCCESS_RADIUS = 0.04
Z_RANGE = (0.12, 0.40)  # high enough that the fingers never touch the cube


class ReachTask(Task):
    name = "reach"
    max_steps = 25

    def sample(self, rng: np.random.Generator, seed: int) -> EpisodeSpec:
        cube_xy = sample_table_xy(rng)
        start_xy = sample_table_xy(rng)
        goal_xy = sample_far_from(rng, start_xy, 0.12)
        return EpisodeSpec(
            task=self.name, seed=seed,
            start_ee=[*start_xy, rng.uniform(*Z_RANGE)], start_gripper=0.0,
            cube_start=[*cube_xy, 0.02], cube_yaw=float(rng.uniform(-0.4, 0.4)), cube_in_hand=False,
            goal_ee=[*goal_xy, rng.uniform(*Z_RANGE)], goal_gripper=0.0,
            goal_cube=[*cube_xy, 0.02], goal_cube_in_hand=False,
        )  # fmt: skip

    def distance(self, scene: FrankaScene, spec: EpisodeSpec) -> float:
        return float(np.linalg.norm(scene.ee_pos() - np.array(spec.goal_ee)))

    def success(self, scene: FrankaScene, spec: EpisodeSpec) -> bool:
        return self.distance(scene, spec) < SUCCESS_RADIUS

    def oracle(self, spec: EpisodeSpec) -> Oracle:
        return ReachOracle(spec)


class ReachOracle(Oracle):
    def act(self, scene: FrankaScene) -> np.ndarray:
        return self.move(scene, np.array(self.spec.goal_ee), 0.0)
