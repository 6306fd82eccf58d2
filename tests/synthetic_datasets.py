"""A tiny synthetic robot dataset shared by the training tests: a bright square at the end effector's
(x, y) on a plain background, moved by random xy actions (the last action of an episode is zero)."""

from __future__ import annotations

import numpy as np

from vjepa_planning.worldmodel.data.lerobot import DatasetWriter, FeatureSpec


def write_square_dataset(
    root,
    lengths: list[int],
    *,
    size: int = 32,
    seed: int = 0,
    half: int = 4,  # square half-size (px)
    step: float = 0.1,  # max |action| per axis
    start: tuple[float, float] = (0.25, 0.75),  # start position range
    bounds: tuple[float, float] = (0.1, 0.9),  # positions stay inside
    background: int = 30,
    colour=(240, 60, 60),
    task: str = "push",
    extra: str = "observation.ee_pos",  # extra per-frame feature: ee_pos holds [x, y, 0.1]; anything else zeros
) -> None:
    rng = np.random.default_rng(seed)
    with DatasetWriter(root, 4, {"exterior": (size, size)}, {extra: FeatureSpec("float32", (3,))}, fsync=False) as w:
        for length in lengths:
            p = rng.uniform(*start, 2)
            for t in range(length):
                img = np.full((size, size, 3), background, np.uint8)
                i, j = (p * size).astype(int)
                img[max(0, i - half) : i + half, max(0, j - half) : j + half] = colour
                a = np.zeros(7, np.float32)
                if t < length - 1:
                    a[:2] = rng.uniform(-step, step, 2)
                value = np.array([*p, 0.1], np.float32) if extra == "observation.ee_pos" else np.zeros(3, np.float32)
                w.add_frame(np.array([*p, 0.1, 0, 0, 0, 0], np.float32), a, {"exterior": img}, task, {extra: value})
                p = np.clip(p + a[:2], *bounds)
            w.save_episode()
