"""uint8 frames -> normalised float clips: shapes, values, and errors that name the input."""

import numpy as np
import pytest
import torch

from vjepa_planning.worldmodel.preprocess import IMAGENET_MEAN, IMAGENET_STD, preprocess_frames


def test_single_image_fills_a_tubelet_and_is_normalised():
    img = np.full((48, 64, 3), 255, dtype=np.uint8)
    x = preprocess_frames(img, 32)
    assert x.shape == (1, 3, 2, 32, 32) and x.dtype == torch.float32
    expected = (1.0 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    torch.testing.assert_close(x[0, :, 0, 5, 5], expected)
    torch.testing.assert_close(x[:, :, 0], x[:, :, 1])


def test_centre_crop_keeps_the_middle():
    img = np.zeros((40, 80, 3), dtype=np.uint8)
    img[:, 20:60] = 200  # the centre 40 x 40 square is bright, the sides dark
    x = preprocess_frames(img, 40)  # no resize: pure crop
    assert x.shape == (1, 3, 2, 40, 40)
    assert torch.allclose(x, x[..., :1, :1].expand_as(x))  # uniform: the dark sides were cropped away


def test_resize_is_antialiased_average():
    img = np.zeros((64, 64, 3), dtype=np.uint8)
    img[::2] = 255  # 1-pixel stripes: antialiased downscale to 16 gives ~mid grey, not aliasing
    x = preprocess_frames(torch.from_numpy(img), 16)
    grey = x * torch.tensor(IMAGENET_STD).view(1, 3, 1, 1, 1) + torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1, 1)
    assert (grey - 0.5).abs().max() < 0.05  # without antialiasing this would be 0 or 1


def test_shapes_of_batches():
    images = torch.randint(0, 255, (4, 30, 30, 3), dtype=torch.uint8)
    assert preprocess_frames(images, 16, tubelet_size=2).shape == (4, 3, 2, 16, 16)
    assert preprocess_frames(images[0], 16, tubelet_size=4).shape == (1, 3, 4, 16, 16)
    assert preprocess_frames(images, 16, dtype=torch.bfloat16).dtype == torch.bfloat16


@pytest.mark.parametrize(
    "bad, fn, match",
    [
        (np.zeros((8, 8, 3), dtype=np.float32), preprocess_frames, r"images must be uint8.*float32.*\(8, 8, 3\)"),
        (
            torch.zeros(8, 8, 4, dtype=torch.uint8),
            preprocess_frames,
            r"images must have shape \[\.\.\., H, W, 3\].*\(8, 8, 4\)",
        ),
        (torch.zeros(2, 2, 8, 8, 3, dtype=torch.uint8), preprocess_frames, r"images must be .*\(2, 2, 8, 8, 3\)"),
        ([[1, 2, 3]], preprocess_frames, r"images must be a uint8 numpy array or torch tensor; got list"),
    ],
)
def test_errors_name_the_input_and_its_shape(bad, fn, match):
    with pytest.raises((TypeError, ValueError), match=match):
        fn(bad, 16)
