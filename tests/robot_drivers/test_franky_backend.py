"""The franky (real Franka) backend.

* Against franky-sim (`pip install franky-control==2.0.0 franky-sim==1.0.4`): a MuJoCo Franka speaking the
  libfranka protocol on a loopback address. Checks the sign and size of every action axis, the gripper,
  the driver contract (directly and through the robot server), and documents franky's end-effector-frame
  relative motions that the backend avoids. Skipped, with the reason, when franky or franky-sim is missing.
* Against a kinematic stand-in for the `franky` module (always runs): the pose arithmetic, the gripper rule,
  stop/fault handling, and the same driver contract.
"""

from __future__ import annotations

import importlib.util
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from vjepa_planning.robot_drivers.camera import StaticCamera
from vjepa_planning.robot_drivers.safety import SafetyLimits

_spec = importlib.util.spec_from_file_location("_server_contract", Path(__file__).with_name("test_server.py"))
_contract = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_contract)
driver_contract = _contract.driver_contract

FRANKA_LIMITS = SafetyLimits(workspace_low=(0.2, -0.5, 0.05), workspace_high=(0.8, 0.5, 0.8))


# ---- a kinematic stand-in for franky: motions land exactly where they are sent -------------------------


def fake_franky() -> types.ModuleType:
    f = types.ModuleType("franky")

    class Affine:
        def __init__(self, m=None):
            if m is None:
                m = np.eye(4)
            m = np.asarray(m, float)
            if m.shape == (3,):
                t, m = m, np.eye(4)
                m[:3, 3] = t
            self.matrix = m.copy()

    class ReferenceType:
        Absolute, Relative = "absolute", "relative"

    class RealtimeConfig:
        Enforce, Ignore = 0, 1

    class CartesianMotion:
        def __init__(self, target, reference_type=ReferenceType.Absolute):
            self.target, self.reference_type = target, reference_type

    class JointState:
        def __init__(self, position):
            self.position = np.asarray(position)

    class JointMotion:
        def __init__(self, target):
            self.target = target

    class Future:
        def __init__(self, fn):
            self.fn = fn

        def wait(self, timeout=None):
            self.fn()
            return True

    class Robot:
        def __init__(self, ip, realtime_config=RealtimeConfig.Enforce):
            self.pose = np.eye(4)
            self.pose[:3, :3] = np.diag([1.0, -1.0, -1.0])
            self.pose[:3, 3] = [0.5, 0.0, 0.4]
            self.has_errors, self.stopped, self.moves, self.fail_next = False, 0, [], False
            self.relative_dynamics_factor = 1.0

        @property
        def current_cartesian_state(self):
            return types.SimpleNamespace(pose=types.SimpleNamespace(end_effector_pose=Affine(self.pose)))

        def move(self, motion, asynchronous=False):
            if self.fail_next:
                self.fail_next, self.has_errors = False, True
                raise RuntimeError("libfranka: cartesian_reflex")
            self.moves.append(motion)
            if isinstance(motion, JointMotion):
                self.pose[:3, 3] = [0.5, 0.0, 0.4]
                self.pose[:3, :3] = np.diag([1.0, -1.0, -1.0])
            elif motion.reference_type == ReferenceType.Absolute:
                self.pose = motion.target.matrix.copy()
            else:
                self.pose = self.pose @ motion.target.matrix

        def stop(self):
            self.stopped += 1

        def join_motion(self):
            pass

        def recover_from_errors(self):
            self.has_errors = False
            return True

    class Gripper:
        max_width = 0.08

        def __init__(self, ip):
            self.width, self.calls = 0.08, []

        def move(self, width, speed):
            self.calls.append(("move", width))
            self.width = width
            return True

        def grasp(self, width, speed, force, eps_in, eps_out):
            self.calls.append(("grasp", force))
            self.width = 0.0
            return True

        def move_async(self, width, speed):
            return Future(lambda: self.move(width, speed))

        def grasp_async(self, *a):
            return Future(lambda: self.grasp(*a))

    for name, obj in list(locals().items()):
        if isinstance(obj, type):
            setattr(f, name, obj)
    return f


@pytest.fixture
def fake_backend(monkeypatch):
    monkeypatch.setitem(sys.modules, "franky", fake_franky())
    from vjepa_planning.robot_drivers.franky_backend import FrankyBackend

    return FrankyBackend("192.0.2.1", StaticCamera(32), FRANKA_LIMITS)


