"""LeWorldModel: SIGReg on known distributions, the model's cached rollout against a full recompute, its file
round trip and protocol, and training (loss going down, bit-identical resume, refusing a collapse)."""

import json

import numpy as np
import pytest
import torch
from synthetic_datasets import write_square_dataset

from vjepa_planning.worldmodel import checkpoints
from vjepa_planning.worldmodel.data.lerobot import LeRobotDataset
from vjepa_planning.worldmodel.lewm.model import LeWM, LeWMWorldModel
from vjepa_planning.worldmodel.lewm.sigreg import collapse_diagnostics, epps_pulley, random_directions, sigreg
from vjepa_planning.worldmodel.lewm.train import EmbeddingCollapse, LeWMTrainConfig, build_trainer, curvature, train_lewm
from vjepa_planning.worldmodel.pretrain import load_clip_memory
from vjepa_planning.worldmodel.protocol import ContextRollout

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = dict(patch_size=8, encoder_width=32, encoder_depth=2, encoder_heads=2, embed_dim=16, proj_hidden=32,
            predictor_width=32, predictor_depth=2, predictor_heads=2)


# ----------------------------------------------------------------------------- SIGReg


def test_sigreg_is_small_on_gaussian_samples_and_large_on_collapsed_or_anisotropic_ones():
    g = torch.Generator().manual_seed(0)
    n, d = 1024, 32
    gauss = torch.randn(n, d, generator=g)
    cases = {
        "collapsed to a point": torch.zeros(n, d) + 0.01 * torch.randn(n, d, generator=g),
        "on a line": torch.randn(n, 1, generator=g) * torch.ones(1, d),
        "anisotropic": gauss * torch.linspace(0.2, 2.0, d),
        "shifted": gauss + 1.0,
    }
    base = float(sigreg(gauss, generator=torch.Generator().manual_seed(1)))
    assert base < 3.0  # O(1) under the null, whatever n
    for name, z in cases.items():
        assert float(sigreg(z, generator=torch.Generator().manual_seed(1))) > 5 * base, name


def test_epps_pulley_grows_with_the_sample_size_only_off_the_null():
    g = torch.Generator().manual_seed(0)
    null = [float(epps_pulley(torch.randn(n, 64, generator=g)).mean()) for n in (256, 4096)]
    off = [float(epps_pulley(1.5 * torch.randn(n, 64, generator=g)).mean()) for n in (256, 4096)]
    assert abs(null[1] - null[0]) < 0.5  # the statistic's null distribution does not depend on n
    assert off[1] > 10 * off[0] > 0  # a wrong scale is seen ~n times more clearly
    uniform = (torch.rand(4096, 1, generator=g) - 0.5) * 12**0.5  # unit variance, but not Gaussian
    assert float(epps_pulley(uniform)) > 10 * null[1]


def test_sigreg_gradient_spreads_a_narrow_cloud():
    z = (0.3 * torch.randn(512, 8, generator=torch.Generator().manual_seed(0))).requires_grad_()
    d = random_directions(8, 64, torch.Generator().manual_seed(1))
    sigreg(z, directions=d).backward()
    # descending the statistic moves every sample away from the centre (towards unit variance)
    assert float((z.grad * z).sum(dim=1).lt(0).float().mean()) > 0.9


def test_collapse_diagnostics():
    iso = collapse_diagnostics(torch.randn(4096, 16))
    line = collapse_diagnostics(torch.randn(4096, 1) * torch.ones(1, 16))
    assert iso["effective_rank"] > 15 and abs(iso["std_mean"] - 1) < 0.05
    assert line["effective_rank"] < 1.01


# ----------------------------------------------------------------------------- model


def _model(seed=0, modulation="per_block") -> LeWM:
    torch.manual_seed(seed)
    m = LeWM(img_size=32, modulation=modulation, **TINY)
    with torch.no_grad():  # the zero-initialised gates would make every action look alike
        for p in m.predictor.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return m.eval()


