"""End-effector state / action arithmetic in torch (batched, differentiable, any device).

State (7): [x, y, z, ex, ey, ez, gripper] with (ex, ey, ez) extrinsic Euler "xyz"
angles in radians (R = Rz(ez) @ Ry(ey) @ Rx(ex), scipy's lowercase "xyz"), gripper in
[0, 1] (1 = closed). Action (7): [dx, dy, dz, dex, dey, dez, dgripper] where the
rotation part is the Euler "xyz" of R_next @ R_prev^T (a base-frame rotation delta).

``integrate_state`` is how the V-JEPA 2-AC planner advances the pose of imagined
frames: position + dxyz, R <- dR @ R, gripper clipped to [0, 1], the orientation wrapped
into the stack's pose convention (``robot_pose``: roll in [-pi/2, 3pi/2)), as every real
state is, so an imagined gripper-down pose reads roll = +pi like the training states.
"""

from __future__ import annotations

import torch

from vjepa_planning.robot_pose import wrap_euler

_GIMBAL_EPS = 1e-7


def euler_xyz_to_matrix(euler: torch.Tensor) -> torch.Tensor:
    """[..., 3] extrinsic xyz angles -> [..., 3, 3] rotation matrices Rz @ Ry @ Rx."""
    a, b, c = euler.unbind(-1)
    ca, sa, cb, sb, cc, sc = a.cos(), a.sin(), b.cos(), b.sin(), c.cos(), c.sin()
    rows = [
        [cc * cb, cc * sb * sa - sc * ca, cc * sb * ca + sc * sa],
        [sc * cb, sc * sb * sa + cc * ca, sc * sb * ca - cc * sa],
        [-sb, cb * sa, cb * ca],
    ]
    return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)  # [..., 3, 3]


def matrix_to_euler_xyz(R: torch.Tensor) -> torch.Tensor:
    """[..., 3, 3] rotation matrices -> [..., 3] extrinsic xyz angles, middle angle in
    [-pi/2, pi/2] (scipy's convention, atan2's range for the others; at gimbal lock the third
    angle is set to 0). States are wrapped further by ``integrate_state``; deltas are not."""
    r00, r10, r20 = R[..., 0, 0], R[..., 1, 0], R[..., 2, 0]
    r21, r22 = R[..., 2, 1], R[..., 2, 2]
    cos_b = torch.sqrt(r00 * r00 + r10 * r10)
    b = torch.atan2(-r20, cos_b)
    regular = cos_b > _GIMBAL_EPS
    a = torch.where(regular, torch.atan2(r21, r22), torch.atan2(-R[..., 1, 2], R[..., 1, 1]))
    c = torch.where(regular, torch.atan2(r10, r00), torch.zeros_like(r00))
    return torch.stack([a, b, c], dim=-1)


def integrate_state(state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """Next state after ``action``: [..., 7] x [..., 7] (broadcasting) -> [..., 7]."""
    dtype = state.dtype
    compute = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    state, action = state.to(compute), action.to(compute)
    xyz = state[..., :3] + action[..., :3]
    R = euler_xyz_to_matrix(action[..., 3:6]) @ euler_xyz_to_matrix(state[..., 3:6])  # [..., 3, 3]
    grip = (state[..., 6:] + action[..., 6:]).clamp(0.0, 1.0)
    return torch.cat([xyz, wrap_euler(matrix_to_euler_xyz(R)), grip], dim=-1).to(dtype)
