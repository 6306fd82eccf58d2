"""Scene geometry helpers. The pose convention (Euler "xyz", the roll wrap, the action update rule)
lives in `robot_pose`, shared with the real-arm backend, DROID import and the world model."""

from __future__ import annotations

import numpy as np


def look_at_xyaxes(eye: np.ndarray, target: np.ndarray, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """MuJoCo camera `xyaxes` (camera x and y axes in world frame) for a camera at `eye` looking at `target`."""
    forward = np.asarray(target, float) - np.asarray(eye, float)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    cam_up = np.cross(right, forward)
    return np.concatenate([right, cam_up])
