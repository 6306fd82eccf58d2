"""End-effector controller: a 7-D delta action becomes joint motion over one control period.

Each control step solves damped-least-squares IK for the target pose (measured pose + delta, DESIGN.md),
then streams joint set-points to the position servos along a minimum-jerk profile that arrives within
`arrive_fraction` of the period, leaving the rest for the servos to settle. Physics runs all substeps.

A target the arm cannot reach (beyond its reach, against a joint limit) is not chased: IK would end in
some other posture, and interpolating joints toward it swings the hand far off the straight line (the
fault probe saw a step commanded 7.5 cm up move the hand 21.6 cm down). The controller then goes only
the largest share of the step that IK reaches within `reach_tolerance`, found by bisection, and reports
the share it went (`step_fraction`).

A profile the servos cannot follow is not sent either. A minimum-jerk move of dq in time T needs a peak
torque of 5.77 |M dq| / T^2 (M: the arm's inertia at the start); past a joint's force limit the servo
saturates, lags its set-point and then overshoots the target with the momentum it built (the motion probe
saw steps commanded 75 mm move 86-88 mm). So the arrival is stretched until the peak torque fits within
`torque_headroom` of every limit, at most to `max_arrive_fraction` of the period; a step that still does
not fit is cut to the share that does, like an unreachable one.

The set-points follow IK waypoints along the straight line (`waypoints`), not a joint interpolation
between start and target, which bows the hand off the line; with `feedforward` they lead the path by what
the servos need to produce its velocity and acceleration, so the hand does not lag behind the plan.

An optional `MotionGuard` bounds the motion itself: every `guard_every` substeps the controller predicts
the hand's pose `guard_lookahead` s ahead from its velocity, and if that passes a bound (the step's
translation or rotation from where it started, the workspace box, the tilt from pointing down) or the hand
is pushed more than `max_deviation` off its plan, it brings the arm to rest along the path within
`stop_time` (0: holds the joints where they are), as a real arm's stop does, and reports what stopped it.

The gripper target is measured opening + delta like the arm, with a dead band: a delta within
`gripper_deadband` keeps the previous command. A hand closed on a cube measures "half closed", so without
the dead band a zero delta would stop the squeeze and drop the cube; with it, "no change" means "keep
doing what you were doing", as a real gripper's grasp command does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mujoco
import numpy as np

from vjepa_planning.envs.scene import ARM_FORCE, FINGER_OPEN, HOME_QPOS, FrankaScene
from vjepa_planning.robot_pose import apply_action, delta_action, euler_to_mat, tilt

PEAK_ACCEL = 10 / np.sqrt(3)  # peak |d2s/dt2| * T^2 of the minimum-jerk profile s(t/T) = 10t^3 - 15t^4 + 6t^5
PEAK_RATE = 15 / 8  # peak ds/dt * T of the same profile


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
    torque_headroom: float = 0.7  # share of each joint's force limit the profile's peak torque may use
    max_arrive_fraction: float = 0.8  # a slower arrival leaves the servos too little time to settle: cut the step
    max_joint_speed: float = 3.5  # rad/s: the profile's peak joint speed (a Franka's limits: 2.2-2.6)
    feedforward: bool = True  # lead the set-points by the servo's damping and the arm's inertia (no lag)
    waypoints: int = 4  # IK solutions along the straight line; the set-points interpolate joints between them
    waypoint_iterations: int = 4  # IK iterations per waypoint, from the joints' straight interpolation
    guard_every: int = 2  # physics substeps between MotionGuard checks
    guard_lookahead: float = 0.01  # s: the guard checks where the hand is heading this far ahead (braking)
    stop_time: float = 0.03  # s: a guard stop decelerates along the planned path this fast (0: freeze the joints)


@dataclass(frozen=True)
class MotionGuard:
    """Bounds on the hand's motion within one control step, enforced while the physics runs (the safety
    layer's limits, robot_drivers/safety.py). A bound the hand started beyond (a person moved it) only
    stops it from going further."""

    max_translation: float  # m per axis from the step's starting position
    max_rotation: float  # rad per Euler "xyz" component of the turn from the starting orientation
    low: tuple[float, float, float]  # workspace box (m, base frame)
    high: tuple[float, float, float]
    max_tilt: float = np.pi  # rad between the hand's approach axis and straight down
    slack: float = 0.001  # m a prediction may pass a bound by before the hold (IK and servo jitter at a bound)
    rotation_slack: float = 0.005  # rad, the same for the turn and the tilt
    max_deviation: float = 0.01  # m the hand may be off its planned path (blocked by contact) before the hold
    recover: float = 0.01  # m: a hand at most this far outside the box (our own overshoot) is aimed back in
    finger_reach: float = 0.05  # m from the approach axis to the open fingertips' outer edge

    def aim(self, pos0: np.ndarray, mat0: np.ndarray, action: np.ndarray) -> np.ndarray:
        """`action` [7] with its position target inside the box, unless the hand starts further than `recover`
        beyond a wall (a person moved it: then, as the safety layer allows, it may stay there). A hand a
        contact or an overshoot left just outside is brought back, so that the next step's bound does not
        start a little further out each time. The box floor is where an upright hand's fingertips clear the
        table; a tilted hand lowers one fingertip by up to `finger_reach` * sin(tilt), so its floor rises by
        that much (else the finger presses into the table, which pushes the hand out of the box)."""
        lo, hi = np.array(self.low), np.asarray(self.high)
        lo[2] += self.finger_reach * np.sin(min(tilt(euler_to_mat(action[3:6]) @ mat0), np.pi / 2))
        target = pos0 + action[:3]
        boxed = np.clip(target, np.where(pos0 < lo - self.recover, pos0, lo), np.where(pos0 > hi + self.recover, pos0, hi))
        out = boxed != target  # only clipped axes change: in-box steps pass bit-exact
        aimed = action.copy()
        aimed[:3][out] = boxed[out] - pos0[out]
        return aimed

    def bounds(self, pos0: np.ndarray, mat0: np.ndarray) -> "StepBounds":
        """The bounds of a step that starts at (pos0 [3], mat0 [3, 3])."""
        reach = self.max_translation + self.slack
        # From outside the box, not further out: the slack does not add up over steps.
        box_lo, box_hi = np.minimum(np.asarray(self.low) - self.slack, pos0), np.maximum(np.asarray(self.high) + self.slack, pos0)
        return StepBounds(mat0_t=mat0.T.copy(), step_lo=pos0 - reach, step_hi=pos0 + reach, box_lo=box_lo, box_hi=box_hi,
                          lo=np.maximum(pos0 - reach, box_lo), hi=np.minimum(pos0 + reach, box_hi),
                          max_rotation=self.max_rotation + self.rotation_slack,
                          min_down=float(np.cos(max(self.max_tilt + self.rotation_slack, tilt(mat0)))))


@dataclass(frozen=True)
class StepBounds:
    """One step's bounds (MotionGuard.bounds), checked every few physics substeps."""

    mat0_t: np.ndarray  # [3, 3] the starting orientation, transposed
    step_lo: np.ndarray  # [3] the per-axis translation limit around the starting position
    step_hi: np.ndarray
    box_lo: np.ndarray  # [3] the workspace box (or the starting position, where the hand started outside it)
    box_hi: np.ndarray
    lo: np.ndarray  # [3] both: the position bound
    hi: np.ndarray
    max_rotation: float  # rad per Euler component of the turn from the starting orientation
    min_down: float  # cos of the largest tilt allowed

    def breach(self, pos: np.ndarray, mat: np.ndarray) -> str | None:
        """What the pose (pos [3], mat [3, 3]) breaks; None if nothing."""
        if -mat[2, 2] < self.min_down:
            return "tilt"
        if ((pos < self.lo) | (pos > self.hi)).any():
            return "translation" if ((pos < self.step_lo) | (pos > self.step_hi)).any() else "workspace box"
        turn = mat @ self.mat0_t
        r = self.max_rotation  # roll, pitch (-asin of [2, 0]) and yaw of the extrinsic Euler "xyz" angles, each within +-r
        if abs(math.atan2(turn[2, 1], turn[2, 2])) > r or abs(turn[2, 0]) > math.sin(r) or abs(math.atan2(turn[1, 0], turn[0, 0])) > r:
            return "rotation"
        return None


