"""A real-arm robot computer may lack MuJoCo and gymnasium: the franky backend imports, and checks an episode
spec, without loading either (or franky itself, until a backend is built)."""

from __future__ import annotations

import subprocess
import sys

from vjepa_planning.robot_drivers.episode_spec import TASK_NAMES

CHECK_A_SPEC_ON_THE_ARM = """
import sys
sys.modules["franky"] = None  # as if franky-control were not installed: the backend imports it when built
import vjepa_planning.robot_drivers.franky_backend
from vjepa_planning.robot_drivers.episode_spec import EpisodeSpec
spec = EpisodeSpec(task="grasp", seed=3, start_ee=[0.5, 0.0, 0.3], start_gripper=0.0, cube_start=[0.5, 0.1, 0.02],
                   cube_yaw=0.0, cube_in_hand=False, goal_ee=[0.5, 0.1, 0.12], goal_gripper=1.0,
                   goal_cube=[0.5, 0.1, 0.1], goal_cube_in_hand=True)
EpisodeSpec.from_json(spec.to_json()).check_reachable((0.2, -0.5, 0.05), (0.8, 0.5, 0.8))
print(sorted(m for m in ("mujoco", "gymnasium") if m in sys.modules))
"""


def test_the_franky_backend_checks_a_spec_without_mujoco_or_gymnasium():
    out = subprocess.run([sys.executable, "-c", CHECK_A_SPEC_ON_THE_ARM], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_spec_names_exactly_the_sim_tasks():
    from vjepa_planning.envs.tasks import TASKS

    assert sorted(TASK_NAMES) == sorted(TASKS)
