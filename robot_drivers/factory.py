"""Build the driver a config names: `driver.type` is sim (in-process MuJoCo) or remote (robot server)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vjepa_planning.robot_drivers.base import RobotDriver
from vjepa_planning.robot_drivers.safety import SafetyLimits


def safety_limits(cfg: Mapping[str, Any]) -> SafetyLimits:
    """A `safety` config block -> SafetyLimits; the gripper keys and max_tilt are optional (default:
    the full gripper range, SafetyLimits.max_tilt)."""
    return SafetyLimits(
        max_translation=float(cfg["max_translation"]),
        max_rotation=float(cfg["max_rotation"]),
        workspace_low=tuple(float(v) for v in cfg["workspace_low"]),
        workspace_high=tuple(float(v) for v in cfg["workspace_high"]),
        **{k: float(cfg[k]) for k in ("gripper_min", "gripper_max", "max_gripper_step", "max_tilt") if k in cfg},
    )


def client_curve_keys(curve_cfg: Mapping[str, Any] | None):
    """The CURVE keys a client config names (`server_public_key`, `client_secret_key`), or None for neither."""
    from vjepa_planning.robot_drivers.curve import load_client_keys

    server, client = (curve_cfg or {}).get("server_public_key"), (curve_cfg or {}).get("client_secret_key")
    if server is None and client is None:
        return None
    if server is None or client is None:
        raise ValueError("CURVE needs both curve.server_public_key (the server's server.key) and curve.client_secret_key "
                         "(this client's .key_secret)")
    return load_client_keys(server, client)


def make_driver(driver_cfg: Mapping[str, Any], env_cfg: Mapping[str, Any], episode=None) -> RobotDriver:
    kind = driver_cfg["type"]
    if kind == "sim":
        from vjepa_planning.robot_drivers.sim_driver import SimDriver

        return SimDriver(
            task=env_cfg["task"],
            image_size=int(env_cfg["image_size"]),
            camera=str(env_cfg.get("camera") or "exterior"),
            seed=int(env_cfg["seed"]),
            episode=episode,
            limits=safety_limits(driver_cfg["safety"]),
            max_steps=env_cfg.get("max_steps"),
        )
    if kind == "remote":
        from vjepa_planning.robot_drivers.protocol import DEFAULT_PORT, SECRET_ENV
        from vjepa_planning.robot_drivers.remote_driver import RemoteDriver

        seed = env_cfg.get("seed")
        return RemoteDriver(
            host=str(driver_cfg.get("host", "127.0.0.1")),
            port=int(driver_cfg.get("port", DEFAULT_PORT)),
            timeout_s=float(driver_cfg.get("timeout_s", 5.0)),
            reset_timeout_s=float(driver_cfg.get("reset_timeout_s", 60.0)),
            retries=int(driver_cfg.get("retries", 2)),
            secret_file=driver_cfg.get("secret_file"),
            secret_env=driver_cfg.get("secret_env", SECRET_ENV),
            heartbeat=bool(driver_cfg.get("heartbeat", True)),
            takeover=bool(driver_cfg.get("takeover", False)),
            curve=client_curve_keys(driver_cfg.get("curve")),
            seed=None if seed is None else int(seed),
            episode=episode,
            task=env_cfg.get("task") if driver_cfg.get("send_task", True) else None,
            expected_image_size=env_cfg.get("image_size"),
        )
    raise ValueError(f"unknown driver.type {kind!r}; choose sim or remote")