@dataclass(frozen=True)
class _HandPlan:
    """Where a step means the hand to be at every substep boundary j = 0 .. n: on the straight line."""

    pos: np.ndarray  # [n + 1, 3]
    vel: np.ndarray  # [n + 1, 3] m/s
    mat: np.ndarray  # [n + 1, 3, 3]

    @staticmethod
    def line(pos0: np.ndarray, mat0: np.ndarray, target_pos: np.ndarray, turn: np.ndarray, profile: tuple) -> "_HandPlan":
        """From (pos0 [3], mat0 [3, 3]) to target_pos [3] and the Euler delta `turn` [3] on `profile`."""
        share, rate = np.concatenate([[0.0], profile[0]]), np.concatenate([[0.0], profile[1]])
        return _HandPlan(pos=pos0 + np.outer(share, target_pos - pos0), vel=np.outer(rate, target_pos - pos0),
                         mat=euler_to_mat(np.outer(share, turn)) @ mat0)


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
        self._inertia = np.zeros((scene.model.nv, scene.model.nv))
        self._vel = np.zeros(6)
        self._min_arrive = self.n_substeps * cfg.arrive_fraction  # substeps
        arm = np.arange(7)
        self._kp = scene.model.actuator_gainprm[arm, 0].copy()
        self._kv = -scene.model.actuator_biasprm[arm, 2].copy()
        self._damping = scene.model.dof_damping[scene.arm_dof_adr].copy()
        self._max_arrive = self.n_substeps * cfg.max_arrive_fraction
        self.gripper_cmd = 0.0

    def reset_gripper(self, closed: bool) -> None:
        self.gripper_cmd = 1.0 if closed else 0.0

    def solve_ik(self, pos: np.ndarray, mat: np.ndarray, q_seed: np.ndarray, base_qpos: np.ndarray | None = None,
                 iterations: int | None = None) -> tuple[np.ndarray, float]:
        """Joint angles putting the end-effector site at (pos, mat); returns (q, position error in m).
        `base_qpos` sets the joints IK does not move (fingers, cube; default: the live state); `iterations`
        defaults to the config's."""
        m, d, s = self.scene.model, self._ik_data, self.scene
        d.qpos[:] = s.data.qpos if base_qpos is None else base_qpos
        q = np.clip(q_seed.copy(), s.arm_lo, s.arm_hi)
        cols = s.arm_dof_adr
        lam2 = self.cfg.ik_damping
        for _ in range(self.cfg.ik_iterations if iterations is None else iterations):
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

    def _arrival(self, dq: np.ndarray, inertia: np.ndarray) -> float:
        """Substeps the minimum-jerk move `dq` [7] needs so its peak torque fits the servos' headroom
        (`inertia`: the arm's [7, 7] block of the mass matrix); at least the configured arrival."""
        peak = PEAK_ACCEL * np.abs(inertia @ dq)  # N·m·s^2: peak torque times T^2
        t = max(np.sqrt(np.max(peak / (self.cfg.torque_headroom * ARM_FORCE))), PEAK_RATE * np.abs(dq).max() / self.cfg.max_joint_speed)
        return max(self._min_arrive, t / self.scene.model.opt.timestep)

    def _reachable(self, action: np.ndarray, q0: np.ndarray, bounds: "StepBounds | None"):
        """(q, target pos, target mat, IK error, share of the step, arrival in substeps) for the largest share
        of `action` that IK reaches, the servos can follow and, where IK's solution misses the target, still
        ends within the step's `bounds`."""
        s = self.scene
        pos0, mat0 = s.ee_pos(), s.ee_mat()
        mujoco.mj_fullM(s.model, s.data, self._inertia)  # the step's set-points use it too
        inertia = self._inertia[np.ix_(s.arm_dof_adr, s.arm_dof_adr)]

        def solve(frac: float):
            scaled = np.concatenate([action[:6] * frac, [0.0]])
            pos, mat, _ = apply_action(pos0, mat0, 0.0, scaled)
            q, err = self.solve_ik(pos, mat, q0)
            arrive = self._arrival(q - q0, inertia)
            ok = err <= self.cfg.reach_tolerance and np.abs(q - q0).max() <= self.cfg.max_joint_step and arrive <= self._max_arrive
            if ok and bounds is not None:  # IK's pose is in _ik_data
                ok = bounds.breach(self._ik_data.site_xpos[s.ee_site], self._ik_data.site_xmat[s.ee_site].reshape(3, 3)) is None
            return ok, (q, pos, mat, err, frac, arrive)

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

    def _path(self, action: np.ndarray, q0: np.ndarray, q_target: np.ndarray, frac: float) -> np.ndarray:
        """[waypoints + 1, 7] joints along the straight line from the start to the target (shares 0 .. 1 of
        the step's reachable share), each IK seeded by the one before; joint interpolation between start and
        target alone bows the hand up to 16 mm off the line and past the step's limit. A waypoint's IK starts
        from that interpolation and takes a few iterations: it only straightens the path."""
        s, n = self.scene, self.cfg.waypoints
        pos0, mat0 = s.ee_pos(), s.ee_mat()
        path = [q0]
        for i in range(1, n):
            pos, mat, _ = apply_action(pos0, mat0, 0.0, np.concatenate([action[:6] * (frac * i / n), [0.0]]))
            path.append(self.solve_ik(pos, mat, q0 + (q_target - q0) * i / n, iterations=self.cfg.waypoint_iterations)[0])
        return np.array([*path, q_target])

    def _profile(self, arrive: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Minimum-jerk share of the move (0 -> 1) at the end of every substep, arriving after `arrive`
        substeps, with its first and second time derivatives: three [n_substeps] arrays."""
        T = arrive * self.scene.model.opt.timestep
        tau = (np.arange(1, self.n_substeps + 1) / arrive).clip(0, 1)
        share = 10 * tau**3 - 15 * tau**4 + 6 * tau**5
        rate = (30 * tau**2 - 60 * tau**3 + 30 * tau**4) / T
        accel = (60 * tau - 180 * tau**2 + 120 * tau**3) / T**2
        return share, rate, accel

    def _stopping(self, profile: tuple, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`profile` (`_profile`) with the move decelerating to rest from substep k on, at a constant rate
        over `stop_time` (or arriving as planned, if that is sooner)."""
        share, rate, accel = (a.copy() for a in profile)
        s0, r0 = (share[k - 1], rate[k - 1]) if k > 0 else (0.0, 0.0)
        T = self.cfg.stop_time
        tau = np.minimum((np.arange(k, self.n_substeps) + 1 - k) * self.scene.model.opt.timestep, T)
        stop_share, stop_rate = s0 + r0 * tau - r0 * tau**2 / (2 * T), r0 * (1 - tau / T)
        stop_accel = np.where(tau < T, -r0 / T, 0.0)
        sooner = share[k:] <= stop_share  # the planned arrival already stops before the deceleration would
        share[k:] = np.where(sooner, share[k:], stop_share)
        rate[k:] = np.where(sooner, rate[k:], stop_rate)
        accel[k:] = np.where(sooner, accel[k:], stop_accel)
        return share, rate, accel

    def _setpoints(self, path: np.ndarray, profile: tuple, inertia: np.ndarray) -> np.ndarray:
        """[n_substeps, 7] servo set-points moving along `path` [P, 7] (equal shares apart) on `profile`
        (`_profile`). With `feedforward` they lead the desired joints by what the position servo needs to
        produce the desired velocity and acceleration: (kv qdot + M qddot + b qdot) / kp (`inertia`: M [7, 7])."""
        share, rate, accel = profile
        segments = len(path) - 1
        seg = np.minimum((share * segments).astype(int), segments - 1)
        slope = (path[1:] - path[:-1])[seg] * segments  # [n, 7] dq/dshare on each substep's segment
        desired = path[seg] + slope * (share - seg / segments)[:, None]
        if not self.cfg.feedforward:
            return desired
        qdot, qddot = slope * rate[:, None], slope * accel[:, None]
        return desired + (self._kv * qdot + qddot @ inertia.T + self._damping * qdot) / self._kp

    def _heading(self, plan: "_HandPlan", j: int) -> tuple[np.ndarray, np.ndarray, float]:
        """Where the hand is heading `guard_lookahead` s after plan time j (substeps): the plan's pose then,
        off by the hand's current deviation from the plan (the position's growing at its current rate).
        Returns (pos [3], mat [3, 3], the position's deviation now in m)."""
        s, n = self.scene, self.n_substeps
        ahead = min(j + round(self.cfg.guard_lookahead / s.model.opt.timestep), n)
        mujoco.mj_objectVelocity(s.model, s.data, mujoco.mjtObj.mjOBJ_SITE, s.ee_site, self._vel, 0)  # [angular, linear]
        off = s.data.site_xpos[s.ee_site] - plan.pos[j]
        pos = plan.pos[ahead] + off + self.cfg.guard_lookahead * (self._vel[3:] - plan.vel[j])
        mat = s.data.site_xmat[s.ee_site].reshape(3, 3) @ plan.mat[j].T @ plan.mat[ahead]
        return pos, mat, float(np.abs(off).max())

    def _pose_at(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Forward kinematics of arm joints `q` [7]: the site's (pos [3], mat [3, 3])."""
        s, d = self.scene, self._ik_data
        d.qpos[:] = s.data.qpos
        d.qpos[s.arm_qpos_adr] = q
        mujoco.mj_kinematics(s.model, d)
        return d.site_xpos[s.ee_site].copy(), d.site_xmat[s.ee_site].reshape(3, 3).copy()

    def step(self, action: np.ndarray, guard: MotionGuard | None = None) -> dict:
        """Execute one control period toward measured pose + action (or the share of it the arm can reach and
        follow), holding the arm where `guard` says the hand would pass a bound or is blocked. Returns the
        commanded target, the share it went (`step_fraction`), what held it early (`guard_stop`: None if
        nothing) and the 6-D delta the step stands for (`executed`: that share of the action, or the step
        to the pose the arm was held at)."""
        s = self.scene
        action = np.asarray(action, dtype=np.float64)
        pos0, mat0 = s.ee_pos(), s.ee_mat()
        bounds = None
        if guard is not None:
            action, bounds = guard.aim(pos0, mat0, action), guard.bounds(pos0, mat0)
        _, _, target_grip = apply_action(pos0, mat0, s.gripper_state(), action)
        q0 = s.arm_qpos()
        q_target, target_pos, target_mat, ik_err, frac, arrive = self._reachable(action, q0, bounds)
        profile = self._profile(arrive)
        path, inertia = self._path(action, q0, q_target, frac), self._inertia[np.ix_(s.arm_dof_adr, s.arm_dof_adr)]
        setpoints = self._setpoints(path, profile, inertia)
        plan = _HandPlan.line(pos0, mat0, target_pos, action[3:6] * frac, profile) if bounds is not None else None
        if abs(target_grip - s.gripper_state()) > self.cfg.gripper_deadband:
            self.gripper_cmd = target_grip
        finger = FINGER_OPEN * (1.0 - self.gripper_cmd)
        d, m = s.data, s.model
        d.ctrl[7:9] = finger
        stop, held = None, None
        for k in range(self.n_substeps):
            if bounds is not None and stop is None and k % self.cfg.guard_every == 0:
                pos, mat, off = self._heading(plan, max(k - 1, 0))  # site_xpos lags one substep behind qpos
                stop = bounds.breach(pos, mat) or ("blocked" if off > guard.max_deviation else None)
                if stop is not None and self.cfg.stop_time > 0:
                    profile = self._stopping(profile, k)
                    setpoints = self._setpoints(path, profile, inertia)
                elif stop is not None:
                    held = s.arm_qpos()
            d.ctrl[:7] = setpoints[k] if held is None else held
            mujoco.mj_step(m, d)
        executed = action[:6] * (frac * profile[0][-1])  # the share of the step the plan went
        if held is not None:
            executed = delta_action(pos0, mat0, 0.0, *self._pose_at(held), 0.0)[:6]
        return {"target_pos": target_pos, "target_mat": target_mat, "target_gripper": target_grip, "ik_error": ik_err,
                "step_fraction": frac, "guard_stop": stop, "executed": executed}
