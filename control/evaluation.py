"""The sim benchmark (sim-benchmark): the world-model planner's success rates beside the random floor and
the oracle ceiling.

Tasks x seeds x policies, episodes in parallel workers (processes here, or Ray: control/engines.py) with a
progress bar. Writes
`results.json` (every episode + the summary), `results.md` (the table) and `results.png` (success with
95% Wilson intervals per task and policy) under `out`. Goal images are the tasks' own goal photos; by
default (`subgoals.enabled`) the planner reaches grasp and pick-and-place through their sub-goal photos
first, as V-JEPA 2-AC does for multi-stage tasks."""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from vjepa_planning.control.engines import map_unordered
from vjepa_planning.control.loop import POLICIES


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a binomial proportion."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # min / max: rounding can put a bound a hair inside p at 0% and 100% (e.g. 6/6 -> 0.9999999999999999)
    return min(p, max(0.0, centre - half)), max(p, min(1.0, centre + half))


@dataclass(frozen=True)
class Job:
    task: str
    policy: str
    seed: int


_worker: dict = {}


def _init_worker(cfg_yaml: str, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    _worker.update(cfg=OmegaConf.create(cfg_yaml), drivers={}, mpc=None)


def _run_job(job: Job) -> dict:
    from vjepa_planning.control.loop import make_policy, run_episode
    from vjepa_planning.control.rerun_log import RerunLogger
    from vjepa_planning.robot_drivers.base import SimCapabilities
    from vjepa_planning.robot_drivers.factory import make_driver

    cfg = _worker["cfg"]
    if job.task not in _worker["drivers"]:
        _worker["drivers"][job.task] = make_driver(cfg.driver, OmegaConf.merge(cfg.env, {"task": job.task, "max_steps": cfg.max_steps}))
    driver = _worker["drivers"][job.task]
    obs = driver.reset(seed=job.seed)
    goal = driver.goal_image()
    goals = None
    if job.policy == "planner":
        if _worker["mpc"] is None:
            from vjepa_planning.control.build import load_world_model, make_mpc

            _worker["mpc"] = make_mpc(load_world_model(cfg.world_model), cfg.planner)  # camera checked by `benchmark`
        if cfg.planner.seed is not None:  # per episode: results must not depend on which worker ran what before
            _worker["mpc"].planner.reseed(int(cfg.planner.seed) + job.seed)
        if cfg.subgoals.enabled and not isinstance(driver, SimCapabilities):
            raise ValueError("sim-benchmark: subgoals.enabled needs the sim's sub-goal photos (driver=sim), or subgoals.enabled=false")
        goals = driver.subgoal_images() if cfg.subgoals.enabled else [goal]
    policy = make_policy(job.policy, driver, seed=job.seed + 7_919, mpc=_worker["mpc"], goals=goals, budget=driver.step_budget,
                         switch_every=cfg.subgoals.switch_every, switch_energy=cfg.subgoals.switch_energy)
    viz = None
    if cfg.rerun:
        viz = RerunLogger(str(Path(cfg.rerun) / f"{job.task}_{job.policy}_{job.seed}.rrd"), recording=f"{job.task}-{job.policy}-{job.seed}",
                          camera=cfg.env.camera)
        viz.log_goal(goal)
        if goals and len(goals) > 1:
            viz.log_subgoals(goals[:-1])
    t0 = time.perf_counter()
    result = run_episode(driver, policy, obs, driver.step_budget, viz=viz, log=None)
    if viz:
        viz.close()
    return {
        **asdict(job),
        "success": result.success,
        "steps": result.steps,
        "final_distance": result.final_distance,
        "choose_seconds_median": float(np.median(result.choose_seconds)) if job.policy == "planner" else None,
        "final_energy": result.energies[-1] if result.energies else None,
        "goal_images": len(goals) if goals else None,  # the planner's sub-goals + the goal
        "episode_seconds": time.perf_counter() - t0,
    }


def summarize(episodes: list[dict], tasks: list[str], policies: list[str]) -> list[dict]:
    rows = []
    for task in tasks:
        for policy in policies:
            eps = [e for e in episodes if e["task"] == task and e["policy"] == policy]
            if not eps:
                continue
            k, n = sum(e["success"] for e in eps), len(eps)
            lo, hi = wilson_interval(k, n)
            times = [e["choose_seconds_median"] for e in eps if e["choose_seconds_median"] is not None]
            rows.append({
                "task": task, "policy": policy, "episodes": n, "successes": k, "success_rate": k / n,
                "ci95": [lo, hi], "final_distance_mean": float(np.mean([e["final_distance"] for e in eps])),
                "seconds_per_action_median": float(np.median(times)) if times else None,
            })  # fmt: skip
    return rows


def markdown_table(rows: list[dict], seeds: int) -> str:
    lines = [
        f"| task | policy | success ({seeds} seeds) | 95% CI | mean final distance (m) | s / action (median) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        t = r["seconds_per_action_median"]
        lines.append(
            f"| {r['task']} | {r['policy']} | {r['success_rate']:.0%} ({r['successes']}/{r['episodes']}) | "
            f"{r['ci95'][0]:.0%}–{r['ci95'][1]:.0%} | {r['final_distance_mean']:.3f} | {'' if t is None else f'{t:.3f}'} |"
        )
    return "\n".join(lines)


def plot(rows: list[dict], tasks: list[str], policies: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(tasks), 3.6))
    width = 0.8 / len(policies)
    colors = {"planner": "#2a6fdb", "random": "#9aa0a6", "oracle": "#2e9e5b"}
    for j, policy in enumerate(policies):
        xs, ys, err = [], [], [[], []]
        for i, task in enumerate(tasks):
            r = next((r for r in rows if r["task"] == task and r["policy"] == policy), None)
            if r is None:
                continue
            xs.append(i + (j - (len(policies) - 1) / 2) * width)
            ys.append(r["success_rate"])
            err[0].append(r["success_rate"] - r["ci95"][0])
            err[1].append(r["ci95"][1] - r["success_rate"])
        ax.bar(xs, ys, width, yerr=err, capsize=3, label=policy, color=colors.get(policy))
    ax.set_xticks(range(len(tasks)), [t.replace("_", "\n") for t in tasks])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("success rate (95% Wilson CI)")
    ax.legend(frameon=False, ncols=len(policies), loc="upper center", bbox_to_anchor=(0.5, 1.15))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def benchmark_seeds(cfg: DictConfig) -> list[int]:
    """`seed_list` (explicit, e.g. to re-run failures) or `seeds` consecutive seeds from `first_seed`."""
    if cfg.get("seed_list"):
        return [int(s) for s in cfg.seed_list]
    return [int(cfg.first_seed) + s for s in range(int(cfg.seeds))]


def benchmark(cfg: DictConfig) -> dict:
    tasks, policies = list(cfg.tasks), list(cfg.policies)
    unknown = set(policies) - set(POLICIES)
    if unknown:
        raise SystemExit(f"sim-benchmark: unknown policies {sorted(unknown)} ({', '.join(POLICIES)})")
    if "planner" in policies:
        from vjepa_planning.control.build import check_camera, describe_compute, sim_camera

        if (camera := sim_camera(cfg.env, cfg.driver)) is not None:  # here, once, not in every worker
            check_camera(cfg.world_model, camera)
        print(f"sim-benchmark: world model in {describe_compute(cfg.world_model)}", flush=True)
    seeds = benchmark_seeds(cfg)
    jobs = [Job(t, p, s) for t in tasks for p in policies for s in seeds]
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    workers = max(1, int(cfg.workers))
    threads = int(cfg.torch_threads or max(1, (os.cpu_count() or 1) // workers))
    episodes = []
    # Planner episodes first (the slow ones), so the progress bar's estimate is honest early on.
    ordered = sorted(jobs, key=lambda j: j.policy != "planner")
    results = map_unordered(_init_worker, (OmegaConf.to_yaml(cfg), threads), _run_job, ordered, workers=workers,
                            engine=cfg.engine, address=cfg.ray_address)
    # Each finished episode is appended at once, so an interrupted run keeps what it measured.
    with open(out / "episodes.jsonl", "w") as log_file:
        for ep in tqdm(results, total=len(jobs), desc="episodes", unit="ep"):
            episodes.append(ep)
            log_file.write(json.dumps(ep) + "\n")
            log_file.flush()
    rows = summarize(episodes, tasks, policies)
    table = markdown_table(rows, len(seeds))
    summary = {"config": OmegaConf.to_container(cfg, resolve=True), "summary": rows, "episodes": sorted(episodes, key=lambda e: (e["task"], e["policy"], e["seed"]))}
    (out / "results.json").write_text(json.dumps(summary, indent=1))
    (out / "results.md").write_text(table + "\n")
    plot(rows, tasks, policies, out / "results.png")
    print(table)
    print(f"\nwrote {out / 'results.json'}, {out / 'results.md'}, {out / 'results.png'}")
    return summary
