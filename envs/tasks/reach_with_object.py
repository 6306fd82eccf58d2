"""Reach with object: the cube starts in the closed hand; carry it to a goal position without dropping it.

Success: end-effector site within 4 cm of the goal position and the cube still pinched by both fingers."""

from __future__ import annotations

import numpy as np

from vjepa_planning.envs.scene import FrankaScene
from vjepa_planning.envs.tasks.base import CUBE_BELOW_EE, EpisodeSpec, Oracle, Task, sample_far_from, sample_table_xy

SUCCESS_RADIUS = 0.04
Z_RANGE = (0.12, 0.35)


class ReachWithObjectTask(Task):
    name = "reach_with_object"
    max_steps = 25

    def sample(self, rng: np.random.Generator, seed: int) -> EpisodeSpec:
        start_xy = sample_table_xy(rng)
        goal_xy = sample_far_from(rng, start_xy, 0.12)
        start_ee = [*start_xy, rng.uniform(*Z_RANGE)]
        goal_ee = [*goal_xy, rng.uniform(*Z_RANGE)]
        return EpisodeSpec(
            task=self.name, seed=seed,
            start_ee=start_ee, start_gripper=1.0,
            cube_start=[start_ee[0], start_ee[1], start_ee[2] - CUBE_BELOW_EE], cube_yaw=0.0, cube_in_hand=True,
            goal_ee=goal_ee, goal_gripper=1.0,
            goal_cube=[goal_ee[0], goal_ee[1], goal_ee[2] - CUBE_BELOW_EE], goal_cube_in_hand=True,
        )  # fmt: skip

    def distance(self, scene: FrankaScene, spec: EpisodeSpec) -> float:
        return float(np.linalg.norm(scene.ee_pos() - np.array(spec.goal_ee)))

    def success(self, scene: FrankaScene, spec: EpisodeSpec) -> bool:
        return self.distance(scene, spec) < SUCCESS_RADIUS and scene.cube_between_fingers()

    def oracle(self, spec: EpisodeSpec) -> Oracle:
        return CarryOracle(spec)


class CarryOracle(Oracle):
    def act(self, scene: FrankaScene) -> np.ndarray:
        return self.move(scene, np.array(self.spec.goal_ee), 1.0)
