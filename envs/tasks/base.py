"""What every task shares: the episode spec, the gymnasium env, goal photos and the oracle helpers.

A task file only says how to sample a start/goal (`sample`), when it is solved (`success`) and how a
privileged scripted policy solves it (`Oracle`). Everything else lives here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import gymnasium as gym
import mujoco
import numpy as np

from vjepa_planning.envs.controller import ControllerConfig, EndEffectorController, MotionGuard
from vjepa_planning.envs.rendering import FastRenderer
from vjepa_planning.envs.scene import CAMERAS, FINGER_OPEN, HOME_QPOS, FrankaScene, SceneConfig
from vjepa_planning.envs.tasks.spec import EpisodeSpec
from vjepa_planning.robot_pose import delta_action

# Gripper pointing straight down, fingers opening along the base y axis: Euler (pi, 0, 0).
DOWN = np.diag([1.0, -1.0, -1.0])
TABLE_X = (0.35, 0.65)  # where cubes and goals are sampled (m, base frame)
TABLE_Y = (-0.2, 0.2)
GRASP_HEIGHT = 0.058  # site height for a table grasp: fingertips (5 cm past the site) clear the table by 8 mm
CUBE_BELOW_EE = 0.02  # cube centre below the site when held (the pads' centre is just past the site)


@dataclass(frozen=True)
class GoalPose:
    """A configuration to photograph on the way to the goal (a sub-goal): hand position (m), gripper
    command (0 open .. 1 closed), cube centre (m) and whether the fingers pinch the cube."""

    ee: tuple[float, float, float]
    gripper: float
    cube: tuple[float, float, float]
    pinch: bool


def sample_table_xy(rng: np.random.Generator) -> np.ndarray:
    return np.array([rng.uniform(*TABLE_X), rng.uniform(*TABLE_Y)])


def sample_far_from(rng: np.random.Generator, other_xy: np.ndarray, min_dist: float) -> np.ndarray:
    for _ in range(1000):
        xy = sample_table_xy(rng)
        if np.linalg.norm(xy - other_xy) >= min_dist:
            return xy
    raise RuntimeError("could not sample a goal far enough from the start")  # unreachable with our ranges


class Task:
    name: ClassVar[str]
    max_steps: ClassVar[int]

    def sample(self, rng: np.random.Generator, seed: int) -> EpisodeSpec:
        raise NotImplementedError

    def success(self, scene: FrankaScene, spec: EpisodeSpec) -> bool:
        raise NotImplementedError

    def distance(self, scene: FrankaScene, spec: EpisodeSpec) -> float:
        """The privileged distance the success threshold applies to (m)."""
        raise NotImplementedError

    def oracle(self, spec: EpisodeSpec) -> "Oracle":
        raise NotImplementedError

    def subgoals(self, spec: EpisodeSpec) -> list[GoalPose]:
        """Intermediate goal photos for multi-stage tasks, in order (the final goal not included).
        V-JEPA 2-AC plans pick-and-place through such sub-goal images; single-stage tasks have none."""
        return []


class Oracle:
    """Scripted policy from privileged state; `act` returns a 7-D action within the default safety limits."""

    max_step = 0.06  # m per axis per control step, inside the 0.075 safety clamp

    def __init__(self, spec: EpisodeSpec):
        self.spec = spec

    def act(self, scene: FrankaScene) -> np.ndarray:
        raise NotImplementedError

    def move(self, scene: FrankaScene, target: np.ndarray, gripper: float) -> np.ndarray:
        """Step toward `target` with the gripper at `gripper`, correcting orientation back to DOWN."""
        action = delta_action(scene.ee_pos(), scene.ee_mat(), scene.gripper_state(), target, DOWN, gripper)
        action[:3] = np.clip(action[:3], -self.max_step, self.max_step)
        action[3:6] = np.clip(action[3:6], -0.1, 0.1)
        return action

    @staticmethod
    def near(scene: FrankaScene, target: np.ndarray, tol: float) -> bool:
        return bool(np.linalg.norm(scene.ee_pos() - target) < tol)


class FrankaTaskEnv(gym.Env):
    """A Franka task as a gymnasium env: observations are one camera's image (`camera`, one of
    `envs.scene.CAMERAS`) and the 7-D state."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(
        self,
        task: Task,
        image_size: int = 256,
        max_steps: int | None = None,
        scene_cfg: SceneConfig | None = None,
        controller_cfg: ControllerConfig | None = None,
        render_mode: str | None = "rgb_array",
        camera: str = "exterior",
    ):
        if camera not in CAMERAS:
            raise ValueError(f"camera must be one of {CAMERAS}, got {camera!r}")
        self.task, self.camera = task, camera
        self.max_steps = max_steps or task.max_steps
        scene_cfg = scene_cfg or SceneConfig(image_height=image_size, image_width=image_size)
        self.scene = FrankaScene(scene_cfg)
        self.controller = EndEffectorController(self.scene, controller_cfg or ControllerConfig())
        self.renderer = FastRenderer(self.scene.model, scene_cfg.image_height, scene_cfg.image_width, camera)
        self.render_mode = render_mode
        self._goal_data = mujoco.MjData(self.scene.model)
        h, w = scene_cfg.image_height, scene_cfg.image_width
        self.observation_space = gym.spaces.Dict(
            {
                "image": gym.spaces.Box(0, 255, (h, w, 3), np.uint8),
                "state": gym.spaces.Box(-np.inf, np.inf, (7,), np.float64),
            }
        )
        self.action_space = gym.spaces.Box(-1.0, 1.0, (7,), np.float64)
        self.spec_: EpisodeSpec | None = None
        self.steps = 0
        self.motion_guard: MotionGuard | None = None  # bounds the controller enforces on every step's motion

    # ---- episode set-up -------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = options or {}
        if "episode" in options:
            spec = options["episode"]
        else:
            ep_seed = int(seed) if seed is not None else int(self.np_random.integers(2**31))
            spec = self.task.sample(np.random.default_rng(ep_seed), ep_seed)
        self.spec_ = spec
        self.steps = 0
        self._place(self.scene.data, spec, goal=False)
        # Let contacts settle (and a held cube get squeezed) before the first observation.
        s = self.scene
        for _ in range(round(0.3 / s.model.opt.timestep)):
            mujoco.mj_step(s.model, s.data)
        self.controller.reset_gripper(s.data.ctrl[7] < FINGER_OPEN / 2)
        return self._obs(), self._info()

    def _place(self, data: mujoco.MjData, spec: EpisodeSpec, goal: bool) -> None:
        """Put robot and cube in the spec's start (or goal) configuration, by IK and direct placement."""
        ee = np.array(spec.goal_ee if goal else spec.start_ee)
        grip = spec.goal_gripper if goal else spec.start_gripper
        in_hand = spec.goal_cube_in_hand if goal else spec.cube_in_hand
        cube = ee - np.array([0.0, 0.0, CUBE_BELOW_EE]) if in_hand else np.array(spec.goal_cube if goal else spec.cube_start)
        self._pose(data, GoalPose(tuple(ee), grip, tuple(cube), in_hand), spec.cube_yaw)

    def _pose(self, data: mujoco.MjData, pose: GoalPose, cube_yaw: float) -> None:
        s = self.scene
        # From the model's rest pose, not the live state: the finger and cube joints enter the Jacobian's
        # arithmetic, and a reset must not depend (even at 1e-16) on how the previous episode ended.
        q, _ = self.controller.solve_ik(np.array(pose.ee), DOWN, HOME_QPOS, base_qpos=s.model.qpos0)
        opening = 2 * s.cfg.cube_half_size if pose.pinch else 2 * FINGER_OPEN * (1.0 - pose.gripper)
        mujoco.mj_resetData(s.model, data)
        s.set_arm(q, opening, data)
        if pose.pinch:
            data.ctrl[7:9] = 0.0  # squeeze
        s.set_cube(np.array(pose.cube), cube_yaw, data)
        mujoco.mj_forward(s.model, data)

    def goal_image(self) -> np.ndarray:
        """The goal as a photo: the scene placed in the goal configuration (a person posing the robot)."""
        assert self.spec_ is not None, "reset() first"
        self._place(self._goal_data, self.spec_, goal=True)
        return self.renderer.render(self._goal_data)

    def subgoal_images(self) -> list[np.ndarray]:
        """Photos of the task's sub-goals, in order, followed by the goal photo (just the goal photo for
        single-stage tasks)."""
        assert self.spec_ is not None, "reset() first"
        images = []
        for pose in self.task.subgoals(self.spec_):
            self._pose(self._goal_data, pose, self.spec_.cube_yaw)
            images.append(self.renderer.render(self._goal_data))
        return [*images, self.goal_image()]

    # ---- stepping -------------------------------------------------------------------------------
    def step(self, action):
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (7,):
            raise ValueError(f"action must have shape (7,), got {action.shape}")
        ctrl_info = self.controller.step(action, self.motion_guard)
        self.steps += 1
        success = self.task.success(self.scene, self.spec_)
        info = self._info(success)
        info.update(ctrl_info)
        truncated = self.steps >= self.max_steps
        return self._obs(), -info["distance"], success, truncated, info

    def _obs(self) -> dict:
        return {"image": self.renderer.render(self.scene.data), "state": self.scene.robot_state()}

    def _info(self, success: bool | None = None) -> dict:
        s = self.scene
        if success is None:
            success = self.task.success(s, self.spec_)
        return {
            "ee_pos": s.ee_pos(),
            "cube_pos": s.cube_pos(),
            "success": bool(success),
            "distance": self.task.distance(s, self.spec_),
            "cube_between_fingers": s.cube_between_fingers(),
        }

    def oracle(self) -> Oracle:
        assert self.spec_ is not None, "reset() first"
        return self.task.oracle(self.spec_)

    def render(self):
        return self.renderer.render(self.scene.data)

    def close(self):
        self.renderer.close()
