"""plan-goal --goal goal.png: drive a robot to the scene in a goal image.

The receding-horizon loop: observe, choose an action, send it through the driver's safety layer, log the
step, repeat until the step budget (or, in the sim, success). Every step prints its timing and, in the
sim, the privileged distance to the goal; the episode is written to `log_dir` as a trajectory dataset.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from apps.cli import parse
from apps.episode_log import EpisodeRecorder
from apps.goal_image import load_goal_image
from apps.render_goal import sidecar_path
from apps.visualize import RerunLogger
from envs.tasks import EpisodeSpec
from robot_drivers.factory import make_driver


class OraclePolicy:
    """The sim's scripted oracle (privileged state), for runs without a world model."""

    def __init__(self, driver):
        if not hasattr(driver, "env"):
            raise ValueError("policy=oracle needs the in-process sim driver (driver=sim)")
        self.driver = driver
        self.oracle = driver.env.oracle()

    def act(self, obs) -> np.ndarray:
        return self.oracle.act(self.driver.env.scene)


class PlannerPolicy:
    """The world-model planner: latent MPC toward the goal image's embedding."""

    def __init__(self, cfg: DictConfig, goal_image: np.ndarray):
        from apps.models import load_world_model, make_mpc

        self.mpc = make_mpc(load_world_model(cfg.world_model), cfg.planner)
        self.mpc.set_goal(goal_image)
        self.last_energies: list[float] | None = None
        self.last_energy: float | None = None

    def act(self, obs) -> np.ndarray:
        step = self.mpc.act(obs.image, obs.state)
        self.last_energies, self.last_energy = step.iteration_energies, step.energy
        return step.action

    def executed(self, sent: np.ndarray) -> None:
        self.mpc.observe_executed(sent)


class RandomPolicy:
    def __init__(self, seed: int, step: float = 0.05):
        self.rng, self.step = np.random.default_rng(seed), step

    def act(self, obs) -> np.ndarray:
        return np.array([*self.rng.uniform(-self.step, self.step, 3), 0, 0, 0, self.rng.choice([-1.0, 0.0, 1.0])])


def load_episode_spec(goal: Path) -> EpisodeSpec | None:
    path = sidecar_path(goal)
    if not path.exists():
        return None
    try:
        return EpisodeSpec.from_json(path.read_text())
    except ValueError as e:
        raise ValueError(f"{path}: not a valid episode spec ({e})") from e


def run(cfg: DictConfig) -> dict:
    if cfg.goal is None:
        raise SystemExit("plan-goal: --goal PATH is required (make one with: render-goal --out goal.png)")
    goal_path = Path(cfg.goal)
    goal_image = load_goal_image(goal_path)
    spec = load_episode_spec(goal_path)
    env_cfg = OmegaConf.merge(cfg.env, {"task": spec.task} if spec else {})
    driver = make_driver(cfg.driver, env_cfg, episode=spec)
    if cfg.policy == "oracle" and spec is None:
        raise SystemExit(f"plan-goal: policy=oracle needs {sidecar_path(goal_path)} (written by render-goal)")
    if cfg.policy not in ("planner", "oracle", "random"):
        raise SystemExit(f"plan-goal: unknown policy {cfg.policy!r} (planner, oracle or random)")

    obs = driver.reset()
    if cfg.policy == "planner":
        policy = PlannerPolicy(cfg, goal_image)
    else:
        policy = OraclePolicy(driver) if cfg.policy == "oracle" else RandomPolicy(int(cfg.env.seed))
    budget = int(cfg.max_steps or getattr(getattr(driver, "env", None), "max_steps", 20))
    recorder = EpisodeRecorder(cfg.log_dir, cfg.camera, obs.image.shape[:2], fps=4, privileged=bool(obs.info))
    recorder.start(f"reach the goal image {goal_path.name}", obs)
    viz = RerunLogger(cfg.rerun) if cfg.rerun else None
    if viz:
        viz.log_goal(goal_image)
        viz.log_step(0, obs.image, obs.state, None, obs.info)
    print(f"plan-goal: task={env_cfg.task} policy={cfg.policy} goal={goal_path} ({goal_image.shape[1]}x{goal_image.shape[0]}) budget={budget}")
    steps, t_start = 0, time.perf_counter()
    try:
        for steps in range(1, budget + 1):
            t0 = time.perf_counter()
            action = policy.act(obs)
            t1 = time.perf_counter()
            sent = driver.act(action)
            obs = driver.observe()
            t2 = time.perf_counter()
            recorder.record(sent, obs)
            if hasattr(policy, "executed"):
                policy.executed(sent)
            if viz:
                viz.log_step(steps, obs.image, obs.state, sent, obs.info, getattr(policy, "last_energies", None))
            line = f"step {steps:3d}  act {np.array2string(sent[:3], precision=3)} grip {sent[6]:+.2f}  choose {1e3 * (t1 - t0):6.1f} ms  robot {1e3 * (t2 - t1):6.1f} ms"
            energy = getattr(policy, "last_energy", None)
            if energy is not None:
                line += f"  energy {energy:.4f}"
            if obs.info:
                line += f"  distance {obs.info['distance']:.3f} m  success {obs.info['success']}"
            print(line, flush=True)
            if cfg.stop_on_success and obs.info.get("success"):
                break
            if cfg.energy_threshold is not None and energy is not None and energy < cfg.energy_threshold:
                print(f"plan-goal: energy {energy:.4f} below the threshold {cfg.energy_threshold}; stopping")
                break
    finally:
        # Whatever happened (a dropped connection, Ctrl-C), keep the steps taken so far on disk.
        episode = recorder.finish()
        recorder.close()
        driver.stop()
        if viz:
            viz.close()
    result = {
        "steps": steps,
        "success": bool(obs.info.get("success", False)),
        "final_distance": obs.info.get("distance"),
        "seconds": round(time.perf_counter() - t_start, 2),
        "log": str(cfg.log_dir),
        "episode_index": episode,
    }
    print(json.dumps(result))
    return result


def main(argv: list[str] | None = None) -> None:
    cfg = parse(
        "plan_goal",
        __doc__.splitlines()[0],
        {
            "--goal": ("goal", "goal image (PNG/JPEG); a goal.json beside it sets the sim's start"),
            "--policy": ("policy", "planner | oracle | random"),
            "--planner": ("planner", "cem | mppi"),
            "--steps": ("max_steps", "step budget"),
            "--log-dir": ("log_dir", "where the episode is logged"),
            "--rerun": ("rerun", "log to rerun: a .rrd path, 'spawn', or a viewer URL"),
        },
        argv,
    )
    run(cfg)


if __name__ == "__main__":
    main()
