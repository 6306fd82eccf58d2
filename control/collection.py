"""Data collection (collect-trajectories): noisy oracle demonstrations and random exploration into a trajectory dataset.

Episodes run in parallel worker processes, each with its own MuJoCo scene, all writing into one dataset
(episode commits are atomic and serialised by a file lock, see worldmodel/data/lerobot/). Episode
k uses task tasks[k % len(tasks)] and seed env.seed + k, so a collection is reproducible, and every episode
records its task, seed and policy.

Crashes: a worker that dies mid-episode loses that episode only; the parent notices, starts a new worker
and runs the episode once more, and stops with an error (exit code 1) if it dies again. Workers die with
the parent; a worker killed after committing its episode but before replying does not get it run twice.
`engine=ray` runs the episodes on Ray workers instead (control/engines.py), with the same retry rule.
A rerun into an existing dataset resumes: the (task, seed) pairs already committed there are skipped, and
it says how many."""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import sys
import traceback
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm


TASK_TEXT = {
    "reach": "move the gripper to the goal position",
    "grasp": "pick up the red cube",
    "reach_with_object": "carry the red cube to the goal position",
    "pick_and_place": "put the red cube at the goal position",
}


@dataclass(frozen=True)
class EpisodeJob:
    index: int
    task: str
    seed: int
    policy: str  # "oracle", "oracle+contact" (gripper perturbed near the cube) or "random"


def plan_jobs(cfg: DictConfig) -> list[EpisodeJob]:
    from vjepa_planning.envs import task_name

    rng = np.random.default_rng(int(cfg.env.seed))
    tasks = [task_name(t) for t in cfg.tasks]
    jobs = []
    for k in range(int(cfg.episodes)):
        policy = "random" if rng.random() < cfg.random_fraction else "oracle"
        # (no extra draw at contact_fraction 0: earlier recipes plan the same jobs as before)
        if policy == "oracle" and cfg.contact_fraction > 0 and rng.random() < cfg.contact_fraction:
            policy = "oracle+contact"
        jobs.append(EpisodeJob(k, tasks[k % len(tasks)], int(cfg.env.seed) + k, policy))
    return jobs


log = logging.getLogger("collect-trajectories")


class CollectionError(RuntimeError):
    """An episode that killed its worker (or raised) twice: the collection stops."""


_worker: dict = {}


def _init_worker(cfg_yaml: str) -> None:
    cfg = OmegaConf.create(cfg_yaml)
    _worker["cfg"] = cfg
    _worker["drivers"] = {}
    _worker["recorder"] = None


