"""World model behind the planner protocol: encode / rollout shapes, normalisation, files, dtype."""

import numpy as np
import pytest
import torch

from vjepa_planning.worldmodel import checkpoints as ck
from vjepa_planning.worldmodel.encoder import build_encoder
from vjepa_planning.worldmodel.predictor import build_predictor
from vjepa_planning.worldmodel.protocol import FrameEncoder, WorldModel
from vjepa_planning.worldmodel.world_model import VJEPAFrameEncoder, VJEPAWorldModel


@pytest.fixture(scope="module")
def modules():
    torch.manual_seed(0)
    enc = build_encoder("vit_micro", patch_size=8, img_size=32)  # 4 x 4 = 16 patches of width 64
    pred = build_predictor("ac_micro", embed_dim=64, grid_size=4)
    return enc, pred


def frames(*lead):
    return np.random.default_rng(0).integers(0, 256, size=(*lead, 40, 50, 3), dtype=np.uint8)


def test_satisfies_the_protocols(modules):
    wm = VJEPAWorldModel.from_modules(*modules)
    assert isinstance(wm, WorldModel) and isinstance(wm.encoder, FrameEncoder)


def test_encode_shapes_and_layer_norm(modules):
    wm = VJEPAWorldModel.from_modules(*modules)
    z = wm.encode(frames())
    assert z.shape == (1, 16, 64)
    torch.testing.assert_close(z.mean(-1), torch.zeros(1, 16), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.var(-1, unbiased=False), torch.ones(1, 16), atol=1e-3, rtol=0)
    assert wm.encode(frames(3)).shape == (3, 16, 64)
    assert wm.encode(torch.from_numpy(frames(2, 3))).shape == (2, 3, 16, 64)
    torch.testing.assert_close(wm.encode(frames(3))[1], wm.encode(frames(3)[1])[0], atol=1e-5, rtol=1e-5)


def test_encode_equals_manual_pipeline(modules):
    enc, _ = modules
    img = frames()
    x = torch.from_numpy(img[:, 5:45].astype(np.float32) / 255.0).permute(2, 0, 1)[None]  # centre crop, [1, 3, 40, 40]
    x = torch.nn.functional.interpolate(x, size=(32, 32), mode="bilinear", antialias=True)
    x = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(
        1, 3, 1, 1
    )
    with torch.no_grad():
        ref = torch.nn.functional.layer_norm(enc(x[:, :, None].repeat(1, 1, 2, 1, 1)), (64,))
    torch.testing.assert_close(VJEPAWorldModel.from_modules(*modules).encode(img), ref, atol=1e-5, rtol=1e-5)


