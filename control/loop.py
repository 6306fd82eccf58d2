"""The one control loop: observe -> policy -> safety -> robot, step after step, and the policies it runs.

A `Policy` returns a `PolicyStep` per observation: the world-model planner (`PlannerPolicy`), the sim's
scripted oracle (the benchmark's ceiling) or a random floor; `make_policy` picks one by its config name.
`steps` streams a record per step; `run_episode` runs it to the end with the optional recorder (a
trajectory dataset), rerun viewer and per-step log line, and sums it up. plan-goal, sim-benchmark,
collect-trajectories and the benchmark scripts all drive robots through these two.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from vjepa_planning.planners.mpc import LatentMPC, SubgoalMPC
from vjepa_planning.robot_drivers.base import Observation, RobotDriver, SimCapabilities


@dataclass
class PolicyStep:
    """One decision: the action, and for a planner what it was scored at."""

    action: np.ndarray  # [7], before the safety layer
    energy: float | None = None  # the chosen plan's energy (planner only)
    iteration_energies: list[float] | None = None  # the best energy after each planner iteration
    goal: int = 0  # index of the goal image the energy was measured against (sub-goals first)
    goals: int = 1  # how many goal images the policy walks through (the loop times each decision itself)

    @property
    def final_goal(self) -> bool:
        """Whether this step aimed at the last image (an energy stop only counts then)."""
        return self.goal == self.goals - 1


class Policy(Protocol):
    def act(self, obs: Observation) -> PolicyStep: ...

    def executed(self, sent: np.ndarray) -> None:
        """Told the action the safety layer let through, after each `act`."""
        return None


class PlannerPolicy(Policy):
    """The world-model planner: latent MPC toward the goal image's embedding (through sub-goals, if given)."""

    def __init__(self, mpc: SubgoalMPC):
        self.mpc = mpc

    def act(self, obs: Observation) -> PolicyStep:
        step = self.mpc.act(obs.image, obs.state)
        return PolicyStep(step.action, step.energy, step.iteration_energies, step.goal, step.goals)

    def executed(self, sent: np.ndarray) -> None:
        self.mpc.observe_executed(sent)


class ScenePolicy(Policy):
    """A scripted policy that reads the live sim scene (privileged state): the oracle, data collection's
    noisy demonstrations and exploration (envs/policies.py)."""

    def __init__(self, driver: RobotDriver, scripted: Any):
        if not isinstance(driver, SimCapabilities):
            raise ValueError("a scripted (privileged) policy such as policy=oracle needs the in-process sim driver (driver=sim)")
        self.driver, self.scripted = driver, scripted

    def act(self, obs: Observation) -> PolicyStep:
        return PolicyStep(np.asarray(self.scripted.act(self.driver.scene), dtype=np.float64))


def oracle_policy(driver: RobotDriver) -> ScenePolicy:
    """The task's scripted oracle for the driver's current episode: the benchmark's ceiling."""
    if not isinstance(driver, SimCapabilities):
        raise ValueError("policy=oracle needs the in-process sim driver (driver=sim)")
    return ScenePolicy(driver, driver.oracle())


class RandomPolicy(Policy):
    """Uniform random translation and gripper moves, rotation held: the benchmark's floor (the planner's
    search space, and no privileged state)."""

    def __init__(self, seed: int, step: float = 0.05):
        self.rng, self.step = np.random.default_rng(seed), step

    def act(self, obs: Observation) -> PolicyStep:
        return PolicyStep(np.array([*self.rng.uniform(-self.step, self.step, 3), 0, 0, 0, self.rng.uniform(-1, 1)]))


POLICIES = ("planner", "oracle", "random")  # the `policy` setting of plan-goal and sim-benchmark


def make_policy(kind: str, driver: RobotDriver, *, seed: int, mpc: LatentMPC | None = None, goals: list | None = None,
                budget: int | None = None, switch_every: int | None = None, switch_energy: float | None = None) -> Policy:
    """`policy=planner|oracle|random` for the driver's current episode. The planner walks `goals` (sub-goal
    images first, the goal last) with `mpc`, switching as `SubgoalMPC` does; `seed` seeds the random floor."""
    if kind == "planner":
        if mpc is None:
            raise ValueError("policy=planner needs the world-model MPC (control.build.make_mpc)")
        return PlannerPolicy(SubgoalMPC(mpc, goals, switch_every=switch_every, switch_energy=switch_energy, budget=budget))
    if kind == "oracle":
        return oracle_policy(driver)
    if kind == "random":
        return RandomPolicy(seed)
    raise ValueError(f"policy must be one of {', '.join(POLICIES)}, got {kind!r}")


