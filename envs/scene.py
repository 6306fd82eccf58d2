"""The MuJoCo scene: a Franka Panda on a table, a graspable cube, a DROID-like exterior camera and a
workspace camera framed on the table.

The arm's kinematics and meshes come from the gymnasium-robotics wheel (see `assets.py`); the table,
cube, camera, lights and the actuator gains are ours. The arm is driven through position actuators on
its joints with gravity compensation, so contacts (fingers on the cube, cube on the table) are real.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from vjepa_planning.envs.assets import franka_asset_dir
from vjepa_planning.envs.geometry import look_at_xyaxes
from vjepa_planning.robot_pose import mat_to_euler

ARM_JOINTS = tuple(f"robot:panda0_joint{i}" for i in range(1, 8))
FINGER_JOINTS = ("robot:panda0_finger_joint1", "robot:panda0_finger_joint2")
FINGER_OPEN = 0.04  # m per finger; the hand opens to 8 cm
# Joint-space home: gripper pointing down (roll = pi), 0.45 m in front of the base, 0.3 m above the table.
HOME_QPOS = np.array([0.0, -0.26, 0.0, -2.43, 0.0, 0.60, 0.0])
# Stiff, well-damped joint servos (kp N·m/rad, kv N·m·s/rad) so the hand tracks its target in a control step.
ARM_KP = np.array([4500.0, 4500.0, 3500.0, 3500.0, 2000.0, 2000.0, 2000.0])
ARM_KV = 2.0 * np.sqrt(ARM_KP)  # near-critical damping for the link inertias plus 0.1 armature
ARM_FORCE = np.array([87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0])
FINGER_KP, FINGER_KV, FINGER_FORCE = 800.0, 30.0, 40.0


@dataclass(frozen=True)
class SceneConfig:
    physics_dt: float = 0.002
    image_height: int = 256
    image_width: int = 256
    cube_half_size: float = 0.02  # a 4 cm cube; the open hand spans 8 cm
    cube_mass: float = 0.05
    # Like DROID's exterior cameras: off to the side and in front, whole arm and workspace in view.
    camera_eye: tuple[float, float, float] = (1.0, -0.9, 0.85)
    camera_target: tuple[float, float, float] = (0.38, 0.0, 0.2)
    camera_fovy: float = 48.0
    # In front of the table, framed on where cubes, hands and goals are sampled (hand heights up to 0.4 m
    # stay in view). The fingers open left-right in the image and cover ~3x the pixels they do from
    # "exterior", so a small encoder at 96 px can see whether the hand is closed on the cube.
    workspace_eye: tuple[float, float, float] = (1.15, -0.12, 0.66)
    workspace_target: tuple[float, float, float] = (0.5, 0.0, 0.25)
    workspace_fovy: float = 48.0


CAMERAS = ("exterior", "workspace")


def _camera_xml(name: str, eye, target, fovy: float) -> str:
    xyaxes = " ".join(f"{v:.6f}" for v in look_at_xyaxes(np.array(eye), np.array(target)))
    pos = " ".join(str(v) for v in eye)
    return f'<camera name="{name}" mode="fixed" pos="{pos}" xyaxes="{xyaxes}" fovy="{fovy}"/>'


def _scene_xml(cfg: SceneConfig) -> str:
    assets = franka_asset_dir()
    h = cfg.cube_half_size
    arm_actuators = "\n".join(
        f'<position name="a{i}" joint="{j}" kp="{ARM_KP[i]}" kv="{ARM_KV[i]}" forcerange="{-ARM_FORCE[i]} {ARM_FORCE[i]}"/>'
        for i, j in enumerate(ARM_JOINTS)
    )
    finger_actuators = "\n".join(
        f'<position name="f{i}" joint="{j}" kp="{FINGER_KP}" kv="{FINGER_KV}" ctrlrange="0 {FINGER_OPEN}" '
        f'forcerange="{-FINGER_FORCE} {FINGER_FORCE}"/>'
        for i, j in enumerate(FINGER_JOINTS)
    )
    return f"""