def test_fake_state_follows_the_sim_conventions(fake_backend):
    obs = fake_backend.reset()
    np.testing.assert_allclose(obs.state, [0.5, 0.0, 0.4, np.pi, 0.0, 0.0, 0.0], atol=1e-9)  # roll pi, open
    assert obs.image.shape == (32, 32, 3) and obs.info == {}


def test_fake_actions_are_base_frame_deltas_sent_as_absolute_targets(fake_backend):
    fake_backend.reset()
    for action in ([0.03, 0, 0, 0, 0, 0, 0], [0, -0.03, 0, 0, 0, 0, 0], [0, 0, -0.03, 0, 0, 0, 0], [0, 0, 0, 0.1, -0.05, 0.1, 0]):
        before = fake_backend.robot.pose.copy()
        sent = fake_backend.act(np.array(action))
        after = fake_backend.robot.pose
        assert fake_backend.robot.moves[-1].reference_type == "absolute"
        np.testing.assert_allclose(after[:3, 3] - before[:3, 3], sent[:3], atol=1e-12)
        np.testing.assert_allclose(Rotation.from_matrix(after[:3, :3] @ before[:3, :3].T).as_euler("xyz"), sent[3:6], atol=1e-12)


def test_fake_gripper_rule_and_limits(fake_backend, monkeypatch):
    fake_backend.reset()
    g = fake_backend.gripper
    fake_backend.act(np.array([0, 0, 0, 0, 0, 0, 0.05]))  # inside the dead band: no command
    assert g.calls[-1][0] == "move" and len(g.calls) == 1  # (the reset's open)
    fake_backend.act(np.array([0, 0, 0, 0, 0, 0, 1.0]))  # close: a force-limited grasp
    assert g.calls[-1] == ("grasp", 20.0) and fake_backend.current_state()[6] == 1.0
    fake_backend.act(np.array([0, 0, 0, 0, 0, 0, -0.6]))  # open to 0.4
    assert g.calls[-1][0] == "move" and g.calls[-1][1] == pytest.approx(0.6 * 0.08)
    from vjepa_planning.robot_drivers.franky_backend import FrankyBackend

    with pytest.raises(ValueError, match="gripper_force"):
        FrankyBackend("192.0.2.1", StaticCamera(8), gripper_force=200.0)
    with pytest.raises(ValueError, match="gripper_speed"):
        FrankyBackend("192.0.2.1", StaticCamera(8), gripper_speed=1.0)


def test_fake_robot_error_halts_until_reset(fake_backend):
    fake_backend.reset()
    fake_backend.robot.fail_next = True
    with pytest.raises(RuntimeError, match="halted"):
        fake_backend.act(np.array([0.01, 0, 0, 0, 0, 0, 0]))
    with pytest.raises(RuntimeError, match="robot error"):
        fake_backend.act(np.zeros(7))
    fake_backend.reset()  # runs error recovery
    assert not fake_backend.robot.has_errors
    fake_backend.act(np.array([0.01, 0, 0, 0, 0, 0, 0]))


def test_fake_backend_passes_the_driver_contract(fake_backend):
    driver_contract(fake_backend, pos_tol=1e-6, backend=True)
    assert fake_backend.robot.stopped >= 1


def test_fake_episode_start_outside_the_box_is_refused(fake_backend):
    from vjepa_planning.envs.tasks import EpisodeSpec

    spec = EpisodeSpec("reach", 0, [0.5, 0.0, 2.0], 0.0, [0.5, 0, 0.02], 0.0, False, [0.5, 0, 0.2], 0.0, [0.5, 0, 0.02], False)
    moves = len(fake_backend.robot.moves)
    with pytest.raises(ValueError, match="outside the workspace"):
        fake_backend.reset(episode=spec.to_json())
    bad = spec.to_json().replace('"start_gripper": 0.0', '"start_gripper": NaN')
    with pytest.raises(ValueError, match="start_gripper"):
        fake_backend.reset(episode=bad)
    assert len(fake_backend.robot.moves) == moves  # refused before the arm went home


# ---- franky-sim: the real libfranka protocol ----------------------------------------------------------


@pytest.fixture(scope="module")
def franky_sim():
    """A franky-sim server on a free loopback address; yields that address."""
    from vjepa_planning.robot_drivers.franky_sim import franky_sim_missing, franky_sim_server

    why = franky_sim_missing()
    if why:
        pytest.skip(why)
    with franky_sim_server() as address:
        yield address


@pytest.fixture(scope="module")
def sim_backend(franky_sim):
    from vjepa_planning.robot_drivers.franky_backend import FrankyBackend

    backend = FrankyBackend(franky_sim, StaticCamera(64), FRANKA_LIMITS, realtime=False, relative_dynamics_factor=0.5)
    yield backend
    backend.close()


