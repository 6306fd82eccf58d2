"""The receding-horizon episode loop and the policies it can run, shared by plan-goal and sim-benchmark.

A policy has `act(obs) -> action`; optionally `executed(sent)` (told the action the safety layer let
through) and `last_energy` / `last_energies` (a planner's chosen energy and its per-iteration energies).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from robot_drivers.base import Observation, RobotDriver


class OraclePolicy:
    """The sim's scripted oracle (privileged state): the benchmark's ceiling."""

    def __init__(self, driver):
        if not hasattr(driver, "env"):
            raise ValueError("policy=oracle needs the in-process sim driver (driver=sim)")
        self.driver = driver
        self.oracle = driver.env.oracle()

    def act(self, obs: Observation) -> np.ndarray:
        return self.oracle.act(self.driver.env.scene)


class RandomPolicy:
    """Uniform random translation and gripper moves, rotation held: the benchmark's floor (same search
    space as the planner)."""

    def __init__(self, seed: int, step: float = 0.05):
        self.rng, self.step = np.random.default_rng(seed), step

    def act(self, obs: Observation) -> np.ndarray:
        return np.array([*self.rng.uniform(-self.step, self.step, 3), 0, 0, 0, self.rng.uniform(-1, 1)])


class PlannerPolicy:
    """The world-model planner: latent MPC toward the goal image's embedding.

    With several goal images (sub-goals, then the goal) it plans toward one at a time, moving on after
    `switch_every` steps (one count, or one per sub-goal) or once the chosen plan's energy falls below
    `switch_energy`, as V-JEPA 2-AC does for pick-and-place; the last image stays the goal to the end."""

    def __init__(self, mpc, goal_images, *, switch_every: int | Sequence[int] | None = None, switch_energy: float | None = None):
        self.goals = [goal_images] if isinstance(goal_images, np.ndarray) else list(goal_images)
        if not self.goals:
            raise ValueError("PlannerPolicy needs at least one goal image")
        if len(self.goals) > 1 and switch_every is None and switch_energy is None:
            raise ValueError("several goal images need a switching rule (switch_every or switch_energy)")
        if switch_every is not None:
            # One step count for every image but the last, or one per image but the last.
            per_goal = [int(switch_every)] * (len(self.goals) - 1) if np.isscalar(switch_every) else [int(n) for n in switch_every]
            if len(per_goal) != len(self.goals) - 1 or any(n < 1 for n in per_goal):
                raise ValueError(f"switch_every must be >= 1, one number or one per sub-goal ({len(self.goals) - 1}), got {switch_every}")
            switch_every = per_goal
        self.mpc, self.switch_every, self.switch_energy = mpc, switch_every, switch_energy
        self.mpc.reset()
        self.current_goal, self._steps_on_goal, self.energy_goal = 0, 0, 0
        self.mpc.set_goal(self.goals[0])
        self.last_energies: list[float] | None = None
        self.last_energy: float | None = None
        self.plan_seconds: list[float] = []

    def act(self, obs: Observation) -> np.ndarray:
        step = self.mpc.act(obs.image, obs.state)
        self.last_energies, self.last_energy = step.iteration_energies, step.energy
        self.energy_goal = self.current_goal  # which image last_energy was measured against
        self.plan_seconds.append(step.plan_seconds)
        self._steps_on_goal += 1
        if self.current_goal < len(self.goals) - 1 and self._goal_done(step.energy):
            self.current_goal, self._steps_on_goal = self.current_goal + 1, 0
            self.mpc.set_goal(self.goals[self.current_goal])
        return step.action

    @property
    def energy_is_final(self) -> bool:
        """Whether last_energy was measured against the final goal (an energy stop only counts then)."""
        return self.energy_goal == len(self.goals) - 1

    def _goal_done(self, energy: float) -> bool:
        if self.switch_every is not None and self._steps_on_goal >= self.switch_every[self.current_goal]:
            return True
        return self.switch_energy is not None and bool(np.isfinite(energy)) and energy < self.switch_energy

    def executed(self, sent: np.ndarray) -> None:
        self.mpc.observe_executed(sent)


def even_switch_every(budget: int, n_goals: int, switch_every, switch_energy: float | None):
    """With sub-goals and no rule given, each image gets an even share of the step budget; a rule that
    was given (a step count, one per sub-goal, or none with an energy rule) is returned unchanged."""
    if n_goals > 1 and switch_every is None and switch_energy is None:
        return max(1, budget // n_goals)
    return switch_every


@dataclass
class EpisodeResult:
    steps: int
    success: bool
    final_distance: float | None
    choose_seconds: list[float] = field(default_factory=list)  # time to pick each action
    energies: list[float] = field(default_factory=list)
    stopped_by: str = "budget"  # budget | success | energy


def run_episode(
    driver: RobotDriver,
    policy,
    obs: Observation,
    budget: int,
    *,
    recorder=None,
    viz=None,
    stop_on_success: bool = True,
    energy_threshold: float | None = None,
    log: Callable[[str], None] | None = print,
) -> EpisodeResult:
    """observe -> act -> safety -> robot, `budget` times at most. The recorder (if any) is finished
    whatever happens, so the steps taken so far stay on disk after a dropped connection or Ctrl-C."""
    result = EpisodeResult(0, False, obs.info.get("distance"))
    if viz:
        viz.log_step(0, obs.image, obs.state, None, obs.info)
    try:
        for step in range(1, budget + 1):
            t0 = time.perf_counter()
            action = policy.act(obs)
            t1 = time.perf_counter()
            sent = driver.act(action)
            obs = driver.observe()
            t2 = time.perf_counter()
            if recorder:
                recorder.record(sent, obs)
            if hasattr(policy, "executed"):
                policy.executed(sent)
            energy = getattr(policy, "last_energy", None)
            result.steps, result.final_distance = step, obs.info.get("distance")
            result.success = bool(obs.info.get("success", False))
            result.choose_seconds.append(t1 - t0)
            if energy is not None:
                result.energies.append(float(energy))
            if viz:
                viz.log_step(step, obs.image, obs.state, sent, obs.info, getattr(policy, "last_energies", None))
            if log:
                line = f"step {step:3d}  act {np.array2string(sent[:3], precision=3)} grip {sent[6]:+.2f}  choose {1e3 * (t1 - t0):7.1f} ms  robot {1e3 * (t2 - t1):6.1f} ms"
                if energy is not None:
                    line += f"  energy {energy:.4f}"
                if len(getattr(policy, "goals", ())) > 1:
                    line += f"  goal {policy.energy_goal + 1}/{len(policy.goals)}"
                if obs.info:
                    line += f"  distance {obs.info['distance']:.3f} m  success {obs.info['success']}"
                log(line)
            if stop_on_success and result.success:
                result.stopped_by = "success"
                break
            final = getattr(policy, "energy_is_final", True)
            if energy_threshold is not None and energy is not None and final and energy < energy_threshold:
                result.stopped_by = "energy"
                break
    finally:
        if recorder:
            recorder.finish()
    return result
