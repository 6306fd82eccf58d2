"""Build the driver a config names: `driver.type` is sim (in-process MuJoCo) or remote (robot server)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from robot_drivers.base import RobotDriver
from robot_drivers.safety import SafetyLimits


def safety_limits(cfg: Mapping[str, Any]) -> SafetyLimits:
    return SafetyLimits(
        max_translation=float(cfg["max_translation"]),
        max_rotation=float(cfg["max_rotation"]),
        workspace_low=tuple(float(v) for v in cfg["workspace_low"]),
        workspace_high=tuple(float(v) for v in cfg["workspace_high"]),
    )


def make_driver(driver_cfg: Mapping[str, Any], env_cfg: Mapping[str, Any], episode=None) -> RobotDriver:
    kind = driver_cfg["type"]
    if kind == "sim":
        from robot_drivers.sim_driver import SimDriver

        return SimDriver(
            task=env_cfg["task"],
            image_size=int(env_cfg["image_size"]),
            seed=int(env_cfg["seed"]),
            episode=episode,
            limits=safety_limits(driver_cfg["safety"]),
            max_steps=env_cfg.get("max_steps"),
        )
    raise ValueError(f"unknown driver.type {kind!r}; choose sim or remote")
