"""Planning through a sequence of goal images: sub-goals first, then the goal, one at a time.

V-JEPA 2-AC reaches multi-stage tasks (pick-and-place) this way: the latent MPC aims at one image and
moves on to the next after a number of steps, or once its chosen plan's energy is low enough; the last
image stays the goal to the end.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from planners.mpc import LatentMPC, MPCStep


def per_goal_steps(n_goals: int, switch_every: int | Sequence[int] | None, switch_energy: float | None,
                   budget: int | None) -> list[int] | None:
    """Steps on each image but the last. One count for all, one per sub-goal, none (an energy rule alone),
    or, with sub-goals and no rule given, an even share of the episode's step `budget`."""
    if n_goals > 1 and switch_every is None and switch_energy is None:
        if budget is None:
            raise ValueError("several goal images need a switching rule (switch_every or switch_energy) or a step budget to share")
        switch_every = max(1, int(budget) // n_goals)
    if switch_every is None:
        return None
    counts = [int(switch_every)] * (n_goals - 1) if np.isscalar(switch_every) else [int(n) for n in switch_every]
    if len(counts) != n_goals - 1 or any(n < 1 for n in counts):
        raise ValueError(f"switch_every must be >= 1, one number or one per sub-goal ({n_goals - 1}), got {switch_every}")
    return counts


class SubgoalMPC:
    """A LatentMPC that walks a list of goal images (sub-goals, then the goal).

    `act` returns the MPC's step with `goal` set to the index of the image its energy was measured
    against; the switch to the next image happens after that step."""

    def __init__(self, mpc: LatentMPC, goal_images: np.ndarray | Sequence[np.ndarray], *,
                 switch_every: int | Sequence[int] | None = None, switch_energy: float | None = None,
                 budget: int | None = None):
        self.goals = [goal_images] if isinstance(goal_images, np.ndarray) else list(goal_images)
        if not self.goals:
            raise ValueError("SubgoalMPC needs at least one goal image")
        self.switch_every = per_goal_steps(len(self.goals), switch_every, switch_energy, budget)
        self.mpc, self.switch_energy = mpc, switch_energy
        self.mpc.reset()
        self.current_goal, self._steps_on_goal = 0, 0
        self.mpc.set_goal(self.goals[0])

    def act(self, image: np.ndarray, state: np.ndarray) -> MPCStep:
        step = dataclasses.replace(self.mpc.act(image, state), goal=self.current_goal, goals=len(self.goals))
        self._steps_on_goal += 1
        if self.current_goal < len(self.goals) - 1 and self._goal_done(step.energy):
            self.current_goal, self._steps_on_goal = self.current_goal + 1, 0
            self.mpc.set_goal(self.goals[self.current_goal])
        return step

    def observe_executed(self, sent: np.ndarray) -> None:
        self.mpc.observe_executed(sent)

    def _goal_done(self, energy: float) -> bool:
        if self.switch_every is not None and self._steps_on_goal >= self.switch_every[self.current_goal]:
            return True
        return self.switch_energy is not None and bool(np.isfinite(energy)) and energy < self.switch_energy
