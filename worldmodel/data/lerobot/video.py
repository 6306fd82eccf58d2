"""Video: streaming mp4 encoder, cheap header probe and decoding (PyAV, imported where video is touched, so the
world model and the planners load on a machine without FFmpeg)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from vjepa_planning.worldmodel.data.lerobot.format import DatasetError


def codec_options(codec: str, crf: int, gop: int) -> dict[str, str]:
    """The encoder's options: quality ``crf``, a keyframe every ``gop`` frames, and a fast preset."""
    opts = {"crf": str(crf), "g": str(gop)}
    if codec == "libx264":
        opts["preset"] = "veryfast"
    elif codec == "libsvtav1":
        opts["preset"] = "10"
        os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its whole config to stderr otherwise
    return opts


class VideoEncoder:
    """Streams RGB frames into an mp4 (yuv420p) at ``path``; ``frame.pts = i`` in units of 1/fps."""

    def __init__(self, path: Path, fps: int, height: int, width: int, codec: str, options: dict[str, str]) -> None:
        import av

        self._av = av
        self.path = path
        self.count = 0
        self._container = av.open(str(path), mode="w", format="mp4")
        try:
            self._stream = self._container.add_stream(codec, rate=fps)
            self._stream.width, self._stream.height = width, height
            self._stream.pix_fmt = "yuv420p"
            self._stream.options = options
        except Exception:
            self._container.close()
            raise

    def write(self, img: np.ndarray) -> None:
        frame = self._av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts = self.count
        self.count += 1
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def finish(self) -> None:
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()

    def abort(self) -> None:
        try:
            self._container.close()
        except Exception:  # the file is discarded anyway
            pass
        self.path.unlink(missing_ok=True)


def _open_video(path: Path) -> Any:
    import av

    if not path.is_file():
        raise DatasetError(path, "video file is missing")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, ValueError) as e:
        raise DatasetError(path, f"cannot open video (truncated or corrupt?): {e}") from e
    if not container.streams.video:
        container.close()
        raise DatasetError(path, "file has no video stream")
    return container


def probe_video(path: Path, height: int, width: int, min_frames: int, exact_frames: int | None) -> None:
    """Cheap header check: opens, right size, frame count from the mp4 sample table."""
    container = _open_video(path)
    with container:
        stream = container.streams.video[0]
        w, h = stream.codec_context.width, stream.codec_context.height
        if (h, w) != (height, width):
            raise DatasetError(path, f"video is {h}x{w}, expected {height}x{width}")
        n = stream.frames  # 0 when the container does not say
        if n and exact_frames is not None and n != exact_frames:
            raise DatasetError(path, f"video has {n} frames but the episode has {exact_frames} data rows")
        if n and n < min_frames:
            raise DatasetError(path, f"video has {n} frames, fewer than the {min_frames} the episode needs")


def decode_video(
    path: Path, height: int, width: int, fps: int, from_ts: float, to_ts: float, whole_file: bool
) -> np.ndarray:
    """Decode frames with timestamp in [from_ts, to_ts) (all frames if ``whole_file``) as uint8 [T,H,W,3]."""
    import av

    container = _open_video(path)
    half = 0.5 / fps  # frames are matched to the nearest 1/fps slot
    frames: list[np.ndarray] = []
    with container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            if not whole_file and from_ts > half and stream.time_base is not None:
                container.seek(int((from_ts - half) / stream.time_base), stream=stream, backward=True)
            for frame in container.decode(stream):
                if not whole_file:
                    t = frame.time
                    if t is None:
                        raise DatasetError(path, "frame without timestamp in a multi-episode video")
                    if t < from_ts - half:
                        continue
                    if t >= to_ts - half:
                        break
                img = frame.to_ndarray(format="rgb24")
                if img.shape != (height, width, 3):
                    raise DatasetError(path, f"decoded frame has shape {img.shape}, expected {(height, width, 3)}")
                frames.append(img)
        except (av.FFmpegError, OSError) as e:
            raise DatasetError(path, f"video decoding failed after {len(frames)} frames: {e}") from e
    if not frames:
        return np.zeros((0, height, width, 3), np.uint8)
    return np.stack(frames)
