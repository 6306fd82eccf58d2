"""The Hydra configs of every command, and the one way to compose them (commands, benchmarks and tests).

The composed config is read-only: pieces receive their own sub-config, nothing is mutated afterwards."""

from __future__ import annotations

from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = CONFIG_DIR.parent


def compose_config(config_name: str, overrides: list[str] | None = None):
    """configs/<config_name>.yaml with Hydra `overrides` (KEY=VALUE, group=option), read-only."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=overrides or [])
    OmegaConf.set_readonly(cfg, True)
    return cfg
