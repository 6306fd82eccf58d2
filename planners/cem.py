"""Cross-entropy method: refit a diagonal Gaussian to the lowest-energy candidates."""

from __future__ import annotations

import torch

from vjepa_planning.planners.base import SamplingPlanner


class CEMPlanner(SamplingPlanner):
    def refit(self, samples: torch.Tensor, energy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        elite_idx = torch.topk(energy, self.cfg.num_elites, largest=False).indices
        elites = samples[elite_idx]  # [E, H, 7]
        return elites.mean(dim=0), elites.std(dim=0, unbiased=False)
