"""Oracle ceiling and random floor on every task, and the controller's tracking error.

    python benchmarks/sim_tasks.py --seeds 50 --workers 2

Prints a markdown table: success rate (95% Wilson interval) of the scripted oracle and of the random
policy per task over the seeds, and the end-effector tracking error on in-workspace steps (steps whose
target lies inside the exploration box and whose hand touched nothing)."""

from __future__ import annotations

import argparse
import math
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from tqdm import tqdm


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def run_episode(args: tuple[str, str, int]) -> dict:
    import envs
    from envs.policies import EXPLORE_HIGH, EXPLORE_LOW, RandomPolicy

    task, policy_name, seed = args
    env = envs.make_task_env(task, image_size=32)
    env.reset(seed=seed)
    policy = env.oracle() if policy_name == "oracle" else RandomPolicy(np.random.default_rng(seed + 10_000))
    errors = []
    info = env._info()
    for _ in range(env.max_steps):
        _, _, done, _, info = env.step(policy.act(env.scene))
        target = info["target_pos"]
        arm_contacts = any(
            env.scene.model.geom_bodyid[c.geom1] != env.scene.cube_body
            and env.scene.model.geom_bodyid[c.geom2] != env.scene.cube_body
            for c in env.scene.data.contact[: env.scene.data.ncon]
        )
        if np.all(target >= EXPLORE_LOW) and np.all(target <= EXPLORE_HIGH) and not arm_contacts:
            errors.append(float(np.linalg.norm(env.scene.ee_pos() - target)))
        if done:
            break
    env.close()
    return {"task": task, "policy": policy_name, "success": bool(info["success"]), "errors": errors}


def main() -> None:
    from envs import TASKS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    jobs = [(t, p, s) for t in TASKS for p in ("oracle", "random") for s in range(args.seeds)]
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(tqdm(pool.map(run_episode, jobs, chunksize=4), total=len(jobs), desc="episodes"))
    print(f"\n| task | oracle success (95% CI) | random success (95% CI) |  ({args.seeds} seeds)")
    print("|---|---|---|")
    for task in TASKS:
        cells = []
        for policy in ("oracle", "random"):
            wins = sum(r["success"] for r in results if r["task"] == task and r["policy"] == policy)
            lo, hi = wilson(wins, args.seeds)
            cells.append(f"{wins / args.seeds:.0%} ({lo:.0%}-{hi:.0%})")
        print(f"| {task} | {cells[0]} | {cells[1]} |")
    errors = np.array([e for r in results for e in r["errors"]]) * 1000
    print(
        f"\ntracking error on {len(errors)} in-workspace steps: mean {errors.mean():.2f} mm, "
        f"median {np.median(errors):.2f} mm, p95 {np.percentile(errors, 95):.2f} mm, max {errors.max():.2f} mm"
    )


if __name__ == "__main__":
    main()
