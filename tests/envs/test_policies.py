"""Data-collection policies and the oracles' recovery: a cube lost on the way up is picked up again, and the
contact perturbation flips the gripper only next to the cube."""

import numpy as np
import pytest

from vjepa_planning.envs import make_task_env
from vjepa_planning.envs.policies import GripperPerturbation


@pytest.mark.parametrize("task", ["grasp", "pick_and_place"])
def test_the_oracle_picks_a_dropped_cube_up_again(task):
    env = make_task_env(task, image_size=32, camera="workspace")
    env.reset(seed=5)
    oracle, scene = env.oracle(), env.scene
    while oracle.phase != "lift":
        env.step(oracle.act(scene))
    env.step(oracle.act(scene))
    for _ in range(3):  # let go: the cube falls back onto the table
        env.step(np.array([0, 0, 0.03, 0, 0, 0, -1.0]))
    assert not scene.cube_between_fingers() and scene.cube_pos()[2] < 0.03
    phases, success = [], False
    for _ in range(env.max_steps):
        *_, success, _, _ = env.step(oracle.act(scene))
        phases.append(oracle.phase)
        if success:
            break
    assert phases[0] == "above" and "close" in phases  # it went back for the cube
    assert success  # and finished the task from there


class Fixed:
    def __init__(self, action):
        self.action = np.asarray(action, float)

    def act(self, scene):
        return self.action.copy()


def test_gripper_perturbation_flips_only_next_to_the_cube():
    env = make_task_env("grasp", image_size=32, camera="workspace")
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    far = GripperPerturbation(Fixed([0, 0, 0, 0, 0, 0, 0.0]), rng, prob=1.0, near=0.01)
    assert far.act(env.scene)[6] == 0.0  # the hand starts well away from the cube
    near = GripperPerturbation(Fixed([0, 0, 0, 0, 0, 0, 0.0]), rng, prob=1.0, near=10.0, max_steps=1)
    flipped = near.act(env.scene)
    assert flipped[6] == pytest.approx(1.0 - env.scene.gripper_state())  # asked to stay open: it closes
