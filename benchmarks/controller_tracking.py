"""End-effector tracking error of the controller on in-workspace steps.

    python benchmarks/controller_tracking.py --seeds 50

Drives every task with its oracle and with random exploration (the data-collection policies) and
measures |achieved - commanded| end-effector position after each control step, over steps whose
target lies inside the exploration box and where the arm touched nothing but the cube. Oracle and
random success rates per task come from `sim-benchmark policies=[random,oracle]`."""

from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from tqdm import tqdm


def tracking_errors(args: tuple[str, str, int]) -> list[float]:
    from vjepa_planning import envs
    from vjepa_planning.envs.policies import EXPLORE_HIGH, EXPLORE_LOW, RandomExploration

    task, policy_name, seed = args
    env = envs.make_task_env(task, image_size=32)
    env.reset(seed=seed)
    rng = np.random.default_rng(seed + 10_000)
    policy = env.oracle() if policy_name == "oracle" else RandomExploration(rng, smoothing=0.6)
    scene, errors = env.scene, []
    for _ in range(env.max_steps):
        _, _, done, _, info = env.step(policy.act(scene))
        target = info["target_pos"]
        arm_contact = any(
            scene.cube_body not in (scene.model.geom_bodyid[c.geom1], scene.model.geom_bodyid[c.geom2])
            for c in scene.data.contact[: scene.data.ncon]
        )
        if np.all(target >= EXPLORE_LOW) and np.all(target <= EXPLORE_HIGH) and not arm_contact:
            errors.append(float(np.linalg.norm(scene.ee_pos() - target)))
        if done:
            break
    env.close()
    return errors


def main() -> None:
    from vjepa_planning.envs import TASKS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    jobs = [(t, p, s) for t in TASKS for p in ("oracle", "random") for s in range(args.seeds)]
    with ProcessPoolExecutor(args.workers) as pool:
        per_episode = list(tqdm(pool.map(tracking_errors, jobs, chunksize=4), total=len(jobs), desc="episodes"))
    errors = np.array([e for eps in per_episode for e in eps]) * 1000
    print(
        f"tracking error on {len(errors)} in-workspace steps ({len(jobs)} episodes): mean {errors.mean():.2f} mm, "
        f"median {np.median(errors):.2f} mm, p95 {np.percentile(errors, 95):.2f} mm, max {errors.max():.2f} mm"
    )


if __name__ == "__main__":
    main()
