"""State integration in torch vs scipy's Euler conventions (and the official compute_new_pose recipe)."""

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from vjepa_planning.robot_pose import wrap_euler
from state_reference import state_delta

from vjepa_planning.worldmodel.state_math import euler_xyz_to_matrix, integrate_state, matrix_to_euler_xyz


def test_euler_matches_scipy_extrinsic_xyz():
    e = torch.rand(500, 3, dtype=torch.float64) * torch.tensor([2 * np.pi, np.pi * 0.98, 2 * np.pi]) - torch.tensor(
        [np.pi, np.pi * 0.49, np.pi]
    )
    R = euler_xyz_to_matrix(e)
    np.testing.assert_allclose(R.numpy(), Rotation.from_euler("xyz", e.numpy()).as_matrix(), atol=1e-12)
    np.testing.assert_allclose(matrix_to_euler_xyz(R).numpy(), e.numpy(), atol=1e-9)


def test_gimbal_lock_gives_a_valid_rotation():
    e = torch.tensor([[0.3, np.pi / 2, -0.2], [0.1, -np.pi / 2, 0.4]], dtype=torch.float64)
    R = euler_xyz_to_matrix(e)
    torch.testing.assert_close(euler_xyz_to_matrix(matrix_to_euler_xyz(R)), R)


def _reference_new_pose(pose: np.ndarray, action: np.ndarray) -> np.ndarray:
    """The recipe of the public planner's compute_new_pose, written with scipy; its atan2-range angles are
    then wrapped into the stack's pose convention (robot_pose), as integrate_state's are."""
    xyz = pose[:3] + action[:3]
    R = Rotation.from_euler("xyz", action[3:6]).as_matrix() @ Rotation.from_euler("xyz", pose[3:6]).as_matrix()
    grip = np.clip(pose[6:] + action[6:], 0, 1)
    return np.concatenate([xyz, wrap_euler(Rotation.from_matrix(R).as_euler("xyz")), grip])


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_integrate_state_matches_scipy_recipe(seed):
    g = np.random.default_rng(seed)
    pose = np.concatenate([g.normal(size=3), g.uniform(-1.4, 1.4, size=3), g.uniform(0, 1, size=1)])
    action = np.concatenate([g.normal(scale=0.05, size=3), g.normal(scale=0.15, size=3), g.normal(size=1)])
    ours = integrate_state(torch.from_numpy(pose), torch.from_numpy(action)).numpy()
    np.testing.assert_allclose(ours, _reference_new_pose(pose, action), atol=1e-9)


def test_state_delta_inverts_integrate_state_and_broadcasts():
    s0 = torch.tensor([[0.4, 0.0, 0.3, np.pi, 0.1, -0.2, 0.2]], dtype=torch.float64)  # [1, 7]
    a = torch.randn(16, 7, dtype=torch.float64) * torch.tensor([0.05] * 3 + [0.1] * 3 + [0.3])
    a[:, 6] = a[:, 6].clamp(-0.2, 0.2)  # stay inside [0, 1] so the gripper is not clipped
    s1 = integrate_state(s0, a)  # [16, 7]
    assert s1.shape == (16, 7)
    torch.testing.assert_close(state_delta(s0.expand(16, 7), s1), a)


def test_bfloat16_state_computes_in_float32():
    s = torch.tensor([0.1, 0.2, 0.3, 0.0, 0.0, 0.0, 0.9], dtype=torch.bfloat16)
    out = integrate_state(s, torch.tensor([0.0] * 6 + [0.5], dtype=torch.bfloat16))
    assert out.dtype == torch.bfloat16 and out[6].item() == 1.0
