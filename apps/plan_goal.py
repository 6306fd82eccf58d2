"""plan-goal --goal goal.png: drive a robot to the scene in a goal image.

The receding-horizon loop: observe, choose an action, send it through the driver's safety layer, log the
step, repeat until the step budget (or, in the sim, success). Every step prints its timing and, in the
sim, the privileged distance to the goal; the episode is written to `log_dir` as a trajectory dataset.
With `--subgoals a.png,b.png` the planner aims at each sub-goal image in turn (an even share of the budget
each, `subgoals.switch_every` or `subgoals.switch_energy`), then at the goal.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from vjepa_planning.apps.cli import command, parse
from vjepa_planning.control.goal_image import check_goal_camera, load_episode_spec, load_goal_image, sidecar_path
from vjepa_planning.control.loop import POLICIES, make_policy, run_episode
from vjepa_planning.control.recording import EpisodeRecorder
from vjepa_planning.control.rerun_log import RerunLogger
from vjepa_planning.robot_drivers.factory import make_driver

log = logging.getLogger(__name__)


DEFAULT_BUDGET = 20  # steps, where neither --steps nor the robot (a real arm) gives one


def subgoal_list(images) -> list[Path]:
    """`subgoals.images`: a list, or one comma-separated string (what `--subgoals a.png,b.png` gives)."""
    if images is None:
        return []
    if isinstance(images, str):
        images = [p for p in images.split(",") if p.strip()]
    return [Path(str(p).strip()) for p in images]


def run(cfg: DictConfig) -> dict:
    if cfg.goal is None:
        raise SystemExit("plan-goal: --goal PATH is required (make one with: render-goal --out goal.png)")
    goal_path = Path(cfg.goal)
    goal_image = load_goal_image(goal_path)
    subgoal_paths = subgoal_list(cfg.subgoals.images)
    subgoal_images = [load_goal_image(p) for p in subgoal_paths]
    spec, goal_camera = load_episode_spec(goal_path)
    env_cfg = OmegaConf.merge(cfg.env, {"task": spec.task} if spec else {})
    if spec and spec.task != cfg.env.task:
        print(f"plan-goal: {sidecar_path(goal_path)} sets env.task={spec.task} (the config said {cfg.env.task})", flush=True)
    check_goal_camera(goal_path, goal_camera, env_cfg.camera, cfg.driver.type)
    if cfg.policy not in POLICIES:
        raise SystemExit(f"plan-goal: unknown policy {cfg.policy!r} ({', '.join(POLICIES)})")
    if cfg.policy == "oracle" and spec is None:
        raise SystemExit(f"plan-goal: policy=oracle needs {sidecar_path(goal_path)} (written by render-goal)")
    driver = make_driver(cfg.driver, env_cfg, episode=spec)
    mpc = None
    if cfg.policy == "planner":  # before the reset: a compiled rollout is built here, not with the arm waiting
        from vjepa_planning.control.build import describe_compute, load_world_model, make_mpc, sim_camera

        print(f"plan-goal: world model in {describe_compute(cfg.world_model)}", flush=True)
        mpc = make_mpc(load_world_model(cfg.world_model, sim_camera(env_cfg, cfg.driver)), cfg.planner)
    obs = driver.reset()
    budget = int(cfg.max_steps or driver.step_budget or DEFAULT_BUDGET)
    policy = make_policy(cfg.policy, driver, seed=int(cfg.env.seed), mpc=mpc, goals=[*subgoal_images, goal_image], budget=budget,
                         switch_every=cfg.subgoals.switch_every, switch_energy=cfg.subgoals.switch_energy)
    recorder = EpisodeRecorder(cfg.log_dir, cfg.env.camera, obs.image.shape[:2], fps=4, privileged=bool(obs.info))
    recorder.start(f"reach the goal image {goal_path.name}", obs)
    viz = RerunLogger(cfg.rerun, camera=cfg.env.camera) if cfg.rerun else None
    if viz:
        viz.log_goal(goal_image)
        viz.log_subgoals(subgoal_images)
    if subgoal_paths and cfg.policy != "planner":
        log.warning("plan-goal: policy=%s ignores the sub-goal images (only the planner uses them)", cfg.policy)
    via = f" via {len(subgoal_paths)} sub-goal(s)" if subgoal_paths and cfg.policy == "planner" else ""
    print(f"plan-goal: task={env_cfg.task} policy={cfg.policy} goal={goal_path} ({goal_image.shape[1]}x{goal_image.shape[0]}){via} budget={budget}")
    t_start = time.perf_counter()
    try:
        episode = run_episode(
            driver, policy, obs, budget, recorder=recorder, viz=viz,
            success_steps=1 if cfg.stop_on_success else None, energy_threshold=cfg.energy_threshold,
            log=lambda line: print(line, flush=True),
        )
    finally:
        recorder.close()
        if viz:
            viz.close()
        try:
            driver.stop()
        except Exception as stop_error:
            if sys.exc_info()[1] is None:
                raise
            # Already failing (e.g. the robot server died): report that, not the follow-up stop failure.
            log.warning("plan-goal: stopping the robot also failed: %s", stop_error)
    result = {
        "steps": episode.steps,
        "success": episode.success,
        "final_distance": episode.final_distance,
        "stopped_by": episode.stopped_by,
        "seconds": round(time.perf_counter() - t_start, 2),
        "log": str(cfg.log_dir),
    }
    print(json.dumps(result))
    return result


@command("plan-goal")
def main(argv: list[str] | None = None) -> None:
    cfg = parse(
        "plan_goal",
        __doc__.splitlines()[0],
        {
            "--goal": ("goal", "goal image (PNG/JPEG); a goal.json beside it sets the sim's start"),
            "--subgoals": ("subgoals.images", "comma-separated sub-goal images planned toward first, in order"),
            "--policy": ("policy", "planner | oracle | random"),
            "--planner": ("planner", "cem | icem | cem_grad | mppi"),
            "--steps": ("max_steps", "step budget"),
            "--log-dir": ("log_dir", "where the episode is logged"),
            "--rerun": ("rerun", "log to rerun: a .rrd path, 'spawn', or a viewer URL"),
        },
        argv,
    )
    run(cfg)


if __name__ == "__main__":
    sys.exit(main())
