"""V-JEPA pretraining: masks, clip sampling / augmentation, the step (EMA, loss), resume, export."""

import json

import numpy as np
import pytest
import torch
from synthetic_datasets import write_square_dataset

from vjepa_planning.worldmodel import checkpoints
from vjepa_planning.worldmodel.data.lerobot import LeRobotDataset
from vjepa_planning.worldmodel.masks import BlockMaskSpec, sample_batch_masks, sample_block_size, sample_mask
from vjepa_planning.worldmodel.pretrain import (
    MaskedPredictor,
    PretrainConfig,
    augment,
    build_pretrainer,
    ema_momentum,
    load_clip_memory,
    pretrain,
    sample_clips,
    warmup_cosine,
)

ENC = {"name": "vit_micro", "img_size": 32, "patch_size": 8, "tubelet_size": 2}  # 4 x 4 grid, 64-d
PRED = {"predictor_embed_dim": 32, "depth": 1, "num_heads": 2, "mlp_ratio": 2.0}


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: one thread is fastest


def make_dataset(root, episodes=4, length=10, size=32, seed=0):
    write_square_dataset(root, [length] * episodes, size=size, seed=seed, half=3, step=0.06)
    return LeRobotDataset(root)


# ----------------------------------------------------------------------------- masks


@pytest.mark.parametrize("spec", [BlockMaskSpec(8, (0.15, 0.15)), BlockMaskSpec(2, (0.7, 0.7))])
def test_masks_are_disjoint_cover_the_intended_fraction_and_span_time(spec):
    g = torch.Generator().manual_seed(0)
    grid = (2, 6, 6)
    fractions = []
    for _ in range(50):
        ctx, tgt = sample_batch_masks(16, grid, spec, g)
        assert ctx.shape[0] == tgt.shape[0] == 16 and ctx.shape[1] >= 1
        for c, t in zip(ctx, tgt):
            assert not set(c.tolist()) & set(t.tolist())  # context and target disjoint
            assert (c.diff() > 0).all() and (t.diff() > 0).all()  # sorted, no repeats
        fractions.append(1 - ctx.shape[1] / 72)  # share of tokens hidden from the context encoder
        m = sample_mask(grid, sample_block_size(grid, spec, g), spec.num_blocks, g)
        assert torch.equal(m[0], m[1])  # temporal_scale 1: every block covers all time steps
    assert 0.75 <= np.mean(fractions) <= 0.95


def test_block_size_follows_the_spatial_scale():
    g = torch.Generator().manual_seed(1)
    sizes = [sample_block_size((2, 16, 16), BlockMaskSpec(1, (0.25, 0.25)), g) for _ in range(100)]
    areas = [bh * bw / 256 for _, bh, bw in sizes]
    assert abs(np.mean(areas) - 0.25) < 0.03 and all(bt == 2 for bt, _, _ in sizes)


def test_schedules():
    assert warmup_cosine(0, 100, 10, 1e-4, 1e-3, 1e-5) == pytest.approx(1e-4)
    assert warmup_cosine(10, 100, 10, 1e-4, 1e-3, 1e-5) == pytest.approx(1e-3)
    assert warmup_cosine(100, 100, 10, 1e-4, 1e-3, 1e-5) == pytest.approx(1e-5)
    assert ema_momentum(0, 100, 0.996, 1.0) == 0.996 and ema_momentum(100, 100, 0.996, 1.0) == 1.0


# ----------------------------------------------------------------------------- data