def _die_with_parent() -> None:
    """Have the kernel SIGKILL this process when its parent dies (Linux), so no orphan keeps committing."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _worker_main(conn, cfg_yaml: str, parent_pid: int) -> None:
    _die_with_parent()
    if os.getppid() != parent_pid:  # the parent died before the line above took effect
        return
    _init_worker(cfg_yaml)
    while (job := conn.recv()) is not None:
        try:
            conn.send(("ok", run_job(job)))
        except Exception:  # noqa: BLE001 - reported to the parent, which retries once
            conn.send(("error", traceback.format_exc(limit=8)))


def _driver(task: str):
    from vjepa_planning.robot_drivers.factory import make_driver

    cfg = _worker["cfg"]
    if task not in _worker["drivers"]:
        env_cfg = OmegaConf.merge(cfg.env, {"task": task})
        _worker["drivers"][task] = make_driver(cfg.driver, env_cfg)
    return _worker["drivers"][task]


def run_job(job: EpisodeJob) -> dict:
    from vjepa_planning.control.loop import steps
    from vjepa_planning.control.loop import ScenePolicy
    from vjepa_planning.control.recording import EpisodeRecorder
    from vjepa_planning.envs.policies import GripperPerturbation, NoisyOracle, RandomExploration

    cfg = _worker["cfg"]
    driver = _driver(job.task)
    obs = driver.reset(seed=job.seed)
    if _worker["recorder"] is None:
        size = obs.image.shape[:2]
        _worker["recorder"] = EpisodeRecorder(cfg.out, cfg.env.camera, size, fps=round(driver.control_hz), privileged=True)
    recorder = _worker["recorder"]
    rng = np.random.default_rng(job.seed + 1_000_003)
    if job.policy.startswith("oracle"):
        scripted = NoisyOracle(driver.oracle(), rng, float(cfg.oracle_noise))
        if job.policy == "oracle+contact":
            scripted = GripperPerturbation(scripted, rng, prob=float(cfg.contact_prob))
    else:
        scripted = RandomExploration(rng, step=float(cfg.random_scale), smoothing=0.6)
    recorder.start(TASK_TEXT[job.task], obs)
    length = 1
    # Oracle episodes end two steps after success, so the data shows the goal being held.
    for record in steps(driver, ScenePolicy(driver, scripted), obs, driver.step_budget, success_steps=3):
        recorder.record(record.sent, record.obs)
        obs, length = record.obs, record.step + 1
    episode_index = recorder.finish(info={"job_task": job.task, "seed": job.seed, "policy": job.policy})
    return {"episode_index": episode_index, "task": job.task, "policy": job.policy, "success": bool(obs.info["success"]), "length": length}


def committed(out: str | Path) -> tuple[set[tuple[str, int]], int]:
    """((task, seed) pairs already in the dataset at `out`, episodes there without a recorded seed)."""
    from vjepa_planning.worldmodel.data.lerobot import LeRobotDataset

    if not (Path(out) / "meta" / "info.json").exists():
        return set(), 0
    ds = LeRobotDataset(out, on_error="skip", verify="meta")
    done, unknown = set(), 0
    for ep in ds.episode_indices:
        info = ds.episode_info(ep)
        if "seed" in info and "job_task" in info:
            done.add((str(info["job_task"]), int(info["seed"])))
        else:
            unknown += 1
    return done, unknown


def collect(cfg: DictConfig) -> list[dict]:
    jobs = plan_jobs(cfg)
    done, unknown = committed(cfg.out)
    todo = [j for j in jobs if (j.task, j.seed) not in done]
    if len(todo) < len(jobs):
        print(f"resuming: {len(jobs) - len(todo)} of the {len(jobs)} episodes are already in {cfg.out}; collecting the other {len(todo)}")
    if unknown:
        log.warning("%s holds %d episodes without a recorded seed; they are kept, and not matched against this collection", cfg.out, unknown)
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    if cfg.engine == "pool":
        return run_jobs(todo, int(cfg.workers), OmegaConf.to_yaml(cfg), cfg.out)
    return run_jobs_on(cfg.engine, todo, int(cfg.workers), OmegaConf.to_yaml(cfg), cfg.out, cfg.ray_address)


def run_jobs_on(engine: str, jobs: list[EpisodeJob], workers: int, cfg_yaml: str, out: str | Path,
                address: str | None = None) -> list[dict]:
    """The jobs on another engine (Ray: control/engines.py), all committing into the dataset at `out`, which
    every worker must see (a shared filesystem on a cluster). A job whose worker died runs once more unless
    its episode was committed before the death."""
    from vjepa_planning.control.engines import map_unordered

    def already_done(job: EpisodeJob) -> bool:
        return (job.task, job.seed) in committed(out)[0]

    results = []
    episodes = map_unordered(_init_worker, (cfg_yaml,), run_job, jobs, workers=workers, engine=engine, address=address,
                             already_done=already_done)
    for result in tqdm(episodes, total=len(jobs), desc="episodes", unit="ep"):
        if result is not None:
            results.append(result)
    return results


def run_jobs(jobs: list[EpisodeJob], workers: int, cfg_yaml: str, out: str | Path) -> list[dict]:
    """Run the jobs on `workers` processes; a job whose worker dies (or raises) runs once more, unless
    its episode reached the dataset at `out` before the worker died (killed between commit and reply)."""
    ctx = mp.get_context("spawn")  # a fresh GL context per worker; forking one is unsafe
    queue, attempts, results = list(reversed(jobs)), {}, []
    running: dict = {}  # connection -> (process, job or None)

    def start_worker() -> None:
        parent_end, child_end = ctx.Pipe()
        proc = ctx.Process(target=_worker_main, args=(child_end, cfg_yaml, os.getpid()), daemon=True)
        proc.start()
        child_end.close()
        running[parent_end] = (proc, None)

    def give(conn) -> None:
        proc, _ = running[conn]
        job = queue.pop() if queue else None
        running[conn] = (proc, job)
        if job is None:
            conn.send(None)  # no more work: the worker exits
            conn.close()
            proc.join(10)
            del running[conn]
        else:
            attempts[job.index] = attempts.get(job.index, 0) + 1
            conn.send(job)

    def failed(job: EpisodeJob, what: str) -> None:
        if attempts[job.index] >= 2:
            raise CollectionError(f"episode {job.index} ({job.task}, seed {job.seed}, {job.policy}) failed twice; stopping "
                                  f"({len(results)} episodes committed this run): {what}")
        log.warning("episode %d (%s, seed %d) failed (%s); running it again", job.index, job.task, job.seed, what)
        queue.append(job)

    try:
        for _ in range(min(workers, len(jobs))):
            start_worker()
        for conn in list(running):
            give(conn)
        with tqdm(total=len(jobs), desc="episodes", unit="ep") as bar:
            while running:
                ready = wait(list(running) + [p.sentinel for p, _ in running.values()])
                for conn in [c for c in list(running) if c in ready or running[c][0].sentinel in ready]:
                    proc, job = running[conn]
                    try:
                        status, payload = conn.recv() if conn.poll() else (None, None)
                    except (EOFError, OSError):
                        status, payload = None, None
                    if status == "ok":
                        results.append(payload)
                        bar.update()
                        give(conn)
                    elif status == "error":
                        failed(job, payload.strip().splitlines()[-1])
                        give(conn)
                    elif proc.is_alive():
                        proc.join(1)  # its pipe closed a moment before the process ends
                    else:  # died: a kill, a segfault, out of memory
                        proc.join()
                        del running[conn]
                        conn.close()
                        if job is not None and (job.task, job.seed) in committed(out)[0]:
                            log.warning("episode %d (%s, seed %d): its worker died after committing it; not run again",
                                        job.index, job.task, job.seed)
                            bar.update()
                        elif job is not None:
                            failed(job, f"its worker died with exit code {proc.exitcode}")
                        if queue:
                            start_worker()
                            give(list(running)[-1])
    finally:
        for proc, _ in running.values():
            proc.kill()
    return results