@pytest.mark.parametrize("modulation", ["per_block", "shared"])
def test_cached_rollout_equals_a_full_recompute_of_the_history(modulation):
    wm = LeWMWorldModel(_model(modulation=modulation))
    assert isinstance(wm, ContextRollout)
    frames = np.random.default_rng(0).integers(0, 255, (4, 32, 32, 3), dtype=np.uint8)
    z = wm.encode(frames)[None]  # [1, 4, 1, D]
    assert z.shape == (1, 4, 1, 16)
    past = 0.02 * torch.randn(1, 3, 7)
    actions = 0.02 * torch.randn(8, 2, 7)
    cached = wm.rollout(z, None, actions, past_actions=past)  # [8, 2, 1, D]
    reference = wm.rollout(z, None, actions, past_actions=past, full_recompute=True)
    assert cached.shape == (8, 2, 1, 16)
    torch.testing.assert_close(cached, reference, atol=1e-5, rtol=1e-5)
    per_candidate = wm.rollout(z.expand(8, -1, -1, -1), None, actions, past_actions=past.expand(8, -1, -1))
    torch.testing.assert_close(per_candidate, cached, atol=1e-5, rtol=1e-5)
    other = wm.rollout(z, None, actions.flip(0), past_actions=past)
    assert not torch.allclose(other, cached)  # the actions matter


def test_shared_modulation_is_one_linear_for_all_blocks():
    per_block, shared = _model().predictor, _model(modulation="shared").predictor
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    W, depth = 32, 2
    # depth Linear(W, 6W) become one, plus a 6W table per block
    assert n(per_block) - n(shared) == depth * (6 * W * W + 6 * W) - (6 * W * W + 6 * W) - depth * 6 * W
    assert all(not hasattr(b, "modulation") and b.table.shape == (6 * W,) for b in shared.blocks)
    fresh = LeWM(img_size=32, modulation="shared", **TINY).predictor  # zero gates: the identity of the input map
    assert torch.count_nonzero(fresh.shared_modulation.weight) == 0
    with pytest.raises(ValueError, match="modulation 'film'"):
        LeWM(img_size=32, modulation="film", **TINY)


def test_file_round_trip_keeps_weights_and_action_statistics(tmp_path):
    m = _model()
    m.predictor.action_std.fill_(0.5)
    path = tmp_path / "lewm.safetensors"
    checkpoints.save_module(m, path, extra={"camera": "workspace"})
    back = LeWMWorldModel.from_safetensors(path).model
    for k, v in m.state_dict().items():
        assert torch.equal(back.state_dict()[k], v), k
    assert checkpoints.read_metadata(path)["kind"] == "lewm"
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 0xFF  # one flipped byte in the weights
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="content hash"):
        LeWMWorldModel.from_safetensors(path)


def test_cem_plans_with_lewm():
    from vjepa_planning.planners import PlannerConfig, make_planner

    wm = LeWMWorldModel(_model())
    frames = np.random.default_rng(1).integers(0, 255, (2, 32, 32, 3), dtype=np.uint8)
    z0, goal = wm.encode(frames[:1]), wm.encode(frames[1:])
    planner = make_planner("cem", wm, PlannerConfig(horizon=2, num_samples=16, iterations=2, num_elites=4))
    result = planner.plan(z0, torch.zeros(1, 7), goal)
    assert result.actions.shape == (2, 7) and torch.isfinite(result.actions).all()
    assert result.actions[:, :3].abs().max() <= 0.05 + 1e-6


# ----------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def memories(tmp_path_factory):
    root = tmp_path_factory.mktemp("squares")
    write_square_dataset(root, [12] * 6, size=32, seed=0, half=4, step=0.08)
    ds = LeRobotDataset(root)
    return (load_clip_memory(ds, "exterior", 32, ds.episode_indices[:5], progress=False, with_actions=True),
            load_clip_memory(ds, "exterior", 32, ds.episode_indices[5:], progress=False, with_actions=True))


def _cfg(**kw) -> LeWMTrainConfig:
    return LeWMTrainConfig(**{"steps": 12, "batch_size": 6, "num_frames": 4, "warmup_steps": 2, "collapse_after": 1000, **kw})


