"""The shared centre square crop: the centre is kept, odd surpluses split the same way everywhere, numpy
and torch frames crop alike, and bad shapes fail with their shape in the message."""

import numpy as np
import pytest
import torch

from vjepa_planning.robot_pose.imaging import center_square_crop, square_box


@pytest.mark.parametrize(
    "hw, box",
    [((48, 64), (0, 8, 48)), ((64, 48), (8, 0, 48)), ((47, 64), (0, 8, 47)), ((5, 8), (0, 1, 5)),
     ((8, 5), (1, 0, 5)), ((33, 33), (0, 0, 33))],
)
def test_square_box_centres_the_square(hw, box):
    assert square_box(*hw) == box  # an odd surplus (3 of 8) leaves the extra column on the right


def test_crop_keeps_the_centre_of_landscape_and_portrait_frames():
    frame = np.zeros((40, 70, 3), np.uint8)
    frame[:, 15:55] = 200  # the centre 40 x 40 square is bright, 15 dark columns either side
    out = center_square_crop(frame)
    assert out.shape == (40, 40, 3) and np.all(out == 200)
    portrait = np.ascontiguousarray(frame.transpose(1, 0, 2))  # [70, 40, 3]
    assert np.all(center_square_crop(portrait) == 200)


def test_leading_dims_and_torch_tensors_crop_alike():
    frames = np.random.default_rng(0).integers(0, 256, (2, 3, 31, 44, 3), dtype=np.uint8)
    out = center_square_crop(frames)
    assert out.shape == (2, 3, 31, 31, 3)
    np.testing.assert_array_equal(out, frames[:, :, :, 6:37])
    np.testing.assert_array_equal(center_square_crop(torch.from_numpy(frames)).numpy(), out)


@pytest.mark.parametrize("bad", [np.zeros((8, 8)), np.zeros((0, 8, 3))])
def test_bad_shapes_name_the_shape(bad):
    with pytest.raises(ValueError, match=r"\(8, 8\)|height=0, width=8"):
        center_square_crop(bad)