@pytest.mark.slow
def test_franky_sim_state_conventions(sim_backend):
    obs = sim_backend.reset()
    s = obs.state
    assert obs.image.shape == (64, 64, 3)
    assert abs(s[3] - np.pi) < 0.05 and abs(s[4]) < 0.05  # hand pointing down reads roll = pi, as in the sim
    assert -np.pi / 2 <= s[3] < 3 * np.pi / 2
    assert s[6] < 0.05  # open after reset
    np.testing.assert_allclose(s[:3], [0.307, 0.0, 0.487], atol=0.03)  # the ready pose's TCP


@pytest.mark.slow
def test_franky_sim_every_axis_moves_with_the_sign_of_the_action(sim_backend, capsys):
    sim_backend.reset()
    names = ["x", "y", "z", "roll", "pitch", "yaw"]
    rows = []
    for axis in range(6):
        for sign in (1.0, -1.0):
            size = 0.03 if axis < 3 else 0.1
            action = np.zeros(7)
            action[axis] = sign * size
            p0 = sim_backend.robot.current_cartesian_state.pose.end_effector_pose.matrix
            sent = sim_backend.act(action)
            p1 = sim_backend.robot.current_cartesian_state.pose.end_effector_pose.matrix
            np.testing.assert_allclose(sent, action)
            dpos = p1[:3, 3] - p0[:3, 3]
            drot = Rotation.from_matrix(p1[:3, :3] @ p0[:3, :3].T).as_euler("xyz")
            measured = np.concatenate([dpos, drot])
            rows.append(f"{'+' if sign > 0 else '-'}{names[axis]:5s} commanded {sign * size:+.3f}  measured {measured[axis]:+.4f}  others max {np.abs(np.delete(measured, axis)).max():.4f}")
            assert np.sign(measured[axis]) == sign
            assert abs(measured[axis] - sign * size) < (0.003 if axis < 3 else 0.01), rows[-1]
            assert np.all(np.abs(np.delete(dpos, axis if axis < 3 else [])) < 0.003), rows[-1]
            assert np.all(np.abs(np.delete(drot, axis - 3 if axis >= 3 else [])) < 0.01), rows[-1]
    with capsys.disabled():
        print("\nfranky-sim per-axis response to base-frame actions:\n  " + "\n  ".join(rows))


@pytest.mark.slow
def test_franky_sim_relative_motions_are_in_the_hand_frame(sim_backend):
    """Why the backend never sends relative motions: with the hand down, franky's relative -z goes UP."""
    import franky

    sim_backend.reset()
    z0 = sim_backend.current_state()[2]
    sim_backend.robot.move(franky.CartesianMotion(franky.Affine([0.0, 0.0, -0.03]), franky.ReferenceType.Relative))
    assert sim_backend.current_state()[2] - z0 == pytest.approx(0.03, abs=0.003)


@pytest.mark.slow
def test_franky_sim_gripper_closes_and_opens(sim_backend):
    sim_backend.reset()
    sent = sim_backend.act(np.array([0, 0, 0, 0, 0, 0, 1.0]))
    assert sent[6] == pytest.approx(1.0, abs=1e-3) and sim_backend.current_state()[6] > 0.9
    sim_backend.act(np.array([0, 0, 0, 0, 0, 0, -1.0]))
    assert sim_backend.current_state()[6] < 0.05


@pytest.mark.slow
def test_franky_sim_passes_the_driver_contract(sim_backend):
    driver_contract(sim_backend, pos_tol=0.003, backend=True)


@pytest.mark.slow
def test_franky_sim_through_the_robot_server(sim_backend):
    from vjepa_planning.robot_drivers.remote_driver import RemoteDriver
    from vjepa_planning.robot_drivers.server import RobotServer

    with RobotServer(sim_backend, port=0, watchdog_s=0, limits=FRANKA_LIMITS) as srv:
        srv._close_backend = lambda: None  # the module fixture owns the backend
        with RemoteDriver("127.0.0.1", srv.port, timeout_s=10.0) as d:
            assert d.server_info["backend"]["backend"] == "franky"
            driver_contract(d, pos_tol=0.003)
            with pytest.raises(Exception, match="cannot render"):
                d.goal_image()