@dataclass
class StepRecord:
    step: int  # 1-based
    decision: PolicyStep
    sent: np.ndarray  # [7] what the safety layer let through, as executed
    obs: Observation  # what the robot saw after the step
    safety: Any  # robot_drivers.safety.SafetyReport of this step
    choose_seconds: float  # time the policy took
    robot_seconds: float  # time the robot took to act and observe
    stop: str | None = None  # why the loop ends after this step: success | energy | budget (None: it goes on)


def steps(driver: RobotDriver, policy: Policy, obs: Observation, budget: int, *, success_steps: int | None = 1,
          energy_threshold: float | None = None) -> Iterator[StepRecord]:
    """Up to `budget` steps from `obs`. The loop stops once the sim has reported success on `success_steps`
    steps (None: never) or, planning toward the final goal, once the chosen energy is below
    `energy_threshold`; the last record names why."""
    successes = 0
    for step in range(1, budget + 1):
        t0 = time.perf_counter()
        decision = policy.act(obs)
        t1 = time.perf_counter()
        sent = driver.act(decision.action)
        obs = driver.observe()
        t2 = time.perf_counter()
        policy.executed(sent)
        record = StepRecord(step, decision, sent, obs, driver.last_safety, t1 - t0, t2 - t1)
        successes += bool(obs.info.get("success", False))
        energy = decision.energy
        if success_steps is not None and successes >= success_steps:
            record.stop = "success"
        elif energy_threshold is not None and energy is not None and decision.final_goal and energy < energy_threshold:
            record.stop = "energy"
        elif step == budget:
            record.stop = "budget"
        yield record
        if record.stop:
            return


@dataclass
class EpisodeResult:
    steps: int
    success: bool
    final_distance: float | None
    choose_seconds: list[float] = field(default_factory=list)  # time to pick each action
    energies: list[float] = field(default_factory=list)
    stopped_by: str = "budget"  # budget | success | energy


def step_line(r: StepRecord) -> str:
    """The one-line log of a step: the sent action, timings, energy and goal, and the sim's distance."""
    line = (f"step {r.step:3d}  act {np.array2string(r.sent[:3], precision=3)} grip {r.sent[6]:+.2f}  "
            f"choose {1e3 * r.choose_seconds:7.1f} ms  robot {1e3 * r.robot_seconds:6.1f} ms")
    if r.decision.energy is not None:
        line += f"  energy {r.decision.energy:.4f}"
    if r.decision.goals > 1:
        line += f"  goal {r.decision.goal + 1}/{r.decision.goals}"
    if r.obs.info:
        line += f"  distance {r.obs.info['distance']:.3f} m  success {r.obs.info['success']}"
    return line


def run_episode(driver: RobotDriver, policy: Policy, obs: Observation, budget: int, *, recorder=None, viz=None,
                success_steps: int | None = 1, energy_threshold: float | None = None,
                log: Callable[[str], None] | None = print) -> EpisodeResult:
    """`steps` to the end. The recorder (if any) is finished whatever happens, so the steps taken so far
    stay on disk after a dropped connection or Ctrl-C."""
    result = EpisodeResult(0, False, obs.info.get("distance"))
    if viz:
        viz.log_step(0, obs.image, obs.state, None, obs.info)
    try:
        for r in steps(driver, policy, obs, budget, success_steps=success_steps, energy_threshold=energy_threshold):
            if recorder:
                recorder.record(r.sent, r.obs)
            result.steps, result.final_distance = r.step, r.obs.info.get("distance")
            result.success = bool(r.obs.info.get("success", False))
            result.choose_seconds.append(r.choose_seconds)
            if r.decision.energy is not None:
                result.energies.append(float(r.decision.energy))
            if viz:
                viz.log_step(r.step, r.obs.image, r.obs.state, r.sent, r.obs.info, r.decision.iteration_energies)
            if log:
                log(step_line(r))
            result.stopped_by = r.stop or result.stopped_by
    finally:
        if recorder:
            recorder.finish()
    return result
