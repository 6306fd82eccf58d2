import numpy as np
import pytest
from PIL import Image

from vjepa_planning.control.goal_image import GoalImageError, load_goal_image


def test_rgb_png_round_trips(tmp_path):
    img = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / "g.png")
    np.testing.assert_array_equal(load_goal_image(tmp_path / "g.png"), img)


def test_grayscale_is_expanded_to_rgb(tmp_path):
    gray = np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) % 256
    Image.fromarray(gray.astype(np.uint8), mode="L").save(tmp_path / "g.png")
    out = load_goal_image(tmp_path / "g.png")
    assert out.shape == (64, 64, 3)
    np.testing.assert_array_equal(out[..., 0], out[..., 2])
    np.testing.assert_array_equal(out[..., 1], gray)


def test_rgba_is_composited_on_black(tmp_path):
    rgba = np.zeros((48, 48, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, :24, 3] = 255  # left half opaque, right half transparent
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "g.png")
    out = load_goal_image(tmp_path / "g.png")
    assert out.shape == (48, 48, 3)
    assert np.all(out[:, :24, 0] == 200) and np.all(out[:, 24:] == 0)


def test_truncated_file_is_a_clear_error(tmp_path):
    Image.fromarray(np.full((64, 64, 3), 90, np.uint8)).save(tmp_path / "g.png")
    data = (tmp_path / "g.png").read_bytes()
    (tmp_path / "bad.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(GoalImageError, match=r"bad\.png.*not a readable image"):
        load_goal_image(tmp_path / "bad.png")


def test_not_an_image_and_missing_file(tmp_path):
    (tmp_path / "g.png").write_text("hello")
    with pytest.raises(GoalImageError, match="not a readable image"):
        load_goal_image(tmp_path / "g.png")
    with pytest.raises(GoalImageError, match="no such file"):
        load_goal_image(tmp_path / "missing.png")


def test_tiny_image_is_refused(tmp_path):
    Image.fromarray(np.zeros((8, 300, 3), np.uint8)).save(tmp_path / "g.png")
    with pytest.raises(GoalImageError, match="too small"):
        load_goal_image(tmp_path / "g.png")
