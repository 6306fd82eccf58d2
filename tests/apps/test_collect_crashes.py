"""collect-trajectories after crashes: a rerun resumes without duplicates, a killed worker's episode runs
again, a worker that dies twice stops the collection with exit code 1, and workers die with their parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vjepa_planning.apps import collect_trajectories
from vjepa_planning.worldmodel.data.lerobot import LeRobotDataset

ROOT = Path(__file__).resolve().parents[2]


def seeds_in(out: Path) -> list[tuple[str, int]]:
    ds = LeRobotDataset(out)
    return sorted((ds.episode_info(i)["job_task"], ds.episode_info(i)["seed"]) for i in ds.episode_indices)


def test_a_rerun_resumes_and_never_duplicates(tmp_path, capsys):
    out = tmp_path / "data"
    args = ["--out", str(out), "--workers", "1", "--size", "32"]
    overrides = ["tasks=[reach]", "random_fraction=0.5"]
    assert collect_trajectories.main([*args, "--episodes", "2", *overrides]) == 0
    assert seeds_in(out) == [("reach", 0), ("reach", 1)]
    capsys.readouterr()
    assert collect_trajectories.main([*args, "--episodes", "4", *overrides]) == 0
    assert "resuming: 2 of the 4 episodes are already in" in capsys.readouterr().out
    assert collect_trajectories.main([*args, "--episodes", "4", *overrides]) == 0  # nothing left to do
    assert seeds_in(out) == [("reach", s) for s in range(4)]  # env.seed (0) onwards, once each
    info = LeRobotDataset(out).episode_info(0)
    assert info["policy"] in ("oracle", "random")


def workers_of(pid: int) -> list[int]:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    out = []
    for c in children:
        try:
            cmd = Path(f"/proc/{c}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmd and b"resource_tracker" not in cmd:
            out.append(int(c))
    return out


def start(out: Path, episodes: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "vjepa_planning.apps.collect_trajectories", "--out", str(out), "--episodes", str(episodes), "--workers", "1",
           "--size", "32", "tasks=[reach]", "random_fraction=0.0"]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def wait_for_worker(proc, timeout=60.0) -> int:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if w := workers_of(proc.pid):
            return w[0]
        time.sleep(0.05)
    raise AssertionError("no worker appeared")


@pytest.mark.slow
def test_a_killed_workers_episode_runs_again(tmp_path):
    out = tmp_path / "data"
    proc = start(out, 30)
    try:
        worker = wait_for_worker(proc)
        time.sleep(2.5)  # start-up done (about 1.5 s), into the episodes
        os.kill(worker, signal.SIGKILL)
        _, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, err
    # Killed mid-episode it runs again; killed between its commit and its reply, it is not run twice.
    assert "running it again" in err or "died after committing it" in err
    assert seeds_in(out) == [("reach", s) for s in range(30)]


@pytest.mark.slow
def test_an_episode_that_kills_its_worker_twice_stops_the_collection(tmp_path):
    proc = start(tmp_path / "data", 3)
    try:
        deadline = time.time() + 120
        while proc.poll() is None and time.time() < deadline:
            for w in workers_of(proc.pid):
                time.sleep(0.5)
                os.kill(w, signal.SIGKILL)
            time.sleep(0.05)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 1, err
    assert "failed twice; stopping" in err and "Traceback" not in err


@pytest.mark.slow
def test_workers_die_with_their_parent(tmp_path):
    proc = start(tmp_path / "data", 50)
    try:
        worker = wait_for_worker(proc)
        time.sleep(1.0)
        os.kill(proc.pid, signal.SIGKILL)  # the parent only
        proc.wait(10)
        deadline = time.time() + 5
        while time.time() < deadline and Path(f"/proc/{worker}").exists() and "Z" not in Path(f"/proc/{worker}/stat").read_text().split()[2]:
            time.sleep(0.05)
        alive = Path(f"/proc/{worker}").exists() and "Z" not in Path(f"/proc/{worker}/stat").read_text().split()[2]
        assert not alive, "the worker outlived its parent"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
