"""The one pose convention (robot_pose): the roll wrap, the action update rule, and the torch state math
(worldmodel.state_math) keeping imagined states in the same convention as real ones."""

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from vjepa_planning.robot_pose import (
    apply_action,
    canonical_state,
    delta_action,
    euler_to_mat,
    in_convention,
    mat_to_euler,
    state_deltas,
    wrap_euler,
)
from state_reference import state_delta

from vjepa_planning.worldmodel.state_math import integrate_state

angles = st.floats(-3.0, 3.0)
# Gripper-down poses: roll just above or just below pi (either side of atan2's ±pi seam), small tilts.
near_pi = st.floats(np.pi - 0.3, np.pi + 0.3)
small = st.floats(-0.3, 0.3)


@settings(max_examples=200, deadline=None)
@given(st.tuples(st.floats(-10.0, 10.0), st.floats(-10.0, 10.0), st.floats(-10.0, 10.0)))
def test_wrap_euler_describes_the_same_rotation(e):
    e = np.array(e)
    c = wrap_euler(e)
    assert in_convention(c) and -np.pi / 2 <= c[0] < 3 * np.pi / 2
    np.testing.assert_allclose(euler_to_mat(c), euler_to_mat(e), atol=1e-9)
    # numpy and torch give the same numbers
    np.testing.assert_allclose(wrap_euler(torch.from_numpy(e)).numpy(), c, atol=1e-12)


def test_wrap_edges():
    np.testing.assert_allclose(wrap_euler(np.array([-np.pi, np.pi, np.pi])), [np.pi, -np.pi, -np.pi])
    np.testing.assert_allclose(wrap_euler(np.array([3 * np.pi / 2, 0.0, 0.0])), [-np.pi / 2, 0.0, 0.0])
    np.testing.assert_allclose(wrap_euler(np.array([-np.pi / 2, 0.0, 0.0])), [-np.pi / 2, 0.0, 0.0])
    # just under the top of each range stays in range, never lands on the top itself
    top = np.nextafter(np.array([3 * np.pi / 2, np.pi, np.pi]), 0)
    assert in_convention(wrap_euler(top))
    # float32: in range up to float32 rounding of the range ends themselves
    assert in_convention(wrap_euler(torch.tensor(top, dtype=torch.float32)).double().numpy(), atol=1e-6)


def test_gripper_down_does_not_wrap():
    # Tiny tilts either side of "pointing down" must give nearby numbers, not +pi / -pi.
    a = mat_to_euler(Rotation.from_euler("xyz", [np.pi - 1e-3, 0, 0]).as_matrix())
    b = mat_to_euler(Rotation.from_euler("xyz", [-np.pi + 1e-3, 0, 0]).as_matrix())
    assert abs(a[0] - b[0]) < 3e-3


@settings(max_examples=200, deadline=None)
@given(
    st.tuples(*[st.floats(-0.5, 0.5)] * 3),
    st.tuples(*[st.floats(-0.3, 0.3)] * 3),
    st.tuples(angles, st.floats(-1.4, 1.4), angles),
    st.floats(0, 1),
    st.floats(-1, 1),
)
def test_delta_action_inverts_apply_action(dpos, drot, base_euler, grip, dgrip):
    pos0, mat0 = np.array([0.5, 0.0, 0.2]), euler_to_mat(np.array(base_euler))
    action = np.array([*dpos, *drot, dgrip])
    pos1, mat1, grip1 = apply_action(pos0, mat0, grip, action)
    back = delta_action(pos0, mat0, grip, pos1, mat1, grip1)
    np.testing.assert_allclose(back[:6], action[:6], atol=1e-9)
    assert 0.0 <= grip1 <= 1.0 and np.isclose(grip + back[6], grip1)


@settings(max_examples=300, deadline=None)
@given(
    st.tuples(near_pi, small, small),
    st.tuples(st.floats(-0.05, 0.05), st.floats(-0.05, 0.05), st.floats(-0.05, 0.05)),
    st.tuples(st.floats(-0.15, 0.15), st.floats(-0.15, 0.15), st.floats(-0.15, 0.15)),
    st.floats(0.2, 0.8),
    st.floats(-0.2, 0.2),
)
def test_imagined_states_round_trip_and_stay_in_the_convention(euler, dxyz, deuler, grip, dgrip):
    """States just above and below roll = pi: integrate, then delta, round-trips; every state is wrapped."""
    s0 = torch.tensor([0.45, 0.0, 0.2, *wrap_euler(np.array(euler)), grip], dtype=torch.float64)
    a = torch.tensor([*dxyz, *deuler, dgrip], dtype=torch.float64)
    s1 = integrate_state(s0, a)
    s2 = integrate_state(s1, a)  # the planner's second imagined step
    for s in (s1, s2):
        assert in_convention(s[3:6].numpy()), s
        assert abs(s[3].item() - np.pi) < 1.0  # gripper-down stays near +pi, never near -pi
    torch.testing.assert_close(state_delta(s0, s1), a, atol=1e-9, rtol=0)
    # the numpy side agrees: the sim's own update rule, then its state read-out
    pos1, mat1, g1 = apply_action(s0[:3].numpy(), euler_to_mat(s0[3:6].numpy()), grip, a.numpy())
    np.testing.assert_allclose(s1.numpy(), [*pos1, *mat_to_euler(mat1), g1], atol=1e-9)
    np.testing.assert_allclose(state_deltas(np.stack([s0.numpy(), s1.numpy()]))[0], a.numpy(), atol=1e-9)


def test_float32_and_bfloat16_states_stay_in_the_convention():
    s = torch.tensor([[0.4, 0.0, 0.3, np.pi - 0.01, 0.0, 0.0, 0.0]] * 64)
    a = torch.zeros(64, 7)
    a[:, 3] = torch.linspace(0.0, 0.05, 64)  # crosses roll = pi
    for dtype in (torch.float32, torch.bfloat16):
        out = integrate_state(s.to(dtype), a.to(dtype)).double()
        assert in_convention(out[:, 3:6].numpy(), atol=1e-6)
        assert (out[:, 3] > 3.0).all()


def test_canonical_state_wraps_only_the_orientation():
    s = np.array([[0.1, 0.2, 0.3, -np.pi + 0.01, 0.0, 0.0, 0.7]])
    c = canonical_state(s)
    np.testing.assert_allclose(c[0, [0, 1, 2, 4, 5, 6]], s[0, [0, 1, 2, 4, 5, 6]])
    np.testing.assert_allclose(c[0, 3], np.pi + 0.01)
    assert s[0, 3] < 0  # the input is not modified
