"""A small dataset written by the real `lerobot` package's writer, for reading with ours in every CI run.

The committed copy lies in fixtures/lerobot_written/. Regenerate it (where lerobot can be installed, Python
>= 3.12) with:
    python tests/worldmodel/data/lerobot_fixture.py
Its contents are deterministic: `episodes()` gives the arrays it was written from, so a test compares what
our reader returns against what LeRobot was given (exactly for numbers, within the codec's loss for frames).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
from wm_data_helpers import image

FIXTURE = Path(__file__).parent / "fixtures" / "lerobot_written"
FPS = 4
CAMERA, SIZE = "workspace", (32, 32)  # the shipped world model's camera, so post-train reads it as is
LENGTHS = (5, 6, 4)
TASKS = ("reach the red cube", "grasp the red cube", "reach the red cube")


def episodes() -> list[dict]:
    out = []
    for e, (n, task) in enumerate(zip(LENGTHS, TASKS)):
        rng = np.random.default_rng(100 + e)
        states = rng.normal(size=(n, 7)).astype(np.float32)
        frames = np.stack([image(e, t, *SIZE) for t in range(n)])
        out.append({"states": states, "actions": rng.normal(size=(n, 7)).astype(np.float32), "frames": frames, "task": task})
    return out


def lerobot_features() -> dict:
    return {
        "observation.state": {"dtype": "float32", "shape": (7,), "names": None},
        "action": {"dtype": "float32", "shape": (7,), "names": None},
        f"observation.images.{CAMERA}": {"dtype": "video", "shape": (*SIZE, 3), "names": ["height", "width", "channels"]},
    }


def lerobot_frame(d: dict, t: int) -> dict:
    return {"observation.state": d["states"][t], "action": d["actions"][t],
            f"observation.images.{CAMERA}": d["frames"][t], "task": d["task"]}


def write_with_lerobot(root: Path, data: list[dict] | None = None) -> None:
    """LeRobot's own writer, with its defaults (AV1 video, all episodes in one data and one video file)."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    ds = LeRobotDataset.create("local/lerobot_written", fps=FPS, features=lerobot_features(), root=root, use_videos=True)
    for d in data if data is not None else episodes():
        for t in range(len(d["states"])):
            ds.add_frame(lerobot_frame(d, t))
        ds.save_episode()
    ds.finalize()


if __name__ == "__main__":
    shutil.rmtree(FIXTURE, ignore_errors=True)
    write_with_lerobot(FIXTURE)
    files = sorted(p for p in FIXTURE.rglob("*") if p.is_file())
    print(f"{FIXTURE}: {len(files)} files, {sum(p.stat().st_size for p in files) / 1024:.0f} KiB", file=sys.stderr)
