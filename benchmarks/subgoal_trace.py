"""Where grasp planning through sub-goals goes wrong: the hand's path to the grasp pose and the gripper.

    python benchmarks/subgoal_trace.py --seeds 3 [planner.gripper_cost=0.0 ...]
    python benchmarks/subgoal_trace.py --task pick_and_place --seed-list 1006,1020 [overrides]

Runs the shipped planner on grasp (or pick-and-place) seeds with the task's sub-goal photos (hand closed
on the cube, then the lifted goal, or the cube held above its goal spot, then the goal; an even share of
the step budget each) and prints, per step, the goal image planned against, the hand's distance to the
grasp pose, the gripper state, the cube height and the task's own distance; then per seed the closest
approach to the grasp pose and the gripper state there.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch


def main() -> None:
    from omegaconf import OmegaConf

    from vjepa_planning.control.build import compose_and_load, make_mpc
    from vjepa_planning.control.loop import make_policy, steps
    from vjepa_planning.envs.tasks.grasp import grasp_pose
    from vjepa_planning.robot_drivers.base import SimCapabilities
    from vjepa_planning.robot_drivers.factory import make_driver

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument("--task", default="grasp", choices=["grasp", "pick_and_place"])
    parser.add_argument("--seed-list", type=lambda s: [int(v) for v in s.split(",")], help="e.g. 1006,1020 instead of consecutive seeds")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for sim_benchmark, e.g. planner.gripper_cost=0")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg, wm = compose_and_load("sim_benchmark", args.overrides)
    mpc = make_mpc(wm, cfg.planner)
    driver = make_driver(cfg.driver, OmegaConf.merge(cfg.env, {"task": args.task, "max_steps": None}))
    if not isinstance(driver, SimCapabilities):
        raise SystemExit("subgoal_trace.py: needs the in-process sim (driver=sim) for the sub-goal photos and the cube's pose")
    budget = driver.step_budget
    for seed in args.seed_list or range(args.first_seed, args.first_seed + args.seeds):
        obs = driver.reset(seed=seed)
        mpc.planner.reseed(int(cfg.planner.seed or 0) + seed)
        policy = make_policy("planner", driver, seed=seed, mpc=mpc, goals=driver.subgoal_images(), budget=budget)
        target = np.array(grasp_pose(driver.episode_spec).ee)
        trace = []
        for r in steps(driver, policy, obs, budget):
            obs = r.obs
            trace.append((r.decision.goal + 1, float(np.linalg.norm(obs.state[:3] - target)), float(obs.state[6]),
                          float(obs.info["cube_pos"][2]), float(obs.info["distance"])))
        print(f"seed {seed} (goal: distance to grasp pose m, gripper, cube z m, task distance m):")
        print("  " + " ".join(f"{g}:{d:.3f}:{gr:.2f}:{cz:.3f}:{td:.3f}" for g, d, gr, cz, td in trace))
        k = int(np.argmin([t[1] for t in trace]))
        print(f"  closest approach {trace[k][1]:.3f} m at step {k + 1} with the gripper at {trace[k][2]:.2f}; success {obs.info['success']}")


if __name__ == "__main__":
    main()
