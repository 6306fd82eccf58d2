"""Reading a goal image a user brings, with clear errors and documented conversions.

Accepted: any format Pillow reads (PNG, JPEG, ...). Conversions, stated so nobody is surprised:
grayscale and palette images are expanded to RGB; an alpha channel is composited onto black (what an
RGBA render of our scene over an empty background means); 16-bit images are scaled to 8 bits. Any size
of at least 32x32 px is accepted: the encoder's preprocessing centre-crops to a square and resizes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

MIN_SIDE = 32


class GoalImageError(ValueError):
    pass


def load_goal_image(path: str | Path) -> np.ndarray:
    """uint8 [H, W, 3] RGB from an image file."""
    path = Path(path)
    if not path.is_file():
        raise GoalImageError(f"goal image {path}: no such file")
    try:
        with Image.open(path) as im:
            im.load()  # decode now: a truncated file fails here, not later inside the planner
            image = _to_rgb(im, path)
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise GoalImageError(f"goal image {path}: not a readable image ({e})") from e
    h, w = image.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise GoalImageError(f"goal image {path}: {w}x{h} px is too small (at least {MIN_SIDE}x{MIN_SIDE})")
    return image


def _to_rgb(im: Image.Image, path: Path) -> np.ndarray:
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float64)
        arr = (arr / max(arr.max(), 1.0) * 255.0).round().astype(np.uint8)
        return np.repeat(arr[..., None], 3, axis=2)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = np.asarray(im.convert("RGBA"), dtype=np.float32)
        return (rgba[..., :3] * (rgba[..., 3:] / 255.0)).round().astype(np.uint8)
    if im.mode in ("RGB", "L", "P", "CMYK", "YCbCr", "1"):
        return np.asarray(im.convert("RGB"), dtype=np.uint8)
    raise GoalImageError(f"goal image {path}: unsupported pixel format {im.mode!r}")
