"""Optional timm encoder: a clear error where timm cannot be imported; a real check where it can."""

import builtins

import pytest
import torch

from vjepa_planning.worldmodel import timm_encoder


def test_missing_timm_gives_an_actionable_error(monkeypatch):
    real_import = builtins.__import__

    def failing_import(name, *args, **kwargs):
        if name == "timm" or name.startswith("timm."):
            raise RuntimeError("operator torchvision::nms does not exist")  # what a mismatched torchvision raises
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", failing_import)
    with pytest.raises(ImportError, match=r"timm, which failed to import .*torchvision::nms.*torchvision") as info:
        timm_encoder.TimmFrameEncoder("vit_small_patch14_dinov2", "nowhere.safetensors")
    assert "VJEPAFrameEncoder" in str(info.value)


def test_timm_vit_from_local_weights(tmp_path):
    try:
        timm = timm_encoder.import_timm()
    except ImportError as err:
        pytest.skip(f"timm does not import here: {str(err)[:120]}")
    from safetensors.torch import save_file

    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, img_size=64)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "w.safetensors"))
    enc = timm_encoder.TimmFrameEncoder("vit_tiny_patch16_224", tmp_path / "w.safetensors", img_size=64)
    frames = torch.randint(0, 256, (2, 80, 64, 3), dtype=torch.uint8)
    z = enc.encode(frames)
    assert z.shape == (2, 16, 192)
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        timm_encoder.TimmFrameEncoder("vit_tiny_patch16_224", tmp_path / "missing.pth", img_size=64)
