"""The centre square crop every image path shares (cameras, DROID import, encoder preprocessing, pretraining),
so a frame from the real camera, from DROID and from the sim meets the encoder with the same geometry.

Pure index arithmetic: no numpy, torch or OpenCV import. :func:`center_square_crop` slices channels-last
frames, which works alike on numpy arrays and torch tensors; resizing stays with each caller.
"""

from __future__ import annotations


def square_box(height: int, width: int) -> tuple[int, int, int]:
    """(top, left, side) of the largest centred square in a height x width image; an odd surplus
    leaves the extra row / column at the bottom / right."""
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive; got height={height}, width={width}")
    side = min(height, width)
    return (height - side) // 2, (width - side) // 2, side


def center_square_crop(frames):
    """[..., H, W, C] numpy array or torch tensor -> a [..., side, side, C] view, side = min(H, W)."""
    if len(frames.shape) < 3:
        raise ValueError(f"frames must be [..., H, W, C] (channels last); got shape {tuple(frames.shape)}")
    top, left, side = square_box(*frames.shape[-3:-1])
    return frames[..., top : top + side, left : left + side, :]  # [..., side, side, C]
