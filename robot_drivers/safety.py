"""One safety layer for every driver: whatever a planner outputs, what reaches the robot is bounded.

Per step: each translation component within +-max_translation (m), each Euler-delta component within
+-max_rotation (rad), the position target inside the workspace box, the target's tilt from pointing down
within max_tilt (rad), and the gripper target within [gripper_min, gripper_max] (default [0, 1]) moving at
most max_gripper_step.
A non-finite action (NaN/inf anywhere) becomes "hold still" with a warning: a planner bug must not move
the arm. If the arm is already outside the box (a person moved it), a step may only bring it closer.
It is applied once on every path: by the in-process sim driver, or by the robot server before its backend
(the sim or a real arm) executes the step; the caller gets its `SafetyReport` (`driver.last_safety`).

Commands are not motion: a hand pressed against the table, an unreachable target or a controller fault can
move the arm further than it was told. The sim controller enforces the same limits on the motion while it
runs (envs/controller.py: MotionGuard, built by the sim driver from these limits); `motion_violation`
checks the *measured* step against them (plus `MotionTolerance`), and the robot server runs it after every
`act` and holds the arm when it fails.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from vjepa_planning.robot_drivers.base import ACTION_DIM, STATE_DIM
from vjepa_planning.robot_pose import euler_to_mat, rotation_delta, tilt

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SafetyLimits:
    max_translation: float = 0.075  # m per axis per control step
    max_rotation: float = 0.15  # rad per Euler component per control step
    workspace_low: tuple[float, float, float] = (0.25, -0.40, 0.055)  # m, base frame (z: fingertips 5 mm off the table)
    workspace_high: tuple[float, float, float] = (0.80, 0.40, 0.60)
    gripper_min: float = 0.0  # allowed gripper range within [0 open, 1 closed]
    gripper_max: float = 1.0
    max_gripper_step: float = 1.0  # largest gripper change per step
    max_tilt: float = 0.6  # rad between the hand's approach axis and straight down

    def __post_init__(self) -> None:
        lo, hi = np.asarray(self.workspace_low), np.asarray(self.workspace_high)
        if lo.shape != (3,) or hi.shape != (3,) or np.any(lo >= hi):
            raise ValueError(f"workspace box must have low < high on every axis, got {lo} .. {hi}")
        if not (self.max_translation > 0 and self.max_rotation >= 0):
            raise ValueError("max_translation must be > 0 and max_rotation >= 0")
        if not 0.0 <= self.gripper_min < self.gripper_max <= 1.0:
            raise ValueError(f"need 0 <= gripper_min < gripper_max <= 1, got {self.gripper_min}, {self.gripper_max}")
        if not self.max_gripper_step > 0:
            raise ValueError("max_gripper_step must be > 0")
        if not 0 < self.max_tilt <= np.pi:
            raise ValueError(f"max_tilt must be in (0, pi] rad, got {self.max_tilt}")


def hand_tilt(euler: np.ndarray) -> float:
    """robot_pose.tilt of a state's Euler "xyz" orientation [3]."""
    return tilt(euler_to_mat(euler))


@dataclass
class SafetyReport:
    rejected_non_finite: bool = False
    clamped: bool = False
    notes: list[str] = field(default_factory=list)