def test_rollout_shapes_chunking_and_no_grad(modules):
    wm = VJEPAWorldModel.from_modules(*modules)
    z = wm.encode(frames())
    state = torch.tensor([[0.5, 0.0, 0.3, 3.1, 0.0, 0.0, 0.0]])
    actions = torch.randn(7, 3, 7) * 0.05
    out = wm.rollout(z, state, actions)
    assert out.shape == (7, 3, 16, 64) and not out.requires_grad
    chunked = VJEPAWorldModel.from_modules(*modules, max_batch=3).rollout(z, state, actions)
    torch.testing.assert_close(chunked, out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(wm.rollout(z, state, actions, full_recompute=True), out, atol=1e-5, rtol=1e-5)


def test_rollout_context_is_reusable_and_refuses_a_batch(modules):
    wm = VJEPAWorldModel.from_modules(*modules, max_batch=3)  # chunks of 3, 3, 1 share the context
    z = wm.encode(frames(3))[None]  # [1, 3, N, D]: history of 3 frames
    states = torch.tensor([[0.5, 0.0, 0.3, 3.1, 0.0, 0.0, 0.0]]).repeat(3, 1)[None]
    past = torch.randn(1, 2, 7) * 0.05
    ctx = wm.rollout_context(z, states, past_actions=past)
    for seed in range(2):
        actions = torch.randn(7, 2, 7, generator=torch.Generator().manual_seed(seed)) * 0.05
        ref = wm.rollout(z, states, actions, past_actions=past, full_recompute=True)
        torch.testing.assert_close(wm.rollout_from(ctx, actions), ref, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="batch 1"):
        wm.rollout_context(z.expand(2, -1, -1, -1), states.expand(2, -1, -1), past_actions=past.expand(2, -1, -1))


def test_from_safetensors_round_trip(tmp_path, modules):
    enc, pred = modules
    ck.save_module(enc, tmp_path / "enc.safetensors")
    ck.save_module(pred, tmp_path / "pred.safetensors")
    wm = VJEPAWorldModel.from_safetensors(tmp_path / "enc.safetensors", tmp_path / "pred.safetensors")
    ref = VJEPAWorldModel.from_modules(*modules)
    img, actions = frames(), torch.randn(2, 2, 7) * 0.05
    state = torch.zeros(1, 7)
    torch.testing.assert_close(wm.rollout(wm.encode(img), state, actions), ref.rollout(ref.encode(img), state, actions))


def test_bfloat16_world_model(modules):
    enc, pred = modules
    wm = VJEPAWorldModel.from_modules(
        build_encoder("vit_micro", patch_size=8, img_size=32),
        build_predictor("ac_micro", embed_dim=64, grid_size=4),
        dtype=torch.bfloat16,
    )
    z = wm.encode(frames())
    out = wm.rollout(z, torch.zeros(1, 7), torch.randn(4, 2, 7) * 0.05)
    assert z.dtype == out.dtype == torch.bfloat16 and out.shape == (4, 2, 16, 64)


def test_frame_encoder_rejects_bad_rank(modules):
    enc, _ = modules
    with pytest.raises(ValueError, match=r"\(1, 1, 1, 40, 50, 3\)"):
        VJEPAFrameEncoder(enc).encode(frames(1, 1, 1))


def test_a_predictor_is_refused_with_another_encoder_than_its_own(tmp_path, modules):

    enc, pred = modules
    ck.save_module(enc, tmp_path / "enc.safetensors")
    trained_on = ck.module_sha256(ck.load_module(tmp_path / "enc.safetensors", kind="encoder").float())
    ck.save_module(pred, tmp_path / "pred.safetensors", extra={"encoder_weights_sha256": trained_on, "encoder": "enc.safetensors"})
    VJEPAWorldModel.from_safetensors(tmp_path / "enc.safetensors", tmp_path / "pred.safetensors")  # its own: fine
    other = build_encoder("vit_micro", patch_size=8, img_size=32)  # same shape, other weights
    with torch.no_grad():
        for p_other, p in zip(other.parameters(), enc.parameters()):
            p_other.copy_(p)
        next(other.parameters()).add_(0.01)
    ck.save_module(other, tmp_path / "other.safetensors")
    with pytest.raises(ValueError, match=r"post-trained on another encoder.*enc\.safetensors\)"):
        VJEPAWorldModel.from_safetensors(tmp_path / "other.safetensors", tmp_path / "pred.safetensors")


def test_loading_a_world_model_for_planning_imports_no_dataset_or_video_stack():
    """Planning needs torch and the weights, not pyarrow, PyAV, MuJoCo or rerun (a robot workstation may lack them)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from vjepa_planning.configs import compose_config\n"
        "from vjepa_planning.control.build import load_world_model, make_mpc\n"
        "import vjepa_planning.control.loop\n"
        "cfg = compose_config('plan_goal', ['world_model.compile=false'])\n"  # eager: compiling is timed and tested elsewhere
        "make_mpc(load_world_model(cfg.world_model), cfg.planner)\n"
        "print(sorted(m for m in ('pyarrow', 'av', 'mujoco', 'rerun') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
