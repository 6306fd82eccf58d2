"""The inverse of `worldmodel.state_math.integrate_state` in torch: the action taking one state to the next.
The library computes actions from logged states in numpy (`robot_pose.state_deltas`); this independent torch
version checks that both, and the predictor's state integration, share one pose convention."""

import torch

from vjepa_planning.worldmodel.state_math import euler_xyz_to_matrix, matrix_to_euler_xyz


def state_delta(start: torch.Tensor, end: torch.Tensor) -> torch.Tensor:
    """The action taking ``start`` to ``end`` (gripper unclipped): [..., 7] x [..., 7] -> [..., 7]."""
    R0 = euler_xyz_to_matrix(start[..., 3:6])
    R1 = euler_xyz_to_matrix(end[..., 3:6])
    d_euler = matrix_to_euler_xyz(R1 @ R0.transpose(-1, -2))
    return torch.cat([end[..., :3] - start[..., :3], d_euler, end[..., 6:] - start[..., 6:]], dim=-1)
