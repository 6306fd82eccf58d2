"""A real Franka (Panda / FR3) behind the robot server, through franky-control (the `franka` extra).

State and action follow the project's conventions exactly as the sim reports them (robot_drivers/base.py):
position of franky's end-effector frame (O_T_EE: flange + the end-effector transform set in Desk; with the
Franka Hand that is the TCP between the fingertips) in the base frame, orientation as extrinsic Euler "xyz"
wrapped by `robot_pose.wrap_euler` (roll in [-pi/2, 3pi/2), so a gripper pointing down reads roll =
pi like the sim), gripper in [0, 1] with 1 = closed.

Actions are base-frame deltas. franky's *relative* Cartesian motions are expressed in the end-effector frame
(with the hand pointing down, a relative -z raises it), so this backend never sends relative motions: it
advances the measured pose by the action (position + dxyz, R <- dR R) and sends the result as an *absolute*
target, which franky defines in the base frame.

The gripper follows the sim controller's rule: a change within `gripper_deadband` is ignored; closing to >= 0.5
is a force-limited grasp (the fingers stop on whatever is between them), anything else a width move.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from vjepa_planning.robot_drivers.backends import checked_action
from vjepa_planning.robot_drivers.base import Observation
from vjepa_planning.robot_drivers.camera import Camera
from vjepa_planning.robot_drivers.episode_spec import EpisodeSpec
from vjepa_planning.robot_drivers.safety import SafetyLayer, SafetyLimits
from vjepa_planning.robot_pose import euler_to_mat, mat_to_euler

log = logging.getLogger(__name__)

# libfranka's "ready" pose: hand pointing down above the table centre.
READY_JOINTS = (0.0, -np.pi / 4, 0.0, -3 * np.pi / 4, 0.0, np.pi / 2, np.pi / 4)
MAX_GRIPPER_FORCE_N = 70.0  # Franka Hand continuous force
MAX_GRIPPER_SPEED = 0.1  # m/s
DOWN = np.diag([1.0, -1.0, -1.0])


class FrankyBackend:
    name = "franky"

    def __init__(
        self,
        robot_ip: str,
        camera: Camera,
        limits: SafetyLimits = SafetyLimits(),
        *,
        realtime: bool = True,
        relative_dynamics_factor: float = 0.1,
        home_joints: tuple[float, ...] = READY_JOINTS,
        gripper_speed: float = 0.05,
        gripper_force: float = 20.0,
        gripper_deadband: float = 0.1,
        gripper_timeout_s: float = 5.0,
        asynchronous: bool = False,
    ):
        try:
            import franky
        except ImportError:
            raise RuntimeError("the franky backend needs franky-control: pip install 'vjepa-planning[franka]'") from None
        if not 0 < gripper_force <= MAX_GRIPPER_FORCE_N:
            raise ValueError(f"gripper_force must be in (0, {MAX_GRIPPER_FORCE_N}] N, got {gripper_force}")
        if not 0 < gripper_speed <= MAX_GRIPPER_SPEED:
            raise ValueError(f"gripper_speed must be in (0, {MAX_GRIPPER_SPEED}] m/s, got {gripper_speed}")
        if not 0 < relative_dynamics_factor <= 1:
            raise ValueError(f"relative_dynamics_factor must be in (0, 1], got {relative_dynamics_factor}")
        if len(home_joints) != 7:
            raise ValueError("home_joints must hold 7 joint angles")
        self._f = franky
        self.camera = camera
        self.safety = SafetyLayer(limits)
        self.home_joints = np.asarray(home_joints, dtype=np.float64)
        self.gripper_speed, self.gripper_force = float(gripper_speed), float(gripper_force)
        self.gripper_deadband, self.gripper_timeout_s = float(gripper_deadband), float(gripper_timeout_s)
        self.asynchronous = bool(asynchronous)
        rt = franky.RealtimeConfig.Enforce if realtime else franky.RealtimeConfig.Ignore
        try:
            self.robot = franky.Robot(robot_ip, realtime_config=rt)
            self.robot.relative_dynamics_factor = float(relative_dynamics_factor)
            self.gripper = franky.Gripper(robot_ip)
        except Exception as e:
            raise RuntimeError(
                f"cannot connect to the Franka at {robot_ip} ({type(e).__name__}: {e}); is FCI enabled in Desk, "
                "the brakes open, the user stop released, and (for realtime=true) a PREEMPT_RT kernel running?"
            ) from e
        self.open_width = max(float(self.gripper.max_width), 1e-3)
        self._t0 = time.monotonic()
        self._stopped = False
        self._fault: str | None = None

    # ---- state --------------------------------------------------------------------------------------
    def current_state(self) -> np.ndarray:
        pose = self.robot.current_cartesian_state.pose.end_effector_pose.matrix
        grip = float(np.clip(1.0 - float(self.gripper.width) / self.open_width, 0.0, 1.0))
        return np.concatenate([pose[:3, 3], mat_to_euler(pose[:3, :3]), [grip]])

    def observe(self) -> Observation:
        image = self.camera.read()
        return Observation(image=image, state=self.current_state(), timestamp=time.monotonic() - self._t0)

    # ---- motion -------------------------------------------------------------------------------------
    def act(self, action) -> np.ndarray:
        if self._stopped:
            raise RuntimeError("FrankyBackend.act() after stop(): call reset() to start a new episode")
        if self._fault:
            raise RuntimeError(f"the arm is halted after a robot error ({self._fault}); call reset() to recover")
        state = self.current_state()
        safe = checked_action(action)  # the server's safety layer filtered it: the one layer on this path
        pose = self.robot.current_cartesian_state.pose.end_effector_pose.matrix
        target = np.eye(4)
        target[:3, :3] = euler_to_mat(safe[3:6]) @ pose[:3, :3]
        target[:3, 3] = pose[:3, 3] + safe[:3]
        grip_future = self._command_gripper(state[6], state[6] + safe[6])
        f = self._f
        try:
            if np.any(safe[:6] != 0):
                motion = f.CartesianMotion(f.Affine(target), f.ReferenceType.Absolute)
                self.robot.move(motion, asynchronous=self.asynchronous)
            if grip_future is not None and not grip_future.wait(self.gripper_timeout_s):
                raise RuntimeError(f"gripper did not finish within {self.gripper_timeout_s:g} s")
        except Exception as e:
            self._fault = f"{type(e).__name__}: {e}"
            log.error("franky: motion failed: %s", self._fault)
            raise RuntimeError(f"franky motion failed ({self._fault}); the arm is halted, call reset()") from e
        return safe

    def _command_gripper(self, current: float, target: float):
        target = float(np.clip(target, 0.0, 1.0))
        if abs(target - current) <= self.gripper_deadband:
            return None
        if target > current and target >= 0.5:
            return self.gripper.grasp_async(0.0, self.gripper_speed, self.gripper_force, 0.005, self.open_width)
        return self.gripper.move_async((1.0 - target) * self.open_width, self.gripper_speed)

    def stop(self) -> None:
        """Stop the running motion; the arm holds its pose and `act` is refused until `reset()`."""
        self._stopped = True
        try:
            self.robot.stop()
        except Exception as e:  # noqa: BLE001 - nothing running, or the robot already halted itself
            log.info("franky: stop(): %s", e)
        self._join_motion()

    def _join_motion(self) -> None:
        """Wait out an asynchronous motion; its "preempted" error (ours, from stop) is expected."""
        try:
            self.robot.join_motion()
        except Exception as e:  # noqa: BLE001
            log.info("franky: the running motion ended with: %s", e)

    def reset(self, seed: int | None = None, episode: str | None = None, task: str | None = None) -> Observation:
        """Recover from errors, open the gripper, move to the home joints (and, with an episode spec, to its
        start pose with the hand pointing down). Objects are not placed: a person sets the scene."""
        f = self._f
        start = self._episode_start(episode) if episode else None  # checked before anything moves
        if self.robot.has_errors and not self.robot.recover_from_errors():
            raise RuntimeError("franky: automatic error recovery failed; check the robot in Desk")
        self._fault = None
        self._join_motion()
        self.robot.move(f.JointMotion(f.JointState(self.home_joints)))
        self.gripper.move(self.open_width, self.gripper_speed)
        self.open_width = max(float(self.gripper.width), 1e-3)  # what "open" measures on this hand
        if start is not None:
            self._move_to_episode_start(*start)
        self._stopped = False
        self._t0 = time.monotonic()
        return self.observe()

    def _episode_start(self, episode_json: str) -> tuple[np.ndarray, float]:
        """(hand position, gripper) of an episode spec's start, every field checked and the start inside the box."""
        spec = EpisodeSpec.from_json(episode_json)
        start = np.asarray(spec.start_ee, dtype=np.float64)
        if not self.safety.inside_workspace(start):
            raise ValueError(f"episode start {start} lies outside the workspace box; refusing to move there")
        return start, float(spec.start_gripper)

    def _move_to_episode_start(self, start: np.ndarray, gripper: float) -> None:
        target = np.eye(4)
        target[:3, :3], target[:3, 3] = DOWN, start
        self.robot.move(self._f.CartesianMotion(self._f.Affine(target), self._f.ReferenceType.Absolute))
        if gripper >= 0.5:
            self.gripper.grasp(0.0, self.gripper_speed, self.gripper_force, 0.005, self.open_width)
        log.warning("franky: moved to the episode's start pose; place the objects by hand as the spec says")

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "camera": self.camera.name, "privileged_info": False}

    def close(self) -> None:
        self.camera.close()


def make_franky_backend(cfg: Mapping[str, Any], camera: Camera, limits: SafetyLimits) -> FrankyBackend:
    return FrankyBackend(
        robot_ip=str(cfg["robot_ip"]),
        camera=camera,
        limits=limits,
        realtime=bool(cfg.get("realtime", True)),
        relative_dynamics_factor=float(cfg.get("relative_dynamics_factor", 0.1)),
        home_joints=tuple(float(v) for v in cfg.get("home_joints", READY_JOINTS)),
        gripper_speed=float(cfg.get("gripper_speed", 0.05)),
        gripper_force=float(cfg.get("gripper_force", 20.0)),
        gripper_deadband=float(cfg.get("gripper_deadband", 0.1)),
        gripper_timeout_s=float(cfg.get("gripper_timeout_s", 5.0)),
        asynchronous=bool(cfg.get("asynchronous", False)),
    )
