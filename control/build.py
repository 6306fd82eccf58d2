"""Build the world model and the latent MPC controller from their config groups (and a real sim context to
time plans on)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vjepa_planning.configs import compose_config, resolve_path
from vjepa_planning.planners import PlannerConfig, make_planner
from vjepa_planning.planners.mpc import LatentMPC
from vjepa_planning.worldmodel.protocol import RolloutWarmUp


def world_model_overrides(spec: str) -> list[str]:
    """A benchmark's --world-models entry as Hydra overrides: "lewm" picks configs/world_model/lewm.yaml,
    "lewm:runs/x.safetensors" the same config with that file, to measure a trained model beside the
    shipped ones."""
    name, _, path = spec.partition(":")
    return [f"world_model={name}"] + ([f"world_model.path={path}"] if path else [])


READOUT_SOURCES = ("safetensors", "official")  # world-model sources that take a gripper readout (world_model.readout)


def load_world_model(cfg: Mapping[str, Any], camera: str | None = None):
    """The `world_model` config group -> a world model. `camera`: the sim camera it will plan from
    (`sim_camera`; None off the sim), refused unless the predictor and readout were trained on it."""
    from vjepa_planning.worldmodel.checkpoints import load_module
    from vjepa_planning.worldmodel.compute_dtype import resolve_compile, resolve_dtype
    from vjepa_planning.worldmodel.world_model import VJEPAWorldModel

    if camera is not None:
        check_camera(cfg, camera)
    dtype, _ = resolve_dtype(cfg["dtype"], cfg["device"])
    compiled, _ = resolve_compile(cfg.get("compile", False), cfg["device"])
    kw = dict(device=cfg["device"], dtype=dtype, max_batch=cfg.get("max_batch"), compile=compiled)
    if cfg["source"] in READOUT_SOURCES and cfg.get("readout"):
        kw["readout"] = load_module(resolve_path(cfg["readout"], "world_model.readout"), kind="readout")
    if cfg["source"] == "safetensors":
        enc, pred = resolve_path(cfg["encoder"], "world_model.encoder"), resolve_path(cfg["predictor"], "world_model.predictor")
        return VJEPAWorldModel.from_safetensors(enc, pred, **kw)
    if cfg["source"] == "official":
        if not cfg.get("official_path"):
            raise ValueError("world_model.source=official needs world_model.official_path=/path/to/vjepa2-ac.pt")
        return VJEPAWorldModel.from_official(resolve_path(cfg["official_path"], "world_model.official_path"), img_size=int(cfg["img_size"]), **kw)
    if cfg["source"] == "lewm":
        from vjepa_planning.worldmodel.lewm.model import LeWMWorldModel

        return LeWMWorldModel.from_safetensors(resolve_path(cfg["path"], "world_model.path"), device=cfg["device"], dtype=dtype)
    raise ValueError(f"world_model.source must be safetensors, official or lewm, got {cfg['source']!r}")


def describe_compute(cfg: Mapping[str, Any]) -> str:
    """`world_model` settings -> 'bfloat16 on cpu (auto: CPU has avx512_bf16), compiled rollout (auto: ...)',
    for the start-up line."""
    from vjepa_planning.worldmodel.compute_dtype import dtype_name, resolve_compile, resolve_dtype

    dtype, why = resolve_dtype(cfg["dtype"], cfg["device"])
    text = f"{dtype_name(dtype)} on {cfg['device']} ({why})"
    if "compile" not in cfg:  # families without a compiled rollout (lewm)
        return text
    compiled, why_compiled = resolve_compile(cfg["compile"], cfg["device"])
    text = f"{text}, {'compiled' if compiled else 'eager'} rollout ({why_compiled})"
    if cfg.get("readout") and cfg["source"] in READOUT_SOURCES:
        text += f", gripper readout {Path(str(cfg['readout'])).name}"
    return text


def sim_camera(env_cfg: Mapping[str, Any], driver_cfg: Mapping[str, Any]) -> str | None:
    """The camera a world model will see: `env.camera` in the sim; None on a real robot (its camera has
    no sim name to compare)."""
    return env_cfg["camera"] if driver_cfg["type"] == "sim" else None


def check_camera(world_model_cfg: Mapping[str, Any], camera: str) -> None:
    """Refuse to plan in the sim from another camera than the one the predictor (or the gripper readout) was
    trained on: every energy would compare views the model never saw, and the episode would fail for no visible
    reason."""
    if world_model_cfg["source"] not in ("safetensors", "lewm"):
        return
    from vjepa_planning.envs.scene import CAMERAS
    from vjepa_planning.worldmodel.checkpoints import read_metadata

    keys = ["predictor", "readout"] if world_model_cfg["source"] == "safetensors" else ["path"]
    for key in [k for k in keys if world_model_cfg.get(k)]:
        path = resolve_path(world_model_cfg[key], f"world_model.{key}", must_exist=False)
        if not path.exists():
            continue  # load_world_model names the missing file
        trained = read_metadata(path)["extra"].get("camera")
        if trained in CAMERAS and trained != camera:
            what = "gripper readout" if key == "readout" else "world model"
            raise ValueError(
                f"{what} {path} was trained on the sim's {trained!r} camera, but env.camera={camera}; set "
                f"world_model.camera={trained} (env.camera follows it; render goal images with --camera {trained}) or choose "
                f"a {'readout (or world_model.readout=null)' if key == 'readout' else 'model'} trained on {camera!r}"
            )


def compose_and_load(config_name: str, overrides: list[str]):
    """(config, world model) for a script: compose `config_name` with the overrides, refuse a sim camera the
    predictor was not trained on, load the world model."""
    cfg = compose_config(config_name, overrides)
    return cfg, load_world_model(cfg.world_model, sim_camera(cfg.env, cfg.driver))


_MPC_KEYS = {"name", "context_frames"}  # planner settings read by make_mpc, not by the sampling loop


def planner_config(cfg: Mapping[str, Any]) -> PlannerConfig:
    """The `planner` config group -> PlannerConfig; a key neither uses (a typo in a preset) is refused."""
    fields = PlannerConfig.__dataclass_fields__
    unknown = sorted(set(cfg) - set(fields) - _MPC_KEYS)
    if unknown:
        raise ValueError(f"planner: unknown setting(s) {unknown}; known: {sorted(set(fields) | _MPC_KEYS)}")
    return PlannerConfig(**{k: v for k, v in cfg.items() if k in fields})


def make_mpc(world_model, planner_cfg: Mapping[str, Any]) -> LatentMPC:
    """The receding-horizon planner; a world model that prepares its rollout (compiles it) does so here, for
    this planner's shapes, before any robot moves."""
    cfg = planner_config(planner_cfg)
    frames = int(planner_cfg.get("context_frames", 1))
    if isinstance(world_model, RolloutWarmUp):
        world_model.warm_up(cfg.batch_sizes(), cfg.horizon, frames)
    return LatentMPC(world_model, make_planner(planner_cfg["name"], world_model, cfg), context_frames=frames)


def planning_context(wm, frames: int, device: str):
    """A real sim context to time plans on (the speed benchmarks): `frames` observations of a reach episode
    (seed 0, 256 px) and the actions between them, encoded -> (z, state, past actions, goal embedding)."""
    from vjepa_planning import envs
    env = envs.make_task_env("reach", image_size=256)
    obs, _ = env.reset(seed=0)
    images, states, actions = [obs["image"]], [obs["state"]], []
    for _ in range(frames - 1):
        a = np.array([0.03, -0.02, 0.01, 0, 0, 0, 0.0])
        obs, *_ = env.step(a)
        images.append(obs["image"])
        states.append(obs["state"])
        actions.append(a)
    goal = env.goal_image()
    env.close()
    z = wm.encode(np.stack(images))[None]  # [1, T0, N, D]
    s = torch.tensor(np.stack(states), dtype=torch.float32, device=device)[None]
    past = torch.tensor(np.stack(actions), dtype=torch.float32, device=device)[None] if actions else None
    return (z if frames > 1 else z[:, 0]), (s if frames > 1 else s[:, 0]), past, wm.encode(goal)
