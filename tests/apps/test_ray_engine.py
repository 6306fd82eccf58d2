"""sim-benchmark and collect-trajectories on Ray (a local instance with 2 workers) give the episodes the
process pool gives for the same seeds; a Ray worker killed mid-episode has that episode run once more,
recorded once. The retry rule itself is tested in tests/control/test_engines.py."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from vjepa_planning.apps import collect_trajectories, sim_benchmark

RAY = "Ray is an optional extra: pip install '.[ray]' (the dev extra has it)"
TIMING = ("episode_seconds", "choose_seconds_median")


def run(tmp_path: Path, name: str, overrides: list[str]) -> list[dict]:
    out = tmp_path / name
    sim_benchmark.main(["--seeds", "2", "--workers", "2", "--out", str(out), "tasks=[reach]",
                        "policies=[planner,random,oracle]", "max_steps=3", "env.image_size=32", *overrides])
    episodes = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    return sorted(({k: v for k, v in e.items() if k not in TIMING} for e in episodes), key=lambda e: (e["policy"], e["seed"]))


def ray_workers() -> list[int]:
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if cmd.startswith(b"ray::Worker"):
            pids.append(int(pid))
    return pids


@pytest.mark.slow
def test_ray_matches_the_process_pool_and_retries_a_killed_worker(tmp_path, tiny_world_model_files):
    pytest.importorskip("ray", reason=RAY)
    pool = run(tmp_path, "pool", tiny_world_model_files)
    assert len(pool) == 6 and {e["policy"] for e in pool} == {"planner", "random", "oracle"}
    assert run(tmp_path, "ray", [*tiny_world_model_files, "engine=ray"]) == pool

    killed = []

    def kill_one_worker_mid_run():  # once a worker runs an episode: the planner episodes come first
        deadline = time.time() + 120
        while time.time() < deadline and not killed:
            busy = [p for p in ray_workers() if b".run" in Path(f"/proc/{p}/cmdline").read_bytes()]
            if busy:
                os.kill(busy[0], signal.SIGKILL)
                killed.append(busy[0])
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one_worker_mid_run, daemon=True)
    killer.start()
    retried = run(tmp_path, "ray_killed", [*tiny_world_model_files, "engine=ray"])
    killer.join()
    assert killed, "no Ray worker was seen running an episode"
    assert retried == pool  # every episode once, with the same result


def by_job(root: Path) -> dict:
    from vjepa_planning.worldmodel.data import LeRobotDataset

    ds = LeRobotDataset(root)
    out = {}
    for i in ds.episode_indices:
        info, ep = ds.episode_info(i), ds.episode(i)
        out[(info["job_task"], info["seed"])] = (info, ep.states.tolist(), ep.actions.tolist())
    return out


@pytest.mark.slow
def test_collection_on_ray_matches_the_process_pool(tmp_path):
    pytest.importorskip("ray", reason=RAY)
    argv = ["--episodes", "4", "--workers", "2", "--size", "32", "tasks=[reach,grasp]", "random_fraction=0.5"]
    assert collect_trajectories.main(["--out", str(tmp_path / "pool"), *argv]) == 0
    assert collect_trajectories.main(["--out", str(tmp_path / "ray"), *argv, "engine=ray"]) == 0
    pool, on_ray = by_job(tmp_path / "pool"), by_job(tmp_path / "ray")
    assert len(pool) == 4 and on_ray == pool  # same episodes, whichever worker committed them in which order
