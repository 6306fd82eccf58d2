"""Builders shared by the dataset tests; also a subprocess entry point for the parallel/crash tests.

Run as a script: ``python wm_data_helpers.py MODE ROOT [ARGS]`` (see ``main``).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

from vjepa_planning.worldmodel.data.lerobot import files as lerobot_files
from vjepa_planning.worldmodel.data.lerobot import DatasetWriter, FeatureSpec

FPS = 4
CAMS = {"front": (48, 64), "wrist": (48, 48)}
FEATURES = {
    "observation.ee_pos": FeatureSpec("float32", (3,)),
    "next.success": FeatureSpec("bool", (1,)),
}


def image(seed: int, t: int, h: int, w: int) -> np.ndarray:
    """A smooth, moving, seed-dependent RGB image (codec-friendly)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 128 + 80 * np.sin(np.pi * xx / w + 0.3 * t + seed)
    g = 128 + 80 * np.cos(np.pi * yy / h - 0.2 * t + 0.7 * seed)
    b = 40 + 150 * (xx + yy) / (h + w) + 5 * (seed % 7)
    return np.clip(np.stack([r, g, b], -1), 0, 255).astype(np.uint8)


def episode_data(seed: int, length: int, task: str | None = None) -> dict:
    rng = np.random.default_rng(seed)
    states = rng.normal(size=(length, 7)).astype(np.float32)
    actions = np.zeros((length, 7), np.float32)
    actions[:-1] = states[1:] - states[:-1]
    return {
        "states": states,
        "actions": actions,
        "ee_pos": rng.normal(size=(length, 3)).astype(np.float32),
        "success": np.arange(length) == length - 1,
        "frames": {cam: np.stack([image(seed, t, h, w) for t in range(length)]) for cam, (h, w) in CAMS.items()},
        "task": task or f"task {seed % 3}",
    }


def make_writer(root, **kw) -> DatasetWriter:
    return DatasetWriter(root, FPS, CAMS, FEATURES, **kw)


def add_frames(writer: DatasetWriter, d: dict, upto: int | None = None) -> None:
    for t in range(len(d["states"]) if upto is None else upto):
        writer.add_frame(
            d["states"][t],
            d["actions"][t],
            {cam: f[t] for cam, f in d["frames"].items()},
            d["task"],
            {"observation.ee_pos": d["ee_pos"][t], "next.success": d["success"][t]},
        )


def write_episode(writer: DatasetWriter, d: dict) -> int:
    add_frames(writer, d)
    return writer.save_episode()


def strip_content_hashes(root) -> None:
    """Drop our extras (per-file sha256s, writer info) from every episode meta: the dataset as another writer (LeRobot's)
    would leave it, so that the structural checks are what finds a bad file."""
    import pyarrow.parquet as pq

    for meta in sorted((Path(root) / "meta" / "episodes").rglob("*.parquet")):
        pq.write_table(pq.read_table(meta).replace_schema_metadata(None), meta)


def seed_of(worker: int, k: int) -> int:
    return 100 * (worker + 1) + k


def length_of(seed: int) -> int:
    return 5 + seed % 4


def main(argv: list[str]) -> None:
    mode, root = argv[0], Path(argv[1])
    if mode == "parallel":  # parallel WORKER N: write N episodes into a shared root
        worker, n = int(argv[2]), int(argv[3])
        with make_writer(root) as w:
            for k in range(n):
                s = seed_of(worker, k)
                write_episode(w, episode_data(s, length_of(s)))
        return
    w = make_writer(root)
    for s in (0, 1):
        write_episode(w, episode_data(s, length_of(s)))
    d = episode_data(2, 8)
    if mode == "kill_mid":  # 2 episodes saved, a third half-buffered; the parent SIGKILLs us
        add_frames(w, d, upto=5)
        print("READY", flush=True)
        time.sleep(60)
    elif mode == "crash_at":  # crash_at PATTERN: SIGKILL ourselves when a commit renames onto PATTERN
        pattern = argv[2]
        real = lerobot_files._replace

        def crashing_replace(src: Path, dst: Path) -> None:
            if pattern in dst.relative_to(root).as_posix():
                os.kill(os.getpid(), signal.SIGKILL)
            real(src, dst)

        lerobot_files._replace = crashing_replace
        write_episode(w, d)
        print("NOT KILLED", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
