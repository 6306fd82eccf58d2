"""3D rotary position embedding (RoPE) with the V-JEPA 2 frequency layout.

Every attention head of size ``head_dim`` is split into three equal chunks of
``axis_dim = 2 * ((head_dim // 3) // 2)`` channels, rotated by the token's
time, height and width position respectively; the ``head_dim - 3 * axis_dim``
channels left over are not rotated (e.g. head_dim 64 -> 20/20/20 + 4 plain).

Inside one chunk of ``d`` channels the public V-JEPA 2 code uses the
frequencies ``omega_k = 10000 ** (-k / (d / 2))`` for ``k < d / 2`` and lays
the angle table out *tiled* (``[f_0 .. f_{d/2-1}, f_0 .. f_{d/2-1}]``), while
the rotation itself acts on *adjacent* pairs ``(x_{2i}, x_{2i+1}) ->
(-x_{2i+1}, x_{2i})``. So the two channels of a pair see two different
frequencies. Upstream keeps this on purpose (fixing it would break the
released weights), and we reproduce it exactly: ``channel_angles`` below is
where the layout lives.

A token without a spatial position (the AC predictor's action / state tokens)
uses height = width = 0, for which the rotation is the identity: exactly what
the official code does by rotating only their temporal chunk.

Tables are computed once per forward as ``cos, sin`` of shape ``[..., N, head_dim]``
and applied to ``q`` and ``k`` of shape ``[B, heads, N, head_dim]``. The sign of the
pair rotation is folded into the ``sin`` table (channel 2i gets -sin, 2i+1 gets +sin), so
applying RoPE is one pair swap and one fused multiply-add:
    rope(x) = x * cos + swap_pairs(x) * signed_sin
which equals upstream's x * cos + (-x_{2i+1}, x_{2i}) * sin (about 3x faster on CPU).
"""

from __future__ import annotations

import torch

ROPE_BASE = 10000.0


def rope_axis_dim(head_dim: int) -> int:
    """Channels rotated per axis (time, height, width): 2 * ((head_dim // 3) // 2)."""
    return 2 * ((head_dim // 3) // 2)


def channel_angles(pos: torch.Tensor, axis_dim: int) -> torch.Tensor:
    """Angles for one axis chunk with the official (tiled) layout.

    pos: [..., N] float positions -> [..., N, axis_dim] angles.
    """
    half = axis_dim // 2
    omega = torch.arange(half, dtype=torch.float32, device=pos.device) / half
    omega = 1.0 / ROPE_BASE**omega  # [half]  (float32, as upstream computes it)
    freq = pos.to(torch.float32).unsqueeze(-1) * omega  # [..., N, half]
    return torch.cat([freq, freq], dim=-1)  # [..., N, axis_dim]  (tiled, not interleaved)


def rope_tables(
    pos_t: torch.Tensor, pos_h: torch.Tensor, pos_w: torch.Tensor, head_dim: int, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos / signed-sin tables for 3D RoPE (see the module docstring).

    pos_t, pos_h, pos_w: [..., N] positions (same shape) -> (cos, signed_sin), each [..., N, head_dim].
    Channels past 3 * axis_dim get angle 0 (cos 1, sin 0: not rotated).
    """
    d = rope_axis_dim(head_dim)
    angles = [channel_angles(pos_t, d), channel_angles(pos_h, d), channel_angles(pos_w, d)]
    rest = head_dim - 3 * d
    if rest:
        angles.append(pos_t.new_zeros((*pos_t.shape, rest), dtype=torch.float32))
    theta = torch.cat(angles, dim=-1)  # [..., N, head_dim]
    sign = torch.tensor([-1.0, 1.0], device=theta.device).repeat(head_dim // 2)  # [head_dim]: -, +, -, + ...
    return theta.cos().to(dtype), (theta.sin() * sign).to(dtype)


def swap_pairs(x: torch.Tensor) -> torch.Tensor:
    """(x_0, x_1, x_2, x_3, ...) -> (x_1, x_0, x_3, x_2, ...) along the last dim."""
    return x.unflatten(-1, (-1, 2)).flip(-1).flatten(-2)  # [..., hd/2, 2] -> swapped -> [..., hd]


def apply_rope(x: torch.Tensor, cos: torch.Tensor, signed_sin: torch.Tensor) -> torch.Tensor:
    """x: [B, heads, N, hd]; tables from ``rope_tables``, broadcastable to x ([N, hd] or [B, 1, N, hd])."""
    return torch.addcmul(x * cos, swap_pairs(x), signed_sin)


def grid_positions(
    t: int, h: int, w: int, device: torch.device | str | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(time, height, width) index of every token of a t x h x w grid in raster order
    (time-major, then rows, then columns: the order of Conv3d(...).flatten(2)).
    Returns three float tensors of shape [t * h * w]."""
    ids = torch.arange(t * h * w, device=device)
    pos_t = ids // (h * w)
    pos_h = (ids % (h * w)) // w
    pos_w = ids % w
    return pos_t.float(), pos_h.float(), pos_w.float()
