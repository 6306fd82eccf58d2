"""MPPI: refit to an energy-weighted average of the best candidates (TD-MPC2 style: weights
exp(-(E - E_min) / temperature) over the elites)."""

from __future__ import annotations

import torch

from vjepa_planning.planners.base import SamplingPlanner


class MPPIPlanner(SamplingPlanner):
    def refit(self, samples: torch.Tensor, energy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        elite_idx = torch.topk(energy, self.cfg.num_elites, largest=False).indices
        elites, e = samples[elite_idx], energy[elite_idx]
        weights = torch.softmax(-(e - e.min()) / self.cfg.temperature, dim=0)  # [E]
        w = weights.view(-1, 1, 1)
        mean = (w * elites).sum(dim=0)
        std = torch.sqrt((w * (elites - mean) ** 2).sum(dim=0))
        return mean, std
