"""Encoder: every registry size builds with the right parameter count; shapes, masking, errors."""

import pytest
import torch

from vjepa_planning.worldmodel.encoder import VIT_SIZES, build_encoder


def expected_params(D: int, depth: int, mlp_ratio: float, patch: int = 16, tubelet: int = 2, chans: int = 3) -> int:
    M = int(D * mlp_ratio)
    patch_embed = D * chans * tubelet * patch * patch + D
    block = 4 * D + (3 * D * D + 3 * D) + (D * D + D) + (D * M + M) + (M * D + D)
    return patch_embed + depth * block + 2 * D


@pytest.mark.parametrize("name", sorted(VIT_SIZES))
def test_every_size_builds_with_expected_param_count(name):
    s = VIT_SIZES[name]
    with torch.device("meta"):  # no real allocation, even for ViT-g
        model = build_encoder(name)
    n = sum(p.numel() for p in model.parameters())
    assert n == expected_params(s.embed_dim, s.depth, s.mlp_ratio)
    assert len(model.blocks) == s.depth and model.blocks[0].mlp.fc1.out_features == int(s.embed_dim * s.mlp_ratio)


def test_released_sizes_have_the_published_parameter_counts():
    counts = {}
    with torch.device("meta"):
        for name in ("vit_large", "vit_huge", "vit_giant"):
            counts[name] = sum(p.numel() for p in build_encoder(name).parameters())
    assert counts == {"vit_large": 303_885_312, "vit_huge": 631_648_000, "vit_giant": 1_012_173_952}  # 0.3B/0.6B/1B


def test_forward_shapes_with_configurable_geometry():
    enc = build_encoder("vit_micro", patch_size=8, img_size=64).eval()
    x = torch.randn(2, 3, 4, 64, 48)
    assert enc(x).shape == (2, 2 * 8 * 6, 64)
    assert enc.tokens_per_frame == 64
    enc16 = build_encoder("vit_micro", patch_size=16, tubelet_size=1, img_size=32)
    assert enc16(torch.randn(1, 3, 3, 32, 32)).shape == (1, 3 * 2 * 2, 64)


def test_keep_indices_select_tokens_with_their_own_positions():
    """Keeping every token in a permuted order permutes the (attention is permutation-equivariant) output."""
    torch.manual_seed(0)
    enc = build_encoder("vit_micro", patch_size=8, img_size=32).eval()
    x = torch.randn(2, 3, 2, 32, 32)
    full = enc(x)  # [2, 16, 64]
    perm = torch.stack([torch.randperm(16), torch.randperm(16)])
    out = enc(x, keep=perm)
    torch.testing.assert_close(out, torch.gather(full, 1, perm[..., None].expand(-1, -1, 64)), atol=1e-5, rtol=1e-5)
    assert enc(x, keep=perm[:, :5]).shape == (2, 5, 64)


@pytest.mark.parametrize("shape", [(1, 3, 2, 30, 32), (1, 3, 3, 32, 32), (1, 4, 2, 32, 32), (3, 2, 32, 32)])
def test_bad_input_shapes_are_reported(shape):
    enc = build_encoder("vit_micro", patch_size=8, img_size=32)
    with pytest.raises(ValueError, match=r"encoder input .*" + r"\(" + ", ".join(map(str, shape)) + r"\)"):
        enc(torch.zeros(shape))


def test_unknown_size_lists_known_ones():
    with pytest.raises(KeyError, match="vit_giant"):
        build_encoder("vit_enormous")
