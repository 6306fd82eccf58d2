"""Equivalence with the official V-JEPA 2 model code, as packaged on PyPI by ``cc-vjepa2``
(import name ``vjepa2``; its ``models/ac_predictor.py``, ``models/vision_transformer.py`` and
``models/utils/modules.py`` match facebookresearch/vjepa2). Install for these tests:

    pip install --no-deps cc-vjepa2 && pip install einops

(``--no-deps``: its declared torchvision / timm requirements would replace the CPU torch. The
modules we use need timm only for ``drop_path``, which is shimmed below when timm is absent.)
"""

import importlib
import sys
import types
from contextlib import contextmanager
from functools import partial

import pytest
import torch
import torch.nn.functional as F

from vjepa_planning.worldmodel.checkpoints import load_official_encoder, load_official_predictor, load_strict
from vjepa_planning.worldmodel.encoder import build_encoder
from vjepa_planning.worldmodel.predictor import ACPredictor
from vjepa_planning.worldmodel.state_math import integrate_state


@contextmanager
def _timm_drop_path_shim():
    """Make ``from timm.models.layers import drop_path`` work while importing vjepa2 (only if timm
    itself cannot be imported); the shim is removed from sys.modules afterwards."""
    try:
        import timm.models.layers  # noqa: F401

        yield
        return
    except Exception:
        pass
    saved = {k: sys.modules.get(k) for k in ("timm", "timm.models", "timm.models.layers")}
    timm, models, layers = (types.ModuleType(n) for n in saved)

    def drop_path(x, drop_prob=0.0, training=False):
        if drop_prob and training:
            raise NotImplementedError("timm shim: drop_path > 0 is not available in these tests")
        return x

    layers.drop_path, timm.models, models.layers = drop_path, models, layers
    sys.modules.update({"timm": timm, "timm.models": models, "timm.models.layers": layers})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def _import_official():
    try:
        with _timm_drop_path_shim():
            acp = importlib.import_module("vjepa2.models.ac_predictor")
            vit = importlib.import_module("vjepa2.models.vision_transformer")
        return acp, vit
    except Exception as err:  # not installed, or its import chain needs something missing
        pytest.skip(f"official V-JEPA 2 code not importable (pip install --no-deps cc-vjepa2 einops): {err!r}")


@pytest.fixture(scope="module")
def official():
    return _import_official()


