"""Camera capture for the real-arm backend: OpenCV frames (from a video file standing in for a camera),
centre crop + resize like the sim's images, and clear failures without OpenCV or without a camera."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from vjepa_planning.robot_drivers.camera import (
    CameraError,
    OpenCVCamera,
    StaticCamera,
    center_square,
    make_camera,
)


def test_center_square_crops_the_middle_and_resizes():
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[:, 80:560] = 200  # the central 480x480 square
    out = center_square(frame, 240)
    assert out.shape == (240, 240, 3) and np.all(out == 200)
    assert center_square(frame[:, 80:560], 480).shape == (480, 480, 3)


def test_static_camera_and_camera_type_none(caplog):
    cam = make_camera({"type": "none"}, 64)
    assert cam.read().shape == (64, 64, 3) and cam.name == "none"
    assert "blank grey image" in caplog.text
    img = np.random.default_rng(0).integers(0, 255, (100, 120, 3), dtype=np.uint8)
    assert StaticCamera(100, img).read().shape == (100, 100, 3)
    with pytest.raises(ValueError, match="camera.type"):
        make_camera({"type": "kinect"}, 64)


def test_without_opencv_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)
    with pytest.raises(CameraError, match="opencv-python-headless"):
        OpenCVCamera(0)


def test_a_missing_camera_is_a_clear_error():
    pytest.importorskip("cv2")
    with pytest.raises(CameraError, match="could not open"):
        OpenCVCamera("/nonexistent/video.mp4", open_timeout_s=1.0)


def test_opencv_camera_reads_fresh_rgb_frames(tmp_path):
    cv2 = pytest.importorskip("cv2")
    path = str(tmp_path / "cam.avi")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 30, (160, 120))
    if not writer.isOpened():
        pytest.skip("this OpenCV build cannot write MJPG video")
    for i in range(10):
        frame = np.zeros((120, 160, 3), np.uint8)
        frame[:, :, 2] = 250  # BGR: pure red
        writer.write(frame)
    writer.release()
    cam = make_camera({"type": "opencv", "device": path, "read_timeout_s": 2.0}, 64)
    try:
        a, b = cam.read(), cam.read()
        assert a.shape == (64, 64, 3) and a.dtype == np.uint8
        assert a[..., 0].mean() > 200 and a[..., 2].mean() < 40  # RGB order: red first
        assert b.shape == a.shape
    finally:
        cam.close()
