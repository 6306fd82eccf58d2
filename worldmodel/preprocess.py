"""uint8 RGB frames -> normalised float video tensors for the encoder.

At the API boundary images are uint8 ``[..., H, W, 3]`` (numpy array or torch tensor).
The encoder takes float ``[B, 3, T, S, S]``. Steps: centre square crop (side = min(H, W)),
antialiased resize to S x S, scale to [0, 1], ImageNet mean / std, channels first.

``preprocess_frames``: [H, W, 3] or [B, H, W, 3], every image its own clip, repeated to fill
one tubelet -> [B, 3, tubelet, S, S] (V-JEPA 2-AC encodes a single image as the same frame twice).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from vjepa_planning.robot_pose.imaging import center_square_crop

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Interp = Literal["bilinear", "bicubic"]


def _as_uint8_tensor(frames, name: str) -> torch.Tensor:
    if isinstance(frames, np.ndarray):
        if frames.dtype != np.uint8:
            raise TypeError(f"{name} must be uint8 RGB; got numpy dtype {frames.dtype} with shape {frames.shape}")
        # Frames decoded from a network message are read-only views; torch needs a writable buffer.
        frames = torch.from_numpy(np.ascontiguousarray(frames) if frames.flags.writeable else frames.copy())
    elif not isinstance(frames, torch.Tensor):
        raise TypeError(f"{name} must be a uint8 numpy array or torch tensor; got {type(frames).__name__}")
    if frames.dtype != torch.uint8:
        raise TypeError(f"{name} must be uint8 RGB; got torch dtype {frames.dtype} with shape {tuple(frames.shape)}")
    if frames.ndim < 3 or frames.shape[-1] != 3:
        raise ValueError(f"{name} must have shape [..., H, W, 3] (RGB, channels last); got {tuple(frames.shape)}")
    return frames


def _crop_resize_normalise(
    x: torch.Tensor, size: int, interpolation: Interp, mean, std, dtype: torch.dtype, device
) -> torch.Tensor:
    """x: uint8 [M, H, W, 3] -> float [M, 3, size, size]."""
    x = center_square_crop(x)  # [M, side, side, 3]
    side = x.shape[1]
    x = x.to(device).permute(0, 3, 1, 2).float().div_(255.0)  # [M, 3, side, side] in [0, 1]
    if side != size:
        x = F.interpolate(x, size=(size, size), mode=interpolation, antialias=True, align_corners=False)
        if interpolation == "bicubic":
            x = x.clamp_(0.0, 1.0)
    m = torch.tensor(mean, device=x.device).view(1, 3, 1, 1)
    s = torch.tensor(std, device=x.device).view(1, 3, 1, 1)
    return ((x - m) / s).to(dtype)  # [M, 3, size, size]


def preprocess_frames(
    images,
    size: int,
    tubelet_size: int = 2,
    *,
    interpolation: Interp = "bilinear",
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """[H, W, 3] | [B, H, W, 3] uint8, each image its own clip -> [B, 3, tubelet, S, S]."""
    x = _as_uint8_tensor(images, "images")
    if x.ndim == 3:
        x = x[None]  # [1, H, W, 3]
    elif x.ndim != 4:
        raise ValueError(f"images must be [H, W, 3] or [B, H, W, 3]; got {tuple(x.shape)}")
    y = _crop_resize_normalise(x, size, interpolation, mean, std, dtype, device)  # [B, 3, S, S]
    return y[:, :, None].expand(-1, -1, tubelet_size, -1, -1).contiguous()  # [B, 3, tubelet, S, S]


def encode_in_batches(frames, batch_size: int, encode_images) -> torch.Tensor:
    """Apply `encode_images(uint8 [m, H, W, 3]) -> [m, N, D]` to frames of any of the FrameEncoder
    layouts, `batch_size` images at a time: [H, W, 3] -> [1, N, D]; [B, H, W, 3] -> [B, N, D];
    [B, T, H, W, 3] -> [B, T, N, D]."""
    lead = tuple(frames.shape[:-3])
    if len(lead) > 2:
        raise ValueError(f"frames must be [H, W, 3], [B, H, W, 3] or [B, T, H, W, 3]; got {tuple(frames.shape)}")
    images = frames.reshape(-1, *frames.shape[-3:])  # [M, H, W, 3]
    z = torch.cat([encode_images(images[i : i + batch_size]) for i in range(0, images.shape[0], batch_size)])  # [M, N, D]
    return z if len(lead) < 2 else z.unflatten(0, lead)  # [B, N, D] or [B, T, N, D]


class FrameTokenEncoder(nn.Module):
    """The encode path every frozen image backbone shares (protocol.FrameEncoder): uint8 frames ->
    ``preprocess_frames`` -> the backbone's patch tokens (``tokens``, per subclass) -> layer norm when
    ``normalize``, ``batch_size`` images at a time."""

    tubelet_size = 1  # frames per image the backbone takes (a V-JEPA video ViT: its tubelet)

    def __init__(self, img_size: int, *, interpolation: Interp, mean, std, normalize: bool, batch_size: int,
                 device: torch.device | str, dtype: torch.dtype):
        super().__init__()
        self.img_size, self.interpolation, self.mean, self.std = img_size, interpolation, tuple(mean), tuple(std)
        self.normalize, self.batch_size = normalize, batch_size
        self.device, self.dtype = torch.device(device), dtype

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """[m, 3, tubelet, S, S] preprocessed images -> [m, N, D] patch tokens."""
        raise NotImplementedError

    @torch.inference_mode()
    def encode(self, frames) -> torch.Tensor:
        """[H, W, 3] -> [1, N, D]; [B, H, W, 3] -> [B, N, D]; [B, T, H, W, 3] -> [B, T, N, D] (uint8)."""
        return encode_in_batches(frames, self.batch_size, self._encode_images)

    def _encode_images(self, images) -> torch.Tensor:
        x = preprocess_frames(images, self.img_size, self.tubelet_size, interpolation=self.interpolation,
                              mean=self.mean, std=self.std, dtype=self.dtype, device=self.device)  # [m, 3, tubelet, S, S]
        z = self.tokens(x)  # [m, N, D]
        return F.layer_norm(z, (z.shape[-1],)) if self.normalize else z
