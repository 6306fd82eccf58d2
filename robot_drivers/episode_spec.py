"""The episode spec: everything that reproduces an episode's start and goal (written beside goal.png, sent
to the robot server's `reset`), and the checks every field passes before anything moves.

It lives with the robot drivers, not the sim, because a real-arm backend checks specs too and must not
import MuJoCo or gymnasium for that: this module needs the standard library only. The sim's tasks build
their specs from here (envs/tasks/spec.py re-exports it).

`EpisodeSpec.from_json` refuses malformed text, missing or unknown-typed fields, non-finite numbers and
values no task produces (gripper outside [0, 1], a seed outside [0, 2**32), an unknown task) with a
ValueError naming the field. `check_reachable` is the driver's part: the hand's start and goal inside its
safety box, the cube on or above the table within the box's footprint.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

MAX_SPEC_CHARS = 1 << 16
MAX_EXTRA_DEPTH = 4
# The tasks a spec may name: the keys of envs.tasks.TASKS, listed here so checking a spec loads no sim.
TASK_NAMES = ("reach", "grasp", "reach_with_object", "pick_and_place")


@dataclass
class EpisodeSpec:
    """Everything needed to reproduce an episode's start and its goal (written beside goal.png)."""

    task: str
    seed: int
    start_ee: list[float]
    start_gripper: float  # 0 open .. 1 closed
    cube_start: list[float]
    cube_yaw: float
    cube_in_hand: bool
    goal_ee: list[float]
    goal_gripper: float
    goal_cube: list[float]
    goal_cube_in_hand: bool
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> EpisodeSpec:
        if not isinstance(text, str) or len(text) > MAX_SPEC_CHARS:
            raise ValueError(f"episode spec must be JSON text of at most {MAX_SPEC_CHARS} characters")
        try:
            raw = json.loads(text)
        except RecursionError:
            raise ValueError("episode spec is nested too deeply to be an episode spec") from None
        except json.JSONDecodeError as e:
            raise ValueError(f"episode spec is not valid JSON ({e})") from None
        if not isinstance(raw, dict):
            raise ValueError(f"episode spec must be a JSON object, got {type(raw).__name__}")
        names = {f.name for f in fields(cls)}
        missing = names - set(raw) - {"extra"}
        if missing:
            raise ValueError(f"episode spec lacks the fields {sorted(missing)}")
        spec = cls(**{k: v for k, v in raw.items() if k in names})
        spec.check()
        return spec

    def check(self) -> None:
        """Types and values every task's spec has; a ValueError names the first field that is off."""
        if not isinstance(self.task, str) or self.task not in TASK_NAMES:
            raise ValueError(f"episode spec task {self.task!r} is not one of {sorted(TASK_NAMES)}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or not 0 <= self.seed < 2**32:
            raise ValueError(f"episode spec seed must be an integer in [0, 2**32), got {self.seed!r}")
        for name in ("start_ee", "cube_start", "goal_ee", "goal_cube"):
            _vector(name, getattr(self, name))
        for name in ("start_gripper", "goal_gripper"):
            if not 0.0 <= _number(name, getattr(self, name)) <= 1.0:
                raise ValueError(f"episode spec {name} must lie in [0, 1] (0 open, 1 closed), got {getattr(self, name)!r}")
        if abs(_number("cube_yaw", self.cube_yaw)) > math.pi:
            raise ValueError(f"episode spec cube_yaw must lie in [-pi, pi], got {self.cube_yaw!r}")
        for name in ("cube_in_hand", "goal_cube_in_hand"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"episode spec {name} must be true or false, got {getattr(self, name)!r}")
        if not isinstance(self.extra, dict) or _depth(self.extra) > MAX_EXTRA_DEPTH:
            raise ValueError(f"episode spec extra must be a JSON object nested at most {MAX_EXTRA_DEPTH} deep")

    def check_reachable(self, low: Sequence[float], high: Sequence[float]) -> None:
        """The hand's start and goal inside the box [low, high] (m, base frame); the cube's centre within its
        footprint, not below the table (z >= 0) and not above the box."""
        for name in ("start_ee", "goal_ee"):
            p = getattr(self, name)
            if any(not lo <= v <= hi for v, lo, hi in zip(p, low, high)):
                raise ValueError(f"episode spec {name} {list(p)} lies outside the workspace box {list(low)} .. {list(high)}")
        for name in ("cube_start", "goal_cube"):
            p = getattr(self, name)
            if any(not lo <= v <= hi for v, lo, hi in zip(p[:2], low[:2], high[:2])) or not 0.0 <= p[2] <= high[2]:
                raise ValueError(f"episode spec {name} {list(p)} is off the table or outside the workspace box")


def _number(name: str, v: Any) -> float:
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
        raise ValueError(f"episode spec {name} must be a finite number, got {v!r}")
    return float(v)


def _vector(name: str, v: Any) -> None:
    if not isinstance(v, (list, tuple)) or len(v) != 3:
        raise ValueError(f"episode spec {name} must be 3 numbers (x, y, z in m), got {v!r}")
    for x in v:
        _number(name, x)


def _depth(v: Any) -> int:
    if isinstance(v, dict):
        return 1 + max((_depth(x) for x in v.values()), default=0)
    if isinstance(v, list):
        return 1 + max((_depth(x) for x in v), default=0)
    return 0
