"""Optional: a timm ViT (e.g. DINOv2) from a local weights file as the frozen FrameEncoder.

    enc = TimmFrameEncoder("vit_small_patch14_dinov2", "dinov2_vits14.safetensors", img_size=224)
    z = enc.encode(frame)   # uint8 [H, W, 3] -> [1, N, D] patch tokens (prefix tokens dropped), layer-normed

Weights are never downloaded: ``weights_path`` is a local ``.safetensors`` / ``.pth`` state dict
for ``timm.create_model(model_name)``, loaded strictly. timm is imported lazily, only here.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from vjepa_planning.worldmodel.preprocess import IMAGENET_MEAN, IMAGENET_STD, FrameTokenEncoder, Interp


def import_timm():
    """Import timm or raise an ImportError that says why and how to fix it."""
    try:
        import timm
    except Exception as err:  # ImportError, or torchvision's own failure (e.g. a CUDA/CPU build mismatch)
        raise ImportError(
            f"TimmFrameEncoder needs timm, which failed to import ({type(err).__name__}: {err}). timm imports "
            f"torchvision, and torchvision must be the build made for the installed torch "
            f"({torch.__version__}); a mismatched or CUDA-only torchvision breaks the import on CPU machines. "
            f"Fix: install timm (`pip install timm`, or the project's `timm` extra) together with the "
            f"torchvision release that pairs with this torch and the same CPU/CUDA variant, or use the "
            f"V-JEPA encoder (worldmodel.world_model.VJEPAFrameEncoder), which needs neither."
        ) from err
    return timm


class TimmFrameEncoder(FrameTokenEncoder):
    """A frozen timm ViT as a protocol.FrameEncoder (per-image patch tokens)."""

    def __init__(
        self,
        model_name: str,
        weights_path: str | os.PathLike,
        *,
        img_size: int = 224,
        interpolation: Interp = "bicubic",
        normalize: bool = True,
        batch_size: int = 32,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ):
        timm = import_timm()
        from vjepa_planning.worldmodel.checkpoints import load_strict

        model = timm.create_model(model_name, pretrained=False, num_classes=0, img_size=img_size)
        load_strict(model, _read_weights(Path(weights_path)))
        cfg = getattr(model, "pretrained_cfg", {}) or {}
        super().__init__(img_size, interpolation=interpolation, mean=cfg.get("mean", IMAGENET_MEAN), std=cfg.get("std", IMAGENET_STD),
                         normalize=normalize, batch_size=batch_size, device=device, dtype=dtype)
        self.model = model.to(device=device, dtype=dtype).eval().requires_grad_(False)
        self.num_prefix_tokens = getattr(model, "num_prefix_tokens", 1)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_features(x[:, :, 0])[:, self.num_prefix_tokens :]  # [m, N, D] (class/register tokens dropped)


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise FileNotFoundError(f"timm weights file not found: {path} (weights are never downloaded)")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    sd = torch.load(path, map_location="cpu", weights_only=True)
    return sd.get("state_dict", sd.get("model", sd)) if isinstance(sd, dict) else sd
