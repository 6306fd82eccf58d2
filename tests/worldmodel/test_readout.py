"""The gripper readout: a small CNN on camera frames, fit, saved, loaded with the world model, refusing bad input."""

import numpy as np
import pytest
import torch

from vjepa_planning.worldmodel import checkpoints
from vjepa_planning.worldmodel.readout import GripperReadout, accuracy, fit_gripper_readout


def frames(closed: np.ndarray, seed: int, side: int = 32) -> np.ndarray:
    """Noisy frames with a grey 'hand' somewhere; a closed hand has no gap between its two 'fingers'."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 90, (len(closed), side, side, 3), dtype=np.uint8)
    for img, c in zip(x, closed):
        r, q = rng.integers(2, side - 10, 2)
        img[r : r + 8, q : q + 3] = 220
        img[r : r + 8, q + 5 : q + 8] = 220
        if c:
            img[r : r + 8, q + 3 : q + 5] = 220
    return x


def test_fit_reads_the_gripper_off_unseen_frames(one_torch_thread):
    rng = np.random.default_rng(0)
    closed, closed_v = rng.random(512) < 0.4, rng.random(128) < 0.4
    fit = fit_gripper_readout(frames(closed, 1), closed, epochs=4, img_size=32, val_frames=frames(closed_v, 2),
                              val_closed=closed_v, progress=False)
    assert fit.val_accuracy > 0.9
    blind = fit_gripper_readout(frames(closed, 1), rng.permutation(closed), epochs=4, img_size=32,
                                val_frames=frames(closed_v, 2), val_closed=closed_v, progress=False)
    assert blind.val_accuracy < 0.75  # shuffled labels: nothing to learn that holds on other frames
    p = fit.readout.read(frames(np.array([True, False]), 3))
    assert p.shape == (2,) and p[0] > 0.5 > p[1]
    assert fit.readout.read(frames(np.array([True]), 3)[0]).shape == (1,)  # one [H, W, 3] image


def test_one_kind_of_frame_and_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="open and with it closed"):
        fit_gripper_readout(frames(np.ones(8, bool), 0), np.ones(8, bool), img_size=32, progress=False)
    with pytest.raises(ValueError, match="one label each"):
        fit_gripper_readout(frames(np.ones(8, bool), 0), np.ones(7, bool), img_size=32, progress=False)
    with pytest.raises(ValueError, match="images must be"):
        GripperReadout(32).read(np.zeros((2, 3, 32, 32, 3), np.uint8))


def test_saved_readout_loads_strict_and_reads_goal_images_for_the_world_model(tmp_path, one_torch_thread):
    from vjepa_planning.worldmodel.encoder import build_encoder
    from vjepa_planning.worldmodel.predictor import ACPredictor
    from vjepa_planning.worldmodel.world_model import VJEPAWorldModel

    closed = np.arange(64) % 2 == 0
    fit = fit_gripper_readout(frames(closed, 0), closed, epochs=1, img_size=32, progress=False)
    checkpoints.save_module(fit.readout, tmp_path / "readout.safetensors", extra={"camera": "workspace"})
    loaded = checkpoints.load_module(tmp_path / "readout.safetensors", kind="readout")
    x = frames(closed[:6], 5)
    assert torch.equal(loaded.read(x), fit.readout.read(x))
    assert accuracy(loaded, x, closed[:6]) == accuracy(fit.readout, x, closed[:6])
    with pytest.raises(ValueError, match="holds a readout, not a predictor"):
        checkpoints.load_module(tmp_path / "readout.safetensors", kind="predictor")

    torch.manual_seed(0)
    checkpoints.save_module(build_encoder("vit_micro", patch_size=16, img_size=32), tmp_path / "enc.safetensors")
    checkpoints.save_module(ACPredictor(embed_dim=64, predictor_embed_dim=32, depth=2, num_heads=2, grid_size=2), tmp_path / "pred.safetensors")
    pair = (tmp_path / "enc.safetensors", tmp_path / "pred.safetensors")
    wm = VJEPAWorldModel.from_safetensors(*pair, readout_path=tmp_path / "readout.safetensors", dtype=torch.bfloat16)
    assert torch.allclose(wm.gripper_closed(x[0]), fit.readout.read(x[0]))  # float32 whatever the predictor's dtype
    assert VJEPAWorldModel.from_safetensors(*pair).gripper_closed(x[0]) is None
