"""The GPU path, where a GPU is present (CI has none: skipped there): auto picks bf16, the cached rollout
matches the CPU float32 rollout, and every planner preset plans on the device."""

import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def test_auto_dtype_on_cuda_is_bf16():
    from vjepa_planning.worldmodel.compute_dtype import auto_dtype

    assert auto_dtype("cuda")[0] == (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32)


@pytest.mark.parametrize("preset", ["cem", "icem", "cem_grad", "mppi"])
def test_rollout_and_planners_on_cuda(preset):
    import copy

    from vjepa_planning.configs import compose_config
    from vjepa_planning.control.build import planner_config
    from vjepa_planning.planners import make_planner
    from vjepa_planning.worldmodel.encoder import build_encoder
    from vjepa_planning.worldmodel.predictor import ACPredictor
    from vjepa_planning.worldmodel.world_model import VJEPAWorldModel

    torch.manual_seed(0)
    enc = build_encoder("vit_micro", patch_size=16, img_size=32)
    pred = ACPredictor(embed_dim=64, predictor_embed_dim=64, depth=2, num_heads=2, grid_size=2)
    cpu = VJEPAWorldModel.from_modules(copy.deepcopy(enc), copy.deepcopy(pred), dtype=torch.float32)
    gpu = VJEPAWorldModel.from_modules(enc, pred, device="cuda", dtype=torch.bfloat16)  # moves enc, pred
    frames = torch.randint(0, 256, (3, 32, 32, 3), dtype=torch.uint8).numpy()
    z_cpu, z_gpu = cpu.encode(frames)[None], gpu.encode(frames)[None]
    state, past = torch.zeros(1, 3, 7), torch.zeros(1, 2, 7)
    actions = 0.02 * torch.randn(16, 2, 7)
    ref = cpu.rollout(z_cpu, state, actions, past_actions=past)
    out = gpu.rollout(z_gpu, state.cuda(), actions.cuda(), past_actions=past.cuda())
    assert out.device.type == "cuda" and (out.float().cpu() - ref).abs().mean() < 0.05
    pc = compose_config("plan_goal", [f"planner={preset}", "planner.num_samples=32", "planner.num_elites=4"]).planner
    result = make_planner(pc.name, gpu, planner_config(pc)).plan(z_gpu, state.cuda(), z_gpu[:, -1], past_actions=past.cuda())
    assert result.actions.shape == (pc.horizon, 7) and torch.isfinite(result.actions).all()


def test_compiled_rollout_on_cuda_equals_eager():
    import copy

    from vjepa_planning.worldmodel.compute_dtype import resolve_compile
    from vjepa_planning.worldmodel.encoder import build_encoder
    from vjepa_planning.worldmodel.predictor import ACPredictor
    from vjepa_planning.worldmodel.world_model import VJEPAWorldModel

    if not resolve_compile("auto", "cuda")[0]:
        pytest.skip("no triton for inductor")
    torch.manual_seed(0)
    enc = build_encoder("vit_micro", patch_size=16, img_size=32)
    pred = ACPredictor(embed_dim=64, predictor_embed_dim=64, depth=2, num_heads=2, grid_size=2)
    kw = dict(device="cuda", dtype=torch.bfloat16)
    eager = VJEPAWorldModel.from_modules(copy.deepcopy(enc), copy.deepcopy(pred), **kw)
    compiled = VJEPAWorldModel.from_modules(enc, pred, compile=True, **kw)
    assert compiled.warm_up([16], horizon=2, context_frames=3) > 0
    z = torch.nn.functional.layer_norm(torch.randn(1, 3, 4, 64, device="cuda"), (64,))
    state, past = torch.zeros(1, 3, 7, device="cuda"), torch.zeros(1, 2, 7, device="cuda")
    actions = 0.02 * torch.randn(16, 2, 7, device="cuda")
    ref = eager.rollout(z, state, actions, past_actions=past).float()
    out = compiled.rollout(z, state, actions, past_actions=past).float()
    assert compiled.predictor.compiled_step.error is None and (out - ref).abs().mean() < 0.02