<mujoco model="franka_table_cube">
  <include file="{assets}/assets.xml"/>
  <compiler angle="radian" meshdir="{assets}/meshes" autolimits="true"/>
  <option timestep="{cfg.physics_dt}" integrator="implicitfast" cone="elliptic" impratio="10"/>
  <visual>
    <quality shadowsize="0" offsamples="0"/>
    <global offwidth="{max(640, cfg.image_width)}" offheight="{max(480, cfg.image_height)}"/>
    <headlight ambient="0.35 0.35 0.35" diffuse="0.5 0.5 0.5" specular="0.1 0.1 0.1"/>
  </visual>
  <asset>
    <texture name="floor_tex" type="2d" builtin="checker" rgb1="0.32 0.34 0.36" rgb2="0.26 0.27 0.29" width="256" height="256"/>
    <material name="floor_mat" texture="floor_tex" texrepeat="8 8"/>
    <texture name="table_tex" type="2d" builtin="flat" mark="random" random="0.05" rgb1="0.62 0.5 0.36" markrgb="0.5 0.4 0.28" width="256" height="256"/>
    <material name="table_mat" texture="table_tex" texrepeat="3 3"/>
    <texture name="wall_tex" type="2d" builtin="gradient" rgb1="0.75 0.78 0.82" rgb2="0.55 0.6 0.66" width="256" height="256"/>
    <material name="wall_mat" texture="wall_tex"/>
    <material name="cube_mat" rgba="0.85 0.12 0.1 1"/>
  </asset>
  <worldbody>
    <light name="key" directional="true" pos="0.5 -0.5 2.0" dir="-0.2 0.3 -1" diffuse="0.55 0.55 0.55" castshadow="false"/>
    <geom name="floor" type="plane" size="3 3 0.1" pos="0 0 -0.75" material="floor_mat" contype="0" conaffinity="0"/>
    <geom name="back_wall" type="box" size="0.02 1.6 0.9" pos="-0.75 0 0.15" material="wall_mat" contype="0" conaffinity="0"/>
    <geom name="side_wall" type="box" size="1.6 0.02 0.9" pos="0.4 1.1 0.15" material="wall_mat" contype="0" conaffinity="0"/>
    <body name="table" pos="0.45 0 -0.025">
      <geom name="table_top" type="box" size="0.55 0.6 0.025" material="table_mat" friction="1 0.005 0.0001"/>
      <geom name="table_leg" type="box" size="0.04 0.04 0.36" pos="0.45 0.5 -0.385" rgba="0.3 0.3 0.3 1" contype="0" conaffinity="0"/>
      <geom name="table_leg2" type="box" size="0.04 0.04 0.36" pos="0.45 -0.5 -0.385" rgba="0.3 0.3 0.3 1" contype="0" conaffinity="0"/>
    </body>
    <include file="{assets}/chain.xml"/>
    <body name="cube" pos="0.5 0 {h}">
      <freejoint name="cube_joint"/>
      <geom name="cube_geom" type="box" size="{h} {h} {h}" mass="{cfg.cube_mass}" material="cube_mat"
            friction="1.5 0.02 0.001" condim="4" solref="0.005 1"/>
    </body>
    {_camera_xml("exterior", cfg.camera_eye, cfg.camera_target, cfg.camera_fovy)}
    {_camera_xml("workspace", cfg.workspace_eye, cfg.workspace_target, cfg.workspace_fovy)}
  </worldbody>
  <actuator>
    {arm_actuators}
    {finger_actuators}
  </actuator>
