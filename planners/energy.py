"""Planning energy: L1 distance between predicted and goal embeddings (both layer-normed by the world model).

By default only the final predicted frame counts (V-JEPA 2-AC); `all_steps` sums over every predicted
step instead, which rewards getting close early (EB-JEPA reports a few points better)."""

from __future__ import annotations

import torch


def l1_energy(predicted: torch.Tensor, goal: torch.Tensor, all_steps: bool = False) -> torch.Tensor:
    """predicted [K, H, N, D], goal [1 or K, N, D] -> energy [K] (float32, lower is better)."""
    goal = goal.unsqueeze(1)  # [K|1, 1, N, D]
    if all_steps:
        return (predicted - goal).abs().float().mean(dim=(2, 3)).sum(dim=1)
    return (predicted[:, -1:] - goal).abs().float().mean(dim=(1, 2, 3))
