"""Cameras for the real-arm backend: frames as uint8 RGB [S, S, 3], centre-cropped and resized like the sim's.

`OpenCVCamera` reads a USB/V4L2 camera (or a video file / stream URL) with OpenCV's `VideoCapture` on a
background thread that keeps only the newest frame, so a 4 Hz control loop never sees a frame that sat in
the driver's buffer. OpenCV is an optional extra (`pip install opencv-python-headless`); without it, or
without a camera, construction fails with a `CameraError` that says what to do. `StaticCamera` serves a fixed
image (tests, or `camera.type=none` for moving the arm without vision — the server says so loudly).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np

from vjepa_planning.robot_pose.imaging import center_square_crop

log = logging.getLogger(__name__)


class CameraError(RuntimeError):
    pass


class Camera(Protocol):
    name: str

    def read(self) -> np.ndarray: ...

    def close(self) -> None: ...


def center_square(frame: np.ndarray, size: int, resize=None) -> np.ndarray:
    """Centre square crop of an [H, W, 3] frame, resized to [size, size, 3] (with `resize(img, size)`)."""
    crop = center_square_crop(frame)  # [s, s, 3]
    s = crop.shape[0]
    if s == size:
        return np.ascontiguousarray(crop)
    if resize is not None:
        return resize(crop, size)
    idx = (np.arange(size) * s / size).astype(int)  # nearest neighbour without OpenCV
    return np.ascontiguousarray(crop[idx][:, idx])


class StaticCamera:
    """Always the same image (a mid-grey frame by default)."""

    def __init__(self, image_size: int = 256, image: np.ndarray | None = None, name: str = "static"):
        self.name = name
        self.image = (
            np.full((image_size, image_size, 3), 128, np.uint8) if image is None else center_square(np.asarray(image, np.uint8), image_size)
        )

    def read(self) -> np.ndarray:
        return self.image.copy()

    def close(self) -> None:
        pass


class OpenCVCamera:
    """Newest-frame reader over `cv2.VideoCapture(device)`; `read()` waits for a frame taken after the call."""

    def __init__(
        self,
        device: int | str = 0,
        image_size: int = 256,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        read_timeout_s: float = 1.0,
        open_timeout_s: float = 5.0,
    ):
        try:
            import cv2
        except ImportError:
            raise CameraError(
                "OpenCV is not installed, so no camera can be read: pip install opencv-python-headless "
                "(or run the server with camera.type=none to move the arm without images)"
            ) from None
        self._cv2 = cv2
        self.name = f"opencv:{device}"
        self.image_size, self.read_timeout_s = int(image_size), float(read_timeout_s)
        dev = int(device) if isinstance(device, str) and device.isdigit() else device
        self._is_file = isinstance(dev, str) and "://" not in dev
        self._cap = cv2.VideoCapture(dev)
        if not self._cap.isOpened():
            raise CameraError(
                f"could not open camera {device!r} with OpenCV (is it plugged in, is /dev/video{device} there "
                "and readable, is another program using it?)" if not isinstance(dev, str) else f"could not open video source {device!r}"
            )
        for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, width), (cv2.CAP_PROP_FRAME_HEIGHT, height), (cv2.CAP_PROP_FPS, fps)):
            if value:
                self._cap.set(prop, float(value))
        self._lock = threading.Condition()
        self._frame: np.ndarray | None = None
        self._frame_t = 0.0
        self._error: str | None = None
        self._running = True
        self._thread = threading.Thread(target=self._grab_loop, name=f"camera-{device}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + open_timeout_s
        with self._lock:
            while self._frame is None and self._error is None and time.monotonic() < deadline:
                self._lock.wait(0.05)
        if self._frame is None:
            self.close()
            raise CameraError(f"camera {device!r} opened but delivered no frame within {open_timeout_s:g} s ({self._error or 'no error reported'})")

    def _grab_loop(self) -> None:
        cv2 = self._cv2
        period = 1.0 / 30.0 if self._is_file else 0.0  # a file decodes as fast as we ask: pace it like a camera
        while self._running:
            ok, bgr = self._cap.read()
            if not ok:
                if self._is_file:  # loop a video file
                    self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                    ok, bgr = self._cap.read()
                if not ok:
                    with self._lock:
                        self._error = "VideoCapture.read() failed"
                        self._lock.notify_all()
                    time.sleep(0.05)
                    continue
            rgb = center_square(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), self.image_size, self._resize)
            with self._lock:
                self._frame, self._frame_t, self._error = rgb, time.monotonic(), None
                self._lock.notify_all()
            if period:
                time.sleep(period)

    def _resize(self, img: np.ndarray, size: int) -> np.ndarray:
        return self._cv2.resize(img, (size, size), interpolation=self._cv2.INTER_AREA)

    def read(self) -> np.ndarray:
        """The first frame captured after this call (so it shows the arm where it is now)."""
        asked = time.monotonic()
        deadline = asked + self.read_timeout_s
        with self._lock:
            while self._frame_t <= asked:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CameraError(f"camera {self.name}: no new frame within {self.read_timeout_s:g} s ({self._error or 'stalled'})")
                self._lock.wait(left)
            return self._frame.copy()

    def close(self) -> None:
        self._running = False
        if getattr(self, "_thread", None) is not None and self._thread.is_alive():
            self._thread.join(timeout=2.0)
        self._cap.release()


def make_camera(cfg: Mapping[str, Any], image_size: int) -> Camera:
    """camera.type: opencv (device, width, height, fps) | none (grey frames, loud warning)."""
    kind = cfg.get("type", "opencv")
    if kind == "opencv":
        return OpenCVCamera(
            device=cfg.get("device", 0),
            image_size=image_size,
            width=cfg.get("width"),
            height=cfg.get("height"),
            fps=cfg.get("fps"),
            read_timeout_s=float(cfg.get("read_timeout_s", 1.0)),
        )
    if kind == "none":
        log.warning("camera.type=none: observations carry a blank grey image; a planner cannot work from them")
        return StaticCamera(image_size, name="none")
    raise ValueError(f"unknown camera.type {kind!r}; choose opencv or none")
