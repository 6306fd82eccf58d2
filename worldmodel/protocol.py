"""The narrow interfaces planners (and apps) see. Import only this module from planners/.

Shapes: N patch tokens of width D per frame, state / action vectors of 7
(see worldmodel/state_math.py for the conventions). Embeddings returned by both
verbs are layer-normed over D without affine, so a planner's energy can compare
``rollout(...)[:, -1]`` to ``encode(goal)`` directly (e.g. mean |a - b|).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import torch

Frames = np.ndarray | torch.Tensor  # uint8 RGB, channels last


@runtime_checkable
class FrameEncoder(Protocol):
    def encode(self, frames: Frames) -> torch.Tensor:
        """uint8 [H, W, 3] -> [1, N, D]; [B, H, W, 3] -> [B, N, D]; [B, T, H, W, 3] -> [B, T, N, D].
        Every image is encoded on its own (no temporal mixing between frames)."""
        ...


@runtime_checkable
class WorldModel(FrameEncoder, Protocol):
    def rollout(self, z: torch.Tensor, state: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """z [1 or B, N, D] (from ``encode``), state [1 or B, 7], actions [B, H, 7]
        -> predicted embeddings [B, H, N, D] of the H frames after each action."""
        ...


@runtime_checkable
class ContextRollout(Protocol):
    """Optional, beside WorldModel's verbs: a world model that can run an observation's shared part once and
    reuse it. Planners check for it (``isinstance``) and use it when present (one context per plan, one
    ``rollout_from`` per iteration)."""

    def rollout_context(self, z: torch.Tensor, state: torch.Tensor, *, past_actions: torch.Tensor | None = None):
        """z [1, N, D] or [1, T0, N, D] (+ past_actions [1, T0 - 1, 7]), state [1, 7] or [1, T0, 7]
        -> an opaque context for ``rollout_from``."""
        ...

    def rollout_from(self, context, actions: torch.Tensor) -> torch.Tensor:
        """actions [B, H, 7] -> [B, H, N, D], equal to ``rollout`` from the same observation."""
        ...


@runtime_checkable
class RolloutWarmUp(Protocol):
    """Optional: a world model that prepares (e.g. compiles) its rollout for a planner's shapes before the
    first plan. Whoever builds a planner calls it once, before the robot moves."""

    def warm_up(self, batch_sizes: list[int], horizon: int, context_frames: int) -> float:
        """Prepare rollouts of these candidate counts x horizon from this many context frames; returns seconds spent."""
        ...


@runtime_checkable
class ReadsGripper(Protocol):
    """Optional: a world model that can tell from an image whether the hand is closed (a gripper readout).
    Planners read the goal image with it once per goal."""

    def gripper_closed(self, frames: Frames) -> torch.Tensor | None:
        """uint8 [H, W, 3] | [B, H, W, 3] -> [B] probability that the hand is closed; None without a readout."""
        ...
