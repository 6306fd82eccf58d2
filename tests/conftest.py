import os
import sys
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).parent))  # helpers shared by test files (synthetic_datasets.py, server_process.py, ...)


import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(scope="module")
def tiny_wm():
    """A tiny random encoder + predictor as a world model (2 x 2 patches of 64-d): planner plumbing tests."""
    from vjepa_planning.worldmodel.encoder import build_encoder
    from vjepa_planning.worldmodel.predictor import ACPredictor
    from vjepa_planning.worldmodel.world_model import VJEPAWorldModel

    torch.manual_seed(0)
    enc = build_encoder("vit_micro", patch_size=16, img_size=32)
    pred = ACPredictor(embed_dim=64, predictor_embed_dim=32, depth=2, num_heads=2, grid_size=2)
    return VJEPAWorldModel.from_modules(enc, pred)


@pytest.fixture
def one_torch_thread():
    """Tiny models train fastest on one intra-op thread (and far faster on a busy machine)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def tiny_world_model_files(tmp_path):
    """A tiny random encoder + predictor saved as our safetensors: Hydra overrides that point plan-goal at them.
    Eager rollout: compiling a tiny model costs far more than it saves (tens of seconds a process on an AVX2
    CPU); the compiled path has its own tests (tests/worldmodel/test_compiled_step.py) and .ci/wheel_install."""
    from vjepa_planning.worldmodel.checkpoints import save_module
    from vjepa_planning.worldmodel.encoder import build_encoder
    from vjepa_planning.worldmodel.predictor import ACPredictor

    torch.manual_seed(0)
    enc, pred = tmp_path / "enc.safetensors", tmp_path / "pred.safetensors"
    save_module(build_encoder("vit_micro", patch_size=16, img_size=32), enc)
    save_module(ACPredictor(embed_dim=64, predictor_embed_dim=32, depth=2, num_heads=2, grid_size=2), pred)
    return [f"world_model.encoder={enc}", f"world_model.predictor={pred}",
            "planner.num_samples=8", "planner.num_elites=2", "planner.iterations=2", "world_model.compile=false"]
