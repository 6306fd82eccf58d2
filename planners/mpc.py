"""Receding-horizon control in latent space: encode the goal once, then at every step encode the new
frame, plan from it (warm-started with the previous plan), and return the first action.

The context given to the world model is the last `context_frames` observations with the actions
executed between them: the predictor was trained on multi-frame clips, and the shared history is
computed once per step for all candidates (KV cache), which is where caching beats re-running the
whole history for every imagined step.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass

import numpy as np
import torch

from planners.base import PlanResult, SamplingPlanner

log = logging.getLogger(__name__)


@dataclass
class MPCStep:
    action: np.ndarray  # [7] the first planned action
    energy: float
    iteration_energies: list[float]
    plan_seconds: float
    fallback: bool
    goal: int = 0  # which goal image the energy was measured against (planners/subgoals.py)
    goals: int = 1


class LatentMPC:
    def __init__(self, world_model, planner: SamplingPlanner, context_frames: int = 1):
        if context_frames < 1:
            raise ValueError("context_frames must be >= 1")
        self.world_model, self.planner, self.context_frames = world_model, planner, context_frames
        self.z_goal: torch.Tensor | None = None
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
        self._previous = None

    def observe_executed(self, action: np.ndarray) -> None:
        """Tell the controller which action was actually sent (after the safety layer)."""
        if self.context_frames > 1:
            self._actions.append(torch.as_tensor(np.asarray(action), dtype=torch.float32))

    def act(self, image: np.ndarray, state: np.ndarray) -> MPCStep:
        if self.z_goal is None:
            raise RuntimeError("LatentMPC.act() before set_goal()")
        t0 = time.perf_counter()
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
        result = self.planner.plan(z0, s0, self.z_goal, init=self._previous, past_actions=past)
        self._previous = result
        action = result.first_action.detach().cpu().numpy().astype(np.float64)
        if result.fallback or not np.all(np.isfinite(action)):
            log.warning("mpc: planner gave no usable plan; holding still this step")
            action = np.zeros(7)
        return MPCStep(action, result.energy, result.iteration_energies, time.perf_counter() - t0, result.fallback)