def test_clip_memory_sampling_and_augmentation(tmp_path):
    ds = make_dataset(tmp_path / "d", episodes=3, length=5, size=40)
    mem = load_clip_memory(ds, "exterior", 32, progress=False)
    assert mem.frames.shape == (15, 32, 32, 3) and mem.frames.dtype == torch.uint8
    starts = mem.clip_starts(4)
    assert starts.tolist() == [0, 1, 5, 6, 10, 11]  # no clip crosses an episode boundary
    g = torch.Generator().manual_seed(0)
    clips = sample_clips(mem, starts, 64, 4, 1, 0.5, g)
    assert clips.shape == (64, 4, 32, 32, 3)
    still = [(c == c[0]).all().item() for c in clips]
    assert 10 < sum(still) < 54  # about half are one frame repeated
    x = augment(clips, g)
    assert x.shape == (64, 3, 4, 32, 32) and x.dtype == torch.float32
    y = augment(clips, g, scale=(1.0, 1.0), ratio=(1.0, 1.0))  # no crop: exactly the normalised frames
    ref = (clips[0, 0].float() / 255 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    torch.testing.assert_close(y[0, :, 0], ref.permute(2, 0, 1), atol=1e-5, rtol=1e-5)
    with pytest.raises(Exception, match="no camera 'wrist'"):
        load_clip_memory(ds, "wrist", 32, progress=False)


# ----------------------------------------------------------------------------- model and step


def test_masked_predictor_shapes_and_position_dependence():
    torch.manual_seed(0)
    p = MaskedPredictor(64, 32, 1, 2)
    ctx = torch.randn(2, 5, 64)
    ci, ti = torch.tensor([[0, 1, 2, 3, 4]] * 2), torch.tensor([[10, 20]] * 2)
    out = p(ctx, ci, ti, (2, 4, 4))
    assert out.shape == (2, 2, 64)
    out2 = p(ctx, ci, torch.tensor([[11, 21]] * 2), (2, 4, 4))
    assert not torch.allclose(out, out2)  # mask tokens differ only by their RoPE position


def test_step_moves_ema_and_loss_decreases(tmp_path):
    ds = make_dataset(tmp_path / "d", episodes=4, length=10)
    mem = load_clip_memory(ds, "exterior", 32, progress=False)
    cfg = PretrainConfig(steps=60, batch_size=16, lr=1e-3, start_lr=1e-3, warmup_steps=0, ema=(0.99, 1.0),
                         masks=(BlockMaskSpec(4, (0.2, 0.2)), BlockMaskSpec(1, (0.6, 0.6))))
    tr = build_pretrainer(ENC, PRED, cfg)
    t0 = {k: v.clone() for k, v in tr.target.state_dict().items()}
    starts = mem.clip_starts(4)
    losses, spreads = [], []
    for i in range(60):
        before_target = [p.clone() for p in tr.target.parameters()]
        info = tr.step(sample_clips(mem, starts, 16, 4, 1, 0.25, tr.generator))
        losses.append(info["loss"])
        spreads.append(info["target_spread"])
        if i == 0:  # one step: target = m * target + (1 - m) * encoder, exactly
            m = info["momentum"]
            for bt, pt, pe in zip(before_target, tr.target.parameters(), tr.encoder.parameters()):
                torch.testing.assert_close(pt, m * bt + (1 - m) * pe)
    assert all(not p.requires_grad for p in tr.target.parameters())
    moved = sum((tr.target.state_dict()[k] - t0[k]).abs().sum().item() for k in t0)
    assert moved > 0
    assert np.mean(losses[-10:]) < 0.6 * np.mean(losses[:5])
    assert spreads[-1] > 0.5 * spreads[0]  # the loss fell without the targets collapsing to one vector


def test_sigreg_target_trains_the_encoder_on_its_own_features_without_collapse(tmp_path):
    ds = make_dataset(tmp_path / "d", episodes=4, length=10)
    mem = load_clip_memory(ds, "exterior", 32, progress=False)
    cfg = PretrainConfig(steps=40, batch_size=16, lr=1e-3, start_lr=1e-3, warmup_steps=0, target="sigreg",
                         masks=(BlockMaskSpec(4, (0.2, 0.2)),))
    tr = build_pretrainer(ENC, PRED, cfg)
    assert tr.target is tr.encoder  # no EMA copy: the exported encoder is the trained one
    starts = mem.clip_starts(4)
    infos = [tr.step(sample_clips(mem, starts, 16, 4, 1, 0.25, tr.generator)) for _ in range(40)]
    assert all(np.isfinite(i["loss"]) and "sigreg" in i for i in infos)
    assert np.mean([i["sigreg"] for i in infos[-5:]]) < np.mean([i["sigreg"] for i in infos[:5]])
    assert infos[-1]["target_spread"] > 0.3  # the features stayed spread out
    with pytest.raises(ValueError, match="train.target must be ema or sigreg"):
        build_pretrainer(ENC, PRED, PretrainConfig(target="byol"))


def test_resume_equals_uninterrupted_and_exports_the_ema_encoder(tmp_path):
    ds = make_dataset(tmp_path / "d", episodes=3, length=8)
    mem = load_clip_memory(ds, "exterior", 32, progress=False)
    cfg = PretrainConfig(steps=12, batch_size=4, warmup_steps=2)
    a = build_pretrainer(ENC, PRED, cfg)
    sa = pretrain(a, mem, tmp_path / "ra", tmp_path / "a.safetensors", checkpoint_every=4, log_every=1, progress=False)
    assert sa["complete"] and sa["step"] == 12
    b = build_pretrainer(ENC, PRED, cfg)
    sb = pretrain(b, mem, tmp_path / "rb", tmp_path / "b.safetensors", checkpoint_every=4, log_every=1,
                  progress=False, max_steps_this_call=7)  # stops early, state saved at step 7
    assert not sb["complete"] and not (tmp_path / "b.safetensors").exists()
    other = build_pretrainer(ENC, PRED, PretrainConfig(steps=24, batch_size=4, warmup_steps=2))
    with pytest.raises(ValueError, match=r"train\.steps: 12 -> 24.*new run_dir"):  # another recipe: refused
        pretrain(other, mem, tmp_path / "rb", tmp_path / "b.safetensors", progress=False)
    # A fresh process: its weights and sampling noise start from the seed; the state replaces both.
    b = build_pretrainer(ENC, PRED, cfg)
    pretrain(b, mem, tmp_path / "rb", tmp_path / "b.safetensors", checkpoint_every=4, log_every=1, progress=False)
    for k, v in a.target.state_dict().items():
        assert torch.equal(v, b.target.state_dict()[k]), k
    steps = [json.loads(ln)["step"] for ln in (tmp_path / "rb" / "log.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 13))  # the loss log has each step once
    enc = checkpoints.load_module(tmp_path / "a.safetensors", kind="encoder")
    assert enc.img_size == 32 and enc.patch_size == 8
    for k, v in enc.state_dict().items():
        assert torch.equal(v, a.target.state_dict()[k])  # float32 by default: exact
    from vjepa_planning.worldmodel.pretrain import export_encoder

    export_encoder(a.target, tmp_path / "h.safetensors", {}, torch.float16)
    half = checkpoints.load_module(tmp_path / "h.safetensors", kind="encoder")
    assert all(v.dtype == torch.float16 and torch.equal(v, a.target.state_dict()[k].half())
               for k, v in half.state_dict().items())
    assert (tmp_path / "h.safetensors").stat().st_size < 0.6 * (tmp_path / "a.safetensors").stat().st_size
    _, meta = checkpoints.read_safetensors(tmp_path / "a.safetensors")
    assert meta["extra"]["trained_by"] == "pretrain-encoder"