@pytest.mark.slow
def test_franky_sim_watchdog_stops_an_asynchronous_arm(sim_backend):
    """asynchronous=True: act returns while the arm still moves; a silent client gets the arm stopped.
    (The same backend as the other tests: libfranka admits one controlling connection per robot.)"""
    from vjepa_planning.robot_drivers.protocol import RemoteRobotError
    from vjepa_planning.robot_drivers.remote_driver import RemoteDriver
    from vjepa_planning.robot_drivers.server import RobotServer

    sim_backend.asynchronous = True
    sim_backend.robot.relative_dynamics_factor = 0.03  # a 7 cm step then takes seconds
    try:
        with RobotServer(sim_backend, port=0, watchdog_s=0.2, limits=FRANKA_LIMITS) as srv:
            srv._close_backend = lambda: None  # the module fixture owns the backend
            with RemoteDriver("127.0.0.1", srv.port, timeout_s=30.0, reset_timeout_s=60.0, heartbeat=False) as d:
                d.reset()
                x0 = d.observe().state[0]
                t = time.monotonic()
                d.act([0.07, 0, 0, 0, 0, 0, 0])
                assert time.monotonic() - t < 1.0  # returned before the (slow, seconds-long) motion finished
                time.sleep(1.0)
                with pytest.raises(RemoteRobotError, match="watchdog"):
                    d.act(np.zeros(7))
                x_stop = d.observe().state[0]
                time.sleep(1.0)
                x_later = d.observe().state[0]
                moved = (x_stop - x0, x_later - x0)
                assert 0.001 < x_stop - x0 < 0.065, moved  # it was moving, and stopped short of the 7 cm target
                assert abs(x_later - x_stop) < 0.002, moved  # and stays stopped
    finally:
        sim_backend.asynchronous = False
        sim_backend.robot.relative_dynamics_factor = 0.5
        sim_backend.reset()


@pytest.mark.slow
def test_franky_sim_fuzzed_steps_at_the_box_edges_move_within_the_limits(sim_backend):
    """The fault probe's fuzz on franky-sim through the robot server: random steps (some beyond the step
    limits, with rotations) pushed toward the box edges; every measured step stays within the limits and the
    box (plus the motion tolerance), or the server holds the arm and says so."""
    from vjepa_planning.robot_drivers.protocol import RemoteRobotError
    from vjepa_planning.robot_drivers.remote_driver import RemoteDriver
    from vjepa_planning.robot_drivers.safety import MotionTolerance
    from vjepa_planning.robot_drivers.server import RobotServer
    from vjepa_planning.robot_pose import rotation_delta

    # A box the arm reaches everywhere with the hand down. Pushed into the corners of FRANKA_LIMITS' larger box
    # (x to 0.8, |y| to 0.5, z to 0.8 m), franky-sim moved the hand up to 0.72 m in one step before the
    # server's motion check held it, and the next reset failed ("Motion planner failed"): the box must be
    # the reachable region (docs/real_franka.md).
    L = SafetyLimits(workspace_low=(0.3, -0.25, 0.1), workspace_high=(0.6, 0.25, 0.5))
    tol, rng = MotionTolerance(), np.random.default_rng(11)
    lo, hi = np.array(L.workspace_low), np.array(L.workspace_high)
    steps = held = 0
    with RobotServer(sim_backend, port=0, watchdog_s=0, limits=L) as srv:
        srv._close_backend = lambda: None  # the module fixture owns the backend
        with RemoteDriver("127.0.0.1", srv.port, timeout_s=30.0, reset_timeout_s=60.0) as d:
            s = d.reset().state
            direction = rng.choice([-1, 1], 3)  # push toward one corner of the box, then another
            for k in range(36):
                if k % 12 == 0:
                    direction = rng.choice([-1, 1], 3)
                a = np.zeros(7)
                a[:3] = direction * L.max_translation * rng.uniform(0.5, 1.3, 3)
                a[3:6] = rng.uniform(-1.2, 1.2, 3) * L.max_rotation
                try:
                    d.act(a)
                except RemoteRobotError as e:  # the server caught a bad measured step and held the arm
                    assert e.code == "motion_limit", e
                    held += 1
                    s = d.reset().state
                    continue
                s2 = d.observe().state
                steps += 1
                assert np.abs(s2[:3] - s[:3]).max() <= L.max_translation + tol.translation, (s, s2)
                assert np.abs(rotation_delta(s[None, 3:6], s2[None, 3:6])[0]).max() <= L.max_rotation + tol.rotation, (s, s2)
                assert np.all(s2[:3] >= lo - tol.translation) and np.all(s2[:3] <= hi + tol.translation), s2
                s = s2
    assert steps >= 30 and held <= 3, (steps, held)
    print(f"\n{steps} fuzzed franky-sim steps within the limits, {held} held by the motion check")
