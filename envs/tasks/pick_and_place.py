"""Pick and place: move the cube to a goal spot on the table and let go of it.

Success: cube centre within 5 cm of its goal position and released (not pinched by the fingers)."""

from __future__ import annotations

import numpy as np

from vjepa_planning.envs.scene import FrankaScene
from vjepa_planning.envs.tasks.base import CUBE_BELOW_EE, GRASP_HEIGHT, EpisodeSpec, GoalPose, Task, sample_far_from, sample_table_xy
from vjepa_planning.envs.tasks.grasp import PickOracle, grasp_stages

SUCCESS_RADIUS = 0.05
CARRY_HEIGHT = GRASP_HEIGHT + 0.10
RETREAT_HEIGHT = GRASP_HEIGHT + 0.08  # where the goal photo shows the open hand, above the placed cube


class PickAndPlaceTask(Task):
    name = "pick_and_place"
    max_steps = 50

    def sample(self, rng: np.random.Generator, seed: int) -> EpisodeSpec:
        cube_xy = sample_table_xy(rng)
        goal_xy = sample_far_from(rng, cube_xy, 0.12)
        start_xy = sample_table_xy(rng)
        return EpisodeSpec(
            task=self.name, seed=seed,
            start_ee=[*start_xy, rng.uniform(0.15, 0.35)], start_gripper=0.0,
            cube_start=[*cube_xy, 0.02], cube_yaw=float(rng.uniform(-0.4, 0.4)), cube_in_hand=False,
            goal_ee=[*goal_xy, RETREAT_HEIGHT], goal_gripper=0.0,
            goal_cube=[*goal_xy, 0.02], goal_cube_in_hand=False,
        )  # fmt: skip

    def distance(self, scene: FrankaScene, spec: EpisodeSpec) -> float:
        return float(np.linalg.norm(scene.cube_pos() - np.array(spec.goal_cube)))

    def success(self, scene: FrankaScene, spec: EpisodeSpec) -> bool:
        return self.distance(scene, spec) < SUCCESS_RADIUS and not scene.cube_between_fingers()

    def oracle(self, spec: EpisodeSpec) -> PickOracle:
        return PlaceOracle(spec)

    def subgoals(self, spec: EpisodeSpec) -> list[GoalPose]:
        """Take the cube (`grasp_stages`), then hold it above the goal spot; the goal photo shows it put down."""
        above = (spec.goal_cube[0], spec.goal_cube[1], CARRY_HEIGHT)
        carried = GoalPose(ee=above, gripper=1.0, cube=(above[0], above[1], above[2] - CUBE_BELOW_EE), pinch=True)
        return [*grasp_stages(spec), carried]


class PlaceOracle(PickOracle):
    """Pick (see grasp.py), carry above the goal, lower, open, retreat to the goal photo's pose."""

    def __init__(self, spec: EpisodeSpec):
        goal = np.array(spec.goal_cube)
        super().__init__(spec, lift_to=np.array([*spec.cube_start[:2], CARRY_HEIGHT]))
        self.carry_to = np.array([goal[0], goal[1], CARRY_HEIGHT])
        self.place_at = np.array([goal[0], goal[1], GRASP_HEIGHT + 0.005])
        self.retreat_to = np.array(spec.goal_ee)
        self.place_phase = "carry"

    def holding(self) -> bool:
        return self.phase == "lift" or (self.phase == "lifted" and self.place_phase in ("carry", "lower"))

    def restart(self) -> None:
        super().restart()
        self.place_phase = "carry"

    def after_lift(self, scene: FrankaScene) -> np.ndarray:
        if self.place_phase == "carry":
            if self.near(scene, self.carry_to, 0.01):
                self.place_phase = "lower"
            else:
                return self.move(scene, self.carry_to, 1.0)
        if self.place_phase == "lower":
            if self.near(scene, self.place_at, 0.01):
                self.place_phase = "release"
            else:
                return self.move(scene, self.place_at, 1.0)
        if self.place_phase == "release" and scene.gripper_state() > 0.05:
            return self.move(scene, self.place_at, 0.0)
        self.place_phase = "retreat"
        return self.move(scene, self.retreat_to, 0.0)