def _randomise(module: torch.nn.Module, std: float, seed: int = 0) -> None:
    """Every parameter random (LayerNorm gains around 1), so no term of the computation is trivial."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            gain = 1.0 if "norm" in name and name.endswith("weight") else 0.0
            p.copy_(torch.randn(p.shape, generator=g) * std + gain)


@contextmanager
def _meta_device(monkeypatch):
    """Build official modules on the meta device: their stochastic-depth schedule calls
    torch.linspace(...).item(), so that one call is kept on the CPU."""
    linspace = torch.linspace
    monkeypatch.setattr(torch, "linspace", lambda *a, **k: linspace(*a, **{**k, "device": "cpu"}))
    with torch.device("meta"):
        yield
    monkeypatch.undo()


def _official_encoder(vit, img_size: int, patch_size: int, num_frames: int):
    """A small official RoPE encoder: 120 wide, 3 heads of 40 (3 x 12 rotated + 4 plain channels)."""
    return vit.VisionTransformer(
        img_size=(img_size, img_size),
        patch_size=patch_size,
        num_frames=num_frames,
        tubelet_size=2,
        embed_dim=120,
        depth=3,
        num_heads=3,
        mlp_ratio=4,
        qkv_bias=True,
        norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
        use_rope=True,
    )


def _official_predictor(acp, grid=(4, 6), use_extrinsics=False):
    ref = acp.vit_ac_predictor(
        img_size=(16 * grid[0], 16 * grid[1]),
        patch_size=16,
        num_frames=16,
        tubelet_size=2,
        embed_dim=40,
        predictor_embed_dim=64,
        depth=3,
        num_heads=2,
        use_extrinsics=use_extrinsics,
    ).eval()
    _randomise(ref, 0.2)
    return ref


@pytest.mark.parametrize("grid", [(4, 4), (4, 6)])
def test_ac_predictor_matches_official_forward(official, grid):
    acp, _ = official
    ref = _official_predictor(acp, grid)
    ours = ACPredictor(embed_dim=40, predictor_embed_dim=64, depth=3, num_heads=2, grid_size=grid).eval()
    load_strict(ours, ref.state_dict())  # same parameter names, strict
    g = torch.Generator().manual_seed(1)
    B, T, N = 2, 3, grid[0] * grid[1]
    z, a, s = (
        torch.randn(B, T * N, 40, generator=g),
        torch.randn(B, T, 7, generator=g),
        torch.randn(B, T, 7, generator=g),
    )
    with torch.no_grad():
        torch.testing.assert_close(ours(z, a, s), ref(z, a, s), atol=1e-5, rtol=1e-5)


def test_ac_predictor_with_extrinsics_matches_official(official):
    acp, _ = official
    ref = _official_predictor(acp, (4, 4), use_extrinsics=True)
    ours = ACPredictor(embed_dim=40, predictor_embed_dim=64, depth=3, num_heads=2, grid_size=4, use_extrinsics=True)
    load_strict(ours, ref.state_dict())
    g = torch.Generator().manual_seed(2)
    z, a, s, e = (
        torch.randn(2, 2 * 16, 40, generator=g),
        torch.randn(2, 2, 7, generator=g),
        torch.randn(2, 2, 7, generator=g),
        torch.randn(2, 2, 6, generator=g),
    )
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(z, a, s, e), ref(z, a, s, e), atol=1e-5, rtol=1e-5)


def test_rollout_matches_official_planner_loop(official):
    """The public planner's step_predictor loop (whole history every step, LN feedback, pose update)
    run on the official module == our KV-cached rollout."""
    acp, _ = official
    ref = _official_predictor(acp, (4, 4))
    ours = load_strict(
        ACPredictor(embed_dim=40, predictor_embed_dim=64, depth=3, num_heads=2, grid_size=4), ref.state_dict()
    ).eval()
    g = torch.Generator().manual_seed(3)
    S, H, N = 6, 3, 16
    z0 = F.layer_norm(torch.randn(1, 1, N, 40, generator=g), (40,))
    s0 = torch.rand(1, 1, 7, generator=g)
    actions = torch.randn(S, H, 7, generator=g) * 0.05
    with torch.no_grad():
        frames, poses = z0.repeat(S, 1, 1, 1), s0.repeat(S, 1, 1)  # [S, T, N, D], [S, T, 7]
        for h in range(H):
            nxt = ref(frames.flatten(1, 2), actions[:, : h + 1], poses)[:, -N:]
            nxt = F.layer_norm(nxt, (40,)).view(S, 1, N, 40)
            frames = torch.cat([frames, nxt], 1)
            poses = torch.cat([poses, integrate_state(poses[:, -1:], actions[:, h : h + 1])], 1)
        cached = ours.rollout(z0[:, 0], s0[:, 0], actions)
    torch.testing.assert_close(cached, frames[:, 1:], atol=2e-5, rtol=2e-5)


def test_encoder_matches_official_including_masks_and_nonsquare(official):
    _, vit = official
    ref = _official_encoder(vit, img_size=32, patch_size=8, num_frames=4).eval()
    _randomise(ref, 0.1)
    ckpt = {"encoder": {f"module.backbone.{k}": v for k, v in ref.state_dict().items()}}  # official key style
    ours = load_official_encoder(ckpt, img_size=32, num_heads=3).eval()
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 3, 4, 32, 48, generator=g)  # non-square input
    keep = torch.stack([torch.randperm(48, generator=g)[:20] for _ in range(2)])
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ours(x, keep=keep), ref(x, masks=keep), atol=1e-5, rtol=1e-5)


def test_official_checkpoint_dict_with_prefixes_loads_strictly(official):
    """An official-style 2-AC file: encoder (module.backbone., with an unused pos_embed) + predictor (module.)."""
    acp, vit = official
    enc = _official_encoder(vit, img_size=32, patch_size=16, num_frames=2)
    pred = _official_predictor(acp, (2, 2))
    enc_sd = {f"module.backbone.{k}": v for k, v in enc.state_dict().items()}
    enc_sd["module.backbone.pos_embed"] = torch.zeros(1, 4, 120)
    ckpt = {
        "encoder": enc_sd,
        "predictor": {f"module.{k}": v for k, v in pred.state_dict().items()},
        "opt": {},
        "epoch": 3,
    }
    ours_enc = load_official_encoder(ckpt, img_size=32, num_heads=3)
    ours_pred = load_official_predictor(ckpt, grid_size=2, num_heads=2)
    assert ours_enc.arch["depth"] == 3 and ours_enc.arch["embed_dim"] == 120
    assert ours_pred.arch["predictor_embed_dim"] == 64 and ours_pred.arch["depth"] == 3
    torch.testing.assert_close(
        ours_pred.state_dict()["predictor_proj.weight"], pred.state_dict()["predictor_proj.weight"]
    )


@pytest.mark.parametrize(
    "ours_name, ref_fn", [("vit_large", "vit_large"), ("vit_huge", "vit_huge"), ("vit_giant", "vit_giant_xformers")]
)
def test_released_sizes_have_official_parameter_names_and_shapes(official, monkeypatch, ours_name, ref_fn):
    _, vit = official
    with _meta_device(monkeypatch):
        ref = getattr(vit, ref_fn)(img_size=(256, 256), num_frames=64, use_rope=True)
        ours = build_encoder(ours_name)
    ref_shapes = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    assert ref_shapes == {k: tuple(v.shape) for k, v in ours.state_dict().items()}


def test_official_ac_predictor_size_has_official_names_and_shapes(official, monkeypatch):
    acp, _ = official
    with _meta_device(monkeypatch):
        ref = acp.vit_ac_predictor(img_size=(256, 256), patch_size=16, num_frames=4, tubelet_size=2, embed_dim=1408)
        ours = ACPredictor(embed_dim=1408, grid_size=16)
    assert {k: tuple(v.shape) for k, v in ref.state_dict().items()} == {
        k: tuple(v.shape) for k, v in ours.state_dict().items()
    }
