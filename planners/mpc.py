"""Receding-horizon control in latent space: encode the goal once, then at every step encode the new
frame, plan from it (warm-started with the previous plan), and return the first action.

The context given to the world model is the last `context_frames` observations with the actions
executed between them: the predictor was trained on multi-frame clips, and the shared history is
computed once per step for all candidates (KV cache), which is where caching beats re-running the
whole history for every imagined step.

`SubgoalMPC` walks it through a sequence of goal images, sub-goals first, as V-JEPA 2-AC reaches
multi-stage tasks (pick-and-place): it aims at one image and moves on to the next after a number of steps,
or once its chosen plan's energy is low enough; the last image stays the goal to the end.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vjepa_planning.planners.base import PlanResult, SamplingPlanner
from vjepa_planning.worldmodel.protocol import ReadsGripper

log = logging.getLogger(__name__)


@dataclass
class MPCStep:
    action: np.ndarray  # [7] the first planned action
    energy: float
    iteration_energies: list[float]
    fallback: bool
    goal: int = 0  # which goal image the energy was measured against (SubgoalMPC)
    goals: int = 1


class LatentMPC:
    def __init__(self, world_model, planner: SamplingPlanner, context_frames: int = 1):
        if context_frames < 1:
            raise ValueError("context_frames must be >= 1")
        self.world_model, self.planner, self.context_frames = world_model, planner, context_frames
        self.z_goal: torch.Tensor | None = None
        self.goal_gripper: float | None = None  # how closed the hand is in the goal image, if the model can tell
        self.reset()

    def reset(self) -> None:
        self._frames: deque[torch.Tensor] = deque(maxlen=self.context_frames)  # each [N, D]
        self._states: deque[torch.Tensor] = deque(maxlen=self.context_frames)
        self._actions: deque[torch.Tensor] = deque(maxlen=self.context_frames - 1 or None)
        self._previous: PlanResult | None = None

    def set_goal(self, goal_image: np.ndarray) -> None:
        """A new goal (or the next sub-goal): the history is kept, the warm start is not (it aimed
        elsewhere)."""
        self.z_goal = self.world_model.encode(goal_image)  # [1, N, D]
        closed = self.world_model.gripper_closed(goal_image) if isinstance(self.world_model, ReadsGripper) else None
        self.goal_gripper = None if closed is None else float(closed[0])
        if self.goal_gripper is not None and not np.isfinite(self.goal_gripper):
            log.warning("goal image: the gripper readout gave %s; planning without it for this goal", self.goal_gripper)
            self.goal_gripper = None
        if self.goal_gripper is not None:
            log.info("goal image: the gripper readout sees the hand %s (p(closed) = %.2f)",
                     "closed" if self.goal_gripper > 0.5 else "open", self.goal_gripper)
        self._previous = None

    def observe_executed(self, action: np.ndarray) -> None:
        """Tell the controller which action was actually sent (after the safety layer)."""
        if self.context_frames > 1:
            self._actions.append(torch.as_tensor(np.asarray(action), dtype=torch.float32))

    def act(self, image: np.ndarray, state: np.ndarray) -> MPCStep:
        if self.z_goal is None:
            raise RuntimeError("LatentMPC.act() before set_goal()")
        self._frames.append(self.world_model.encode(image)[0])
        self._states.append(torch.as_tensor(np.asarray(state), dtype=torch.float32))
        # Executed actions beyond the kept frames are dropped so frames and actions stay aligned.
        while len(self._actions) > len(self._frames) - 1:
            self._actions.popleft()
        if len(self._actions) < len(self._frames) - 1:
            raise RuntimeError("LatentMPC.act(): call observe_executed(sent) after each action, before the next act()")
        if len(self._frames) == 1:
            z0, s0, past = self._frames[0][None], self._states[0][None], None  # [1, N, D], [1, 7]
        else:
            z0 = torch.stack(list(self._frames))[None]  # [1, T0, N, D]
            s0 = torch.stack(list(self._states))[None]  # [1, T0, 7]
            past = torch.stack(list(self._actions))[None]  # [1, T0 - 1, 7]
        result = self.planner.plan(z0, s0, self.z_goal, init=self._previous, past_actions=past, goal_gripper=self.goal_gripper)
        self._previous = result
        action = result.first_action.detach().cpu().numpy().astype(np.float64)
        if result.fallback or not np.all(np.isfinite(action)):
            log.warning("mpc: planner gave no usable plan; holding still this step")
            action = np.zeros(7)
        return MPCStep(action, result.energy, result.iteration_energies, result.fallback)


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