</mujoco>
"""


class FrankaScene:
    """Model, data and the ids we need, looked up once."""

    def __init__(self, cfg: SceneConfig = SceneConfig()):
        self.cfg = cfg
        spec = mujoco.MjSpec.from_string(_scene_xml(cfg))
        # The arm floats under gravity compensation (as a real Franka's controller does); the servos then only
        # fight inertia and contacts. Must be set before compiling: MuJoCo sizes its gravcomp pass at compile time.
        for body in spec.bodies:
            if body.name.startswith("panda0_"):
                body.gravcomp = 1.0
        self.model = spec.compile()
        m = self.model
        self.arm_qpos_adr = np.array([m.jnt_qposadr[m.joint(j).id] for j in ARM_JOINTS])
        self.arm_dof_adr = np.array([m.jnt_dofadr[m.joint(j).id] for j in ARM_JOINTS])
        self.finger_qpos_adr = np.array([m.jnt_qposadr[m.joint(j).id] for j in FINGER_JOINTS])
        # The gymnasium-robotics model adds heavy damping/armature tuned for its own servos; ours replace them.
        m.dof_damping[self.arm_dof_adr] = 1.0
        m.dof_armature[self.arm_dof_adr] = 0.1  # rotor inertia; without it the wrist servos chatter at their force limit
        finger_dofs = [m.jnt_dofadr[m.joint(j).id] for j in FINGER_JOINTS]
        m.dof_damping[finger_dofs] = 2.0
        m.dof_armature[finger_dofs] = 0.05
        self.arm_lo = m.jnt_range[[m.joint(j).id for j in ARM_JOINTS], 0].copy()
        self.arm_hi = m.jnt_range[[m.joint(j).id for j in ARM_JOINTS], 1].copy()
        self.cube_qpos_adr = m.jnt_qposadr[m.joint("cube_joint").id]
        self.cube_dof_adr = m.jnt_dofadr[m.joint("cube_joint").id]
        self.cube_body = m.body("cube").id
        self.cube_geom = m.geom("cube_geom").id
        self.ee_site = m.site("end_effector").id
        self.finger_bodies = (m.body("panda0_leftfinger").id, m.body("panda0_rightfinger").id)
        self.data = mujoco.MjData(m)
        self.reset_to_home()

    # ---- state read-out -------------------------------------------------------------------------
    def ee_pos(self) -> np.ndarray:
        return self.data.site_xpos[self.ee_site].copy()

    def ee_mat(self) -> np.ndarray:
        return self.data.site_xmat[self.ee_site].reshape(3, 3).copy()

    def finger_opening(self) -> float:
        """Distance between the fingers, m (0 = closed, 0.08 = fully open)."""
        return float(self.data.qpos[self.finger_qpos_adr].sum())

    def gripper_state(self) -> float:
        """Gripper in [0, 1], 1 = closed (DROID's gripper_position)."""
        return float(np.clip(1.0 - self.finger_opening() / (2 * FINGER_OPEN), 0.0, 1.0))

    def robot_state(self) -> np.ndarray:
        """[x, y, z, roll, pitch, yaw, gripper] of the end-effector site in the base (= world) frame."""
        return np.concatenate([self.ee_pos(), mat_to_euler(self.ee_mat()), [self.gripper_state()]])

    def cube_pos(self) -> np.ndarray:
        return self.data.xpos[self.cube_body].copy()

    def arm_qpos(self) -> np.ndarray:
        return self.data.qpos[self.arm_qpos_adr].copy()

    def cube_between_fingers(self) -> bool:
        """Cube touched by both fingers (a real pinch, not a cube resting against one finger)."""
        touching = set()
        for i in range(self.data.ncon):
            c = self.data.contact[i]
            bodies = {self.model.geom_bodyid[c.geom1], self.model.geom_bodyid[c.geom2]}
            if self.cube_body in bodies:
                touching |= bodies & set(self.finger_bodies)
        return len(touching) == 2

    # ---- state write (resets and goal photos only; control goes through the actuators) ------------
    def set_arm(self, qpos: np.ndarray, finger_opening: float = 2 * FINGER_OPEN, data: mujoco.MjData | None = None) -> None:
        """Place the arm (and its servo targets) directly; `data` defaults to the live MjData."""
        d = self.data if data is None else data
        d.qpos[self.arm_qpos_adr] = qpos
        d.qvel[self.arm_dof_adr] = 0.0
        half = float(np.clip(finger_opening / 2, 0.0, FINGER_OPEN))
        d.qpos[self.finger_qpos_adr] = half
        d.ctrl[:7] = qpos
        d.ctrl[7:9] = half

    def set_cube(self, pos: np.ndarray, yaw: float = 0.0, data: mujoco.MjData | None = None) -> None:
        d, a = (self.data if data is None else data), self.cube_qpos_adr
        d.qpos[a : a + 3] = pos
        d.qpos[a + 3 : a + 7] = [np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]
        d.qvel[self.cube_dof_adr : self.cube_dof_adr + 6] = 0.0

    def reset_to_home(self) -> None:
        mujoco.mj_resetData(self.model, self.data)
        self.set_arm(HOME_QPOS)
        self.set_cube(np.array([0.55, 0.0, self.cfg.cube_half_size]))
        mujoco.mj_forward(self.model, self.data)
