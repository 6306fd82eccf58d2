"""Sim throughput on this machine.

    python benchmarks/sim_throughput.py [--steps 300] [--episodes 24]

Prints (1) control steps per second of the reach env, each step = one 4 Hz control period of physics
substeps plus one 128x128 render, and (2) episodes per minute of collect-trajectories with 2 worker
processes (default 256x256 camera, video encoding and atomic dataset commits included)."""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np


def control_steps_per_second(steps: int, size: int) -> float:
    from vjepa_planning import envs
    env = envs.make_task_env("reach", image_size=size, max_steps=10**9)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    env.step(np.zeros(7))  # warm-up: first render allocates GL buffers
    t0 = time.perf_counter()
    for _ in range(steps):
        pos = env.scene.ee_pos()
        a = np.zeros(7)
        a[:3] = np.clip(pos + rng.uniform(-0.05, 0.05, 3), [0.3, -0.25, 0.12], [0.7, 0.25, 0.45]) - pos
        obs, *_ = env.step(a)
    dt = time.perf_counter() - t0
    assert obs["image"].shape == (size, size, 3)
    env.close()
    return steps / dt


def collect_episodes_per_minute(episodes: int, workers: int, size: int) -> tuple[float, int]:
    from vjepa_planning.configs import compose_config
    from vjepa_planning.control.collection import collect

    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose_config(
            "collect_trajectories",
            [f"out={tmp}/data", f"episodes={episodes}", f"workers={workers}", f"env.image_size={size}"],
        )
        t0 = time.perf_counter()
        results = collect(cfg)
        dt = time.perf_counter() - t0
    frames = sum(r["length"] for r in results)
    return len(results) / dt * 60, frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--episodes", type=int, default=24)
    parser.add_argument("--size", type=int, default=256, help="camera size for the collection run")
    args = parser.parse_args()
    sps = control_steps_per_second(args.steps, 128)
    print(f"control steps/s (physics + one 128x128 render): {sps:.1f}")
    epm, frames = collect_episodes_per_minute(args.episodes, 2, args.size)
    print(f"collect-trajectories, 2 processes, {args.size}x{args.size}: {epm:.1f} episodes/min ({frames} frames in {args.episodes} episodes, startup included)")


if __name__ == "__main__":
    main()