def test_memory_keeps_the_actions_aligned_with_the_frames(memories):
    train, _ = memories
    assert train.actions.shape == (train.num_frames, 7)
    last = train.starts + train.lengths - 1
    assert torch.all(train.actions[last] == 0)  # the writer's episodes end without an action


def test_training_lowers_the_loss_validates_and_writes_the_model(memories, tmp_path):
    train, val = memories
    trainer = build_trainer(TINY, _cfg(steps=40), train)
    s = train_lewm(trainer, train, tmp_path / "run", tmp_path / "m.safetensors", val_memory=val, log_every=5,
                   progress=False)
    rows = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert s["complete"] and rows[-1]["loss"] < rows[0]["loss"]
    assert {"pred_loss", "sigreg", "std_mean", "effective_rank"} <= set(rows[-1])
    assert s["validation"]["clips"] > 0 and np.isfinite(s["validation"]["model"])
    wm = LeWMWorldModel.from_safetensors(tmp_path / "m.safetensors")
    assert torch.equal(wm.model.predictor.action_std, trainer.model.predictor.action_std)
    assert wm.encode(val.frames[:3].numpy()).shape == (3, 1, 16)


def test_a_killed_run_resumes_bit_identically(memories, tmp_path):
    train, _ = memories
    whole = build_trainer(TINY, _cfg(), train)
    train_lewm(whole, train, tmp_path / "a", progress=False, checkpoint_every=4)
    part = build_trainer(TINY, _cfg(), train)
    train_lewm(part, train, tmp_path / "b", progress=False, checkpoint_every=4, max_steps_this_call=5)
    resumed = build_trainer(TINY, _cfg(), train)  # a fresh process: state only from run_dir/state.pt
    s = train_lewm(resumed, train, tmp_path / "b", progress=False, checkpoint_every=4)
    assert s["complete"]
    for k, v in whole.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[k], v), k
    with pytest.raises(ValueError, match="other settings"):
        train_lewm(build_trainer(TINY, _cfg(lr=1e-3), train), train, tmp_path / "b", progress=False)


def test_a_collapsing_run_is_refused_with_the_figures(memories, tmp_path):
    train, _ = memories
    trainer = build_trainer(TINY, _cfg(collapse_after=3, min_effective_rank=1000.0), train)
    with pytest.raises(EmbeddingCollapse, match=r"collapsed at step 3 \(effective rank"):
        train_lewm(trainer, train, tmp_path / "run", tmp_path / "m.safetensors", progress=False)
    assert not (tmp_path / "m.safetensors").exists() and (tmp_path / "run" / "state.pt").exists()


def test_curvature_is_zero_on_straight_paths_and_grows_as_they_turn():
    d = torch.randn(2, 1, 8, generator=torch.Generator().manual_seed(0))
    speeds = torch.tensor([0.0, 1.0, 3.0, 3.5, 7.0])[None, :, None]  # uneven speed along one line
    assert curvature(d * speeds + 5.0) < 1e-5
    turn = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]])  # a right angle
    back = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]]])  # doubles back
    assert curvature(turn) == pytest.approx(1.0) and curvature(back) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="at least 3 frames"):
        _cfg(num_frames=2, straightness_weight=0.1)


def test_the_straightness_term_straightens_the_latent_paths(memories, tmp_path):
    train, val = memories
    bends = {}
    for w in (0.0, 1.0):
        trainer = build_trainer(TINY, _cfg(steps=40, straightness_weight=w), train)
        s = train_lewm(trainer, train, tmp_path / f"run{w}", val_memory=val, progress=False, log_every=5)
        rows = [json.loads(x) for x in (tmp_path / f"run{w}" / "log.jsonl").read_text().splitlines()]
        assert np.isfinite(s["validation"]["curvature"])
        bends[w] = np.mean([r["curvature"] for r in rows[-4:]])  # the training batches' paths
    assert bends[1.0] < 0.75 * bends[0.0], bends
