"""collect-trajectories: noisy oracle demonstrations and random exploration into a trajectory dataset.

Episodes run in parallel worker processes, each with its own MuJoCo scene, all writing into one dataset
(episode commits are atomic and serialised by a file lock, see worldmodel/data/lerobot_dataset.py). A
worker killed mid-episode loses that episode only. Episode k uses task tasks[k % len(tasks)] and seed
env.seed + k, so a collection is reproducible."""

from __future__ import annotations

import json
import multiprocessing as mp
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from apps.cli import parse

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
    rng = np.random.default_rng(int(cfg.env.seed))
    tasks = list(cfg.tasks)
    jobs = []
    for k in range(int(cfg.episodes)):
        policy = "random" if rng.random() < cfg.random_fraction else "oracle"
        # (no extra draw at contact_fraction 0: earlier recipes plan the same jobs as before)
        if policy == "oracle" and cfg.contact_fraction > 0 and rng.random() < cfg.contact_fraction:
            policy = "oracle+contact"
        jobs.append(EpisodeJob(k, tasks[k % len(tasks)], int(cfg.env.seed) + k, policy))
    return jobs


_worker: dict = {}


def _init_worker(cfg_yaml: str) -> None:
    cfg = OmegaConf.create(cfg_yaml)
    _worker["cfg"] = cfg
    _worker["drivers"] = {}
    _worker["recorder"] = None


def _driver(task: str):
    from robot_drivers.factory import make_driver

    cfg = _worker["cfg"]
    if task not in _worker["drivers"]:
        env_cfg = OmegaConf.merge(cfg.env, {"task": task})
        _worker["drivers"][task] = make_driver(cfg.driver, env_cfg)
    return _worker["drivers"][task]


def run_job(job: EpisodeJob) -> dict:
    from apps.episode_log import EpisodeRecorder
    from envs.policies import GripperPerturbation, NoisyOracle, RandomExploration

    cfg = _worker["cfg"]
    driver = _driver(job.task)
    obs = driver.reset(seed=job.seed)
    if _worker["recorder"] is None:
        size = obs.image.shape[:2]
        _worker["recorder"] = EpisodeRecorder(cfg.out, cfg.env.camera, size, fps=round(1 / driver.env.controller.cfg.control_dt), privileged=True)
    recorder = _worker["recorder"]
    rng = np.random.default_rng(job.seed + 1_000_003)
    scene = driver.env.scene
    if job.policy.startswith("oracle"):
        policy = NoisyOracle(driver.env.oracle(), rng, float(cfg.oracle_noise))
        if job.policy == "oracle+contact":
            policy = GripperPerturbation(policy, rng, prob=float(cfg.contact_prob))
    else:
        policy = RandomExploration(rng, step=float(cfg.random_scale), smoothing=0.6)
    recorder.start(TASK_TEXT[job.task], obs)
    after_success = 0
    for _ in range(driver.env.max_steps):
        sent = driver.act(policy.act(scene))
        obs = driver.observe()
        recorder.record(sent, obs)
        # Oracle episodes end two steps after success, so the data shows the goal being held.
        after_success += bool(obs.info["success"])
        if after_success > 2:
            break
    episode_index = recorder.finish()
    return {"episode_index": episode_index, "task": job.task, "policy": job.policy, "success": bool(obs.info["success"]), "length": driver.env.steps + 1}


def collect(cfg: DictConfig) -> list[dict]:
    jobs = plan_jobs(cfg)
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    results = []
    ctx = mp.get_context("spawn")  # a fresh GL context per worker; forking one is unsafe
    with ctx.Pool(int(cfg.workers), initializer=_init_worker, initargs=(OmegaConf.to_yaml(cfg),)) as pool:
        for result in tqdm(pool.imap_unordered(run_job, jobs), total=len(jobs), desc="episodes", unit="ep"):
            results.append(result)
    return results


def main(argv: list[str] | None = None) -> None:
    cfg = parse(
        "collect_trajectories",
        __doc__.splitlines()[0],
        {
            "--out": ("out", "dataset directory (appended to if it exists)"),
            "--episodes": ("episodes", "number of episodes"),
            "--workers": ("workers", "parallel processes"),
            "--size": ("env.image_size", "camera image side in pixels"),
            "--seed": ("env.seed", "seed of the first episode"),
            "--camera": ("env.camera", "sim camera: exterior | workspace (also the dataset's camera name)"),
        },
        argv,
    )
    results = collect(cfg)
    summary = {}
    for r in results:
        key = f"{r['task']}/{r['policy']}"
        s = summary.setdefault(key, {"episodes": 0, "success": 0, "frames": 0})
        s["episodes"] += 1
        s["success"] += r["success"]
        s["frames"] += r["length"]
    print(json.dumps({"out": str(cfg.out), "episodes": len(results), "by_task_policy": summary}, indent=1))


if __name__ == "__main__":
    main()
