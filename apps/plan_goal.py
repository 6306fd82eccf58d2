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
    if cfg.policy == "oracle":
        if spec is None:
            raise SystemExit(f"plan-goal: policy=oracle needs {sidecar_path(goal_path)} (written by render-goal)")
    elif cfg.policy != "random":
        raise SystemExit(f"plan-goal: unknown policy {cfg.policy!r} (oracle or random)")

    obs = driver.reset()
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
            if viz:
                viz.log_step(steps, obs.image, obs.state, sent, obs.info, getattr(policy, "last_energies", None))
            line = f"step {steps:3d}  act {np.array2string(sent[:3], precision=3)} grip {sent[6]:+.2f}  choose {1e3 * (t1 - t0):6.1f} ms  robot {1e3 * (t2 - t1):6.1f} ms"
            if obs.info:
                line += f"  distance {obs.info['distance']:.3f} m  success {obs.info['success']}"
            print(line, flush=True)
            if cfg.stop_on_success and obs.info.get("success"):
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
            "--policy": ("policy", "oracle | random"),
            "--steps": ("max_steps", "step budget"),
            "--log-dir": ("log_dir", "where the episode is logged"),
            "--rerun": ("rerun", "log to rerun: a .rrd path, 'spawn', or a viewer URL"),
        },
        argv,
    )
    run(cfg)


if __name__ == "__main__":
    main()
