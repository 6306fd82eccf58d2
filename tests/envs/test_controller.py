"""The end-effector controller's motion: a step the servos cannot follow at full speed is cut, not overshot,
and the MotionGuard keeps the hand inside its bounds: aimed at the wall, stopped when pushed off its path."""

import mujoco
import numpy as np
import pytest

from vjepa_planning.envs import make_task_env
from vjepa_planning.envs.controller import MotionGuard
from vjepa_planning.envs.tasks.base import DOWN
from vjepa_planning.robot_pose import euler_to_mat, tilt

GUARD = MotionGuard(max_translation=0.075, max_rotation=0.15, low=(0.25, -0.40, 0.055), high=(0.80, 0.40, 0.60), max_tilt=0.6)


def env_at(pos, mat=DOWN, guard=None):
    """A reach env with the hand at rest at (pos, mat)."""
    env = make_task_env("reach", image_size=32)
    env.reset(seed=0)
    s = env.scene
    q, err = env.controller.solve_ik(np.asarray(pos, dtype=np.float64), mat, s.arm_qpos(), iterations=200)
    assert err < 3e-3  # the first probe pose is near the edge of the reach
    s.set_arm(q, s.finger_opening())
    mujoco.mj_forward(s.model, s.data)
    for _ in range(50):
        mujoco.mj_step(s.model, s.data)
    env.motion_guard = guard
    return env


@pytest.mark.parametrize("start, step", [((0.722, -0.134, 0.424), (-0.075, 0.072, 0.074)), ((0.624, 0.119, 0.477), (0.074, 0.061, -0.075))])
def test_a_step_the_servos_cannot_follow_is_cut_not_overshot(start, step):
    """The motion probe's held steps, from rest: the old full-speed profile saturated the shoulder and moved
    the hand 90 and 86 mm on z. Now the step goes the share the servos can follow, and ends there, at rest."""
    env = env_at(start)
    p0 = env.scene.ee_pos()
    info = env.step(np.array([*step, 0, 0, 0, 0]))[4]
    moved, executed = env.scene.ee_pos() - p0, info["executed"][:3]
    assert np.abs(moved).max() <= 0.075 + 0.001, moved
    assert np.abs(moved - executed).max() < 0.0015, (moved, executed)
    assert np.abs(env.scene.data.qvel[:7]).max() < 0.05  # settled: nothing carries into the next step
    env.close()


def test_the_guard_stops_a_step_at_the_wall():
    """Commanded straight at the box wall from 1 cm inside it (no safety layer in front): without the guard
    the hand leaves the box by 6.5 cm; with it, the step ends at the wall and says it went 1 cm."""
    action = np.array([0, 0.075, 0, 0, 0, 0, 0])
    free = env_at((0.5, 0.39, 0.3))
    free.step(action)
    assert free.scene.ee_pos()[1] > 0.46
    env = env_at((0.5, 0.39, 0.3), guard=GUARD)
    y0 = env.scene.ee_pos()[1]
    info = env.step(action)[4]
    y = env.scene.ee_pos()[1]
    assert y <= GUARD.high[1] + GUARD.slack, y
    assert info["executed"][1] == pytest.approx(GUARD.high[1] - y0) and abs(y - y0 - info["executed"][1]) < 0.001
    free.close()
    env.close()


def test_the_guard_stops_a_hand_pushed_off_its_path():
    """A push (80 N sideways, as a collision would) moves the hand off its planned line: the guard stops the
    step early and reports the share it went, which is where the hand is along the line."""
    env = env_at((0.5, 0.0, 0.3), guard=GUARD)
    s = env.scene
    p0 = s.ee_pos()
    s.data.xfrc_applied[s.model.site_bodyid[s.ee_site], :3] = [0.0, 80.0, 0.0]
    info = env.step(np.array([0.05, 0, 0, 0, 0, 0, 0]))[4]
    s.data.xfrc_applied[:] = 0.0
    assert info["guard_stop"] == "blocked"
    assert 0.0 < info["executed"][0] < 0.045 and abs(s.ee_pos()[0] - p0[0] - info["executed"][0]) < 0.001
    env.close()


def test_the_guard_keeps_the_tilt_within_its_bound():
    """Rotations tilting the hand further than max_tilt (no safety layer in front) stop at the bound."""
    env = env_at((0.5, 0.0, 0.3), euler_to_mat(np.array([0.0, 0.5, 0.0])) @ DOWN, guard=GUARD)
    for _ in range(3):
        env.step(np.array([0, 0, 0, 0, 0.15, 0, 0]))
        assert tilt(env.scene.ee_mat()) <= GUARD.max_tilt + GUARD.rotation_slack
    env.close()
