"""Measured motion, not just commands, stays within the step limits, the box and the tilt bound: the
benchmark's fuzz (benchmarks/motion_limits.py: steps at the box edges, random or pushing into a corner, with
rotations) through the sim server, the controller at the edge of the arm's reach, and the server holding
the arm when a backend moves further than it was told."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from vjepa_planning.robot_drivers.backends import SimBackend
from vjepa_planning.robot_drivers.protocol import RemoteRobotError
from vjepa_planning.robot_drivers.remote_driver import RemoteDriver
from vjepa_planning.robot_drivers.safety import MotionTolerance, SafetyLimits, motion_violation
from vjepa_planning.robot_drivers.server import RobotServer
from vjepa_planning.robot_drivers.sim_driver import SimDriver

LIMITS, TOL = SafetyLimits(), MotionTolerance()


def load_benchmark():
    """benchmarks/motion_limits.py as a module (registered first: its dataclasses look their module up)."""
    if "motion_limits" not in sys.modules:
        path = Path(__file__).resolve().parents[2] / "benchmarks" / "motion_limits.py"
        spec = importlib.util.spec_from_file_location("motion_limits", path)
        sys.modules["motion_limits"] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules["motion_limits"]


@pytest.mark.parametrize("mode", ["random", "corner"])
def test_fuzzed_steps_at_the_box_edges_move_within_the_limits(mode):
    """2 seeds x 3 episodes x 60 steps with rotations: no step is held, and every measured step is within
    the bare limits plus the motion tolerance (the server's check would hold nothing either)."""
    bench = load_benchmark()
    counts = bench.Counts()
    for seed in (7, 8):
        counts.add(bench.run(seed, mode, rotations=True, episodes=3, steps=60, image_size=32, limits=LIMITS, tol=TOL))
    assert counts.held == 0, counts.held_reasons
    assert counts.steps == 360
    beyond = {k: v for k, v in vars(counts).items() if k.startswith("beyond_") and k.endswith("_tol") and v}
    assert not beyond, beyond
    print("\n" + bench.report(f"fuzz {mode}", counts, LIMITS, TOL))


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
    tilted = s.copy()
    tilted[3] = np.pi - 0.7  # 0.7 rad from pointing down, over max_tilt + the tolerance
    assert "tilted" in motion_violation(LIMITS, TOL, tilted + [0, 0, 0, 0.1, 0, 0, 0], [0, 0, 0, -0.1, 0, 0, 0], tilted)
    assert motion_violation(LIMITS, TOL, tilted, np.zeros(7), tilted) is None  # tilted already (a person), not further
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
