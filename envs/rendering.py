"""Offscreen rendering of one scene camera, tuned for throughput: no shadows, reflections, skybox or
multisampling (about 10x cheaper than MuJoCo's defaults on a CPU)."""

from __future__ import annotations

import mujoco
import numpy as np


class FastRenderer:
    def __init__(self, model: mujoco.MjModel, height: int, width: int, camera: str | int = "exterior"):
        self.height, self.width, self.camera = height, width, camera
        self._renderer = mujoco.Renderer(model, height, width)
        flags = self._renderer.scene.flags
        for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION, mujoco.mjtRndFlag.mjRND_SKYBOX):
            flags[flag] = 0

    def render(self, data: mujoco.MjData) -> np.ndarray:
        """uint8 [H, W, 3] RGB of `data` (any MjData of the same model: the live one or a goal snapshot)."""
        self._renderer.update_scene(data, self.camera)
        return self._renderer.render()

    def close(self) -> None:
        self._renderer.close()
