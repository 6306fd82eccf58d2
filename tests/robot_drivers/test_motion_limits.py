"""Measured motion, not just commands, stays within the step limits and the box: the fault probe's fuzz
(random steps at the box edges, with rotations) through the sim server, the controller at the edge of the
arm's reach, and the server holding the arm when a backend moves further than it was told."""

from __future__ import annotations

import numpy as np
import pytest

from vjepa_planning.robot_drivers.backends import SimBackend
from vjepa_planning.robot_drivers.protocol import RemoteRobotError
from vjepa_planning.robot_drivers.remote_driver import RemoteDriver
from vjepa_planning.robot_drivers.safety import MotionTolerance, SafetyLimits, motion_violation
from vjepa_planning.robot_drivers.server import RobotServer
from vjepa_planning.robot_drivers.sim_driver import SimDriver
from vjepa_planning.robot_pose import rotation_delta

LIMITS, TOL = SafetyLimits(), MotionTolerance()


def edge_action(rng, rotations: bool) -> np.ndarray:
    a = np.zeros(7)
    a[:3] = rng.choice([-1, 1], 3) * LIMITS.max_translation * rng.uniform(0.5, 1.2, 3)  # some beyond the limit
    if rotations:
        a[3:6] = rng.uniform(-1.2, 1.2, 3) * LIMITS.max_rotation
    a[6] = rng.choice([-1.0, 1.0])
    return a


@pytest.mark.parametrize("rotations", [False, True])
def test_fuzzed_steps_at_the_box_edges_move_within_the_limits(rotations):
    rng = np.random.default_rng(7 + rotations)
    lo, hi = np.array(LIMITS.workspace_low), np.array(LIMITS.workspace_high)
    held = steps = 0
    with RobotServer(lambda: SimBackend(image_size=32), port=0, watchdog_s=0) as srv, RemoteDriver("127.0.0.1", srv.port) as d:
        for episode in range(3):
            s = d.reset(seed=episode).state
            for _ in range(50):
                try:
                    d.act(edge_action(rng, rotations))
                except RemoteRobotError as e:  # the server caught a bad step and held the arm
                    assert e.code == "motion_limit", e
                    held += 1
                    s = d.reset(seed=100 + held).state
                    continue
                s2 = d.observe().state
                steps += 1
                assert np.abs(s2[:3] - s[:3]).max() <= LIMITS.max_translation + TOL.translation
                assert np.abs(rotation_delta(s[None, 3:6], s2[None, 3:6])[0]).max() <= LIMITS.max_rotation + TOL.rotation
                assert np.all(s2[:3] >= lo - TOL.translation) and np.all(s2[:3] <= hi + TOL.translation)
                s = s2
    assert steps >= 140 and held <= 3, (steps, held)  # the controller itself rarely needs holding
    print(f"\n{steps} fuzzed steps within the limits, {held} held by the motion check (rotations={rotations})")


def test_an_unreachable_target_is_approached_not_chased():
    """The probe's worst step: near the edge of the reach, +x +z commanded, the hand went 11 cm down."""
    d = SimDriver(task="reach", image_size=32)
    d.reset(seed=0)
    for _ in range(12):  # toward the box's far corner, beyond what the arm reaches with the hand down
        s = d.observe().state
        allowed, _ = d.safety.filter([0.075, -0.075, 0.06, 0, 0, 0, 0], s)
        sent = d.act([0.075, -0.075, 0.06, 0, 0, 0, 0])
        moved = d.observe().state[:3] - s[:3]
        assert np.all(np.abs(moved - sent[:3]) < 0.02), (s[:3], sent, moved)  # it goes where it said it went
        assert sent[0] >= 0 and sent[1] <= 0 and sent[2] >= 0  # a share of the command, never its opposite
    # By now the arm is at its reach: it went only a share of what the safety layer allowed.
    assert np.linalg.norm(sent[:3]) < np.linalg.norm(allowed[:3]) - 1e-6
    d.close()


def test_motion_violation_names_what_was_exceeded():
    s = np.array([0.5, 0.0, 0.3, np.pi, 0.0, 0.0, 0.0])
    assert motion_violation(LIMITS, TOL, s, np.zeros(7), s) is None
    far = s.copy()
    far[2] -= 0.2
    assert "moved" in motion_violation(LIMITS, TOL, s, np.zeros(7), far)
    turned = s.copy()
    turned[4] = 0.3
    assert "turned" in motion_violation(LIMITS, TOL, s, np.zeros(7), turned)
    off = s.copy()
    off[0] += 0.05
    assert "tracking" in motion_violation(LIMITS, TOL, s, np.zeros(7), off)
    assert motion_violation(LIMITS, TOL, s, np.zeros(7), off, tracking=False) is None
    out = np.array([0.5, 0.0, 0.62, np.pi, 0.0, 0.0, 0.0])
    assert "outside" in motion_violation(LIMITS, TOL, out - [0, 0, 0.04, 0, 0, 0, 0], [0, 0, 0.04, 0, 0, 0, 0], out)
    assert "not finite" in motion_violation(LIMITS, TOL, s, np.zeros(7), s * np.nan)


class Overshooting(SimBackend):
    """A faulty arm: every step it is sent, it moves three times as far."""

    def act(self, action):
        sent = super().act(action)
        super().act(2 * np.asarray(sent))
        return sent


def test_the_server_holds_an_arm_that_moves_further_than_it_was_told():
    with RobotServer(lambda: Overshooting(image_size=32), port=0, watchdog_s=0) as srv, RemoteDriver("127.0.0.1", srv.port) as d:
        d.reset(seed=1)
        with pytest.raises(RemoteRobotError) as e:
            d.act([0.04, 0, 0, 0, 0, 0, 0])
        assert e.value.code == "motion_limit" and "moved" in e.value.message
        with pytest.raises(RemoteRobotError, match="stopped"):
            d.act(np.zeros(7))  # held until a reset
        assert srv.stats["motion_limit"] == 1
        d.reset(seed=1)
