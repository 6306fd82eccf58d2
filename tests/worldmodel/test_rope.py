"""3D RoPE tables: layout, identity at position 0, positions of the token grid."""

import torch

from vjepa_planning.worldmodel.rope import apply_rope, channel_angles, grid_positions, rope_axis_dim, rope_tables


def test_axis_dim_matches_upstream_formula():
    assert rope_axis_dim(64) == 20  # 3 x 20 rotated + 4 plain
    assert rope_axis_dim(88) == 28  # 88 = head size of a 1408-wide model with 16 heads
    assert rope_axis_dim(32) == 10


def test_channel_angles_are_tiled_not_interleaved():
    ang = channel_angles(torch.tensor([2.0]), 8)[0]  # [8]
    omega = 1.0 / 10000 ** (torch.arange(4) / 4.0)
    torch.testing.assert_close(ang, torch.cat([2 * omega, 2 * omega]))


def test_position_zero_is_identity_and_rest_is_unrotated():
    x = torch.randn(2, 3, 5, 64)
    zeros = torch.zeros(5)
    cos, sin = rope_tables(zeros, zeros, zeros, 64, x.dtype)
    torch.testing.assert_close(apply_rope(x, cos, sin), x)
    pos = torch.arange(5.0)
    cos, sin = rope_tables(pos, pos, pos, 64, x.dtype)
    torch.testing.assert_close(apply_rope(x, cos, sin)[..., 60:], x[..., 60:])  # 64 - 3 * 20 plain channels


def test_grid_positions_raster_order():
    t, h, w = grid_positions(2, 3, 4)
    assert t.tolist() == [0] * 12 + [1] * 12
    assert h.tolist()[:12] == [0] * 4 + [1] * 4 + [2] * 4
    assert w.tolist()[:5] == [0, 1, 2, 3, 0]


def test_apply_rope_equals_pairwise_rotation_with_tiled_angles():
    """Written out channel by channel: out[2i] = x[2i] cos(a_2i) - x[2i+1] sin(a_2i),
    out[2i+1] = x[2i+1] cos(a_2i+1) + x[2i] sin(a_2i+1), a = the tiled per-axis angles."""
    hd = 40  # axis chunks of 12 + 4 plain channels
    x = torch.randn(1, 1, 6, hd, dtype=torch.float64)
    pt, ph, pw = torch.arange(6.0), torch.arange(6.0) % 3, torch.arange(6.0) % 2
    a = torch.cat([channel_angles(pt, 12), channel_angles(ph, 12), channel_angles(pw, 12), torch.zeros(6, 4)], -1)
    a = a.double()
    ref = torch.empty_like(x)
    ref[..., 0::2] = x[..., 0::2] * a[:, 0::2].cos() - x[..., 1::2] * a[:, 0::2].sin()
    ref[..., 1::2] = x[..., 1::2] * a[:, 1::2].cos() + x[..., 0::2] * a[:, 1::2].sin()
    cos, sin = rope_tables(pt, ph, pw, hd, torch.float64)
    torch.testing.assert_close(apply_rope(x, cos, sin), ref, atol=1e-6, rtol=1e-6)
