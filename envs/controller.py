"""End-effector controller: a 7-D delta action becomes joint motion over one control period.

Each control step solves damped-least-squares IK for the target pose (measured pose + delta, DESIGN.md),
then streams joint set-points to the position servos along a minimum-jerk profile that arrives within
`arrive_fraction` of the period, leaving the rest for the servos to settle. Physics runs all substeps.

A target the arm cannot reach (beyond its reach, against a joint limit) is not chased: IK would end in
some other posture, and interpolating joints toward it swings the hand far off the straight line (the
fault probe saw a step commanded 7.5 cm up move the hand 21.6 cm down). The controller then goes only
the largest share of the step that IK reaches within `reach_tolerance`, found by bisection, and reports
the share it went (`step_fraction`).

The gripper target is measured opening + delta like the arm, with a dead band: a delta within
`gripper_deadband` keeps the previous command. A hand closed on a cube measures "half closed", so without
the dead band a zero delta would stop the squeeze and drop the cube; with it, "no change" means "keep
doing what you were doing", as a real gripper's grasp command does.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from vjepa_planning.envs.scene import FINGER_OPEN, HOME_QPOS, FrankaScene
from vjepa_planning.robot_pose import apply_action


@dataclass(frozen=True)
class ControllerConfig:
    control_dt: float = 0.25  # 4 Hz, as V-JEPA 2-AC's 4 fps clips
    arrive_fraction: float = 0.5
    ik_iterations: int = 40
    ik_damping: float = 1e-3
    ik_tolerance: float = 1e-5
    gripper_deadband: float = 0.1
    nullspace_gain: float = 0.05  # pulls redundant DoF toward the home posture so the elbow stays sane
    reach_tolerance: float = 0.002  # m: an IK solution further than this from the target is not reachable
    max_joint_step: float = 0.6  # rad: a step needing more on any joint swings the hand off its path
    bisections: int = 5  # halvings when searching for the reachable share of a step


def _rotation_error(target: np.ndarray, current: np.ndarray) -> np.ndarray:
    """World-frame rotation vector taking `current` to `target`."""
    err = np.empty(3)
    quat = np.empty(4)
    mujoco.mju_mat2Quat(quat, (target @ current.T).ravel())
    mujoco.mju_quat2Vel(err, quat, 1.0)
    return err


class EndEffectorController:
    def __init__(self, scene: FrankaScene, cfg: ControllerConfig = ControllerConfig()):
        self.scene, self.cfg = scene, cfg
        self.n_substeps = max(1, round(cfg.control_dt / scene.model.opt.timestep))
        self._ik_data = mujoco.MjData(scene.model)
        self._jacp = np.zeros((3, scene.model.nv))
        self._jacr = np.zeros((3, scene.model.nv))
        t = (np.arange(1, self.n_substeps + 1) / (self.n_substeps * cfg.arrive_fraction)).clip(0, 1)
        self._profile = 10 * t**3 - 15 * t**4 + 6 * t**5  # minimum-jerk 0 -> 1
        self.gripper_cmd = 0.0

    def reset_gripper(self, closed: bool) -> None:
        self.gripper_cmd = 1.0 if closed else 0.0

    def solve_ik(self, pos: np.ndarray, mat: np.ndarray, q_seed: np.ndarray, base_qpos: np.ndarray | None = None) -> tuple[np.ndarray, float]:
        """Joint angles putting the end-effector site at (pos, mat); returns (q, position error in m).
        `base_qpos` sets the joints IK does not move (fingers, cube; default: the live state)."""
        m, d, s = self.scene.model, self._ik_data, self.scene
        d.qpos[:] = s.data.qpos if base_qpos is None else base_qpos
        q = np.clip(q_seed.copy(), s.arm_lo, s.arm_hi)
        cols = s.arm_dof_adr
        lam2 = self.cfg.ik_damping
        for _ in range(self.cfg.ik_iterations):
            d.qpos[s.arm_qpos_adr] = q
            mujoco.mj_kinematics(m, d)
            mujoco.mj_comPos(m, d)
            cur_pos = d.site_xpos[s.ee_site]
            cur_mat = d.site_xmat[s.ee_site].reshape(3, 3)
            err = np.concatenate([pos - cur_pos, _rotation_error(mat, cur_mat)])
            if err @ err < self.cfg.ik_tolerance**2:
                break
            mujoco.mj_jacSite(m, d, self._jacp, self._jacr, s.ee_site)
            jac = np.vstack([self._jacp[:, cols], self._jacr[:, cols]])  # [6, 7]
            jjt = jac @ jac.T + lam2 * np.eye(6)
            dq = jac.T @ np.linalg.solve(jjt, err)
            # Redundancy resolution: project the pull toward home into the Jacobian's null space.
            null = np.eye(7) - jac.T @ np.linalg.solve(jjt, jac)
            dq += null @ (self.cfg.nullspace_gain * (HOME_QPOS - q))
            q = np.clip(q + np.clip(dq, -0.5, 0.5), s.arm_lo + 1e-3, s.arm_hi - 1e-3)
        d.qpos[s.arm_qpos_adr] = q
        mujoco.mj_kinematics(m, d)
        return q, float(np.linalg.norm(pos - d.site_xpos[s.ee_site]))

    def _reachable(self, action: np.ndarray, q0: np.ndarray):
        """(q, target pos, target mat, IK error, share of the step) for the largest reachable share of `action`."""
        s = self.scene
        pos0, mat0 = s.ee_pos(), s.ee_mat()

        def solve(frac: float):
            scaled = np.concatenate([action[:6] * frac, [0.0]])
            pos, mat, _ = apply_action(pos0, mat0, 0.0, scaled)
            q, err = self.solve_ik(pos, mat, q0)
            ok = err <= self.cfg.reach_tolerance and np.abs(q - q0).max() <= self.cfg.max_joint_step
            return ok, (q, pos, mat, err, frac)

        ok, full = solve(1.0)
        if ok or not np.any(action[:6]):
            return full
        lo, best = 0.0, solve(0.0)[1]
        hi = 1.0
        for _ in range(self.cfg.bisections):
            mid = 0.5 * (lo + hi)
            ok, cand = solve(mid)
            if ok:
                lo, best = mid, cand
            else:
                hi = mid
        return best

    def step(self, action: np.ndarray) -> dict:
        """Execute one control period toward measured pose + action (or the reachable share of it).
        Returns the commanded target."""
        s = self.scene
        action = np.asarray(action, dtype=np.float64)
        _, _, target_grip = apply_action(s.ee_pos(), s.ee_mat(), s.gripper_state(), action)
        q0 = s.arm_qpos()
        q_target, target_pos, target_mat, ik_err, frac = self._reachable(action, q0)
        if abs(target_grip - s.gripper_state()) > self.cfg.gripper_deadband:
            self.gripper_cmd = target_grip
        finger = FINGER_OPEN * (1.0 - self.gripper_cmd)
        d, m = s.data, s.model
        d.ctrl[7:9] = finger
        for k in range(self.n_substeps):
            d.ctrl[:7] = q0 + self._profile[k] * (q_target - q0)
            mujoco.mj_step(m, d)
        return {"target_pos": target_pos, "target_mat": target_mat, "target_gripper": target_grip, "ik_error": ik_err,
                "step_fraction": frac}
