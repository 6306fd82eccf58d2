"""What chooses the next action: the world-model planner, the sim's scripted oracle (the benchmark's
ceiling), and a random floor, behind one typed interface the control loop (control/loop.py) runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from vjepa_planning.planners.mpc import SubgoalMPC
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
