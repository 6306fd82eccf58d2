import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from envs.geometry import apply_action, canonical_euler, delta_action, euler_to_mat, mat_to_euler

angles = st.floats(-3.0, 3.0)


@settings(max_examples=200, deadline=None)
@given(st.tuples(angles, angles, angles))
def test_canonical_euler_describes_the_same_rotation(e):
    e = np.array(e)
    c = canonical_euler(e)
    assert -np.pi / 2 <= c[0] < 3 * np.pi / 2
    np.testing.assert_allclose(euler_to_mat(c), euler_to_mat(e), atol=1e-9)


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