class SafetyLayer:
    def __init__(self, limits: SafetyLimits = SafetyLimits()):
        self.limits = limits
        self._lo = np.asarray(limits.workspace_low, dtype=np.float64)
        self._hi = np.asarray(limits.workspace_high, dtype=np.float64)

    def filter(self, action, state: np.ndarray) -> tuple[np.ndarray, SafetyReport]:
        """The action to send instead of `action`, given the robot's current 7-D state."""
        report = SafetyReport()
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (ACTION_DIM,):
            raise ValueError(f"action must have shape ({ACTION_DIM},), got {action.shape}")
        state = np.asarray(state, dtype=np.float64)
        if state.shape != (STATE_DIM,) or not np.all(np.isfinite(state)):
            raise ValueError(f"robot state must be 7 finite numbers, got {state}")
        if not np.all(np.isfinite(action)):
            log.warning("safety: non-finite action %s replaced by hold-still", action)
            report.rejected_non_finite = True
            report.notes.append("non-finite action -> hold still")
            return np.zeros(ACTION_DIM), report

        L = self.limits
        safe = action.copy()
        safe[:3] = np.clip(safe[:3], -L.max_translation, L.max_translation)
        safe[3:6] = np.clip(safe[3:6], -L.max_rotation, L.max_rotation)
        # Workspace: clip the target into the box; from outside it, only allow steps that don't move away.
        pos = state[:3]
        target = pos + safe[:3]
        boxed = np.clip(target, np.minimum(self._lo, pos), np.maximum(self._hi, pos))
        out = boxed != target  # recompute only clipped axes, so in-limit actions pass bit-exact
        safe[:3][out] = boxed[out] - pos[out]
        # Tilt: the target may tilt at most max_tilt from pointing down; tilted further already, a step may
        # only not tilt more. The delta's yaw (applied last, about the vertical) never changes the tilt, so
        # only roll and pitch are scaled down, to the largest share that stays within.
        floor = min(np.cos(L.max_tilt), _down(state[3:6], safe[3:6], 0.0))  # tilts compared by their cosines
        if _down(state[3:6], safe[3:6], 1.0) < floor:
            safe[3:5] *= _tilt_share(state[3:6], safe[3:6], floor)
        # Gripper: a bounded step; like the box, from outside the allowed range only a step back toward it.
        g = state[6]
        step = float(np.clip(safe[6], -L.max_gripper_step, L.max_gripper_step))
        g_lo, g_hi = min(L.gripper_min, g), max(L.gripper_max, g)
        if step != safe[6] or not g_lo <= g + step <= g_hi:  # in-limit steps pass bit-exact
            safe[6] = np.clip(g + step, g_lo, g_hi) - g
        if not np.allclose(safe, action):
            report.clamped = True
            report.notes.append("clamped to limits")
        return safe, report

    def inside_workspace(self, pos: np.ndarray, tol: float = 1e-9) -> bool:
        return bool(np.all(pos >= self._lo - tol) and np.all(pos <= self._hi + tol))

    def describe(self) -> dict[str, Any]:
        """The limits as plain numbers (the robot server's hello reply)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.limits).items()}


def _down(euler: np.ndarray, delta: np.ndarray, share: float) -> float:
    """Cosine of the tilt of orientation `euler` [3] turned by the Euler delta [3], its roll and pitch scaled
    by `share` (cosines, not angles: arccos loses digits next to pointing straight down or up)."""
    scaled = np.array([delta[0] * share, delta[1] * share, delta[2]])
    return float(-(euler_to_mat(scaled) @ euler_to_mat(euler))[2, 2])


def _tilt_share(euler: np.ndarray, delta: np.ndarray, floor: float, halvings: int = 30) -> float:
    """The largest share of the delta's roll and pitch (by bisection) whose target's tilt cosine stays at
    least `floor`; share 0 always qualifies, the floor being at most the current one."""
    lo, hi = 0.0, 1.0
    for _ in range(halvings):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _down(euler, delta, mid) >= floor else (lo, mid)
    return lo


@dataclass(frozen=True)
class MotionTolerance:
    """How far measured motion may exceed the step limits and the box (servo overshoot, sensor noise)."""

    # m beyond max_translation on any axis, and beyond the box: the sim controller's guard keeps both within
    # about 1-2 mm (benchmarks/motion_limits.py)
    translation: float = 0.003
    rotation: float = 0.05  # rad beyond max_rotation on any component of the measured rotation delta
    tracking: float = 0.03  # m between where the sent step should have put the hand and where it is


def motion_violation(limits: SafetyLimits, tol: MotionTolerance, before: np.ndarray, sent: np.ndarray,
                     after: np.ndarray, tracking: bool = True) -> str | None:
    """None if the measured step from state `before` to `after` (sent: the action after the safety layer)
    kept within the limits; else what was exceeded. `tracking=False` for an arm still moving (asynchronous)."""
    before, after = np.asarray(before, dtype=np.float64), np.asarray(after, dtype=np.float64)
    if not np.all(np.isfinite(after)):
        return f"the measured state is not finite ({after.tolist()})"
    moved = after[:3] - before[:3]
    turned = rotation_delta(before[None, 3:6], after[None, 3:6])[0]
    lo, hi = np.asarray(limits.workspace_low), np.asarray(limits.workspace_high)
    outside = float(np.max(np.maximum(lo - after[:3], after[:3] - hi)))
    off = float(np.max(np.abs(before[:3] + np.asarray(sent)[:3] - after[:3])))
    if np.abs(moved).max() > limits.max_translation + tol.translation:
        return f"the hand moved {np.round(moved, 3).tolist()} m in one step (limit {limits.max_translation:g} per axis)"
    if np.abs(turned).max() > limits.max_rotation + tol.rotation:
        return f"the hand turned {np.round(turned, 3).tolist()} rad in one step (limit {limits.max_rotation:g} per component)"
    if outside > tol.translation and outside > float(np.max(np.maximum(lo - before[:3], before[:3] - hi))):
        return f"the hand is {outside:.3f} m outside the workspace box at {np.round(after[:3], 3).tolist()}"
    if (tilted := hand_tilt(after[3:6])) > max(limits.max_tilt, hand_tilt(before[3:6])) + tol.rotation:
        return f"the hand is tilted {tilted:.3f} rad from pointing down (limit {limits.max_tilt:g})"
    if tracking and off > tol.tracking:
        return f"the hand is {off:.3f} m from where the step should have put it (tracking limit {tol.tracking:g} m)"
    return None
