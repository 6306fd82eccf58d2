"""Pose conventions shared by the sim: Euler extrinsic "xyz" (DESIGN.md) and the action update rule.

Roll is reported in [-pi/2, 3pi/2) instead of (-pi, pi]: a gripper pointing straight down has roll = pi,
and the usual range would make that pose flicker between +pi and -pi from one step to the next. The
angles are equal to DROID's modulo 2*pi, so the rotation they describe is the same.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

ROLL_WRAP_START = -np.pi / 2


def canonical_euler(euler: np.ndarray) -> np.ndarray:
    """Wrap [roll, pitch, yaw] so roll lies in [-pi/2, 3pi/2) and pitch, yaw in [-pi, pi)."""
    e = np.array(euler, dtype=np.float64, copy=True)
    e[..., 0] = (e[..., 0] - ROLL_WRAP_START) % (2 * np.pi) + ROLL_WRAP_START
    e[..., 1:] = (e[..., 1:] + np.pi) % (2 * np.pi) - np.pi
    return e


def mat_to_euler(mat: np.ndarray) -> np.ndarray:
    return canonical_euler(Rotation.from_matrix(mat).as_euler("xyz"))


def euler_to_mat(euler: np.ndarray) -> np.ndarray:
    return Rotation.from_euler("xyz", euler).as_matrix()


def apply_action(pos: np.ndarray, mat: np.ndarray, gripper: float, action: np.ndarray):
    """Advance a pose by a 7-D action: position + dxyz, R <- dR * R, gripper clipped to [0, 1]."""
    action = np.asarray(action, dtype=np.float64)
    new_pos = pos + action[:3]
    new_mat = euler_to_mat(action[3:6]) @ mat
    new_gripper = float(np.clip(gripper + action[6], 0.0, 1.0))
    return new_pos, new_mat, new_gripper


def delta_action(pos0, mat0, grip0, pos1, mat1, grip1) -> np.ndarray:
    """The action that takes pose 0 to pose 1 (inverse of `apply_action`)."""
    d_euler = Rotation.from_matrix(mat1 @ mat0.T).as_euler("xyz")
    return np.concatenate([pos1 - pos0, d_euler, [grip1 - grip0]])


def look_at_xyaxes(eye: np.ndarray, target: np.ndarray, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """MuJoCo camera `xyaxes` (camera x and y axes in world frame) for a camera at `eye` looking at `target`."""
    forward = np.asarray(target, float) - np.asarray(eye, float)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    cam_up = np.cross(right, forward)
    return np.concatenate([right, cam_up])
