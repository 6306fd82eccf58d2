"""The pose convention of every state in the stack, in one place at the bottom of the dependency graph.

State (7): ``[x, y, z, roll, pitch, yaw, gripper]``: position in the robot base frame (m), orientation as
extrinsic Euler "xyz" angles (R = Rz(yaw) @ Ry(pitch) @ Rx(roll), scipy's lowercase "xyz"), gripper in
[0, 1] with 1 = closed. Action (7): ``[dx, dy, dz, droll, dpitch, dyaw, dgripper]``, the rotation part
being the Euler "xyz" of R_next @ R_prevᵀ (a base-frame delta), advanced as position + dxyz, R <- dR @ R,
gripper clipped to [0, 1].

**The wrap.** Roll is reported in [-pi/2, 3pi/2), pitch and yaw in [-pi, pi). A gripper pointing straight
down has roll = pi; atan2's usual (-pi, pi] would make that pose flicker between +pi and -pi from one step
to the next, and a model trained on one side would meet the other in imagination. The angles equal
DROID's modulo 2*pi, so the rotation they describe is the same. Everything that *produces* a state wraps it
with :func:`wrap_euler`: the sim, the franky backend, DROID import and the predictor's integration of
imagined states (worldmodel.state_math). Deltas (actions) are small and keep atan2's range.

numpy + scipy only; :func:`wrap_euler` also takes torch tensors, so the torch state math shares it.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

ROLL_WRAP_START = -np.pi / 2
# Lower end of each angle's range: roll [-pi/2, 3pi/2), pitch and yaw [-pi, pi).
EULER_RANGE_START = (ROLL_WRAP_START, -np.pi, -np.pi)
TWO_PI = 2 * np.pi


def wrap_euler(euler):
    """[..., 3] Euler "xyz" angles (numpy array or torch tensor) -> the same rotations in the convention's
    ranges: roll in [-pi/2, 3pi/2), pitch and yaw in [-pi, pi). Python's modulo (numpy's and torch's
    ``%`` alike) takes the divisor's sign, so every angle lands in [start, start + 2pi)."""
    if hasattr(euler, "new_tensor"):  # a torch tensor: keep its dtype and device
        start = euler.new_tensor(EULER_RANGE_START)
    else:
        euler, start = np.asarray(euler, dtype=np.float64), np.asarray(EULER_RANGE_START)
    wrapped = (euler - start) % TWO_PI + start
    # Rounding can land a value a hair below start + 2pi exactly on it; fold that back to start.
    return wrapped - TWO_PI * (wrapped >= start + TWO_PI)


def in_convention(euler, atol: float = 0.0) -> bool:
    """Whether every [..., 3] angle triple lies in the convention's ranges."""
    e = np.asarray(euler, dtype=np.float64)
    start = np.asarray(EULER_RANGE_START)
    return bool(np.all(e >= start - atol) and np.all(e < start + TWO_PI + atol))


def mat_to_euler(mat: np.ndarray) -> np.ndarray:
    """[..., 3, 3] rotation matrices -> [..., 3] Euler "xyz" in the convention."""
    return wrap_euler(Rotation.from_matrix(mat).as_euler("xyz"))


def euler_to_mat(euler: np.ndarray) -> np.ndarray:
    """[..., 3] Euler "xyz" (any range) -> [..., 3, 3] rotation matrices."""
    return Rotation.from_euler("xyz", euler).as_matrix()


def tilt(mat: np.ndarray) -> float:
    """Angle (rad) between the hand's approach axis (the z axis of its [3, 3] orientation) and straight down."""
    return float(np.arccos(np.clip(-mat[2, 2], -1.0, 1.0)))


def rotation_delta(euler0: np.ndarray, euler1: np.ndarray) -> np.ndarray:
    """The action's rotation part taking orientation 0 to 1: Euler "xyz" of R1 @ R0ᵀ (atan2's range)."""
    r0, r1 = Rotation.from_euler("xyz", euler0), Rotation.from_euler("xyz", euler1)
    return (r1 * r0.inv()).as_euler("xyz")


def apply_action(pos: np.ndarray, mat: np.ndarray, gripper: float, action: np.ndarray):
    """Advance a pose by a 7-D action: position + dxyz, R <- dR @ R, gripper clipped to [0, 1]."""
    action = np.asarray(action, dtype=np.float64)
    new_pos = pos + action[:3]
    new_mat = euler_to_mat(action[3:6]) @ mat
    new_gripper = float(np.clip(gripper + action[6], 0.0, 1.0))
    return new_pos, new_mat, new_gripper


def delta_action(pos0, mat0, grip0, pos1, mat1, grip1) -> np.ndarray:
    """The action that takes pose 0 to pose 1 (inverse of :func:`apply_action`)."""
    d_euler = Rotation.from_matrix(mat1 @ mat0.T).as_euler("xyz")
    return np.concatenate([pos1 - pos0, d_euler, [grip1 - grip0]])


def state_deltas(states: np.ndarray) -> np.ndarray:
    """[T, 7] consecutive states -> [T, 7] actions taking each to the next; the last row is zeros."""
    s = np.asarray(states, dtype=np.float64)
    if s.ndim != 2 or s.shape[1] != 7:
        raise ValueError(f"states must be [T, 7], got {s.shape}")
    actions = np.zeros_like(s)
    if len(s) > 1:
        actions[:-1, :3] = s[1:, :3] - s[:-1, :3]
        actions[:-1, 3:6] = rotation_delta(s[:-1, 3:6], s[1:, 3:6])
        actions[:-1, 6] = s[1:, 6] - s[:-1, 6]
    return actions


def canonical_state(state: np.ndarray) -> np.ndarray:
    """[..., 7] state(s) with the orientation wrapped into the convention (a copy, float64)."""
    s = np.array(state, dtype=np.float64, copy=True)
    s[..., 3:6] = wrap_euler(s[..., 3:6])
    return s


__all__ = [
    "EULER_RANGE_START",
    "ROLL_WRAP_START",
    "apply_action",
    "canonical_state",
    "delta_action",
    "euler_to_mat",
    "in_convention",
    "mat_to_euler",
    "rotation_delta",
    "state_deltas",
    "wrap_euler",
]
