import logging

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vjepa_planning.robot_drivers.safety import SafetyLayer, SafetyLimits

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
