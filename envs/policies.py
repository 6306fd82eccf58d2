"""Data-collection policies that need no world model: random exploration and a noisy oracle.

All act on the scene (privileged) and return 7-D actions inside the default safety limits."""

from __future__ import annotations

import numpy as np

from vjepa_planning.envs.scene import FrankaScene
from vjepa_planning.envs.tasks.base import Oracle

# Where exploration keeps the hand: the table region, above the cube's height.
EXPLORE_LOW = np.array([0.30, -0.28, 0.05])
EXPLORE_HIGH = np.array([0.70, 0.28, 0.40])


class RandomExploration:
    """Random translation per axis and occasional gripper open/close; rotation held (the planner's
    default search space). With `smoothing` > 0 it is a correlated random walk reflected at the
    exploration box: broader coverage for training data than white noise. (The benchmark's random floor
    is `control.loop.RandomPolicy`, which needs no privileged state.)"""

    def __init__(self, rng: np.random.Generator, step: float = 0.05, smoothing: float = 0.0, gripper_prob: float = 0.2):
        self.rng, self.step, self.smoothing, self.gripper_prob = rng, step, smoothing, gripper_prob
        self._prev = np.zeros(3)

    def act(self, scene: FrankaScene) -> np.ndarray:
        move = self.rng.uniform(-self.step, self.step, 3)
        if self.smoothing > 0:
            move = self.smoothing * self._prev + (1 - self.smoothing) * move
            pos = scene.ee_pos()
            # Reflect off the exploration box instead of grinding against the safety limits.
            move = np.where(pos + move < EXPLORE_LOW, np.abs(move), move)
            move = np.where(pos + move > EXPLORE_HIGH, -np.abs(move), move)
            self._prev = move
        gripper = 0.0
        if self.rng.random() < self.gripper_prob:
            gripper = float(self.rng.choice([-1.0, 1.0]))
        return np.array([*move, 0.0, 0.0, 0.0, gripper])


class NoisyOracle:
    """The task's scripted oracle with Gaussian noise on translation and rotation (demonstrations with
    variety, as human teleoperation has)."""

    def __init__(self, oracle: Oracle, rng: np.random.Generator, noise: float = 0.01):
        self.oracle, self.rng, self.noise = oracle, rng, noise

    def act(self, scene: FrankaScene) -> np.ndarray:
        action = self.oracle.act(scene)
        action[:6] += self.rng.normal(0.0, self.noise, 6) * np.array([1, 1, 1, 0.5, 0.5, 0.5])
        return action


class GripperPerturbation:
    """Contact-rich variety on top of a policy: near the cube, now and then the gripper command is flipped
    for a step or two (a grasp closed too early or on the wrong spot, a held cube let go and re-gripped).
    The data then shows what closing and opening do next to the cube, which scripted demonstrations show
    only a few times per episode. The wrapped oracle recovers by itself: it opens again before grasping, and
    the pick oracles go back for a cube that slipped out (a failed grasp, then a re-grasp); the carry oracle
    of reach-with-object does not, so there the data shows an empty hand arriving. `prob` is the chance per
    step near the cube (within `near` m of the hand) that a flip of 1..`max_steps` steps starts."""

    def __init__(self, policy, rng: np.random.Generator, prob: float, near: float = 0.05, max_steps: int = 2):
        self.policy, self.rng, self.prob, self.near, self.max_steps = policy, rng, prob, near, max_steps
        self._left = 0

    def act(self, scene: FrankaScene) -> np.ndarray:
        action = self.policy.act(scene)
        if self._left == 0 and np.linalg.norm(scene.ee_pos() - scene.cube_pos()) < self.near and self.rng.random() < self.prob:
            self._left = int(self.rng.integers(1, self.max_steps + 1))
        if self._left > 0:
            self._left -= 1
            target = 0.0 if scene.gripper_state() + action[6] >= 0.5 else 1.0  # the opposite of what it asks
            action[6] = target - scene.gripper_state()
        return action
