"""Multi-block spatio-temporal masks for V-JEPA pretraining.

A mask is drawn on the token grid (time / tubelet, height / patch, width / patch). A *mask
group* is the union of ``num_blocks`` rectangular blocks, each spanning a fraction
``spatial_scale`` of the spatial grid with an aspect ratio in ``aspect_ratio`` and a fraction
``temporal_scale`` of the time steps (1.0: the whole clip, so nothing masked can be copied
from a neighbouring frame). The union is the *target* (predicted) set; its complement is the
*context* the encoder sees. V-JEPA uses two groups per clip: many small blocks (8 x 0.15) and
a few large ones (2 x 0.7), together masking ~75-90 % of the tokens.

As in the public implementation, the block *size* is drawn once per batch (all samples of a
batch mask the same amount) and the block *positions* per sample; then every sample's context
and target sets are cut to the smallest count in the batch (a random subset, kept sorted) so
they stack into ``[B, K]`` index tensors. Context and target are disjoint by construction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class BlockMaskSpec:
    num_blocks: int
    spatial_scale: tuple[float, float]  # fraction of the h x w grid covered by one block
    aspect_ratio: tuple[float, float] = (0.75, 1.5)  # block height / width
    temporal_scale: tuple[float, float] = (1.0, 1.0)  # fraction of the time steps covered


def _uniform(lo: float, hi: float, g: torch.Generator) -> float:
    return lo + (hi - lo) * torch.rand((), generator=g).item()


def sample_block_size(grid: tuple[int, int, int], spec: BlockMaskSpec, g: torch.Generator) -> tuple[int, int, int]:
    """(bt, bh, bw) of one block for a (t, h, w) grid (at least 1, at most the grid)."""
    t, h, w = grid
    area = _uniform(*spec.spatial_scale, g) * h * w
    log_lo, log_hi = math.log(spec.aspect_ratio[0]), math.log(spec.aspect_ratio[1])
    ar = math.exp(_uniform(log_lo, log_hi, g))
    bh = min(h, max(1, round(math.sqrt(area * ar))))
    bw = min(w, max(1, round(math.sqrt(area / ar))))
    bt = min(t, max(1, round(_uniform(*spec.temporal_scale, g) * t)))
    return bt, bh, bw


def sample_mask(
    grid: tuple[int, int, int], block: tuple[int, int, int], num_blocks: int, g: torch.Generator
) -> torch.Tensor:
    """Union of ``num_blocks`` blocks of size ``block`` at random positions: bool [t, h, w], True = masked."""
    t, h, w = grid
    bt, bh, bw = block
    mask = torch.zeros(t, h, w, dtype=torch.bool)
    for _ in range(num_blocks):
        t0 = int(torch.randint(0, t - bt + 1, (), generator=g))
        i0 = int(torch.randint(0, h - bh + 1, (), generator=g))
        j0 = int(torch.randint(0, w - bw + 1, (), generator=g))
        mask[t0 : t0 + bt, i0 : i0 + bh, j0 : j0 + bw] = True
    return mask


def _random_subset(idx: torch.Tensor, k: int, g: torch.Generator) -> torch.Tensor:
    """k of the indices ``idx`` at random, sorted."""
    if idx.numel() == k:
        return idx
    pick = torch.randperm(idx.numel(), generator=g)[:k]
    return idx[pick].sort().values


def sample_batch_masks(
    batch: int,
    grid: tuple[int, int, int],
    spec: BlockMaskSpec,
    g: torch.Generator,
    min_context: int = 1,
    max_tries: int = 20,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Context and target token indices (raster order over the grid) for one mask group.

    Returns (context [B, Kc], target [B, Kt]) int64, each row sorted; rows are disjoint.
    A sample whose union leaves fewer than ``min_context`` tokens visible is redrawn.
    """
    block = sample_block_size(grid, spec, g)
    contexts, targets = [], []
    for _ in range(batch):
        for _ in range(max_tries):
            mask = sample_mask(grid, block, spec.num_blocks, g).flatten()  # [N]
            if (~mask).sum() >= min_context:
                break
        else:  # blocks too large for this grid: keep a random token visible
            mask[torch.randint(0, mask.numel(), (min_context,), generator=g)] = False
        contexts.append((~mask).nonzero().squeeze(1))
        targets.append(mask.nonzero().squeeze(1))
    kc = min(c.numel() for c in contexts)
    kt = min(t.numel() for t in targets)
    context = torch.stack([_random_subset(c, kc, g) for c in contexts])  # [B, Kc]
    target = torch.stack([_random_subset(t, kt, g) for t in targets])  # [B, Kt]
    return context, target


# The two V-JEPA mask groups (short-range: many small blocks; long-range: two large ones).
VJEPA_MASKS = (
    BlockMaskSpec(num_blocks=8, spatial_scale=(0.15, 0.15)),
    BlockMaskSpec(num_blocks=2, spatial_scale=(0.7, 0.7)),
)
