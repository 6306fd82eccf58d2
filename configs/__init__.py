"""The Hydra configs of every command, and the one way to compose them (commands, benchmarks and tests).

The composed config is read-only: pieces receive their own sub-config, nothing is mutated afterwards.
The `planner` group is typed by planners.PlannerConfig (registered here as its schema): its defaults are
the dataclass's, a preset YAML names only what it changes, and an unknown or mistyped key is refused."""

from __future__ import annotations

from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = CONFIG_DIR.parent


def planner_schema() -> type:
    """The `planner` group's schema: PlannerConfig's fields and defaults (a mutable copy, as Hydra merges
    into it) plus the two the MPC reads, `name` (cem | icem | cem_grad | mppi) and `context_frames`."""
    import dataclasses

    from planners.base import PlannerConfig

    fields = [(f.name, f.type, dataclasses.field(default=f.default)) for f in dataclasses.fields(PlannerConfig)]
    mpc = [("name", "str", dataclasses.field(default="cem")), ("context_frames", "int", dataclasses.field(default=1))]
    return dataclasses.make_dataclass("PlannerPreset", mpc + fields, namespace={"__module__": PlannerConfig.__module__})


def _register_schemas() -> None:
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    if "schema.yaml" not in store.repo.get("planner", {}):
        store.store(group="planner", name="schema", node=planner_schema())


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
