"""Where the Franka Panda meshes come from: the Apache-2.0 model shipped inside the installed
gymnasium-robotics wheel (originally by Vikash Kumar). Nothing is ever downloaded."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_SUBDIR = Path("envs/assets/kitchen_franka/franka_assets")
_REQUIRED = ("assets.xml", "chain.xml", "meshes/visual/link0.stl", "meshes/collision/link0.stl")


def franka_asset_dir() -> Path:
    """Directory holding `chain.xml`, `assets.xml` and `meshes/` of the Panda model."""
    spec = importlib.util.find_spec("gymnasium_robotics")
    if spec is None or spec.origin is None:
        raise RuntimeError(
            "The Franka Panda model is loaded from the 'gymnasium-robotics' package, which is not installed. "
            "Install it with `pip install gymnasium-robotics` (it is a dependency of this project)."
        )
    root = Path(spec.origin).parent / _SUBDIR
    missing = [name for name in _REQUIRED if not (root / name).exists()]
    if missing:
        raise RuntimeError(f"gymnasium-robotics at {root} lacks the Franka assets {missing}; reinstall it.")
    return root
