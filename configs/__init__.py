"""The Hydra configs of every command, and the one way to compose them (commands, benchmarks and tests).

The composed config is read-only: pieces receive their own sub-config, nothing is mutated afterwards.
The `planner` group is typed by planners.PlannerConfig and the `train` recipes by the trainers' config
dataclasses (registered here as schemas): their defaults are the dataclasses', a YAML file names only what
it changes, and an unknown or mistyped key is refused when composing."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from vjepa_planning.configs.paths import SHIPPED, resolve_path  # noqa: F401 - the one rule for file settings

CONFIG_DIR = Path(str(files(__name__)))  # a real folder: wheels and editable installs alike


def schema(cls: type, extra: tuple = (), exclude: tuple[str, ...] = ()) -> type:
    """A config group's schema: `cls`'s fields and defaults (a mutable copy, as Hydra merges into it), less
    `exclude`, plus `extra` (name, type, default) fields read by someone else than `cls`."""
    import dataclasses

    def default(f):
        if isinstance(f.default, (tuple, list)):  # mutable in the schema: handed out by a factory
            return dataclasses.field(default_factory=lambda d=f.default: d)
        return dataclasses.field(default=f.default)

    fields = [(n, t, dataclasses.field(default=d)) for n, t, d in extra]
    fields += [(f.name, f.type, default(f)) for f in dataclasses.fields(cls) if f.name not in exclude]
    made = dataclasses.make_dataclass(f"{cls.__name__}Schema", fields)
    made.__module__ = cls.__module__  # its string annotations resolve in cls's module (3.12+ sets the caller's)
    return made


def _register_schemas() -> None:
    """The typed groups: planner presets (PlannerConfig, plus the MPC's `name` and `context_frames`) and the
    three trainers' `train` recipes (their seed is the command's top-level `seed`)."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    if "schema.yaml" in store.repo.get("planner", {}):
        return
    from vjepa_planning.planners.base import PlannerConfig
    from vjepa_planning.worldmodel.lewm.train import LeWMTrainConfig
    from vjepa_planning.worldmodel.pretrain import PretrainConfig
    from vjepa_planning.worldmodel.train_config import TrainConfig

    store.store(group="planner", name="schema", node=schema(PlannerConfig, extra=(("name", "str", "cem"), ("context_frames", "int", 1))))
    for name, cls in (("post_train_schema", TrainConfig), ("pretrain_schema", PretrainConfig), ("lewm_schema", LeWMTrainConfig)):
        store.store(group="train", name=name, node=schema(cls, exclude=("seed",)))


def compose_config(config_name: str, overrides: list[str] | None = None):
    """configs/<config_name>.yaml with Hydra `overrides` (KEY=VALUE, group=option), read-only."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    _register_schemas()

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=overrides or [])
    OmegaConf.resolve(cfg)  # e.g. env.camera follows world_model.camera; sub-configs handed out stand alone
    OmegaConf.set_readonly(cfg, True)
    return cfg
