import logging

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vjepa_planning.robot_drivers.safety import SafetyLayer, SafetyLimits, hand_tilt
from vjepa_planning.robot_pose import euler_to_mat, mat_to_euler

LIMITS = SafetyLimits()
LAYER = SafetyLayer(LIMITS)
LO, HI = np.array(LIMITS.workspace_low), np.array(LIMITS.workspace_high)

anything = st.floats(allow_nan=True, allow_infinity=True, width=64)
actions = st.lists(anything, min_size=7, max_size=7).map(np.array)


def states(inside: bool):
    pos = (
        st.tuples(*[st.floats(float(l), float(h)) for l, h in zip(LO, HI)])
        if inside
        else st.tuples(*[st.floats(-3.0, 3.0)] * 3)
    )
    return st.tuples(pos, st.tuples(*[st.floats(-4, 4)] * 3), st.floats(0, 1)).map(
        lambda t: np.array([*t[0], *t[1], t[2]])
    )


@settings(max_examples=2000, deadline=None)
@given(actions, states(inside=True))
def test_no_commanded_target_leaves_the_limits(action, state):
    safe, report = LAYER.filter(action, state)
    assert np.all(np.isfinite(safe))
    assert np.all(np.abs(safe[:3]) <= LIMITS.max_translation + 1e-12)
    assert np.all(np.abs(safe[3:6]) <= LIMITS.max_rotation + 1e-12)
    target = state[:3] + safe[:3]
    assert np.all(target >= LO - 1e-9) and np.all(target <= HI + 1e-9)
    assert -1e-12 <= state[6] + safe[6] <= 1 + 1e-12
    down = -(euler_to_mat(safe[3:6]) @ euler_to_mat(state[3:6]))[2, 2]  # cos of the target's tilt
    assert down >= min(np.cos(LIMITS.max_tilt), -euler_to_mat(state[3:6])[2, 2]) - 1e-12  # tilted already: not further
    if not np.all(np.isfinite(action)):
        assert report.rejected_non_finite and np.all(safe == 0)


@settings(max_examples=1000, deadline=None)
@given(actions, states(inside=False))
def test_outside_the_box_a_step_never_moves_further_away(action, state):
    safe, _ = LAYER.filter(action, state)
    assert np.all(np.abs(safe[:3]) <= LIMITS.max_translation + 1e-12)

    def excess(p):  # per-axis distance outside the box
        return np.maximum(LO - p, 0) + np.maximum(p - HI, 0)

    assert np.all(excess(state[:3] + safe[:3]) <= excess(state[:3]) + 1e-12)


def test_in_limits_action_passes_unchanged():
    state = np.array([0.5, 0.0, 0.3, np.pi, 0, 0, 0.2])
    action = np.array([0.01, -0.02, 0.03, 0.05, -0.05, 0.1, 0.5])
    safe, report = LAYER.filter(action, state)
    np.testing.assert_array_equal(safe, action)
    assert not report.clamped


def tilted(angle: float, yaw: float = 0.3) -> np.ndarray:
    """A state with the hand tilted `angle` from pointing down (rolled about x), yawed `yaw`."""
    return np.array([0.5, 0.0, 0.3, np.pi - angle, 0.0, yaw, 0.0])


def test_a_rotation_past_max_tilt_is_cut_at_it_and_keeps_its_yaw():
    state = tilted(0.55)
    action = np.array([0.01, 0, 0, -0.15, 0.05, 0.1, 0])  # roll -0.15 tilts the hand to ~0.7 rad
    safe, report = LAYER.filter(action, state)
    target = euler_to_mat(safe[3:6]) @ euler_to_mat(state[3:6])
    assert hand_tilt(mat_to_euler(target)) == pytest.approx(LIMITS.max_tilt, abs=1e-6) and report.clamped
    assert safe[5] == action[5] and safe[0] == action[0]  # yaw about the vertical never tilts; position untouched
    np.testing.assert_allclose(safe[3:5] / action[3:5], safe[3] / action[3])  # roll and pitch cut by one share


def test_from_beyond_max_tilt_a_rotation_may_only_not_tilt_further():
    state = tilted(0.8)
    back = np.array([0, 0, 0, 0.1, 0, 0.05, 0])  # toward pointing down: passes bit-exact
    safe, report = LAYER.filter(back, state)
    np.testing.assert_array_equal(safe, back)
    assert not report.clamped
    safe, _ = LAYER.filter(-back, state)  # further: cut to not tilting more than now
    assert hand_tilt(mat_to_euler(euler_to_mat(safe[3:6]) @ euler_to_mat(state[3:6]))) <= 0.8 + 1e-9
    assert safe[5] == -back[5]


def test_nan_becomes_hold_still_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING):
        safe, report = LAYER.filter([np.nan, 0, 0, 0, 0, 0, 0], np.array([0.5, 0, 0.3, 3.1, 0, 0, 0]))
    assert np.all(safe == 0) and report.rejected_non_finite
    assert "non-finite" in caplog.text


def test_wrong_shape_is_an_error_naming_the_shape():
    with pytest.raises(ValueError, match=r"\(7,\)"):
        LAYER.filter(np.zeros(6), np.zeros(7))


def test_bad_limits_are_refused():
    with pytest.raises(ValueError, match="low < high"):
        SafetyLimits(workspace_low=(0.5, 0, 0), workspace_high=(0.4, 1, 1))
    with pytest.raises(ValueError, match="max_tilt"):
        SafetyLimits(max_tilt=0.0)


@pytest.mark.parametrize("config", ["robot_server.yaml", "driver/sim.yaml"])
def test_the_shipped_safety_blocks_are_the_dataclass_defaults(config):
    """The server's and the sim driver's `safety:` blocks cannot drift from SafetyLimits (and MotionTolerance)."""
    from omegaconf import OmegaConf

    from vjepa_planning.configs import CONFIG_DIR
    from vjepa_planning.robot_drivers.factory import safety_limits
    from vjepa_planning.robot_drivers.safety import MotionTolerance

    block = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / config)["safety"])
    assert safety_limits(block) == LIMITS
    if "motion_tolerance" in block:
        assert MotionTolerance(**block["motion_tolerance"]) == MotionTolerance()
